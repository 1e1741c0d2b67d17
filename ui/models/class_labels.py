"""`ClassLabels`: class labels for classification tasks, per series or per slice, and how many are done.

Classes are numbered 1..9 (the number keys assign them). A series is classified as a whole, a slice by its index
along the stored array's first axis (z: the acquired slices). "Next unlabelled" walks the series (or every slice of
every series) in browsing order from the current one and stops at the first without a class.
:meth:`to_dict` / :meth:`from_dict` give a project what to store; :attr:`changed` fires after every change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medtl.errors import MedtlError
from ui.models.events import Event

MAX_CLASS = 9

Item = tuple[str, int | None]  # (series UID, slice index or None for the series)


@dataclass
class ClassLabels:
    """``classes``: number -> name; ``series``: (series UID, slice count) in browsing order."""

    classes: dict[int, str] = field(default_factory=lambda: {1: "class 1", 2: "class 2"})
    series: list[tuple[str, int]] = field(default_factory=list)
    per_slice: bool = False
    series_classes: dict[str, int] = field(default_factory=dict)
    slice_classes: dict[tuple[str, int], int] = field(default_factory=dict)
    changed: Event = field(default_factory=Event, repr=False, compare=False)

    def items(self) -> list[Item]:
        """What is classified in the current mode, in order."""
        if self.per_slice:
            return [(uid, index) for uid, count in self.series for index in range(count)]
        return [(uid, None) for uid, _ in self.series]

    def include(self, uid: str, slices: int) -> None:
        """Make sure series ``uid`` (with ``slices`` slices) is in the list (at the end when new)."""
        if all(known != uid for known, _ in self.series):
            self.series.append((uid, slices))
            self.changed.emit()

    def set_per_slice(self, per_slice: bool) -> None:
        self.per_slice = per_slice
        self.changed.emit()

    def add_class(self, name: str | None = None) -> int:
        number = next((n for n in range(1, MAX_CLASS + 1) if n not in self.classes), None)
        if number is None:
            raise MedtlError(f"at most {MAX_CLASS} classes (one per number key)")
        self.classes[number] = (name or f"class {number}").strip() or f"class {number}"
        self.changed.emit()
        return number

    def rename_class(self, number: int, name: str) -> None:
        if number not in self.classes or not name.strip():
            raise MedtlError(f"class {number}: there is no such class, or the name is empty")
        self.classes[number] = name.strip()
        self.changed.emit()

    def assign(self, number: int, uid: str, index: int | None = None) -> None:
        """Give the series ``uid`` (per series) or its slice ``index`` (per slice) class ``number``."""
        if number not in self.classes:
            raise MedtlError(f"there is no class {number}: add it first")
        if self.per_slice:
            if index is None:
                raise MedtlError("classifying per slice needs a slice")
            self.slice_classes[(uid, index)] = number
        else:
            self.series_classes[uid] = number
        self.changed.emit()

    def clear(self, uid: str, index: int | None = None) -> None:
        """Take the class off the series or slice."""
        if self.per_slice:
            self.slice_classes.pop((uid, index), None)  # type: ignore[arg-type]
        else:
            self.series_classes.pop(uid, None)
        self.changed.emit()

    def class_of(self, uid: str, index: int | None = None) -> int | None:
        return self.slice_classes.get((uid, index)) if self.per_slice else self.series_classes.get(uid)  # type: ignore[arg-type]

    def progress(self) -> tuple[int, int]:
        """(classified, all) in the current mode."""
        items = self.items()
        return sum(self.class_of(uid, index) is not None for uid, index in items), len(items)

    def progress_text(self) -> str:
        done, total = self.progress()
        return f"{done}/{total} {'slices' if self.per_slice else 'series'} classified"

    def next_unlabelled(self, uid: str, index: int | None = None) -> Item | None:
        """The first series or slice without a class after (``uid``, ``index``), wrapping round; None when all have one."""
        items = self.items()
        here = (uid, index if self.per_slice else None)
        start = items.index(here) + 1 if here in items else 0
        for item in items[start:] + items[:start]:
            if self.class_of(*item) is None:
                return item
        return None

    def to_dict(self) -> dict[str, object]:
        return {
            "classes": {str(n): name for n, name in sorted(self.classes.items())},
            "per_slice": self.per_slice,
            "series": {uid: n for uid, n in self.series_classes.items()},
            "slices": [[uid, index, n] for (uid, index), n in sorted(self.slice_classes.items())],
        }

    @classmethod
    def from_dict(cls, data: dict[str, object], series: list[tuple[str, int]] | None = None) -> ClassLabels:
        """Class labels stored by :meth:`to_dict`; raises :class:`MedtlError` naming what is wrong."""
        try:
            classes = {int(n): str(name) for n, name in dict(data["classes"]).items()}  # type: ignore[call-overload]
            series_classes = {str(uid): int(n) for uid, n in dict(data.get("series", {})).items()}  # type: ignore[call-overload]
            slice_classes = {(str(uid), int(index)): int(n) for uid, index, n in data.get("slices", [])}  # type: ignore[attr-defined]
        except (KeyError, TypeError, ValueError) as error:
            raise MedtlError(f"class labels: malformed data ({error})") from None
        unknown = {*series_classes.values(), *slice_classes.values()} - classes.keys()
        if unknown or not all(1 <= n <= MAX_CLASS for n in classes):
            raise MedtlError(f"class labels: classes must be 1..{MAX_CLASS} and every assignment one of them (unknown: {sorted(unknown)})")
        return cls(classes, list(series or []), bool(data.get("per_slice", False)), series_classes, slice_classes)

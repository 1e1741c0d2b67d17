"""`LabelDefinitions`: the label table of the edited label: each label's name, colour, whether it is hidden or locked,
and its volume in mL; add, rename, recolour, hide, lock and delete (delete is an undo step of the editor: undo brings
back the label and its voxels).

It holds no state of its own: names and colours are the :class:`LabelEditor`'s (shared with its layer), so the tools,
the value chooser and the saved label all see one table. :meth:`to_dict` / :meth:`load` give a project what to store;
:attr:`changed` fires after every change made here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medtl.errors import MedtlError
from ui.models.events import Event
from ui.models.label_editor import LabelEditor

MAX_VALUE = 255


@dataclass(frozen=True)
class LabelDefinition:
    """One row of the label table."""

    value: int
    name: str
    colour: tuple[int, int, int]
    hidden: bool
    locked: bool
    volume_ml: float


class LabelDefinitions:
    """The labels of ``editor`` 's mask, on voxels of ``spacing_xyz`` mm."""

    def __init__(self, editor: LabelEditor, spacing_xyz: tuple[float, float, float]) -> None:
        self.editor = editor
        self.voxel_ml = float(np.prod(spacing_xyz)) / 1000.0
        self.changed = Event()

    def rows(self) -> list[LabelDefinition]:
        """The labels in value order."""
        editor, layer = self.editor, self.editor.layer
        return [
            LabelDefinition(value, name, layer.colors.get(value, layer.colour_of(value)), value in editor.hidden, value in editor.locked,
                            float(editor.counts[value]) * self.voxel_ml)
            for value, name in sorted(editor.names.items())
        ]  # fmt: skip

    def volume_ml(self, value: int) -> float:
        return float(self.editor.counts[value]) * self.voxel_ml

    def add(self, name: str | None = None, colour: tuple[int, int, int] | None = None) -> int:
        """A new label with the lowest free value (painted from now on); its name defaults to "label N"."""
        value = next((v for v in range(1, MAX_VALUE + 1) if v not in self.editor.names), None)
        if value is None:
            raise MedtlError(f"a label holds at most {MAX_VALUE} labels")
        self.editor.names[value] = self._checked_name(name or f"label {value}", value)
        self.editor.layer.colors[value] = colour or self.editor.layer.colour_of(value)
        self.editor.value = value
        self.changed.emit()
        return value

    def rename(self, value: int, name: str) -> None:
        self.editor.names[self._known(value)] = self._checked_name(name, value)
        self.changed.emit()

    def recolour(self, value: int, colour: tuple[int, int, int]) -> None:
        if len(colour) != 3 or not all(0 <= c <= 255 for c in colour):
            raise MedtlError(f"a colour is three values 0..255 (red, green, blue), not {colour}")
        self.editor.layer.colors[self._known(value)] = (int(colour[0]), int(colour[1]), int(colour[2]))
        self.changed.emit()

    def set_hidden(self, value: int, hidden: bool) -> None:
        """Hide or show a label: hidden labels are not drawn and no tool paints over them."""
        (self.editor.hidden.add if hidden else self.editor.hidden.discard)(self._known(value))
        self.changed.emit()

    def set_locked(self, value: int, locked: bool) -> None:
        """Lock or unlock a label: no tool changes a locked label's voxels, nor deletes it."""
        (self.editor.locked.add if locked else self.editor.locked.discard)(self._known(value))
        self.changed.emit()

    def delete(self, value: int) -> bool:
        """Delete a label and its voxels (one undo step); False for a locked label or the last one left."""
        if len(self.editor.names) <= 1 or self._known(value) in self.editor.locked:
            return False
        deleted = self.editor.delete_label(value) is not None
        self.changed.emit()
        return deleted

    def to_dict(self) -> dict[str, object]:
        """The definitions as JSON-ready data (volumes are not stored: they follow from the mask)."""
        return {
            "labels": [{"value": r.value, "name": r.name, "colour": list(r.colour), "hidden": r.hidden, "locked": r.locked} for r in self.rows()]
        }

    def load(self, data: dict[str, object]) -> None:
        """Replace the definitions by ``data`` (from :meth:`to_dict`); raises :class:`MedtlError` naming what is wrong."""
        entries = data.get("labels")
        if not isinstance(entries, list) or not entries:
            raise MedtlError("label definitions: 'labels' must be a non-empty list")
        names, colours, hidden, locked = {}, {}, set(), set()
        for entry in entries:
            try:
                value, name, colour = int(entry["value"]), str(entry["name"]).strip(), tuple(int(c) for c in entry["colour"])
            except (KeyError, TypeError, ValueError) as error:
                raise MedtlError(f"label definitions: an entry lacks a value, name or colour ({error})") from None
            if not 1 <= value <= MAX_VALUE or not name or len(colour) != 3 or value in names:
                raise MedtlError(f"label definitions: entry for value {value} is invalid or repeated")
            names[value], colours[value] = name, colour
            if entry.get("hidden"):
                hidden.add(value)
            if entry.get("locked"):
                locked.add(value)
        self.editor.names.clear()
        self.editor.names.update(names)
        self.editor.layer.colors.update(colours)
        self.editor.hidden.clear()
        self.editor.hidden.update(hidden)
        self.editor.locked.clear()
        self.editor.locked.update(locked)
        if self.editor.value not in names:
            self.editor.value = min(names)
        self.changed.emit()

    def _known(self, value: int) -> int:
        if value not in self.editor.names:
            raise MedtlError(f"there is no label {value}")
        return value

    def _checked_name(self, name: str, value: int) -> str:
        name = name.strip()
        if not name:
            raise MedtlError("a label needs a name")
        if any(other == name for v, other in self.editor.names.items() if v != value):
            raise MedtlError(f'there is a label named "{name}" already')
        return name

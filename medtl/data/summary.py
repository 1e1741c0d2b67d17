"""What a datalist holds, shown before training starts (the app's fine-tune panel): cases per class or label, and the split.

:func:`summarise_datalist` (run by the app in a worker) parses the datalist with the engine's loader,
splits it as training will (:func:`medtl.data.dataset.split_datalist` with its defaults: the
datalist's own ``validation`` list, else the seeded patient-level split), and for segmentation reads
each mask to count the cases that contain each label.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtl.data.datalist import Case, Datalist, load_datalist
from medtl.data.dataset import split_datalist
from medtl.data.images import image_format, read_image
from medtl.progress import CancelToken, ProgressCallback


@dataclass(frozen=True)
class Side:
    """One side of the split: its cases, patients, and cases per class or label name."""

    cases: int
    patients: int
    per_label: dict[str, int]


@dataclass(frozen=True)
class DatalistSummary:
    task: str
    split: str  # "datalist" or "seeded by patient"
    training: Side
    validation: Side
    modality: str | None = None

    def lines(self) -> list[str]:
        """A few lines a user reads before Start."""
        total = self.training.cases + self.validation.cases
        patients = self.training.patients + self.validation.patients
        names = list(dict.fromkeys([*self.training.per_label, *self.validation.per_label]))
        counts = ", ".join(
            f"{name} {self.training.per_label.get(name, 0) + self.validation.per_label.get(name, 0)}"
            f" ({self.training.per_label.get(name, 0)}/{self.validation.per_label.get(name, 0)})"
            for name in names
        )
        kind = "class" if self.task == "classification" else "label"
        return [
            f"{self.task}, {total} cases from {patients} patients" + (f", {self.modality}" if self.modality else ""),
            (
                f"split ({self.split}): training {self.training.cases} cases / {self.training.patients} patients, "
                f"validation {self.validation.cases} / {self.validation.patients}"
            ),
            f"cases per {kind} (training/validation): {counts or 'none'}",
        ]

    @property
    def warnings(self) -> list[str]:
        found = []
        if not self.validation.cases:
            found.append("no case can be held out for validation: add patients or a \"validation\" list")
        missing = [name for name in self.training.per_label if not self.validation.per_label.get(name)] if self.validation.cases else []
        if missing:
            found.append(f"not in validation: {', '.join(missing)}")
        return found


def summarise_datalist(path: Path | str, task: str | None, progress: ProgressCallback, cancel: CancelToken) -> DatalistSummary:
    """Parse and split the datalist at ``path`` and count its cases per class or label (reads every mask)."""
    datalist = load_datalist(path, task)
    training, validation, split = split_datalist(datalist)
    if split != "datalist":
        split = "seeded, by patient"
    labels_of = _labels_per_case(datalist, progress, cancel)
    return DatalistSummary(datalist.task, split, _side(training, labels_of), _side(validation, labels_of), datalist.modality)


def _labels_per_case(datalist: Datalist, progress: ProgressCallback, cancel: CancelToken) -> dict[str, list[str]]:
    """The class, or the names of the labels present in the mask, of each case (keyed by its entry)."""
    if datalist.task == "classification":
        return {case.entry: [str(case.label)] for case in datalist.cases}
    found = {}
    for number, case in enumerate(datalist.cases):
        cancel.raise_if_cancelled()
        progress(number, len(datalist.cases), "reading the masks")
        values = _mask_values(Path(case.label))
        found[case.entry] = [datalist.labels.get(int(v), f"label {int(v)}") for v in values if v != 0]
    return found


def _mask_values(path: Path) -> np.ndarray:
    if image_format(path) == "nifti":
        import nibabel

        return np.unique(np.asanyarray(nibabel.load(str(path)).dataobj))
    return np.unique(read_image(path).array)


def _side(cases: list[Case], labels_of: dict[str, list[str]]) -> Side:
    per_label = Counter(name for case in cases for name in labels_of.get(case.entry, []))
    return Side(len(cases), len({case.group for case in cases}), dict(sorted(per_label.items())))

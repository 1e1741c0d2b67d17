"""What a datalist holds, shown before training starts (the app's fine-tune panel): cases per class or label, and the split.

:func:`summarise_datalist` (run by the app in a worker) parses the datalist with the engine's loader,
splits it as training will (:func:`medtl.data.dataset.split_datalist` with its defaults: the
datalist's own ``validation`` list, else the seeded patient-level split, or slabs of one patient's
annotated slices), and for segmentation reads each mask to count the cases that contain each label
and, for sparse masks (an ``ignore`` label, or a split within one patient), the annotated slices.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtl.data.datalist import Case, Datalist, load_datalist
from medtl.data.dataset import split_datalist, training_ignore_label
from medtl.data.images import image_format, read_image
from medtl.data.slabs import SLAB_SPLIT, SLAB_WARNING, SLICE_ORIENTATION, annotated_slices, slice_axis
from medtl.data.sparse import with_ignore
from medtl.progress import CancelToken, ProgressCallback


@dataclass(frozen=True)
class Side:
    """One side of the split: its cases, patients, and cases per class or label name."""

    cases: int
    patients: int
    per_label: dict[str, int]
    annotated_slices: int | None = None  # sparse masks: slices holding annotated voxels, along the axis 2D networks slice


@dataclass(frozen=True)
class DatalistSummary:
    task: str
    split: str  # "datalist", "seeded, by patient" or medtl.data.slabs.SLAB_SPLIT
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
        if self.split == SLAB_SPLIT:  # one patient's volume: its annotated slices are what is split
            return [
                f"{self.task}, one patient" + (f", {self.modality}" if self.modality else "")
                + f": {self.training.annotated_slices} annotated slices to train on, {self.validation.annotated_slices or 0} to validate on",
                f"split: {self.split}",
                f"labels (in the training/validation slabs): {', '.join(names) or 'none'}",
            ]
        lines = [
            f"{self.task}, {total} cases from {patients} patients" + (f", {self.modality}" if self.modality else ""),
            (
                f"split ({self.split}): training {self.training.cases} cases / {self.training.patients} patients, "
                f"validation {self.validation.cases} / {self.validation.patients}"
            ),
            f"cases per {kind} (training/validation): {counts or 'none'}",
        ]
        if self.training.annotated_slices is not None:
            lines.append(f"annotated slices (training/validation): {self.training.annotated_slices}/{self.validation.annotated_slices or 0}")
        return lines

    @property
    def warnings(self) -> list[str]:
        found = []
        if not self.validation.cases:
            found.append("no case can be held out for validation: add patients or a \"validation\" list")
        if self.split == SLAB_SPLIT:
            found.append(SLAB_WARNING)
        missing = [name for name in self.training.per_label if not self.validation.per_label.get(name)] if self.validation.cases else []
        if missing:
            found.append(f"not in validation: {', '.join(missing)}")
        return found


def summarise_datalist(path: Path | str, task: str | None, progress: ProgressCallback, cancel: CancelToken) -> DatalistSummary:
    """Parse and split the datalist at ``path`` and count its cases per class or label (reads every mask)."""
    datalist = load_datalist(path, task)
    training, validation, split = split_datalist(datalist)
    if split not in ("datalist", SLAB_SPLIT):
        split = "seeded, by patient"
    cases = training + validation
    labels_of, slices_of = _read_cases(datalist, cases, training_ignore_label(datalist), progress, cancel)
    return DatalistSummary(datalist.task, split, _side(training, labels_of, slices_of), _side(validation, labels_of, slices_of), datalist.modality)


def _read_cases(
    datalist: Datalist, cases: list[Case], ignore: int | None, progress: ProgressCallback, cancel: CancelToken
) -> tuple[dict[str, list[str]], dict[str, int] | None]:
    """Per case (keyed by its entry): its class, or the names of the trained labels its mask holds; and, for sparse
    masks (``ignore`` given), how many slices hold annotated voxels along the axis a 2D network slices."""
    if datalist.task == "classification":
        return {case.entry: [str(case.label)] for case in cases}, None
    names, found, slices = datalist.trained_labels, {}, {}
    for number, case in enumerate(cases):
        cancel.raise_if_cancelled()
        progress(number, len(cases), "reading the masks")
        if ignore is None:
            values = _mask_values(Path(case.label))
        else:
            mask = read_image(case.label)
            array = mask.array if case.annotated is None else with_ignore(mask.array, case.annotated, ignore)
            values = np.unique(array)
            slices[case.entry] = len(annotated_slices(array, slice_axis(mask, SLICE_ORIENTATION), ignore))
        found[case.entry] = [names.get(int(v), f"label {int(v)}") for v in values if v != 0 and v != ignore]
    return found, (slices if ignore is not None else None)


def _mask_values(path: Path) -> np.ndarray:
    if image_format(path) == "nifti":
        import nibabel

        return np.unique(np.asanyarray(nibabel.load(str(path)).dataobj))
    return np.unique(read_image(path).array)


def _side(cases: list[Case], labels_of: dict[str, list[str]], slices_of: dict[str, int] | None) -> Side:
    per_label = Counter(name for case in cases for name in labels_of.get(case.entry, []))
    slices = None if slices_of is None else sum(slices_of.get(case.entry, 0) for case in cases)
    return Side(len(cases), len({case.group for case in cases}), dict(sorted(per_label.items())), slices)

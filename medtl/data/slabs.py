"""Validation within one patient: the annotated slices of a volume divided into contiguous slabs.

A datalist of one patient without a ``validation`` list cannot be split by patient. When its masks are
volumes, their annotated slices (slices holding a voxel that is not ``ignore``, along the axis a 2D network
slices them: :func:`slice_axis`) are divided instead: per volume, one contiguous run of annotated slices
(:data:`DEFAULT_VAL_FRACTION` of them, at least one) is validation, and every annotated slice at least
:data:`GAP_SLICES` + 1 slices away from it trains; the annotated slices in between are used by neither side,
so that no training slice is a direct neighbour of a validation slice. Among the runs that keep at least
:data:`MIN_TRAINING_SLICES` for training, the one nearest the middle of the annotated range wins (its anatomy
is the most typical, not an organ's tip), then the one leaving the fewest slices unused, then a seeded choice.

Each side is the same image with the other side's slices set to ``ignore`` (:attr:`Case.annotated` records
the side; :func:`write_split_masks` writes those masks, which a run keeps in its ``split/`` folder). A mask
without an ``ignore`` label gets one, one above its labels (:func:`medtl.data.dataset.training_ignore_label`).
Validation scores of such a split are within-patient, and optimistic for new patients: :data:`SLAB_SPLIT` says so.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medtl.data.datalist import Case, Datalist, DatalistError
from medtl.data.sparse import Annotated, with_ignore

if TYPE_CHECKING:
    from medtl.dicom.volume import Volume

SLAB_SPLIT = "slabs within one patient (validation is within-patient)"
"""The split's name in the data summary, the run's config and summary."""
SLAB_WARNING = "validation is slabs of the one patient's own volume: its scores will be optimistic for new patients"
SLICE_ORIENTATION = "LPS"
"""The orientation a 2D network's volumes are sliced in by default (:func:`medtl.data.preprocessing.default_for`)."""
MIN_TRAINING_SLICES = 2
MIN_VALIDATION_SLICES = 1
GAP_SLICES = 1
"""At least this many slices lie between a training slice and a validation slice."""
DEFAULT_VAL_FRACTION = 0.2


@dataclass(frozen=True)
class Slabs:
    """How one volume's annotated slices are divided: indices along ``axis`` of its stored ``[z, y, x]`` array."""

    axis: int
    training: tuple[int, ...]
    validation: tuple[int, ...]
    unused: tuple[int, ...]

    def side(self, validation: bool) -> Annotated:
        """The slices one side keeps (the rest of its mask becomes ``ignore``)."""
        return Annotated().add(self.axis, self.validation if validation else self.training)

    def to_dict(self) -> dict[str, Any]:
        return {"axis": "zyx"[self.axis], "training": list(self.training), "validation": list(self.validation), "unused": list(self.unused)}


def slice_axis(volume: Volume, orientation: str | None) -> int:
    """The axis of ``volume``'s stored ``[z, y, x]`` array that a 2D network slices along: the one that becomes the
    last axis of MONAI's ``[C, x, y, z]`` after ``Orientationd(orientation)`` (``None`` keeps the stored order)."""
    if orientation is None:
        return 0
    from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform

    transform = ornt_transform(io_orientation(volume.affine_ras()), axcodes2ornt(orientation))
    return 2 - int(np.flatnonzero(transform[:, 0] == 2)[0])


def annotated_slices(mask: np.ndarray, axis: int, ignore_label: int | None) -> np.ndarray:
    """Indices along ``axis`` of the slices of ``mask`` holding a voxel that is not ``ignore_label`` (every slice without one)."""
    if ignore_label is None:
        return np.arange(mask.shape[axis])
    others = tuple(a for a in range(mask.ndim) if a != axis)
    return np.flatnonzero((mask != ignore_label).any(axis=others))


def divide(indices: Sequence[int], val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0) -> tuple[list[int], list[int], list[int]] | None:
    """``(training, validation, unused)`` slices of the annotated ``indices`` (see the module docstring), or None
    when no run of them can be validation with :data:`MIN_TRAINING_SLICES` left for training."""
    order = sorted({int(i) for i in indices})
    middle = (order[0] + order[-1]) / 2 if order else 0.0
    for size in range(max(MIN_VALIDATION_SLICES, round(val_fraction * len(order))), MIN_VALIDATION_SLICES - 1, -1):
        options = []
        for start in range(len(order) - size + 1):
            validation = order[start : start + size]
            training = [i for i in order if i < validation[0] - GAP_SLICES or i > validation[-1] + GAP_SLICES]
            if len(training) >= MIN_TRAINING_SLICES:
                unused = [i for i in order if i not in training and i not in validation]
                options.append((abs((validation[0] + validation[-1]) / 2 - middle), len(unused), training, validation, unused))
        if options:
            best = min(option[:2] for option in options)
            training, validation, unused = random.Random(seed).choice([option[2:] for option in options if option[:2] == best])
            return training, validation, unused
    return None


def split_into_slabs(
    datalist: Datalist, cases: list[Case], ignore_label: int, orientation: str | None, val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0
) -> tuple[list[Case], list[Case], list[dict[str, Any]]] | None:
    """``(training, validation, slabs)`` of one patient's segmentation ``cases``: each volume whose annotated slices
    can be divided gives a training and a validation case restricted to its slabs (:attr:`Case.annotated`), the
    other cases train whole; ``slabs`` records the division per volume. None when no case is a volume (one-slice
    images); a :class:`DatalistError` when none of the volumes has enough annotated slices."""
    from medtl.data.images import read_image

    training: list[Case] = []
    validation: list[Case] = []
    record: list[dict[str, Any]] = []
    counts: list[int] = []
    for case in cases:
        mask = read_image(case.label)
        axis = slice_axis(mask, orientation)
        if mask.array.shape[axis] < 2:
            training.append(case)
            continue
        indices = annotated_slices(mask.array, axis, ignore_label)
        counts.append(len(indices))
        divided = divide(indices, val_fraction, seed)
        if divided is None:
            training.append(case)
            continue
        slabs = Slabs(axis, *(tuple(side) for side in divided))
        training.append(Case(case.image, case.label, case.patient_id, f"{case.entry} training slabs", slabs.side(validation=False)))
        validation.append(Case(case.image, case.label, case.patient_id, f"{case.entry} validation slab", slabs.side(validation=True)))
        record.append({"case": case.entry, **slabs.to_dict()})
    if not counts:
        return None
    if not validation:
        raise DatalistError(_too_few(datalist, cases, max(counts)))
    return training, validation, record


def _too_few(datalist: Datalist, cases: list[Case], most: int) -> str:
    where = "its volume" if len(cases) == 1 else "its best volume"
    needed = MIN_TRAINING_SLICES + MIN_VALIDATION_SLICES
    why = f"{MIN_TRAINING_SLICES} for training, {MIN_VALIDATION_SLICES} for validation"
    if most >= needed:
        needed += GAP_SLICES
        why += f", and {GAP_SLICES} left unused between them where the annotated slices are adjacent"
    return (
        f"{datalist.path}: one patient and no \"validation\" list, so validation must be a slab of annotated slices, but {where} "
        f"has {most} annotated slice(s) and at least {needed} are needed ({why}); annotate more slices, or add a \"validation\" list or more patients"
    )


def write_split_masks(cases: list[Case], ignore_label: int, folder: Path) -> list[Case]:
    """``cases`` with every slab-restricted mask (:attr:`Case.annotated`) written into ``folder`` as NIfTI (the other
    slices ``ignore_label``) and the case pointing at that file; unrestricted cases are returned as they are."""
    import nibabel

    from medtl.atomic import atomic_path
    from medtl.data.images import read_image
    from medtl.dicom.volume import Volume

    written = []
    for case in cases:
        if case.annotated is None:
            written.append(case)
            continue
        mask = read_image(case.label)
        side = Volume(with_ignore(mask.array, case.annotated, ignore_label), mask.spacing, mask.origin, mask.direction)
        path = folder / f"{re.sub(r'[^A-Za-z0-9]+', '-', case.entry).strip('-')}.nii.gz"
        with atomic_path(path) as tmp:
            nibabel.save(side.to_nifti(), str(tmp))
        written.append(Case(case.image, path, case.patient_id, case.entry))
    return written


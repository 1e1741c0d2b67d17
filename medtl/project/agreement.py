"""Agreement between two readers' masks of one series (inter-reader studies): Dice per label value."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from medtl.errors import MedtlError
from medtl.labels.store import same_grid
from medtl.project.project import Project


def dice_per_label(a: np.ndarray, b: np.ndarray, values: Iterable[int] | None = None, where: np.ndarray | None = None) -> dict[int, float | None]:
    """Dice ``2|A∩B| / (|A|+|B|)`` of each label value between label maps ``a`` and ``b`` (same shape), counting only
    voxels ``where`` is True (default: all). ``values``: the labels to compare (default: every non-zero value in
    either). A label neither map holds gets None (agreement undefined, not perfect)."""
    if a.shape != b.shape:
        raise MedtlError(f"the two masks have different shapes {a.shape} and {b.shape}")
    if where is not None:
        a, b = a[where], b[where]
    if values is None:
        values = sorted((set(np.unique(a).tolist()) | set(np.unique(b).tolist())) - {0})
    result: dict[int, float | None] = {}
    for value in values:
        in_a, in_b = a == value, b == value
        total = int(in_a.sum()) + int(in_b.sum())
        result[int(value)] = None if total == 0 else 2.0 * int(np.logical_and(in_a, in_b).sum()) / total
    return result


def reader_agreement(project: Project, series_uid: str, reader_a: str, reader_b: str) -> dict[int, float | None]:
    """Dice per label between ``reader_a`` 's and ``reader_b`` 's newest masks of the series, over the slices both
    annotated, for every defined label and any other value either drew."""
    masks = []
    for reader in (reader_a, reader_b):
        version = project.mask(series_uid, reader)
        if version is None:
            raise MedtlError(f"{reader} has no mask of series {series_uid} in {project.folder}")
        masks.append((version, project.load_mask(version)))
    (first, a), (second, b) = masks
    if not same_grid(a, b):
        raise MedtlError(f"{first.path} and {second.path} are not on the same grid; they cannot be compared")
    both = first.annotated.voxels(a.shape) & second.annotated.voxels(b.shape)
    drawn = set(np.unique(a.array[both]).tolist()) | set(np.unique(b.array[both]).tolist())
    values = sorted(({label.value for label in project.labels()} | drawn) - {0})
    return dice_per_label(a.array, b.array, values, both)

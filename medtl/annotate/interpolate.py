"""Shapes between annotated slices: signed-distance interpolation (a morphological interpolation, not a copy).

For each label, the slices along an axis that hold it (or, given, the annotated slices among them) are keys; on each
slice strictly between two neighbouring keys the label fills where the linear blend of the two keys' signed distance
maps is inside (negative). A disc of radius 5 and one of radius 15 ten slices apart give, half way, a disc of
radius 10. Only background voxels are filled: nothing drawn is replaced.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.ndimage import distance_transform_edt

from medtl.annotate.change import UNPROTECTED, Change, Protection, diff, bounding_box


def signed_distance(mask: np.ndarray, sampling: tuple[float, float]) -> np.ndarray:
    """Distance in mm to the boundary of ``mask``: negative inside, positive outside."""
    return distance_transform_edt(~mask, sampling=sampling) - distance_transform_edt(mask, sampling=sampling)  # type: ignore[no-any-return]


def interpolate(
    label: np.ndarray, axis: int, values: Iterable[int], spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    protection: Protection = UNPROTECTED, keys: Iterable[int] | None = None,
) -> Change | None:  # fmt: skip
    """Fill the slices along array ``axis`` between neighbouring key slices of each of ``values``; ``keys``: the
    slices the user annotated (an annotated slice without the label ends it there), default every slice holding it."""
    stack = np.moveaxis(label, axis, 0)  # a view: writing it writes the label
    sampling = tuple(s for a, s in enumerate(spacing) if a != axis)
    annotated = None if keys is None else sorted({int(k) for k in keys if 0 <= k < stack.shape[0]})
    jobs = []
    for value in values:
        present = stack == value
        held = np.flatnonzero(present.any(axis=(1, 2)))
        chosen = held if annotated is None else np.array(annotated, dtype=int)
        for low, high in zip(chosen[:-1], chosen[1:]):
            if high - low > 1 and present[low].any() and present[high].any():
                jobs.append((int(value), int(low), int(high), bounding_box(present[low] | present[high])))
    if not jobs:
        return None
    first, last = min(j[1] for j in jobs) + 1, max(j[2] for j in jobs)
    rows = slice(min(j[3][0].start for j in jobs), max(j[3][0].stop for j in jobs))  # type: ignore[index]
    columns = slice(min(j[3][1].start for j in jobs), max(j[3][1].stop for j in jobs))  # type: ignore[index]
    region = stack[first:last, rows, columns]
    before = region.copy()
    for value, low, high, _ in jobs:
        start = signed_distance(stack[low, rows, columns] == value, sampling)  # type: ignore[arg-type]
        end = signed_distance(stack[high, rows, columns] == value, sampling)  # type: ignore[arg-type]
        for index in range(low + 1, high):
            t = (index - low) / (high - low)
            target = region[index - first]
            inside = ((1 - t) * start + t * end < 0) & (target == 0) & protection.writable(target, value)
            target[inside] = value
    spans = [slice(first, last), rows, columns]
    box = _unmove(spans, axis)
    return diff(box, np.moveaxis(before, 0, axis), label[box])  # type: ignore[arg-type]


def _unmove(spans: list[slice], axis: int) -> tuple[slice, slice, slice]:
    """The box of the label that ``spans`` of the moved view (``axis`` first) is."""
    rest = spans[1:]
    rest.insert(axis, spans[0])
    return rest[0], rest[1], rest[2]

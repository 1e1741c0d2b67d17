"""Pixels of a line, of a polygon's inside, and of a region grown from a seed: numpy and SciPy only.

Pixel centres are at integer (row, column) indices. These are the drawing primitives of the lasso and the
region-growing tool (:mod:`medtl.annotate.footprints`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def line(r0: int, c0: int, r1: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the 8-connected pixels from (r0, c0) to (r1, c1), both ends included (Bresenham's line).

    Along the longer axis every pixel is taken once; the other coordinate at step ``i`` of ``n`` is the start plus
    ``i * d / n`` rounded half up, which is where Bresenham's error term puts it.
    """
    dr, dc = int(r1) - int(r0), int(c1) - int(c0)
    steps = max(abs(dr), abs(dc))
    if steps == 0:
        return np.array([int(r0)]), np.array([int(c0)])
    i = np.arange(steps + 1)
    major_is_rows = abs(dr) > abs(dc)
    minor = abs(dc if major_is_rows else dr)
    offset = (2 * minor * i + steps) // (2 * steps)
    if major_is_rows:
        return int(r0) + np.sign(dr) * i, int(c0) + np.sign(dc) * offset
    return int(r0) + np.sign(dr) * offset, int(c0) + np.sign(dc) * i


def polygon_inside(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the pixels of a ``shape`` image whose centres lie inside the closed polygon (even-odd rule).

    Scanline fill: on each pixel row, the polygon's edges cross the row's centre line at some columns; a pixel is
    inside when an odd number of crossings lie to its left. An edge spans the rows from its lower end (included) to
    its upper end (excluded), so a vertex on a row is counted once.
    """
    rows, columns = np.asarray(rows, dtype=float), np.asarray(columns, dtype=float)
    if len(rows) < 3:
        return np.zeros(0, int), np.zeros(0, int)
    first, last = max(int(np.ceil(rows.min())), 0), min(int(np.floor(rows.max())), shape[0] - 1)
    left, right = max(int(np.ceil(columns.min())), 0), min(int(np.floor(columns.max())), shape[1] - 1)
    if first > last or left > right:
        return np.zeros(0, int), np.zeros(0, int)
    y = np.arange(first, last + 1, dtype=float)[:, None]  # one row per line, one column per edge
    r0, c0, r1, c1 = rows, columns, np.roll(rows, -1), np.roll(columns, -1)
    low, high = np.minimum(r0, r1), np.maximum(r0, r1)
    crosses = (low <= y) & (y < high)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = c0 + (y - r0) * (c1 - c0) / (r1 - r0)  # where each edge crosses each row (unused where it does not)
    line_index, _ = np.nonzero(crosses)
    first_right = np.clip(np.floor(at[crosses]).astype(int) + 1 - left, 0, right - left + 1)  # first pixel right of the crossing
    toggles = np.zeros((last - first + 1, right - left + 2), dtype=np.int32)
    np.add.at(toggles, (line_index, first_right), 1)
    inside = (np.cumsum(toggles, axis=1)[:, :-1] % 2).astype(bool)
    r, c = np.nonzero(inside)
    return r + first, c + left


def flood(image: np.ndarray, seed: tuple[int, ...], tolerance: float) -> np.ndarray:
    """Mask of the pixels or voxels connected to ``seed`` (faces, edges or corners) whose values lie within ``tolerance`` of the seed's value."""
    value = image[seed]
    similar = (image >= value - tolerance) & (image <= value + tolerance)
    labels, _ = ndimage.label(similar, structure=np.ones((3,) * image.ndim, dtype=bool))
    return labels == labels[seed]

"""Brush, eraser, polygon fill, threshold and region growing on a label volume ``[z, y, x]``.

2D tools work on one slice of a :class:`SlicePlane` (a cut along an array axis: 0 axial, 1 coronal, 2 sagittal for
an axially acquired ``[z, y, x]`` array); their points are (row, column) in the slice as ``numpy.take`` lays it
out (the two remaining axes in array order). Each returns the :class:`Change` it made, or None.
Sizes are in mm; ``spacing`` is the voxel spacing in array order (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medtl.annotate.change import UNPROTECTED, Box, Change, Protection, write
from medtl.annotate.footprints import ball, band, disc, grown, polygon

Spacing = tuple[float, float, float]


@dataclass(frozen=True)
class SlicePlane:
    """Slice ``index`` along array ``axis``."""

    axis: int
    index: int

    def size(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """(rows, columns) of the slice of a ``shape`` volume."""
        rows, columns = (n for a, n in enumerate(shape[:3]) if a != self.axis)
        return rows, columns

    def pixel_mm(self, spacing: Spacing) -> tuple[float, float]:
        """(row height, column width) in mm."""
        height, width = (s for a, s in enumerate(spacing) if a != self.axis)
        return height, width

    def box(self, rows: np.ndarray, columns: np.ndarray) -> tuple[Box, np.ndarray]:
        """(box, mask) of the volume holding the slice pixels (``rows``, ``columns``); the mask is 1 thick along the axis."""
        r0, c0 = int(rows.min()), int(columns.min())
        mask = np.zeros((int(rows.max()) - r0 + 1, int(columns.max()) - c0 + 1), bool)
        mask[rows - r0, columns - c0] = True
        spans = [slice(r0, r0 + mask.shape[0]), slice(c0, c0 + mask.shape[1])]
        spans.insert(self.axis, slice(self.index, self.index + 1))
        return (spans[0], spans[1], spans[2]), np.expand_dims(mask, self.axis)

    def cut(self, volume: np.ndarray) -> np.ndarray:
        """The slice of ``volume`` (a view)."""
        return volume[(slice(None),) * self.axis + (self.index,)]


def _write_pixels(label: np.ndarray, plane: SlicePlane, rows: np.ndarray, columns: np.ndarray, value: int, protection: Protection) -> Change | None:
    if not len(rows):
        return None
    box, mask = plane.box(rows, columns)
    return write(label, box, mask, value, protection)


def brush(
    label: np.ndarray, plane: SlicePlane, row: float, column: float, radius_mm: float, spacing: Spacing, value: int, protection: Protection = UNPROTECTED
) -> Change | None:
    """Paint a disc of ``radius_mm`` on the slice with ``value`` (0: the eraser)."""
    rows, columns = disc(row, column, radius_mm, plane.pixel_mm(spacing), plane.size(label.shape))
    return _write_pixels(label, plane, rows, columns, value, protection)


def brush_ball(
    label: np.ndarray, centre: tuple[float, float, float], radius_mm: float, spacing: Spacing, value: int, protection: Protection = UNPROTECTED
) -> Change | None:
    """Paint a ball of ``radius_mm`` around the (z, y, x) ``centre`` with ``value`` (0: the 3D eraser)."""
    box, mask = ball(centre, radius_mm, spacing, label.shape)
    return write(label, box, mask, value, protection)  # type: ignore[arg-type]


def fill_polygon(label: np.ndarray, plane: SlicePlane, rows: np.ndarray, columns: np.ndarray, value: int, protection: Protection = UNPROTECTED) -> Change | None:
    """Fill the closed polygon (or lasso path) through the vertices (``rows``, ``columns``) of the slice."""
    inside_rows, inside_columns = polygon(rows, columns, plane.size(label.shape))
    return _write_pixels(label, plane, inside_rows, inside_columns, value, protection)


def threshold_brush(
    label: np.ndarray, image: np.ndarray, plane: SlicePlane, row: float, column: float, radius_mm: float, spacing: Spacing,
    low: float, high: float, value: int, protection: Protection = UNPROTECTED,
) -> Change | None:  # fmt: skip
    """Paint the pixels under a disc of ``radius_mm`` whose ``image`` values lie within [``low``, ``high``]."""
    rows, columns = disc(row, column, radius_mm, plane.pixel_mm(spacing), plane.size(label.shape))
    keep = band(plane.cut(image)[rows, columns], low, high)
    return _write_pixels(label, plane, rows[keep], columns[keep], value, protection)


def threshold_box(label: np.ndarray, image: np.ndarray, box: Box, low: float, high: float, value: int, protection: Protection = UNPROTECTED) -> Change | None:
    """Paint the voxels of ``box`` (a slab of one slice, or a 3D box) whose ``image`` values lie within [``low``, ``high``]."""
    return write(label, box, band(image[box], low, high), value, protection)


def region_grow(
    label: np.ndarray, image: np.ndarray, plane: SlicePlane, row: int, column: int, tolerance: float, radius_mm: float, spacing: Spacing,
    value: int, protection: Protection = UNPROTECTED,
) -> Change | None:  # fmt: skip
    """Paint the region of the slice connected to the clicked pixel whose ``image`` values lie within ``tolerance`` of
    its value, up to ``radius_mm`` from it along each axis."""
    reach = tuple(int(np.ceil(radius_mm / s)) for s in plane.pixel_mm(spacing))
    (rows, columns), mask = grown(plane.cut(image), (row, column), tolerance, reach)
    inside_rows, inside_columns = np.nonzero(mask)
    return _write_pixels(label, plane, inside_rows + rows.start, inside_columns + columns.start, value, protection)


def region_grow_3d(
    label: np.ndarray, image: np.ndarray, seed: tuple[int, int, int], tolerance: float, radius_mm: float, spacing: Spacing,
    value: int, protection: Protection = UNPROTECTED,
) -> Change | None:  # fmt: skip
    """Paint the 3D region connected to the ``seed`` voxel (z, y, x) whose ``image`` values lie within ``tolerance`` of
    its value, up to ``radius_mm`` from it along each axis."""
    box, mask = grown(image, seed, tolerance, tuple(int(np.ceil(radius_mm / s)) for s in spacing))
    return write(label, box, mask, value, protection)  # type: ignore[arg-type]

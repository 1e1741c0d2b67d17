"""Slice geometry: order, spacing, gaps and gantry tilt of a stack of DICOM image planes.

Slices are ordered by their position along the slice normal ``row x column`` (never by file
name or InstanceNumber) and the slice spacing comes from those positions (never from
SliceThickness). The result is either an honest orthogonal grid or a :class:`GeometryError`.

Tolerances:

- Orientation: all planes share one orientation if their direction cosines differ by at most
  ``ORIENTATION_TOLERANCE``; otherwise the series is refused (probably a localizer).
- Duplicates: two planes closer than ``DUPLICATE_TOLERANCE_MM`` along the normal are one
  position; the loader drops the copy if its pixels are identical, refuses otherwise.
- Spacing: with ``step`` the grid spacing, each gap between neighbours must be ``k * step``
  (k = 1, 2, ...) within ``max(SPACING_TOLERANCE_REL * step, SPACING_TOLERANCE_MM)``. Gaps with
  k > 1 are missing slices, restored by linear interpolation and listed in
  ``Volume.interpolated_slices``, as long as no gap misses more than ``MAX_MISSING_IN_A_GAP``
  slices and no more than ``MAX_MISSING_FRACTION`` of the grid is interpolated. Anything else
  is irregular spacing and refused.
- Gantry tilt: positions that drift sideways (within the slice plane) linearly along the
  normal by more than ``TILT_TOLERANCE_PIXELS`` of a pixel over the series are a sheared grid.
  The loader shifts every slice in-plane onto the orthogonal grid (linear interpolation) and
  warns; the direction matrix stays orthonormal. A sideways drift that is not linear is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medtl.errors import GeometryError

ORIENTATION_TOLERANCE = 1e-4
DUPLICATE_TOLERANCE_MM = 0.01
SPACING_TOLERANCE_REL = 0.01
SPACING_TOLERANCE_MM = 0.02
MAX_MISSING_IN_A_GAP = 2
MAX_MISSING_FRACTION = 0.2
TILT_TOLERANCE_PIXELS = 0.05


@dataclass(frozen=True)
class Plane:
    """Where one image plane lies: ImagePositionPatient, ImageOrientationPatient and a label for messages."""

    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float, float, float]
    label: str


@dataclass(frozen=True)
class StackGeometry:
    """An orthogonal grid for a stack of planes and how to fill it.

    ``slots[z]`` is the index of the plane that fills output slice ``z``, or ``None`` for a missing
    slice to interpolate. ``shifts[z]`` is the in-plane shift ``(rows, columns)`` in pixels, as
    ``scipy.ndimage.shift`` takes it, that moves plane ``z`` onto the orthogonal grid (all zero
    without gantry tilt). ``duplicates`` pairs
    ``(kept, dropped)`` plane indices at the same position; the caller must compare their pixels.
    """

    slots: tuple[int | None, ...]
    origin: tuple[float, float, float]
    direction: np.ndarray
    slice_spacing: float | None  # None for a single plane
    shifts: tuple[tuple[float, float], ...]
    tilt_degrees: float
    duplicates: tuple[tuple[int, int], ...]
    warnings: tuple[str, ...]

    @property
    def interpolated(self) -> tuple[int, ...]:
        return tuple(z for z, slot in enumerate(self.slots) if slot is None)


def orientation_axes(orientation: Sequence[float], label: str) -> np.ndarray:
    """The 3x3 direction matrix (columns: row direction, column direction, normal) of an orientation."""
    cosines = np.asarray(orientation, dtype=float)
    if cosines.shape != (6,):
        raise GeometryError(f"{label}: ImageOrientationPatient must have 6 values, got {len(cosines)}")
    row, column = cosines[:3], cosines[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(column) - 1) > 1e-3 or abs(row @ column) > 1e-3:
        raise GeometryError(f"{label}: ImageOrientationPatient {list(cosines)} is not two orthogonal unit vectors")
    row, column = row / np.linalg.norm(row), column / np.linalg.norm(column)
    normal = np.cross(row, column)
    return np.column_stack([row, column, normal / np.linalg.norm(normal)])


def _check_single_orientation(planes: Sequence[Plane]) -> None:
    distinct: list[tuple[np.ndarray, str]] = []  # each orientation met and the first plane that has it
    for plane in planes:
        cosines = np.asarray(plane.orientation, dtype=float)
        if not any(np.max(np.abs(cosines - seen)) <= ORIENTATION_TOLERANCE for seen, _ in distinct):
            distinct.append((cosines, plane.label))
    if len(distinct) > 1:
        examples = ", ".join(label for _, label in distinct[:3])
        raise GeometryError(
            f"the {len(planes)} slices have {len(distinct)} different orientations (e.g. {examples}), so they do not "
            "form one volume; this looks like a localizer (scout) series - choose another series"
        )


def _drop_duplicates(order: np.ndarray, distance: np.ndarray) -> tuple[list[int], list[tuple[int, int]]]:
    kept = [int(order[0])]
    duplicates = []
    for index in order[1:]:
        if distance[index] - distance[kept[-1]] < DUPLICATE_TOLERANCE_MM:
            duplicates.append((kept[-1], int(index)))
        else:
            kept.append(int(index))
    return kept, duplicates


def _grid_steps(gaps: np.ndarray, planes: Sequence[Plane], kept: Sequence[int]) -> tuple[float, np.ndarray]:
    """The grid spacing and how many grid steps each gap spans; refuses irregular spacing."""
    unit = float(np.mean(gaps[np.rint(gaps / gaps.min()) == 1]))  # the gaps between neighbours on the grid
    multiples = np.maximum(np.rint(gaps / unit), 1)
    tolerance = max(SPACING_TOLERANCE_REL * unit, SPACING_TOLERANCE_MM)
    bad = np.flatnonzero(np.abs(gaps - multiples * unit) > tolerance)
    step = float(gaps.sum() / multiples.sum())
    if bad.size:
        i = int(bad[0])
        raise GeometryError(
            f"irregular slice spacing: the gap between {planes[kept[i]].label} and {planes[kept[i + 1]].label} is "
            f"{gaps[i]:.4g} mm, not a whole multiple of the {unit:.4g} mm spacing (tolerance {tolerance:.3g} mm); "
            f"gaps found: {_describe_gaps(gaps)}"
        )
    missing = int((multiples - 1).sum())
    if multiples.max() - 1 > MAX_MISSING_IN_A_GAP or missing > MAX_MISSING_FRACTION * (len(gaps) + 1):
        i = int(np.argmax(gaps))
        raise GeometryError(
            f"irregular slice spacing: {missing} slice(s) of the {step:.4g} mm grid are missing (gaps found: "
            f"{_describe_gaps(gaps)}; the largest between {planes[kept[i]].label} and {planes[kept[i + 1]].label}), "
            "more than interpolation can honestly restore"
        )
    return step, multiples.astype(int)


def _describe_gaps(gaps: np.ndarray) -> str:
    values, counts = np.unique(np.round(gaps, 3), return_counts=True)
    return ", ".join(f"{count} x {value:g} mm" for value, count in zip(values, counts))


def _tilt(offsets: np.ndarray, along: np.ndarray, pixel_spacing: tuple[float, float]) -> tuple[np.ndarray, float]:
    """The in-plane drift per mm along the normal (row mm, column mm) and the tilt angle in degrees.

    ``offsets`` (n, 2) are the sideways positions of the planes in mm along the row and column
    directions relative to the first plane, ``along`` (n,) their distances along the normal.
    """
    tolerance = TILT_TOLERANCE_PIXELS * min(pixel_spacing)
    if np.abs(offsets).max(initial=0.0) <= tolerance:
        return np.zeros(2), 0.0
    drift = offsets.T @ along / (along @ along)
    residual = np.abs(offsets - np.outer(along, drift)).max()
    if residual > tolerance:
        raise GeometryError(
            f"slice positions do not lie on a straight line (sideways deviation up to {residual:.3g} mm); "
            "the slices do not form one volume"
        )
    return drift, float(np.degrees(np.arctan(np.linalg.norm(drift))))


def plan_stack(planes: Sequence[Plane], pixel_spacing: tuple[float, float]) -> StackGeometry:
    """An orthogonal grid for ``planes`` (one orientation); ``pixel_spacing`` is DICOM's (row, column) spacing in mm."""
    if not planes:
        raise GeometryError("no image planes to assemble")
    _check_single_orientation(planes)
    direction = orientation_axes(planes[0].orientation, planes[0].label)
    positions = np.array([p.position for p in planes], dtype=float)
    distance = positions @ direction[:, 2]
    kept, duplicates = _drop_duplicates(np.argsort(distance, kind="stable"), distance)
    origin = tuple(float(v) for v in positions[kept[0]])
    if len(kept) == 1:
        return StackGeometry((kept[0],), origin, direction, None, ((0.0, 0.0),), 0.0, tuple(duplicates), ())
    along = distance[kept] - distance[kept[0]]
    step, multiples = _grid_steps(np.diff(along), planes, kept)
    slots: list[int | None] = [kept[0]]
    for index, multiple in zip(kept[1:], multiples):
        slots.extend([None] * (multiple - 1) + [index])
    sideways = (positions[kept] - positions[kept[0]]) @ direction[:, :2]
    drift, tilt_degrees = _tilt(sideways, along, pixel_spacing)
    # Output slice z lies z * step along the normal; its plane is shifted sideways by z * step * drift (mm).
    row_spacing, column_spacing = pixel_spacing
    shifts = tuple((z * step * drift[1] / row_spacing, z * step * drift[0] / column_spacing) for z in range(len(slots)))
    warnings = []
    if len(slots) > len(kept):
        missing = [z for z, slot in enumerate(slots) if slot is None]
        warnings.append(
            f"{len(missing)} missing slice(s) at z = {missing} (gaps of {_describe_gaps(np.diff(along))} in a "
            f"{step:.4g} mm grid) were filled by linear interpolation"
        )
    if tilt_degrees:
        warnings.append(
            f"gantry tilt of {tilt_degrees:.2f} degrees (slice positions shear sideways along the slice normal): "
            "slices were resampled in-plane onto an orthogonal grid (linear interpolation)"
        )
    return StackGeometry(tuple(slots), origin, direction, step, shifts, tilt_degrees, tuple(duplicates), tuple(warnings))

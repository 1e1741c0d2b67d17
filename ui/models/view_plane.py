"""`ViewPlane`: how a 2D view cuts a volume and lays the cut out on screen.

A plane is cut along one index axis of the volume (no resampling, so pixels are exact), and its
two in-plane index axes are transposed and flipped so that the screen shows the radiological
convention as closely as the volume's grid allows: axial with patient left on screen right and
posterior down, coronal with left on the right and inferior down, sagittal with posterior on the
right and inferior down. Index axes are numbered as in :class:`Volume`: 0 = x (column),
1 = y (row), 2 = z (slice); the array is stored ``[z, y, x]``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

import numpy as np


class PlaneKind(Enum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


# The LPS axis each plane is normal to, and the (LPS axis, sign) shown to the right and downwards.
_NORMAL = {PlaneKind.AXIAL: 2, PlaneKind.CORONAL: 1, PlaneKind.SAGITTAL: 0}
_SCREEN = {
    PlaneKind.AXIAL: ((0, 1), (1, 1)),
    PlaneKind.CORONAL: ((0, 1), (2, -1)),
    PlaneKind.SAGITTAL: ((1, 1), (2, -1)),
}


def patient_axes(direction: np.ndarray) -> tuple[int, int, int]:
    """For each index axis (x, y, z), the LPS axis it runs closest to (a permutation, even for 45° obliques)."""
    alignment = np.abs(np.asarray(direction, dtype=float))  # [lps axis, index axis]
    best = max(itertools.permutations(range(3)), key=lambda p: sum(alignment[p[i], i] for i in range(3)))
    return best  # type: ignore[return-value]


@dataclass(frozen=True)
class ViewPlane:
    """A cut along index axis ``normal``; screen columns run along ``right``, rows along ``down`` (flipped if set)."""

    kind: PlaneKind
    normal: int
    right: int
    down: int
    flip_right: bool
    flip_down: bool
    projection: ClassVar[bool] = False  # a projection through the whole volume, not one slice
    computed: ClassVar[bool] = False  # cuts are computed (cache them), not views of the array

    @property
    def title(self) -> str:
        """What the corner text calls this plane."""
        return f"{self.kind.value} MIP" if self.projection else self.kind.value

    @classmethod
    def of_kind(cls, kind: PlaneKind, direction: np.ndarray) -> ViewPlane:
        """The ``kind`` plane of a volume with ``direction`` (columns: LPS vectors of the index axes)."""
        direction = np.asarray(direction, dtype=float)
        index_of = {lps: index for index, lps in enumerate(patient_axes(direction))}
        (right_lps, right_sign), (down_lps, down_sign) = _SCREEN[kind]
        right, down = index_of[right_lps], index_of[down_lps]
        return cls(
            kind,
            index_of[_NORMAL[kind]],
            right,
            down,
            bool(np.sign(direction[right_lps, right]) != right_sign),
            bool(np.sign(direction[down_lps, down]) != down_sign),
        )

    @classmethod
    def acquired(cls, direction: np.ndarray) -> ViewPlane:
        """The plane the images were acquired in (cut along z), laid out by the convention of its kind."""
        normal_lps = patient_axes(direction)[2]
        kind = next(k for k, lps in _NORMAL.items() if lps == normal_lps)
        return cls.of_kind(kind, direction)

    def size(self, shape_zyx: tuple[int, ...]) -> tuple[int, int, int]:
        """(rows, columns, slices) of this plane for a volume of ``shape_zyx``."""
        xyz = (shape_zyx[2], shape_zyx[1], shape_zyx[0])
        return xyz[self.down], xyz[self.right], xyz[self.normal]

    def extract(self, array: np.ndarray, index: int, nearest: bool = False) -> np.ndarray:
        """The 2D view (no copy) of slice ``index`` of ``array`` ([z, y, x] or [z, y, x, c]), as ``[row, column(, c)]``.
        (``nearest`` asks resampling planes for nearest-neighbour values, as labels need; a grid plane is exact.)"""
        cut: list[int | slice] = [slice(None)] * array.ndim
        cut[2 - self.normal] = index
        image = array[tuple(cut)]
        kept = [2 - axis for axis in (2, 1, 0) if axis != self.normal]  # remaining array axes, in array order
        axes = [kept.index(2 - self.down), kept.index(2 - self.right), *range(2, image.ndim)]
        image = image.transpose(axes)
        return image[:: -1 if self.flip_down else 1, :: -1 if self.flip_right else 1]

    def to_index(self, row: float, column: float, index: float, shape_zyx: tuple[int, ...]) -> np.ndarray:
        """The continuous volume index (x, y, z) of a point on slice ``index`` at (``row``, ``column``)."""
        rows, columns, _ = self.size(shape_zyx)
        xyz = np.zeros(3)
        xyz[self.normal] = index
        xyz[self.right] = columns - 1 - column if self.flip_right else column
        xyz[self.down] = rows - 1 - row if self.flip_down else row
        return xyz

    def from_index(self, xyz: np.ndarray, shape_zyx: tuple[int, ...]) -> tuple[float, float, float]:
        """(row, column, slice) of the volume index ``xyz`` (the inverse of :meth:`to_index`)."""
        rows, columns, _ = self.size(shape_zyx)
        column = columns - 1 - xyz[self.right] if self.flip_right else xyz[self.right]
        row = rows - 1 - xyz[self.down] if self.flip_down else xyz[self.down]
        return float(row), float(column), float(xyz[self.normal])

    def voxel_indices(self, rows: np.ndarray, columns: np.ndarray, index: int, shape_zyx: tuple[int, ...]) -> np.ndarray:
        """Flat indices into a ``[z, y, x]`` array of shape ``shape_zyx`` of the voxels at (``rows``, ``columns``) of slice
        ``index`` (pixels inside the slice)."""
        n_rows, n_columns, _ = self.size(shape_zyx)
        xyz: list[np.ndarray] = [np.full(len(rows), index)] * 3
        xyz[self.right] = n_columns - 1 - columns if self.flip_right else columns
        xyz[self.down] = n_rows - 1 - rows if self.flip_down else rows
        return np.ravel_multi_index((xyz[2], xyz[1], xyz[0]), tuple(shape_zyx[:3]))

    def slice_of(self, xyz: np.ndarray, shape_zyx: tuple[int, ...]) -> int:
        """The slice through the volume index ``xyz``."""
        return int(xyz[self.normal])

    def at_slice(self, xyz: np.ndarray, index: int, shape_zyx: tuple[int, ...]) -> np.ndarray:
        """The volume index ``xyz`` moved to slice ``index`` (same place in the plane)."""
        moved = np.array(xyz, dtype=float)
        moved[self.normal] = index
        return moved

    def pixel_spacing(self, spacing_xyz: tuple[float, float, float]) -> tuple[float, float]:
        """(column width, row height) in mm of a screen pixel of this plane."""
        return spacing_xyz[self.right], spacing_xyz[self.down]

    def screen_vectors(self, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The LPS unit vectors pointing to screen right and screen down."""
        direction = np.asarray(direction, dtype=float)
        right = direction[:, self.right] * (-1 if self.flip_right else 1)
        down = direction[:, self.down] * (-1 if self.flip_down else 1)
        return right, down

"""Resample arrays on a network's grid (a MONAI ``[C, x, y, z]`` array with a RAS affine) onto a Volume's grid.

Every voxel centre of the target Volume is mapped through the two affines into the source grid's
continuous index and sampled there: linearly, or, when the grids align voxel for voxel (a signed axis
permutation and an integer shift, as after orientation and padding only), by exact indexing. Points
outside the source grid take the nearest edge value. Work proceeds in slabs of target slices so the
peak memory stays near one source array plus one output array.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medtl.dicom.volume import Volume

_ALIGNED_TOLERANCE = 1e-4  # voxels
_SLAB_VOXELS = 1 << 22

Reduce = Callable[[np.ndarray], np.ndarray]


def source_index_matrix(source_affine_ras: np.ndarray, target: Volume) -> np.ndarray:
    """4x4 matrix from a target index ``(x, y, z, 1)`` to the source array's continuous index ``(i, j, k, 1)``."""
    return np.linalg.inv(np.asarray(source_affine_ras, dtype=float)) @ target.affine_ras()


def _is_aligned(matrix: np.ndarray) -> bool:
    """Whether every target voxel centre falls on a source voxel centre (a signed permutation plus an integer shift)."""
    linear, shift = matrix[:3, :3], matrix[:3, 3]
    integral = np.allclose(linear, np.rint(linear), atol=_ALIGNED_TOLERANCE) and np.allclose(shift, np.rint(shift), atol=_ALIGNED_TOLERANCE)
    return integral and np.allclose(np.abs(np.rint(linear)).sum(axis=0), 1.0) and np.allclose(np.abs(np.rint(linear)).sum(axis=1), 1.0)


def _gather(data: np.ndarray, matrix: np.ndarray, z: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """``[C, len(z), ny, nx]`` by indexing, for aligned grids."""
    linear, shift = np.rint(matrix[:3, :3]).astype(int), np.rint(matrix[:3, 3]).astype(int)
    targets = (z, np.arange(ny), np.arange(nx))  # index vectors of the target's z, y, x (columns 2, 1, 0)
    sources, indices = [], []
    for column, positions in zip((2, 1, 0), targets):
        axis = int(np.flatnonzero(linear[:, column])[0])
        sources.append(1 + axis)
        indices.append(np.clip(linear[axis, column] * positions + shift[axis], 0, data.shape[1 + axis] - 1))
    return np.moveaxis(data, sources, (1, 2, 3))[(slice(None), *np.ix_(*indices))]


def _interpolate(data: np.ndarray, matrix: np.ndarray, z: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """``[C, len(z), ny, nx]`` by linear interpolation."""
    from scipy import ndimage

    zz, yy, xx = np.meshgrid(z.astype(float), np.arange(ny, dtype=float), np.arange(nx, dtype=float), indexing="ij")
    coords = np.tensordot(matrix[:3, :3], np.stack([xx, yy, zz]), axes=1) + matrix[:3, 3, None, None, None]
    return np.stack([ndimage.map_coordinates(channel, coords, order=1, mode="nearest") for channel in data])


def resample_to_volume(data: np.ndarray, source_affine_ras: np.ndarray, target: Volume, reduce: Reduce | None = None) -> np.ndarray:
    """``data`` ``[C, i, j, k]`` sampled on ``target``'s grid: ``[C, z, y, x]``, or ``reduce([C, z, y, x] slab)`` per slab.

    ``reduce`` (e.g. an argmax over channels) maps each ``[C, dz, y, x]`` slab to ``[dz, y, x]``; the
    slabs are stacked into the result.
    """
    matrix = source_index_matrix(source_affine_ras, target)
    sample = _gather if _is_aligned(matrix) else _interpolate
    nz, ny, nx = target.shape
    per_slab = max(1, _SLAB_VOXELS // max(1, ny * nx))
    slabs = []
    for start in range(0, nz, per_slab):
        slab = sample(data, matrix, np.arange(start, min(nz, start + per_slab)), ny, nx)
        slabs.append(slab if reduce is None else reduce(slab))
    return np.concatenate(slabs, axis=0 if reduce is not None else 1)

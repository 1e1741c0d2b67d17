"""Network-grid arrays back onto a Volume's grid: exact indexing on aligned grids, correct world positions otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from medtl.dicom.volume import Volume
from medtl.inference.resample import _gather, _interpolate, _is_aligned, resample_to_volume, source_index_matrix
from tests.dicomgen import rotation

TARGET = Volume(np.zeros((5, 7, 9), np.float32), (0.7, 0.9, 2.5), (1.0, 2.0, 3.0), rotation("z", 20) @ rotation("x", 10))


@pytest.mark.parametrize("seed", range(8))
def test_aligned_grids_are_indexed_exactly(seed: int) -> None:
    """Any axis permutation, flip and integer shift (edges clamped) gives what interpolation gives."""
    rng = np.random.default_rng(seed)
    index_map = np.eye(4)
    index_map[:3, :3] = 0
    index_map[rng.permutation(3), np.arange(3)] = rng.choice([-1, 1], 3)
    index_map[:3, 3] = rng.integers(-3, 10, 3)
    matrix = source_index_matrix(TARGET.affine_ras() @ np.linalg.inv(index_map), TARGET)
    data = rng.random((2, 11, 12, 13)).astype(np.float32)
    assert _is_aligned(matrix)
    z = np.arange(5)
    assert np.array_equal(_gather(data, matrix, z, 7, 9), _interpolate(data, matrix, z, 7, 9))


def test_values_follow_world_positions_on_an_oblique_grid() -> None:
    """A field linear in RAS millimetres, sampled on another grid (RAS axes, 1.5 mm), is reproduced on the target."""
    source_affine = np.diag([1.5, 1.5, 1.5, 1.0])
    source_affine[:3, 3] = (-20.0, -20.0, -10.0)
    i, j, k = np.meshgrid(*[np.arange(n, dtype=float) for n in (40, 40, 40)], indexing="ij")
    world = np.tensordot(source_affine[:3, :3], np.stack([i, j, k]), axes=1) + source_affine[:3, 3, None, None, None]
    field = (world[0] + 2 * world[1] - 0.5 * world[2])[None].astype(np.float64)
    assert not _is_aligned(source_index_matrix(source_affine, TARGET))
    result = resample_to_volume(field, source_affine, TARGET)[0]
    z, y, x = np.meshgrid(*[np.arange(n, dtype=float) for n in TARGET.shape], indexing="ij")
    ras = np.c_[x.ravel(), y.ravel(), z.ravel(), np.ones(x.size)] @ TARGET.affine_ras().T
    expected = (ras[:, 0] + 2 * ras[:, 1] - 0.5 * ras[:, 2]).reshape(TARGET.shape)
    assert np.allclose(result, expected, atol=1e-6)


def test_a_reduce_runs_per_slab_and_stacks() -> None:
    data = np.random.default_rng(1).random((3, 9, 7, 5))
    probabilities = resample_to_volume(data, TARGET.affine_ras(), TARGET)
    labels = resample_to_volume(data, TARGET.affine_ras(), TARGET, reduce=lambda slab: slab.argmax(axis=0))
    assert probabilities.shape == (3, 5, 7, 9) and np.array_equal(labels, probabilities.argmax(axis=0))

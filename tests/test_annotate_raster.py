"""The lasso's and the region-growing tool's pixels: the same as scikit-image's drawing and flood fill gave them.

The app drew them with scikit-image until 2026-12-07; ``medtl.annotate.raster`` draws them with numpy and SciPy
(the installer leaves scikit-image out). Random lines, polygons (self-crossing ones and mouse-drawn loops) and
images check that every pixel is the same.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import line as skimage_line
from skimage.draw import polygon as skimage_polygon
from skimage.segmentation import flood as skimage_flood

from medtl.annotate.footprints import grown, polygon
from medtl.annotate.raster import flood, line, polygon_inside

SHAPE = (40, 40)


def test_lines_are_bresenhams() -> None:
    rng = np.random.default_rng(0)
    for r0, c0, r1, c1 in rng.integers(-20, 60, (2000, 4)):
        ours, theirs = line(r0, c0, r1, c1), skimage_line(r0, c0, r1, c1)
        np.testing.assert_array_equal(ours[0], theirs[0])
        np.testing.assert_array_equal(ours[1], theirs[1])
    rows, columns = line(3, 3, 3, 3)
    assert rows.tolist() == [3] and columns.tolist() == [3]


def _skimage_lasso(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The lasso's footprint as the app made it with scikit-image: the inside and the path through rounded vertices."""
    mask = np.zeros(SHAPE, bool)
    mask[skimage_polygon(rows, columns, SHAPE)] = True
    r, c = np.rint(rows).astype(int), np.rint(columns).astype(int)
    for i in range(len(r)):
        line_r, line_c = skimage_line(r[i - 1], c[i - 1], r[i], c[i])
        keep = (line_r >= 0) & (line_r < SHAPE[0]) & (line_c >= 0) & (line_c < SHAPE[1])
        mask[line_r[keep], line_c[keep]] = True
    return mask


@pytest.mark.parametrize("kind", ["integer vertices", "real vertices", "mouse-drawn loop"])
def test_lasso_footprints_are_unchanged(kind: str) -> None:
    rng = np.random.default_rng(1)
    for _ in range(500):
        n = int(rng.integers(3, 40))
        if kind == "integer vertices":
            rows, columns = rng.integers(-5, 45, n).astype(float), rng.integers(-5, 45, n).astype(float)
        elif kind == "real vertices":
            rows, columns = rng.uniform(-5, 45, n), rng.uniform(-5, 45, n)
        else:
            angle, radius = np.sort(rng.uniform(0, 2 * np.pi, n)), rng.uniform(3, 18)
            rows, columns = 20 + radius * np.sin(angle) + rng.normal(0, 1, n), 20 + radius * np.cos(angle) + rng.normal(0, 1, n)
        ours = np.zeros(SHAPE, bool)
        ours[polygon(rows, columns, SHAPE)] = True
        np.testing.assert_array_equal(ours, _skimage_lasso(rows, columns))


def test_a_square_is_filled_inside_and_nothing_outside() -> None:
    inside = np.zeros((10, 10), bool)
    inside[polygon_inside(np.array([1.5, 1.5, 6.5, 6.5]), np.array([2.5, 7.5, 7.5, 2.5]), (10, 10))] = True
    expected = np.zeros((10, 10), bool)
    expected[2:7, 3:8] = True
    np.testing.assert_array_equal(inside, expected)
    assert polygon_inside(np.array([1.0, 2.0]), np.array([1.0, 2.0]), (10, 10))[0].size == 0  # two points enclose nothing


def test_region_growing_is_unchanged_in_2d_and_3d() -> None:
    rng = np.random.default_rng(2)
    for _ in range(200):
        image = rng.integers(0, 5, (30, 30)).astype(np.float32)
        seed = tuple(int(v) for v in rng.integers(0, 30, 2))
        np.testing.assert_array_equal(flood(image, seed, 1.0), skimage_flood(image, seed, tolerance=1.0))
        noisy = rng.normal(0, 1, (30, 30)).astype(np.float32)
        np.testing.assert_array_equal(flood(noisy, seed, 0.7), skimage_flood(noisy, seed, tolerance=0.7))
        volume = rng.integers(0, 4, (8, 12, 12)).astype(np.float32)
        seed3 = tuple(int(v) for v in rng.integers(0, 8, 3))
        np.testing.assert_array_equal(flood(volume, seed3, 1.0), skimage_flood(volume, seed3, tolerance=1.0))
    image = np.zeros((20, 20), np.float32)
    image[5:10, 5:10] = 100.0
    box, mask = grown(image, (7, 7), tolerance=10.0, reach=(20, 20))
    assert int(mask.sum()) == 25 and mask[tuple(s - b.start for s, b in zip((7, 7), box))]

"""The pixels or voxels a tool covers, as index arrays or a box with a mask (no label is changed here).

Coordinates are continuous array indices with pixel centres at integers; sizes are in mm, with the pixel or voxel
spacing given in the same axis order as the image.
"""

from __future__ import annotations

import numpy as np

from medtl.annotate.raster import flood, line, polygon_inside


def disc(row: float, column: float, radius_mm: float, pixel_mm: tuple[float, float], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the pixels of an image of ``shape`` whose centres lie within ``radius_mm`` of (``row``, ``column``);
    ``pixel_mm`` is (row height, column width). Always at least the pixel under the point, if inside."""
    height, width = pixel_mm
    reach_r, reach_c = int(np.ceil(radius_mm / height)), int(np.ceil(radius_mm / width))
    centre_r, centre_c = round(row), round(column)
    r = np.arange(max(centre_r - reach_r, 0), min(centre_r + reach_r + 1, shape[0]))
    c = np.arange(max(centre_c - reach_c, 0), min(centre_c + reach_c + 1, shape[1]))
    if not len(r) or not len(c):
        return r, c
    inside = ((r[:, None] - row) * height) ** 2 + ((c[None, :] - column) * width) ** 2 <= radius_mm**2
    if 0 <= centre_r < shape[0] and 0 <= centre_c < shape[1]:
        inside[centre_r - r[0], centre_c - c[0]] = True
    rows, columns = np.nonzero(inside)
    return rows + r[0], columns + c[0]


def around(centre: tuple[float, ...], reach: tuple[int, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """The box of up to ``reach`` voxels on each side of ``centre`` (per axis), clipped to ``shape``."""
    return tuple(slice(max(round(c) - r, 0), max(min(round(c) + r + 1, n), 0)) for c, r, n in zip(centre, reach, shape))


def ball(centre: tuple[float, float, float], radius_mm: float, spacing: tuple[float, float, float], shape: tuple[int, ...]) -> tuple[tuple[slice, ...], np.ndarray]:
    """(box, mask) of the voxels of a ``shape`` volume whose centres lie within ``radius_mm`` of ``centre``; ``spacing``
    in the volume's axis order. Always at least the voxel under the centre, if inside."""
    box = around(centre, tuple(int(np.ceil(radius_mm / s)) for s in spacing), shape)
    grids = np.ogrid[tuple(box)]
    distance = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing))
    mask = np.asarray(distance <= radius_mm**2)
    nearest = tuple(round(c) - b.start for c, b in zip(centre, box))
    if all(0 <= n < b.stop - b.start for n, b in zip(nearest, box)):
        mask[nearest] = True
    return box, mask


def polygon(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the pixels inside or on the closed polygon through the vertices (a lasso's path)."""
    rows, columns = np.asarray(rows, float), np.asarray(columns, float)
    inner = polygon_inside(rows, columns, shape[:2])
    r, c = np.rint(rows).astype(int), np.rint(columns).astype(int)
    segments = [line(r[i - 1], c[i - 1], r[i], c[i]) for i in range(len(r))]  # i = 0 closes the path
    edge_r = np.concatenate([s[0] for s in segments]) if segments else np.zeros(0, int)
    edge_c = np.concatenate([s[1] for s in segments]) if segments else np.zeros(0, int)
    inside = (edge_r >= 0) & (edge_r < shape[0]) & (edge_c >= 0) & (edge_c < shape[1])
    edge = np.ravel_multi_index((edge_r[inside], edge_c[inside]), shape[:2])
    flat = np.unique(np.concatenate([np.ravel_multi_index(inner, shape[:2]), edge]))
    return np.unravel_index(flat, shape[:2])  # type: ignore[return-value]


def band(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Where ``values`` lie within [``low``, ``high``] (an intensity window: HU for CT)."""
    return (values >= low) & (values <= high)


def grown(image: np.ndarray, seed: tuple[int, ...], tolerance: float, reach: tuple[int, ...]) -> tuple[tuple[slice, ...], np.ndarray]:
    """(box, mask) of the region connected to ``seed`` whose values differ from the seed's by at most ``tolerance``,
    within ``reach`` voxels of the seed along each axis (so it is bounded). 2D or 3D."""
    box = around(seed, reach, image.shape)
    crop = np.asarray(image[box], dtype=np.float32)
    return box, flood(crop, tuple(int(s - b.start) for s, b in zip(seed, box)), float(tolerance))

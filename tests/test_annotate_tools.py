"""The annotation tools of medtl.annotate on known shapes: what each paints, what it leaves alone, and undo."""

from __future__ import annotations

import numpy as np
import pytest

from medtl.annotate import (
    Change, History, Protection, SlicePlane, brush, brush_ball, fill_polygon, interpolate, region_grow, region_grow_3d, threshold_box,
    threshold_brush,
)  # fmt: skip
from medtl.annotate.footprints import disc

SPACING = (1.0, 1.0, 1.0)


def disc_mask(shape: tuple[int, int], radius: float) -> np.ndarray:
    rows, columns = np.ogrid[: shape[0], : shape[1]]
    return (rows - shape[0] // 2) ** 2 + (columns - shape[1] // 2) ** 2 <= radius**2


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_brush_paints_a_disc_on_the_slice_of_any_plane_and_the_eraser_takes_it_back(axis: int) -> None:
    label = np.zeros((30, 32, 34), np.uint8)
    plane = SlicePlane(axis, 10)
    change = brush(label, plane, 15, 15, 5.0, SPACING, 3)
    assert change is not None
    painted = plane.cut(label) == 3
    assert painted.sum() == disc_mask((31, 31), 5).sum() and label.sum() == 3 * painted.sum()  # one slice only
    assert change.box[axis] == slice(10, 11) and change.nbytes == 2 * (11 * 11)  # the diff is the disc's box
    assert brush(label, plane, 15, 15, 5.0, SPACING, 0) is not None and not label.any()


def test_brush_size_is_in_mm_on_anisotropic_pixels() -> None:
    label = np.zeros((3, 40, 40), np.uint8)
    brush(label, SlicePlane(0, 1), 20, 20, 4.0, (3.0, 2.0, 0.5), 1)
    rows, columns = np.nonzero(label[1])
    assert rows.max() - rows.min() == 4 and columns.max() - columns.min() == 16  # 4 mm: 2 rows, 8 columns either side


def test_ball_is_round_in_mm() -> None:
    label = np.zeros((20, 40, 40), np.uint8)
    brush_ball(label, (10, 20, 20), 6.0, (2.0, 1.0, 1.0), 1)
    z, y, _ = np.nonzero(label)
    assert (z.min(), z.max()) == (7, 13) and (y.min(), y.max()) == (14, 26)
    assert abs(label.sum() - 4 / 3 * np.pi * 6**3 / 2) < 0.08 * label.sum()


def test_polygon_fills_the_inside_of_a_lasso_path() -> None:
    label = np.zeros((4, 50, 50), np.uint8)
    fill_polygon(label, SlicePlane(2, 7), np.array([5, 5, 25, 25]), np.array([10, 30, 30, 10]), 2)
    assert label.sum() == 0  # on a sagittal slice rows are z: the polygon lies beyond the 4 slices
    fill_polygon(label, SlicePlane(0, 2), np.array([5, 5, 25, 25]), np.array([10, 30, 30, 10]), 2)
    assert (label[2, 5:26, 10:31] == 2).all() and label.sum() == 2 * 21 * 21  # the vertices' pixels included


def test_threshold_paints_only_within_the_band_under_the_brush_or_in_the_box() -> None:
    image = np.full((5, 40, 40), -1000, np.int16)
    image[:, :, 20:] = 60  # soft tissue on the right half
    label = np.zeros(image.shape, np.uint8)
    threshold_brush(label, image, SlicePlane(0, 2), 20, 20, 6.0, SPACING, 0, 100, 1)
    painted = label[2] == 1
    assert painted.any() and not painted[:, :20].any() and painted[:, 20:].sum() == (disc(20, 20, 6.0, (1, 1), (40, 40))[1] >= 20).sum()
    label[:] = 0
    threshold_box(label, image, (slice(1, 3), slice(0, 10), slice(0, 40)), -1100, -900, 4)
    assert label.sum() == 4 * 2 * 10 * 20


def test_region_grow_stops_at_an_edge_and_within_its_reach() -> None:
    image = np.zeros((9, 60, 60), np.float32)
    image[:, 10:30, 10:30] = 100  # a square of 100 in background 0
    image[:, 40:50, 40:50] = 100  # a second, unconnected one
    label = np.zeros(image.shape, np.uint8)
    region_grow(label, image, SlicePlane(0, 4), 15, 15, 10, 100, SPACING, 1)
    assert (label[4] == 1).sum() == 400 and (label[4, 10:30, 10:30] == 1).all() and not label[3].any()
    label[:] = 0
    region_grow(label, image, SlicePlane(0, 4), 15, 15, 10, 5, SPACING, 1)  # reach 5 mm: an 11 x 11 square
    assert (label[4] == 1).sum() == 11 * 11
    label[:] = 0
    region_grow_3d(label, image, (4, 20, 20), 10, 100, SPACING, 2)
    assert label.sum() == 2 * 9 * 400 and not label[:, 40:50, 40:50].any()


def test_interpolation_between_a_small_and_a_large_disc_gives_intermediate_areas() -> None:
    label = np.zeros((11, 64, 64), np.uint8)
    label[0][disc_mask((64, 64), 5)] = 1
    label[10][disc_mask((64, 64), 15)] = 1
    change = interpolate(label, 0, [1])
    assert change is not None and change.box[0] == slice(1, 10)
    areas = [(label[i] == 1).sum() for i in range(11)]
    assert all(a < b for a, b in zip(areas, areas[1:]))  # grows steadily: not a copy of either end
    assert abs(areas[5] - np.pi * 10**2) < 0.05 * np.pi * 10**2  # half way: radius 10
    assert (label[5] == 1)[disc_mask((64, 64), 9)].all() and not (label[5] == 1)[~disc_mask((64, 64), 11)].any()


def test_interpolation_between_annotated_slices_only_fills_background_and_stops_at_an_empty_annotated_slice() -> None:
    label = np.zeros((11, 40, 40), np.uint8)
    label[0, 10:30, 10:30] = 1
    label[10, 10:30, 10:30] = 1
    label[4, 18:22, 18:22] = 2  # another label in the way
    assert interpolate(label, 0, [1], keys=[0, 6, 10]) is None  # slice 6 was annotated without the label: nothing to join
    interpolate(label, 0, [1], keys=[0, 10])
    assert (label[1:10] == 1).sum() == 9 * 400 - 16 and (label[4, 18:22, 18:22] == 2).all()


def test_locked_labels_are_never_overwritten_and_hidden_ones_only_when_asked() -> None:
    image = np.full((5, 40, 40), 50.0, np.float32)
    label = np.zeros(image.shape, np.uint8)
    label[2, 15:25, 15:25] = 7
    label[2, 0:5, 0:5] = 8
    before = label.copy()
    locked = Protection(locked=frozenset({7}), hidden=frozenset({8}))
    plane = SlicePlane(0, 2)
    brush(label, plane, 20, 20, 30.0, SPACING, 1, locked)
    fill_polygon(label, plane, np.array([0, 0, 39, 39]), np.array([0, 39, 39, 0]), 1, locked)
    region_grow(label, image, plane, 10, 10, 5, 100, SPACING, 1, locked)
    brush(label, plane, 20, 20, 30.0, SPACING, 0, locked)  # the eraser too
    assert (label == 7).sum() == (before == 7).sum() and (label == 8).sum() == (before == 8).sum()
    assert brush(label, plane, 20, 20, 3.0, SPACING, 7, locked) is None  # a locked label is not painted with either
    change = brush(label, SlicePlane(0, 2), 2, 2, 2.0, SPACING, 0)
    assert change is not None and not (label == 8).all()  # unprotected, the hidden label goes


def test_120_undos_restore_the_original_exactly_and_redo_replays() -> None:
    rng = np.random.default_rng(7)
    image = rng.normal(0, 30, (12, 48, 48)).astype(np.float32)
    label = np.zeros(image.shape, np.uint8)
    label[3:6, 10:20, 10:20] = 2
    original = label.copy()
    history: History[Change] = History()
    for step in range(120):
        plane = SlicePlane(int(step % 3), int(rng.integers(0, 12)))
        row, column = (float(v) for v in rng.integers(0, 12, 2))
        tool = step % 4
        if tool == 0:
            change = brush(label, plane, row, column, float(rng.uniform(1, 6)), SPACING, int(rng.integers(0, 4)))
        elif tool == 1:
            change = fill_polygon(label, plane, row + np.array([0, 0, 8]), column + np.array([0, 9, 4]), int(rng.integers(1, 4)))
        elif tool == 2:
            change = brush_ball(label, (plane.index, row, column), 3.0, SPACING, int(rng.integers(0, 4)))
        else:
            change = region_grow(label, image, plane, int(row), int(column), 40.0, 4.0, SPACING, 3)
        if change is not None:
            history.push(change)
    final, steps = label.copy(), len(history)
    assert steps >= 100
    while (change := history.undo()) is not None:
        change.revert(label)
    assert np.array_equal(label, original)
    while (change := history.redo()) is not None:
        change.apply(label)
    assert np.array_equal(label, final)


def test_history_is_bounded_in_bytes_and_steps() -> None:
    history: History[Change] = History(max_steps=150, max_bytes=10_000)
    small = Change((slice(0, 1), slice(0, 1), slice(0, 10)), np.zeros((1, 1, 10), np.uint8), np.ones((1, 1, 10), np.uint8))
    for _ in range(200):
        history.push(small)
    assert len(history) == 150
    history.push(Change((slice(0, 1), slice(0, 90), slice(0, 50)), np.zeros((1, 90, 50), np.uint8), np.ones((1, 90, 50), np.uint8)))
    assert history.nbytes <= 10_000 and len(history) == 1 + (10_000 - 9000) // 20  # the oldest small steps went
    assert history.newest is not None and history.newest.nbytes == 9000

"""Clicks as box edits and mask logic (medtl.prompt.clicks), with a stand-in decoder whose answers are known: it
segments a drawn scene (a disk and a bar) the way LiteMedSAM does, the part of the scene inside the box; and the
area bounds that end propagation, with a stand-in model that guesses a box-shaped mask on every slice."""

from __future__ import annotations

import numpy as np
import pytest

from medtl.prompt.clicks import excluding, including, refine
from medtl.prompt.engine import Decoded, PromptResult
from medtl.prompt.preprocessing import IntensityWindow
from medtl.prompt.propagation import PropagationSettings, propagate
from medtl.prompt.request import Box, Point, PromptRequest

SHAPE = (80, 100)


def scene() -> np.ndarray:
    rr, cc = np.mgrid[: SHAPE[0], : SHAPE[1]]
    disk = np.hypot(rr - 40, cc - 40) <= 15
    bar = (rr >= 35) & (rr <= 45) & (cc >= 50) & (cc <= 90)
    return disk | bar


class SceneDecoder:
    """The scene's pixels inside the box as the mask (logits +4 there, falling off by 1 a pixel outside); ``calls`` counts the boxes asked."""

    def __init__(self, structure: np.ndarray) -> None:
        from scipy import ndimage

        self.structure = structure
        self.distance = ndimage.distance_transform_edt(~structure)
        self.boxes: list[Box] = []

    def __call__(self, box: Box) -> Decoded:
        self.boxes.append(box)
        x0, y0, x1, y1 = box
        rr, cc = np.mgrid[: SHAPE[0], : SHAPE[1]]
        inside = (cc >= x0) & (cc <= x1) & (rr >= y0) & (rr <= y1)
        logits = np.where(self.structure & inside, 4.0, -1.0 - self.distance).astype(np.float32)
        return Decoded(box, logits, 0.9)


def test_an_including_click_outside_the_mask_grows_the_box_and_asks_the_decoder_again() -> None:
    decoder = SceneDecoder(scene())
    cut_short = (20.0, 20.0, 70.0, 60.0)  # the bar reaches column 90
    before = refine(decoder, PromptRequest(SHAPE, cut_short)).mask
    after = refine(decoder, PromptRequest(SHAPE, cut_short, (Point(85, 40),))).mask
    assert not before[40, 85] and after[40, 85]
    assert after[40, 90] and after.sum() > before.sum()  # the whole bar, with the margin beyond the click
    assert decoder.boxes[-1][2] >= 88


def test_an_excluding_click_removes_the_part_under_it_or_moves_the_nearest_edge_past_it() -> None:
    structure = scene()
    decoder = SceneDecoder(structure)
    whole = (20.0, 20.0, 95.0, 60.0)
    two_parts = structure.copy()
    two_parts[:, 57:59] = False  # the bar apart from the disk: the excluding click removes the bar alone
    apart = refine(SceneDecoder(two_parts), PromptRequest(SHAPE, whole, (Point(80, 40, positive=False),))).mask
    assert not apart[35:46, 60:91].any() and apart[40, 40]
    joined = refine(decoder, PromptRequest(SHAPE, whole, (Point(80, 40, positive=False),))).mask
    assert not joined[40, 80] and joined[40, 40] and decoder.boxes[-1][2] == 78  # the right edge moved 2 px past the click


def test_no_click_ends_on_the_wrong_side_of_the_mask_whatever_the_decoder_answers() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        structure = rng.random(SHAPE) < 0.4  # a decoder that answers noise: no box edit can satisfy the clicks
        clicks = tuple(Point(float(rng.integers(0, SHAPE[1])), float(rng.integers(0, SHAPE[0])), bool(rng.random() < 0.5)) for _ in range(5))
        mask = refine(SceneDecoder(structure), PromptRequest(SHAPE, (10.0, 10.0, 70.0, 60.0), clicks)).mask
        final = {(round(c.y), round(c.x)): c.positive for c in clicks}  # a later click on the same pixel wins
        assert all(mask[pixel] == positive for pixel, positive in final.items())


@pytest.mark.parametrize(
    ("box", "click", "grown"),
    [((10.0, 10.0, 50.0, 50.0), Point(60, 30), (10.0, 10.0, 64.0, 50.0)), ((10.0, 10.0, 50.0, 50.0), Point(2, 1), (0.0, 0.0, 50.0, 50.0))],
)
def test_an_including_click_grows_the_box_by_a_margin_within_the_slice(box: Box, click: Point, grown: Box) -> None:
    assert including(box, click, SHAPE) == grown


def test_an_excluding_click_that_would_empty_the_box_leaves_it_unchanged() -> None:
    assert excluding((10.0, 10.0, 13.0, 13.0), Point(12, 12, positive=False)) is None
    assert excluding((10.0, 10.0, 50.0, 50.0), Point(15, 30, positive=False)) == (17.0, 10.0, 50.0, 50.0)


class GuessingModel:
    """A stand-in PromptModel whose decoder fills ``fill`` of every box it is given, as LiteMedSAM guesses beyond a structure."""

    def __init__(self, fill: float) -> None:
        self.fill = fill

    def embed(self, key, pixels, window):  # noqa: ANN001, ANN201
        return key

    def segment(self, embedding, request: PromptRequest) -> PromptResult:  # noqa: ANN001
        x0, y0, x1, y1 = (round(v) for v in request.box)
        mask = np.zeros(request.slice_shape, dtype=bool)
        height = max(1, round((y1 - y0 + 1) * self.fill))
        mask[y0 : y0 + height, x0 : x1 + 1] = True
        return PromptResult(mask, 0.8)


def test_propagation_ends_where_the_mask_swells_against_the_start_mask() -> None:
    volume = np.full((12, 80, 100), 100.0)
    start = np.zeros(SHAPE, dtype=bool)
    start[30:50, 30:60] = True

    def reached(fill: float, settings: PropagationSettings = PropagationSettings()) -> list[int]:
        return [int(s.mask.sum()) for s in propagate(GuessingModel(fill), volume, "axial", 0, start, IntensityWindow(0, 200), "s", settings)]  # type: ignore[arg-type]

    assert reached(1.0) == [864]  # the whole grown box: 1.44 times the start mask, then 2.05 (past 1.5)
    assert len(reached(1.0, PropagationSettings(max_area=None))) == 11  # unbounded, it runs to the volume's edge
    assert len(reached(0.5)) == 11 and max(reached(0.5)) <= 1.5 * start.sum()  # a mask of the start's size goes on

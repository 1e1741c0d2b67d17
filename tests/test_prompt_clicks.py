"""Clicks as box edits and mask logic (medtl.prompt.clicks), with a stand-in decoder whose answers are known: it
segments a drawn scene (a disk and a bar) the way LiteMedSAM does, the part of the scene inside the box."""

from __future__ import annotations

import numpy as np
import pytest

from medtl.prompt.clicks import excluding, including, refine
from medtl.prompt.engine import Decoded, stability_score
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


def test_the_stability_score_is_low_for_soft_logits_and_high_for_a_sharp_edge() -> None:
    sharp = np.where(scene(), 8.0, -8.0)
    soft = np.where(scene(), 0.5, -0.5)
    assert stability_score(sharp) == 1.0 and stability_score(soft) == 0.0

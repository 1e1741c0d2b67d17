"""Clicks as box edits and mask logic, never as the decoder's point prompts.

LiteMedSAM (like MedSAM) was trained with box prompts only: given SAM's point prompts, its masks got worse with every
click on average (``benchmarks/bench_effort.py``; putamen 0.65 → 0.25 after 5 clicks). Here a click changes the box
the decoder sees, or the mask itself, one click at a time in the order they were made:

- An including click already inside the mask changes nothing. Otherwise the box grows to hold the click with a
  margin (:data:`MARGIN` of the box's side, at least :data:`MIN_MARGIN` pixels) and the decoder is asked again; if
  its mask holds the click, the mask gains the part of it that is new and connected to the click (nothing else
  changes: a decoder that answers the bigger box with another shape elsewhere cannot undo earlier work), unless that
  breaks an earlier click. If not, the previous mask gains the region
  around the click where the decoder's logits are at least as high as at the click (connected to it, inside the
  grown box, within a disk of a quarter of the box's size).
- An excluding click outside the mask changes nothing. Inside a mask of several parts it removes the part under it
  when the rest holds at least :data:`KEEP` of the mask. Otherwise the box edge nearest the click moves :data:`EXCLUDE_MARGIN` pixels past it and the decoder is asked
  again; if its mask leaves the click out, the mask loses the part the new answer dropped that is connected to the
  click (only that part), if that keeps at least :data:`KEEP` of the mask (a decoder that answers the smaller box
  with next to nothing has lost the structure) and honours every earlier click. If not, the previous
  mask loses the largest disk around the click that lies inside it (at most ``1 - KEEP`` of it).

Whatever the decoder does, the result holds every including click and none of the excluding ones (a later click on
the same pixel wins).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medtl.prompt.engine import Decoded, PromptResult
from medtl.prompt.request import Box, Point, PromptRequest

MARGIN = 0.1
"""What an including click adds beyond itself, as a fraction of the box's side."""
MIN_MARGIN = 3
EXCLUDE_MARGIN = 2
"""How many pixels past an excluding click the nearest box edge moves."""
KEEP = 0.5
"""The fraction of the mask an excluding click's box edit must keep (a decoder that drops more has lost the structure)."""

Decode = Callable[[Box], Decoded]
"""The decoder's answer to a box on the slice being prompted."""


@dataclass(frozen=True, eq=False)
class ClickState:
    """The box the decoder was last asked, the mask so far (the answer's mask, or that edited), and the answer."""

    box: Box
    mask: np.ndarray
    answer: Decoded


def refine(decode: Decode, request: PromptRequest) -> PromptResult:
    """The mask of ``request``'s box, refined by each of its clicks in turn (:func:`apply_click`)."""
    answer = decode(request.box)
    state = ClickState(request.box, answer.mask, answer)
    for k, click in enumerate(request.points):
        state = apply_click(decode, state, click, request.points[:k])
    return PromptResult(honoured(state.mask, request.points), state.answer.predicted_iou)


def apply_click(decode: Decode, state: ClickState, click: Point, earlier: tuple[Point, ...]) -> ClickState:
    """The state after ``click`` (the module's rules); ``earlier`` are the clicks already applied."""
    from scipy import ndimage

    row, column = pixel(click, state.mask.shape)
    if bool(state.mask[row, column]) == click.positive:
        return state
    if click.positive:
        box = including(state.box, click, state.mask.shape)
        answer = decode(box) if box != state.box else state.answer
        if answer.mask[row, column]:
            grown = state.mask | _part_at(answer.mask & ~state.mask, row, column)
            if honours(grown, earlier):
                return ClickState(box, grown, answer)
        return ClickState(box, state.mask | _region_around(answer.logits, row, column, box), answer)
    parts, count = ndimage.label(state.mask)
    kept = state.mask & (parts != parts[row, column])
    if count > 1 and kept.sum() >= KEEP * state.mask.sum():
        return ClickState(state.box, kept, state.answer)
    box = excluding(state.box, click)
    if box is not None:
        answer = decode(box)
        if not answer.mask[row, column]:
            shrunk = state.mask & ~_part_at(state.mask & ~answer.mask, row, column)
            if shrunk.sum() >= KEEP * state.mask.sum() and honours(shrunk, earlier):
                return ClickState(box, shrunk, answer)
    return ClickState(state.box, state.mask & ~_disk_inside(state.mask, row, column), state.answer)


def including(box: Box, click: Point, shape: tuple[int, int]) -> Box:
    """``box`` grown (where needed) so that ``click`` lies at least the margin inside it, kept on the slice."""
    x0, y0, x1, y1 = box
    dx, dy = max(MIN_MARGIN, MARGIN * (x1 - x0)), max(MIN_MARGIN, MARGIN * (y1 - y0))
    rows, columns = shape
    return (max(0.0, min(x0, click.x - dx)), max(0.0, min(y0, click.y - dy)), min(columns - 1.0, max(x1, click.x + dx)), min(rows - 1.0, max(y1, click.y + dy)))


def excluding(box: Box, click: Point) -> Box | None:
    """``box`` with its edge nearest to ``click`` moved past it; None when that leaves no box."""
    x0, y0, x1, y1 = box
    edges = {0: click.x - x0, 2: x1 - click.x, 1: click.y - y0, 3: y1 - click.y}
    nearest = min(edges, key=edges.__getitem__)
    moved = list(box)
    moved[nearest] = (click.x if nearest in (0, 2) else click.y) + (EXCLUDE_MARGIN if nearest in (0, 1) else -EXCLUDE_MARGIN)
    return (moved[0], moved[1], moved[2], moved[3]) if moved[0] < moved[2] and moved[1] < moved[3] else None


def honoured(mask: np.ndarray, clicks: tuple[Point, ...]) -> np.ndarray:
    """``mask`` set to each click's side at its pixel (later clicks win): the last guarantee of consistency."""
    mask = mask.copy()
    for click in clicks:
        mask[pixel(click, mask.shape)] = click.positive
    return mask


def honours(mask: np.ndarray, clicks: tuple[Point, ...]) -> bool:
    """Whether every click in ``clicks`` lies on its side of ``mask``."""
    return all(bool(mask[pixel(click, mask.shape)]) == click.positive for click in clicks)


def pixel(click: Point, shape: tuple[int, int]) -> tuple[int, int]:
    """The ``(row, column)`` of the pixel a click falls on."""
    return min(shape[0] - 1, max(0, round(click.y))), min(shape[1] - 1, max(0, round(click.x)))


def _part_at(mask: np.ndarray, row: int, column: int) -> np.ndarray:
    """The connected part of ``mask`` that holds ``(row, column)``."""
    from scipy import ndimage

    parts, _ = ndimage.label(mask)
    return parts == parts[row, column]


def _region_around(logits: np.ndarray, row: int, column: int, box: Box) -> np.ndarray:
    """Where the logits are at least as high as at the click, connected to it, inside ``box`` and a disk around it."""
    from scipy import ndimage

    x0, y0, x1, y1 = box
    rr, cc = np.mgrid[: logits.shape[0], : logits.shape[1]]
    radius = max(MIN_MARGIN, 0.25 * min(x1 - x0, y1 - y0))
    allowed = (cc >= x0) & (cc <= x1) & (rr >= y0) & (rr <= y1) & (np.hypot(rr - row, cc - column) <= radius)
    parts, _ = ndimage.label(allowed & (logits >= logits[row, column]))
    return parts == parts[row, column]


def _disk_inside(mask: np.ndarray, row: int, column: int) -> np.ndarray:
    """The largest disk around ``(row, column)`` that lies inside ``mask`` and holds at most ``1 - KEEP`` of it (at least
    the pixel itself)."""
    from scipy import ndimage

    depth = float(ndimage.distance_transform_edt(np.pad(mask, 1))[row + 1, column + 1])
    radius = min(depth, float(np.sqrt((1 - KEEP) * mask.sum() / np.pi)))
    rr, cc = np.mgrid[: mask.shape[0], : mask.shape[1]]
    return np.hypot(rr - row, cc - column) < max(1.0, radius)

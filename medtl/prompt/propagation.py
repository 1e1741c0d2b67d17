"""`propagate`: carry an accepted slice's mask through its neighbours, one box prompt per slice, until the structure ends.

From the start slice each direction is followed in turn (higher indices first): the next slice is
prompted with the previous slice's mask bounding box, grown by :attr:`PropagationSettings.grow`
(a structure widens from one slice to the next). A direction stops at the volume's edge, after
:attr:`PropagationSettings.max_slices` slices when a limit is set, or where
the structure ends: the new mask is small (below ``min_area`` of the start mask's area, or a few
pixels) or large (above ``max_area`` times it), the decoder's predicted IoU is low, the mask has left the previous one (less than
``min_overlap`` of it lies on the previous slice's mask), or what it covers no longer looks like the
structure (its mean intensity, in window units, is more than ``intensity_sds`` standard deviations of
the start mask's intensities, and at least ``min_intensity_shift``, away from the start mask's mean).
The slice that ended it is not yielded.

The decoder alone cannot tell: given a box on a slice beyond the structure, even an empty one,
LiteMedSAM still returns a structure-like mask with a predicted IoU of 0.6–0.8 (measured on the Colin27
head), and neither SAM's stability score nor the mean logit over the mask nor how much of its box the mask fills
tells the slices beyond from those within (``benchmarks/RESULTS.md``, issue 13). What does: the mask's area against
the start mask's. Beyond the structure the decoder's guess either shrinks (zero-shot) or swells slice by slice
(an adapted decoder, which finds a structure-like shape everywhere); the bounds 0.2 and 1.5 cut the putamen's
overshoot on the Colin27 head from 12 and 65 slices to 2 and 1. The intensity test ends a structure whose
surroundings differ from it; one that looks like its neighbours can still run on into them: the user stops or undoes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from medtl.errors import InvalidRequest
from medtl.prompt.embedding import SliceKey
from medtl.prompt.engine import PromptModel, PromptResult
from medtl.prompt.preprocessing import IntensityWindow
from medtl.prompt.request import PromptRequest
from medtl.prompt.slicing import cut, slice_count
from medtl.progress import CancelToken


@dataclass(frozen=True)
class PropagationSettings:
    """When a structure counts as ended, and how much the box grows from one slice to the next."""

    grow: float = 0.1
    """Fraction of the previous box's size added on each side (at least :attr:`min_grow_pixels`)."""
    min_grow_pixels: int = 2
    min_area: float = 0.2
    """A mask smaller than this fraction of the start mask's area ends the structure."""
    max_area: float | None = 1.5
    """A mask larger than this multiple of the start mask's area ends the structure (``None``: no upper bound)."""
    min_pixels: int = 4
    min_predicted_iou: float = 0.5
    min_overlap: float = 0.3
    """The fraction of the new mask that must lie on the previous slice's mask."""
    intensity_sds: float = 1.5
    min_intensity_shift: float = 0.15
    max_slices: int | None = None
    """At most this many slices in each direction (``None``: until the structure or the volume ends)."""

    def __post_init__(self) -> None:
        if self.max_slices is not None and self.max_slices < 1:
            raise InvalidRequest("max_slices", f"propagation reaches at least 1 slice on each side, not {self.max_slices}")


@dataclass(frozen=True, eq=False)
class PropagatedSlice:
    """One slice's mask as propagation reached it: ``index`` along the plane, ``step`` +1 (up) or -1 (down)."""

    index: int
    step: int
    mask: np.ndarray
    predicted_iou: float


def grown_box(mask: np.ndarray, settings: PropagationSettings) -> tuple[int, int, int, int]:
    """The bounding box ``(x0, y0, x1, y1)`` of ``mask``, grown on each side and kept inside the slice."""
    rows = np.flatnonzero(mask.any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    x0, x1, y0, y1 = int(columns[0]), int(columns[-1]), int(rows[0]), int(rows[-1])
    dx = max(settings.min_grow_pixels, round((x1 - x0 + 1) * settings.grow))
    dy = max(settings.min_grow_pixels, round((y1 - y0 + 1) * settings.grow))
    height, width = mask.shape
    return max(0, x0 - dx), max(0, y0 - dy), min(width - 1, x1 + dx), min(height - 1, y1 + dy)


def propagate(
    model: PromptModel,
    volume: np.ndarray,
    plane: str,
    start_slice: int,
    start_mask: np.ndarray,
    window: IntensityWindow,
    series: str,
    settings: PropagationSettings = PropagationSettings(),
    cancel: CancelToken | None = None,
) -> Iterator[PropagatedSlice]:
    """Yield the mask of each neighbouring slice of ``start_slice`` (``volume`` ``[z, y, x]``, cut along ``plane``) in turn.

    ``start_mask`` is the accepted mask of the start slice (not yielded again). Embeddings come from and go
    to ``model``'s cache under ``SliceKey(series, plane, index)``. ``cancel`` is checked before each slice
    (:class:`medtl.progress.Cancelled`); what was yielded before stays the caller's.
    """
    start_pixels = cut(volume, plane, start_slice)
    start_mask = np.asarray(start_mask, dtype=bool)
    if start_mask.shape != start_pixels.shape[:2]:
        raise InvalidRequest("start_mask", f"the mask is {start_mask.shape[::-1]} pixels but the {plane} slices are {start_pixels.shape[1::-1]}")
    start_area = int(start_mask.sum())
    if start_area == 0:
        raise InvalidRequest("start_mask", f"the mask on slice {start_slice} is empty: there is nothing to propagate")
    smallest = max(settings.min_pixels, settings.min_area * start_area)
    largest = np.inf if settings.max_area is None else settings.max_area * start_area
    inside = window.apply(start_pixels)[start_mask]
    looks = _Looks(float(inside.mean()), max(settings.min_intensity_shift, settings.intensity_sds * float(inside.std())))
    for step in (1, -1):
        previous = start_mask
        index = start_slice + step
        end = slice_count(volume.shape, plane) if settings.max_slices is None else start_slice + step * (settings.max_slices + 1)
        while 0 <= index < slice_count(volume.shape, plane) and index != end:
            if cancel is not None:
                cancel.raise_if_cancelled()
            pixels = cut(volume, plane, index)
            embedding = model.embed(SliceKey(series, plane, index), pixels, window)
            result = model.segment(embedding, PromptRequest(previous.shape, grown_box(previous, settings)))
            if _structure_ended(result, window.apply(pixels), previous, (smallest, largest), looks, settings):
                break
            yield PropagatedSlice(index, step, result.mask, result.predicted_iou)
            previous = result.mask
            index += step


@dataclass(frozen=True)
class _Looks:
    """The start mask's mean intensity (window units) and how far another mask's mean may lie from it."""

    mean: float
    tolerance: float

    def alike(self, values: np.ndarray) -> bool:
        return abs(float(values.mean()) - self.mean) <= self.tolerance


def _structure_ended(
    result: PromptResult, windowed: np.ndarray, previous: np.ndarray, areas: tuple[float, float], looks: _Looks, settings: PropagationSettings
) -> bool:
    area = int(result.mask.sum())
    if not areas[0] <= area <= areas[1] or result.predicted_iou < settings.min_predicted_iou:
        return True
    return (result.mask & previous).sum() < settings.min_overlap * area or not looks.alike(windowed[result.mask])

"""`prompt_volume`: one prompt on one slice of a Volume (optionally propagated) → a mask on the Volume's own grid.

What ``medtl prompt`` does; the app makes the same calls slice by slice as the user draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medtl.dicom.volume import Volume
from medtl.progress import CancelToken, ProgressCallback, report
from medtl.prompt.embedding import SliceKey
from medtl.prompt.engine import PromptModel
from medtl.prompt.preprocessing import window_for
from medtl.prompt.propagation import PropagationSettings, propagate
from medtl.prompt.request import Point, PromptRequest
from medtl.prompt.slicing import cut, paste


def slice_prompt(volume: Volume, plane: str, slice_index: int, box: Sequence[float], points: Sequence[Point] = ()) -> PromptRequest:
    """The prompt for slice ``slice_index`` of ``plane``, checked against the volume (InvalidRequest: ``plane``, ``slice``, ``box``, ``points``)."""
    rows, columns = cut(volume.array, plane, slice_index).shape[:2]
    return PromptRequest((int(rows), int(columns)), tuple(float(v) for v in box), tuple(points))  # type: ignore[arg-type]


def prompt_volume(
    model: PromptModel,
    volume: Volume,
    plane: str,
    slice_index: int,
    request: PromptRequest,
    through_slices: bool = False,
    ct_window: tuple[float, float] | None = None,
    series: str = "volume",
    settings: PropagationSettings = PropagationSettings(),
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """A ``uint8`` mask of ``volume``'s shape ``[z, y, x]``: 1 where the prompted structure is.

    ``request`` (:func:`slice_prompt`) is drawn on slice ``slice_index`` of ``plane``; the intensity window
    follows the volume's modality (``ct_window`` (centre, width) forces a CT window). With ``through_slices``
    the start slice's mask is propagated to its neighbours until the structure ends (or as ``settings`` limit it).
    """
    pixels = cut(volume.array, plane, slice_index)
    window = window_for(volume.array, volume.metadata.get("modality"), ct_window)
    report(progress, 0, 0, f"{plane} slice {slice_index}")
    embedding = model.embed(SliceKey(series, plane, slice_index), pixels, window)
    start = model.segment(embedding, request).mask
    mask = np.zeros(volume.shape, dtype=np.uint8)
    paste(mask, plane, slice_index, start)
    if through_slices and start.any():
        for done, reached in enumerate(propagate(model, volume.array, plane, slice_index, start, window, series, settings, cancel), 1):
            paste(mask, plane, reached.index, reached.mask)
            report(progress, done, 0, f"{plane} slice {reached.index}")
    return mask

"""Series thumbnails: the middle image of each series, windowed and shrunk, made in a superqt generator worker.

:func:`thumbnail_pixels` is the pure part; :func:`start_thumbnails` runs it for a list of series
in one worker that yields ``(series_uid, pixels)`` as each is ready and stops between series when
quit. A series that cannot be decoded simply gets no thumbnail (loading it reports why).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numpy as np
from superqt.utils import GeneratorWorker, thread_worker

from medtl.dicom.records import SeriesInfo
from medtl.dicom.series import load_series
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.render.window import auto_window, voi_linear

THUMBNAIL_SIZE = 48

log = logging.getLogger(__name__)


def thumbnail_pixels(volume: Volume, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """The middle slice of ``volume`` as grey uint8 (automatic window), at most ``size`` pixels on its longer side (block averages)."""
    image = volume.array[volume.shape[0] // 2]
    if volume.is_rgb:
        image = image.mean(axis=2)
    step = max(1, -(-max(image.shape) // size))
    rows, columns = (n // step * step for n in image.shape[:2])
    if rows and columns:
        image = image[:rows, :columns].reshape(rows // step, step, columns // step, step).mean(axis=(1, 3))
    grey = voi_linear(image.astype(np.float32), auto_window(image)).astype(np.uint8)  # robust where a stored window is not
    return 255 - grey if volume.metadata.get("photometric") == "MONOCHROME1" else np.ascontiguousarray(grey)


def _thumbnails(series: list[SeriesInfo]) -> Iterator[tuple[str, np.ndarray]]:
    for info in series:
        middle = info.files[len(info.files) // 2]
        try:
            yield info.series_uid, thumbnail_pixels(load_series([middle]))
        except MedtlError:
            continue


def start_thumbnails(series: list[SeriesInfo], on_thumbnail: Callable[[tuple[str, np.ndarray]], None]) -> GeneratorWorker:
    """Make thumbnails for ``series`` in a worker; ``on_thumbnail((uid, pixels))`` runs on the GUI thread for each."""

    def stopped(error: Exception) -> None:  # a bug, not bad input (that is skipped): log it, keep the app going
        log.warning("thumbnails stopped: %s", error, exc_info=error)

    worker = thread_worker(_thumbnails, start_thread=False, connect={"yielded": on_thumbnail, "errored": stopped})(series)
    worker.start()
    return worker

"""Window/level: presets, automatic windows, a precomputed greyscale lookup table, and grey pictures for files.

The mapping is DICOM's linear VOI function (PS3.3 C.11.2.1.2.1). Integer images of 8 or 16 bits
are mapped by one ``np.take`` into a table covering every possible value; other images (float,
32-bit) by vectorised arithmetic. The table yields display pixels directly: 32-bit ``0xFFRRGGBB``,
which is Qt's ``QImage.Format_RGB32`` (the format it draws fastest) and, viewed as bytes on a
little-endian machine, ``[h, w, 4]`` in B, G, R, A order, where overlays blend in place
(:mod:`medtl.render.blend`). Pictures written to files map a value range ``low..high`` linearly to
grey in [0, 1] (:func:`grey_rgb`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_AUTO_PERCENTILES = (0.5, 99.5)
_AUTO_SAMPLE = 1_000_000  # values sampled from large volumes for the percentiles


@dataclass(frozen=True)
class WindowLevel:
    """A window ``width`` centred on ``center``, in modality units (HU for CT)."""

    width: float
    center: float

    def __post_init__(self) -> None:
        if not np.isfinite(self.width) or not np.isfinite(self.center):
            raise ValueError(f"window/level must be finite, got {self.width}/{self.center}")
        object.__setattr__(self, "width", max(float(self.width), 1.0))

    def dragged(self, dx: float, dy: float, sensitivity: float) -> WindowLevel:
        """The window after a mouse drag: right widens, down raises the level (as most viewers do)."""
        return WindowLevel(self.width + dx * sensitivity, self.center + dy * sensitivity)

    def __str__(self) -> str:
        return f"W {self.width:g} L {self.center:g}"


PRESETS: dict[str, WindowLevel] = {
    "CT brain": WindowLevel(80, 40),
    "CT subdural": WindowLevel(200, 75),
    "CT lung": WindowLevel(1500, -600),
    "CT bone": WindowLevel(2000, 300),
    "CT abdomen": WindowLevel(400, 50),
    "CT mediastinum": WindowLevel(350, 50),
}


def percentile_range(array: np.ndarray, percentiles: tuple[float, float] = _AUTO_PERCENTILES, sample: int | None = None) -> tuple[float, float]:
    """``(low, high)``: the ``percentiles`` of ``array`` (of about ``sample`` evenly strided values of it, if given)."""
    flat = array.reshape(-1)
    if sample is not None and flat.size > sample:
        flat = flat[:: flat.size // sample]
    low, high = np.percentile(flat, percentiles)
    return float(low), float(high)


def auto_window(array: np.ndarray) -> WindowLevel:
    """A window spanning the 0.5th to 99.5th percentile of ``array`` (MR and images without a stored window)."""
    low, high = percentile_range(array, _AUTO_PERCENTILES, _AUTO_SAMPLE)
    return WindowLevel(high - low, (high + low) / 2)


def grey_rgb(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """``values`` (``[h, w]``) as a grey RGB picture ``[h, w, 3]`` in [0, 1]: ``low`` black, ``high`` white, linear
    between (all black when ``high <= low``)."""
    values = values.astype(np.float64)
    grey = np.clip((values - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(values)
    return np.repeat(grey[..., None], 3, axis=-1)


def voi_linear(values: np.ndarray, window: WindowLevel) -> np.ndarray:
    """DICOM linear VOI of ``values`` to display levels 0..255 (float)."""
    scaled = ((values - (window.center - 0.5)) / max(window.width - 1, 1.0) + 0.5) * 255.0
    return np.clip(scaled, 0.0, 255.0)


OPAQUE = np.uint32(0xFF000000)
GREY = np.uint32(0x010101)


def grey_pixels(levels: np.ndarray) -> np.ndarray:
    """Display pixels (uint32 ``0xFFRRGGBB``) of grey ``levels`` (uint8)."""
    return levels.astype(np.uint32) * GREY | OPAQUE


class GreyMapper:
    """Maps a slice in modality units to display pixels (uint32 ``0xFFRRGGBB`` ``[h, w]``) through a window, optionally inverted."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self._table_dtype = {1: np.uint8, 2: np.uint16}.get(self.dtype.itemsize) if self.dtype.kind in "iu" else None
        self._table: np.ndarray | None = None
        self._window: WindowLevel | None = None
        self._invert = False

    def set_window(self, window: WindowLevel, invert: bool) -> None:
        if (window, invert) == (self._window, self._invert):
            return
        self._window, self._invert = window, invert
        if self._table_dtype is not None:
            codes = np.arange(np.iinfo(self._table_dtype).max + 1, dtype=self._table_dtype)
            self._table = grey_pixels(self._levels(codes.view(self.dtype).astype(np.float32)))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Display pixels of a 2D slice ``values`` (any strides), C-contiguous."""
        if self._window is None:
            raise RuntimeError("GreyMapper.set_window must be called first")
        if self._table is not None:
            return np.take(self._table, values.view(self._table_dtype))
        return grey_pixels(self._levels(values))

    def _levels(self, values: np.ndarray) -> np.ndarray:
        assert self._window is not None
        levels = voi_linear(values, self._window).astype(np.uint8)
        return 255 - levels if self._invert else levels

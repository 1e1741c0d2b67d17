"""A slice as LiteMedSAM's encoder expects it, and its masks back on the slice's own grid.

Intensities go to [0, 1] through a window chosen by the modality: CT through a window in HU (the
viewer's current one; soft tissue, centre 40 / width 400, when none is given), everything else
through robust percentiles (0.5 % and 99.5 % of the non-zero voxels, as MedSAM prepares MR). The
slice's longest side is then resized to 256 pixels (area-like antialiasing when shrinking) and the
rest padded with zeros at the bottom and right; three identical channels (an RGB slice keeps its own).
Prompts scale by the same factor; the decoder's 256×256 mask is cropped to the resized slice and
resized back to the slice's rows and columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from medtl.models.medsam import INPUT_SIZE

if TYPE_CHECKING:  # pragma: no cover
    import torch

SOFT_TISSUE = (40.0, 400.0)
"""The default CT window (centre, width) in HU."""
PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class IntensityWindow:
    """The intensities mapped to 0 (``low``) and 1 (``high``); values beyond are clipped."""

    low: float
    high: float

    @classmethod
    def centre_width(cls, centre: float, width: float) -> IntensityWindow:
        return cls(centre - width / 2, centre + width / 2)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        scale = 1.0 / max(self.high - self.low, 1e-6)
        return np.clip((pixels.astype(np.float32) - self.low) * scale, 0.0, 1.0)


def window_for(pixels: np.ndarray, modality: str | None, ct_window: tuple[float, float] | None = None) -> IntensityWindow:
    """The window for a volume (or slice) of ``modality``: CT: ``ct_window`` (centre, width) or soft tissue; else percentiles."""
    if ct_window is not None or (modality or "").upper() == "CT":
        return IntensityWindow.centre_width(*(ct_window or SOFT_TISSUE))
    values = pixels[pixels != 0]
    if values.size == 0:
        return IntensityWindow(0.0, 1.0)
    low, high = np.percentile(values, PERCENTILES)
    return IntensityWindow(float(low), float(high) if high > low else float(low) + 1.0)


def resized_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """``(rows, columns)`` of a slice of ``shape`` once its longest side is :data:`INPUT_SIZE`."""
    scale = INPUT_SIZE / max(shape)
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def input_scale(shape: tuple[int, int]) -> float:
    """The factor from a slice's column/row coordinates to the encoder input's."""
    return INPUT_SIZE / max(shape)


def encoder_input(pixels: np.ndarray, window: IntensityWindow) -> torch.Tensor:
    """The ``[1, 3, 256, 256]`` float tensor for a slice ``[rows, columns]`` (or ``[rows, columns, 3]``)."""
    import torch
    import torch.nn.functional as F

    scaled = torch.from_numpy(window.apply(pixels))
    image = scaled.permute(2, 0, 1)[None] if scaled.ndim == 3 else scaled[None, None].expand(1, 3, *scaled.shape)
    rows, columns = resized_shape(pixels.shape[:2])
    image = F.interpolate(image, size=(rows, columns), mode="bilinear", align_corners=False, antialias=rows < pixels.shape[0])
    return F.pad(image, (0, INPUT_SIZE - columns, 0, INPUT_SIZE - rows)).contiguous()


def logits_on_slice(low_res_logits: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """The decoder's ``[1, 1, 256, 256]`` logits (one candidate) as a float32 array of the slice's ``shape``."""
    import torch.nn.functional as F

    rows, columns = resized_shape(shape)
    logits = F.interpolate(low_res_logits[..., :rows, :columns], size=shape, mode="bilinear", align_corners=False)
    return logits[0, 0].float().numpy()


def mask_on_slice(low_res_logits: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """The decoder's ``[1, 1, 256, 256]`` logits as a boolean mask of the slice's ``shape`` (probability > 0.5)."""
    return logits_on_slice(low_res_logits, shape) > 0

"""A PNG of an image's middle slice with a [0, 1] heatmap blended over it (jet colours, opacity grows with heat)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtl.atomic import atomic_path
from medtl.dicom.volume import Volume

GREY_PERCENTILES = (1.0, 99.0)
_LUMINANCE = np.array([0.299, 0.587, 0.114])


def jet(heat: np.ndarray) -> np.ndarray:
    """``heat`` in [0, 1] -> RGB in [0, 1] (blue, cyan, yellow, red), shape ``(*heat.shape, 3)``."""
    centres = np.array([3.0, 2.0, 1.0])  # red, green, blue peaks on the 0..4 scale
    return np.clip(1.5 - np.abs(4.0 * heat[..., None] - centres), 0.0, 1.0)


def overlay_rgb(image: Volume, heatmap: Volume, opacity: float = 0.5) -> np.ndarray:
    """The middle slice (rows x columns x 3, uint8): the image in grey (1st-99th percentile), the heatmap over it."""
    z = image.shape[0] // 2
    plane = image.array[z].astype(np.float64)
    if image.is_rgb:
        plane = plane @ _LUMINANCE
    low, high = np.percentile(plane, GREY_PERCENTILES)
    grey = np.clip((plane - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(plane)
    heat = np.clip(heatmap.array[z].astype(np.float64), 0.0, 1.0)
    weight = opacity * heat[..., None]
    rgb = (1.0 - weight) * grey[..., None] + weight * jet(heat)
    return np.rint(rgb * 255).astype(np.uint8)


def write_overlay_png(image: Volume, heatmap: Volume, destination: Path | str, opacity: float = 0.5) -> Path:
    """Write :func:`overlay_rgb` as a PNG (atomic); ``heatmap`` must share ``image``'s grid."""
    from PIL import Image

    if heatmap.shape != image.shape:
        raise ValueError(f"heatmap grid {heatmap.shape} differs from the image's {image.shape}")
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        Image.fromarray(overlay_rgb(image, heatmap, opacity)).save(tmp, format="PNG")
    return destination

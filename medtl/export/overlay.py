"""A PNG of an image's middle slice with a [0, 1] heatmap blended over it (jet colours, opacity grows with heat).

Drawn by the shared renderer (:mod:`medtl.render`): grey levels, the colour map and the blending are the viewer's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtl.atomic import atomic_path
from medtl.dicom.volume import Volume
from medtl.render.blend import blend_rgb, rgb_bytes
from medtl.render.colours import jet
from medtl.render.window import grey_rgb, percentile_range

GREY_PERCENTILES = (1.0, 99.0)
_LUMINANCE = np.array([0.299, 0.587, 0.114])


def overlay_rgb(image: Volume, heatmap: Volume, opacity: float = 0.5) -> np.ndarray:
    """The middle slice (rows x columns x 3, uint8): the image in grey (1st-99th percentile), the heatmap over it."""
    z = image.shape[0] // 2
    plane = image.array[z].astype(np.float64)
    if image.is_rgb:
        plane = plane @ _LUMINANCE
    heat = np.clip(heatmap.array[z].astype(np.float64), 0.0, 1.0)
    grey = grey_rgb(plane, *percentile_range(plane, GREY_PERCENTILES))
    return rgb_bytes(blend_rgb(grey, jet(heat), opacity * heat[..., None]))  # opacity grows with heat


def write_overlay_png(image: Volume, heatmap: Volume, destination: Path | str, opacity: float = 0.5) -> Path:
    """Write :func:`overlay_rgb` as a PNG (atomic); ``heatmap`` must share ``image``'s grid."""
    from PIL import Image

    if heatmap.shape != image.shape:
        raise ValueError(f"heatmap grid {heatmap.shape} differs from the image's {image.shape}")
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        Image.fromarray(overlay_rgb(image, heatmap, opacity)).save(tmp, format="PNG")
    return destination

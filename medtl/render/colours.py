"""Colours of overlays: the label palette and the colour maps of heatmaps. Colours are (R, G, B)."""

from __future__ import annotations

from functools import cache

import numpy as np

# Distinct colours for labels 1, 2, ... (Tableau 10), cycled beyond ten.
LABEL_PALETTE = (
    (78, 121, 167), (242, 142, 43), (225, 87, 89), (118, 183, 178), (89, 161, 79),
    (237, 201, 72), (176, 122, 161), (255, 157, 167), (156, 117, 95), (186, 176, 172),
)  # fmt: skip

# Colour maps as anchor colours at evenly spaced positions, interpolated to 256 entries.
COLORMAPS = {
    "inferno": ((0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164)),
    "jet": ((0, 0, 128), (0, 0, 255), (0, 255, 255), (255, 255, 0), (255, 0, 0), (128, 0, 0)),
    "viridis": ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)),
}


def label_colour(label: int) -> tuple[int, int, int]:
    """The palette colour of label value ``label`` (1, 2, ...)."""
    return LABEL_PALETTE[(int(label) - 1) % len(LABEL_PALETTE)]


@cache
def colormap_table(name: str) -> np.ndarray:
    """The 256 x 3 uint8 table of colour map ``name`` (shared: do not modify)."""
    anchors = np.asarray(COLORMAPS[name], dtype=float)
    positions = np.linspace(0, 255, len(anchors))
    codes = np.arange(256)
    return np.stack([np.interp(codes, positions, anchors[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def jet(heat: np.ndarray) -> np.ndarray:
    """``heat`` in [0, 1] -> RGB in [0, 1] (blue, cyan, yellow, red), shape ``(*heat.shape, 3)``: a continuous jet for exports."""
    centres = np.array([3.0, 2.0, 1.0])  # red, green, blue peaks on the 0..4 scale
    return np.clip(1.5 - np.abs(4.0 * heat[..., None] - centres), 0.0, 1.0)

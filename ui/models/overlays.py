"""Overlay layers drawn over a slice: label masks (labels, predictions) and heatmaps.

Layers are pure data with display settings; :func:`composite` blends their cut of a plane into
display pixels in place with the shared renderer (:mod:`medtl.render.blend`: integer numpy
arithmetic, touching only the pixels a layer covers). Display pixels are ``[h, w, 4]`` uint8 in B,
G, R, A byte order (Qt's ``Format_RGB32`` on a little-endian machine, see
:mod:`medtl.render.window`); colours here are given as (R, G, B).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from medtl.annotate.change import label_counts
from medtl.render.blend import boundary, mix_bgra
from medtl.render.colours import COLORMAPS, LABEL_PALETTE, colormap_table

Palette = tuple[tuple[int, int, int], ...]
PREDICTION_PALETTE: Palette = ((255, 0, 255), (0, 240, 255), (190, 255, 0), (150, 80, 255), (255, 255, 0), (0, 255, 150))
"""Colours of predicted labels 1, 2, ...: saturated, so that a prediction never looks like the label being edited
(:data:`~medtl.render.colours.LABEL_PALETTE`, muted)."""


class LabelStyle(Enum):
    FILL = "fill"
    OUTLINE = "outline"


@dataclass(eq=False)
class LabelLayer:
    """An integer mask ``[z, y, x]`` on the volume's grid (0 = background), one colour and name per label; label
    values get their colour from ``palette`` (cycled) unless ``colors`` names one."""

    name: str
    mask: np.ndarray
    colors: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    opacity: float = 0.5
    style: LabelStyle = LabelStyle.FILL
    visible: bool = True
    palette: Palette = LABEL_PALETTE
    hidden: set[int] = field(default_factory=set)  # label values not shown

    def __post_init__(self) -> None:
        if self.mask.ndim != 3 or self.mask.dtype.kind not in "iub":
            raise ValueError(f"a label mask must be an integer [z, y, x] array, got {self.mask.dtype} {self.mask.shape}")
        if self.mask.size and (self.mask.min() < 0 or self.mask.max() > 255):
            raise ValueError("label values must lie in 0..255")
        self.mask = self.mask.astype(np.uint8, copy=False)
        for label in np.flatnonzero(label_counts(self.mask)[1:]) + 1:  # np.unique hashes: 0.5 s for 512 x 512 x 300
            self.colors.setdefault(int(label), self.colour_of(int(label)))

    def colour_of(self, value: int) -> tuple[int, int, int]:
        """The palette colour of label ``value`` (1, 2, ...)."""
        return self.palette[(int(value) - 1) % len(self.palette)]

    @property
    def array(self) -> np.ndarray:
        return self.mask

    def blend(self, bgra: np.ndarray, cut: np.ndarray) -> None:
        """Blend this layer's ``cut`` (``[h, w]``, from the same plane) into the display pixels ``bgra`` in place."""
        covered = cut != 0
        if self.hidden:
            covered &= ~np.isin(cut, sorted(self.hidden))
        if self.style is LabelStyle.OUTLINE:
            covered &= boundary(cut)
        if not covered.any():
            return
        colours = np.zeros((256, 3), dtype=np.uint16)
        for label, colour in self.colors.items():
            colours[label] = colour
        mix_bgra(bgra, covered, colours[cut[covered]], round(self.opacity * 255))


@dataclass(eq=False)
class HeatmapLayer:
    """A float map ``[z, y, x]`` (Grad-CAM, uncertainty) shown through a colour map between ``vmin`` and ``vmax``.

    Values at or below ``vmin`` are transparent; the rest blend with ``opacity``.
    """

    name: str
    values: np.ndarray
    vmin: float = 0.0
    vmax: float = 1.0
    colormap: str = "inferno"
    opacity: float = 0.5
    visible: bool = True

    def __post_init__(self) -> None:
        if self.values.ndim != 3:
            raise ValueError(f"a heatmap must be a [z, y, x] array, got shape {self.values.shape}")
        if not self.vmax > self.vmin:
            raise ValueError(f"heatmap range must have vmax > vmin, got {self.vmin}..{self.vmax}")
        if self.colormap not in COLORMAPS:
            raise ValueError(f"unknown colour map {self.colormap!r}; one of {', '.join(COLORMAPS)}")

    @property
    def array(self) -> np.ndarray:
        return self.values

    def blend(self, bgra: np.ndarray, cut: np.ndarray) -> None:
        covered = cut > self.vmin
        if not covered.any():
            return
        codes = np.clip((cut[covered] - self.vmin) * (255.0 / (self.vmax - self.vmin)), 0, 255).astype(np.uint8)
        mix_bgra(bgra, covered, colormap_table(self.colormap)[codes].astype(np.uint16), round(self.opacity * 255))


OverlayLayer = LabelLayer | HeatmapLayer


def composite(bgra: np.ndarray, layers: list[OverlayLayer], cuts: list[np.ndarray]) -> np.ndarray:
    """Blend each visible layer's cut into the display pixels ``bgra`` in place, bottom layer first."""
    for layer, cut in zip(layers, cuts):
        if layer.visible and layer.opacity > 0:
            layer.blend(bgra, cut)
    return bgra

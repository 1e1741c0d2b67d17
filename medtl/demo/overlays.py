"""Side-by-side overlay PNGs of one axial slice: the reference tissue mask, the pretrained and the scratch network's.

Each picture has three panels of the same slice in radiological display (anterior up, the patient's
right on the left of the screen; R/L/A/P marked): the reference tissue labels filled on the first, and
each network's predicted labels filled on the others, every label in its colour of the shared palette
(:func:`medtl.render.colours.label_colour`), with the reference's tissue boundaries drawn over them, so
where a prediction disagrees is visible. Titles give each panel's Dice per tissue on the slice; a legend
is at the bottom. Grey levels use one window for the whole series. Drawn by the shared renderer
(:mod:`medtl.render`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medtl.atomic import atomic_path
from medtl.demo.plot import font
from medtl.render.blend import blend_rgb, boundary, rgb_bytes
from medtl.render.colours import label_colour
from medtl.render.window import grey_rgb

if TYPE_CHECKING:
    from PIL import Image

BOUNDARY_COLOUR = (255, 255, 255)
FILL_OPACITY = 0.45
PANEL_PIXELS = 300
"""Slices are enlarged by a whole factor to about this many pixels on their longer side."""
_HEADER, _FOOTER, _GAP = 34, 34, 8
_TEXT = (235, 235, 235)
_BACKGROUND = (16, 16, 16)


@dataclass(frozen=True)
class SlicePanels:
    """One slice in display orientation (rows anterior to posterior, columns patient right to left)."""

    image: np.ndarray  # float, any range
    reference: np.ndarray  # int labels
    predictions: dict[str, np.ndarray]  # arm -> int labels
    window: tuple[float, float]
    title: str
    labels: dict[int, str]  # the labels drawn (value -> name), background left out


def dice(prediction: np.ndarray, reference: np.ndarray) -> float | None:
    """The Dice coefficient of two boolean masks; None when both are empty."""
    total = int(prediction.sum()) + int(reference.sum())
    return None if total == 0 else 2.0 * int(np.logical_and(prediction, reference).sum()) / total


def zoom_for(shape: tuple[int, ...]) -> int:
    """The whole enlargement that brings a slice of ``shape`` near :data:`PANEL_PIXELS`."""
    return max(1, round(PANEL_PIXELS / max(shape)))


def panel_rgb(image: np.ndarray, window: tuple[float, float], labels: np.ndarray, reference: np.ndarray, drawn: dict[int, str]) -> np.ndarray:
    """One panel (uint8 RGB, enlarged by :func:`zoom_for`): grey image, ``labels`` filled, the reference's boundaries."""
    rgb = grey_rgb(image, *window)
    for value in drawn:
        where = labels == value
        rgb[where] = blend_rgb(rgb[where], np.array(label_colour(value), dtype=np.float64) / 255.0, FILL_OPACITY)
    zoom = zoom_for(image.shape)
    big, big_reference = (np.repeat(np.repeat(array, zoom, axis=0), zoom, axis=1) for array in (rgb, reference))
    big[boundary(big_reference) & (big_reference > 0)] = np.array(BOUNDARY_COLOUR) / 255.0
    return rgb_bytes(big)


def _scores(prediction: np.ndarray, reference: np.ndarray, labels: dict[int, str]) -> str:
    parts = []
    for value, name in labels.items():
        score = dice(prediction == value, reference == value)
        parts.append(f"{name.split()[0]} {'—' if score is None else f'{score:.2f}'}")
    return ", ".join(parts)


def render(panels: SlicePanels, arm_names: dict[str, str]) -> Image.Image:
    """The three-panel picture of one slice."""
    from PIL import Image, ImageDraw

    reference = panels.reference
    pictures = [("reference", panel_rgb(panels.image, panels.window, reference, reference, panels.labels))]
    for arm, labels in panels.predictions.items():
        pictures.append((f"{arm_names.get(arm, arm)}: {_scores(labels, reference, panels.labels)}", panel_rgb(panels.image, panels.window, labels, reference, panels.labels)))
    height, width = pictures[0][1].shape[:2]
    canvas = Image.new("RGB", (len(pictures) * width + (len(pictures) + 1) * _GAP, height + _HEADER + _FOOTER + 24), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((_GAP, 6), panels.title, fill=_TEXT, font=font(16))
    small, marker = font(14), font(16)
    for index, (title, rgb) in enumerate(pictures):
        x0, y0 = _GAP + index * (width + _GAP), _HEADER + 24
        canvas.paste(Image.fromarray(rgb), (x0, y0))
        draw.text((x0 + width / 2, y0 - 6), title, fill=_TEXT, font=small, anchor="mb")
        for text, (fx, fy), anchor in (("A", (0.5, 0.0), "mt"), ("P", (0.5, 1.0), "mb"), ("R", (0.0, 0.5), "lm"), ("L", (1.0, 0.5), "rm")):
            draw.text((x0 + fx * width + (4 if fx == 0 else -4 if fx == 1 else 0), y0 + fy * height + (4 if fy == 0 else -4 if fy == 1 else 0)), text, fill=(255, 255, 0), font=marker, anchor=anchor)
    y = canvas.height - _FOOTER // 2 - 2
    x = _GAP
    for value, name in panels.labels.items():
        draw.rectangle([x, y - 7, x + 24, y + 7], fill=label_colour(value))
        draw.text((x + 30, y), name, fill=_TEXT, font=small, anchor="lm")
        x += 160
    draw.line([(x, y), (x + 24, y)], fill=BOUNDARY_COLOUR, width=2)
    draw.text((x + 30, y), "reference boundaries", fill=_TEXT, font=small, anchor="lm")
    return canvas


def write_overlay(panels: SlicePanels, destination: Path | str, arm_names: dict[str, str]) -> Path:
    """Write :func:`render` as a PNG (atomic)."""
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        render(panels, arm_names).save(tmp, format="PNG")
    return destination

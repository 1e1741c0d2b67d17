"""Side-by-side overlay PNGs of one axial slice: ground truth, the pretrained arm's and the scratch arm's masks.

Each picture has three panels of the same slice in radiological display (anterior up, the patient's
right on the left of the screen; R/L/A/P marked): the reference outline in green on the first, and on
the other two the arm's predicted mask filled in its colour with the reference outline over it, so
where the two disagree is visible. Titles give each panel's Dice on the slice; a legend is at the
bottom. Grey levels use one window for the whole series (0.5th to 99.5th percentile). Drawn by the
shared renderer (:mod:`medtl.render`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medtl.atomic import atomic_path
from medtl.demo.plot import ARM_COLOURS, font
from medtl.render.blend import blend_rgb, outline, rgb_bytes
from medtl.render.window import grey_rgb

if TYPE_CHECKING:
    from PIL import Image

REFERENCE_COLOUR = (0, 200, 120)
FILL_OPACITY = 0.4
ZOOM = 2
_HEADER, _FOOTER, _GAP = 34, 34, 8
_TEXT = (235, 235, 235)
_BACKGROUND = (16, 16, 16)


@dataclass(frozen=True)
class SlicePanels:
    """One slice in display orientation (rows anterior to posterior, columns patient right to left)."""

    image: np.ndarray  # float, any range
    reference: np.ndarray  # bool
    predictions: dict[str, np.ndarray]  # arm -> bool
    window: tuple[float, float]
    title: str


def dice(prediction: np.ndarray, reference: np.ndarray) -> float | None:
    """The Dice coefficient of two boolean masks; None when both are empty."""
    total = int(prediction.sum()) + int(reference.sum())
    return None if total == 0 else 2.0 * int(np.logical_and(prediction, reference).sum()) / total


def panel_rgb(image: np.ndarray, window: tuple[float, float], reference: np.ndarray, prediction: np.ndarray | None, colour: tuple[int, int, int] | None) -> np.ndarray:
    """One panel (uint8 RGB at :data:`ZOOM` x): grey image, the prediction filled, the reference outlined."""
    rgb = grey_rgb(image, *window)
    if prediction is not None and colour is not None:
        tint = np.array(colour, dtype=np.float64) / 255.0
        rgb[prediction] = blend_rgb(rgb[prediction], tint, FILL_OPACITY)
        rgb[outline(prediction)] = tint
    big = np.repeat(np.repeat(rgb, ZOOM, axis=0), ZOOM, axis=1)
    edge = outline(np.repeat(np.repeat(reference, ZOOM, axis=0), ZOOM, axis=1))
    big[edge] = np.array(REFERENCE_COLOUR) / 255.0
    return rgb_bytes(big)


def render(panels: SlicePanels, arm_names: dict[str, str]) -> Image.Image:
    """The three-panel picture of one slice."""
    from PIL import Image, ImageDraw

    pictures = [("reference (brain mask)", panel_rgb(panels.image, panels.window, panels.reference, None, None))]
    for arm, mask in panels.predictions.items():
        score = dice(mask, panels.reference)
        title = f"{arm_names.get(arm, arm)}: Dice {'—' if score is None else f'{score:.3f}'}"
        pictures.append((title, panel_rgb(panels.image, panels.window, panels.reference, mask, ARM_COLOURS.get(arm))))
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
    draw.line([(x, y), (x + 24, y)], fill=REFERENCE_COLOUR, width=2)
    draw.text((x + 30, y), "reference (brain mask)", fill=_TEXT, font=small, anchor="lm")
    x += 230
    for arm in panels.predictions:
        draw.rectangle([x, y - 7, x + 24, y + 7], fill=ARM_COLOURS.get(arm), outline=ARM_COLOURS.get(arm))
        draw.text((x + 30, y), f"{arm_names.get(arm, arm)} prediction", fill=_TEXT, font=small, anchor="lm")
        x += 230
    return canvas


def write_overlay(panels: SlicePanels, destination: Path | str, arm_names: dict[str, str]) -> Path:
    """Write :func:`render` as a PNG (atomic)."""
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        render(panels, arm_names).save(tmp, format="PNG")
    return destination

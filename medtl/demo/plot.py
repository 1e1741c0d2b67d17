"""The demo's learning curves as a PNG, drawn with Pillow (no plotting library needed).

Two panels side by side, both against the seconds the training had run: validation Dice (0 to 1)
and training loss, one line per arm (pretrained, from scratch), a dot per validated epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medtl.atomic import atomic_path

ARM_COLOURS = {"pretrained": (213, 94, 0), "scratch": (0, 114, 178)}
"""Okabe-Ito vermilion and blue: told apart with every common colour-vision deficiency."""
ARM_NAMES = {"pretrained": "pretrained", "scratch": "from scratch"}
PANEL_SIZE = (560, 400)
_MARGIN = {"left": 64, "right": 16, "top": 40, "bottom": 52}
_AXIS, _GRID, _TEXT = (60, 60, 60), (225, 225, 225), (20, 20, 20)


def font(size: int) -> Any:
    """Pillow's bundled scalable font at ``size`` pixels (its bitmap font where FreeType is missing)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # old Pillow or no FreeType
        return ImageFont.load_default()


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]`` (steps of 1, 2 or 5 times a power of ten)."""
    if not high > low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-6:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def draw_panel(
    series: dict[str, Sequence[tuple[float, float]]],
    title: str,
    x_label: str,
    y_range: tuple[float, float] | None = None,
    size: tuple[int, int] = PANEL_SIZE,
) -> Any:
    """One line chart (a Pillow image): ``series`` maps an arm to its ``(x, y)`` points."""
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    points = [p for values in series.values() for p in values]
    x_ticks = nice_ticks(0.0, max([x for x, _ in points], default=1.0))
    if y_range is None:
        ys = [y for _, y in points]
        y_ticks = nice_ticks(min(0.0, min(ys, default=0.0)), max(ys, default=1.0))
    else:
        y_ticks = nice_ticks(*y_range)
    left, top = _MARGIN["left"], _MARGIN["top"]
    right, bottom = width - _MARGIN["right"], height - _MARGIN["bottom"]

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        fx = (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0])
        fy = (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0])
        return left + fx * (right - left), bottom - fy * (bottom - top)

    small, large = font(13), font(16)
    for tick in y_ticks:
        _, py = to_pixel(x_ticks[0], tick)
        draw.line([(left, py), (right, py)], fill=_GRID)
        draw.text((left - 6, py), _label(tick), fill=_TEXT, font=small, anchor="rm")
    for tick in x_ticks:
        px, _ = to_pixel(tick, y_ticks[0])
        draw.line([(px, top), (px, bottom)], fill=_GRID)
        draw.text((px, bottom + 6), _label(tick), fill=_TEXT, font=small, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=_AXIS)
    draw.text(((left + right) / 2, 12), title, fill=_TEXT, font=large, anchor="mt")
    draw.text(((left + right) / 2, height - 8), x_label, fill=_TEXT, font=small, anchor="mb")
    for arm, values in series.items():
        colour = ARM_COLOURS.get(arm, _AXIS)
        pixels = [to_pixel(x, y) for x, y in values]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=3, joint="curve")
        for px, py in pixels:
            draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=colour, outline="white")
    return image


def draw_learning_curves(curves: dict[str, list[dict[str, Any]]], destination: Path | str) -> Path:
    """Write the learning curves PNG; ``curves`` maps ``"pretrained"``/``"scratch"`` to per-epoch rows with
    ``seconds`` (elapsed training time), ``train_loss`` and ``dice`` (None when the epoch was not validated)."""
    from PIL import Image, ImageDraw

    dice = {arm: [(r["seconds"], r["dice"]) for r in rows if r.get("dice") is not None] for arm, rows in curves.items()}
    loss = {arm: [(r["seconds"], r["train_loss"]) for r in rows if r.get("train_loss") is not None] for arm, rows in curves.items()}
    panels = [
        draw_panel(dice, "validation Dice (higher is better)", "training time (s)", (0.0, 1.0)),
        draw_panel(loss, "training loss (Dice + cross-entropy)", "training time (s)"),
    ]
    legend_height = 36
    width = sum(p.width for p in panels)
    image = Image.new("RGB", (width, PANEL_SIZE[1] + legend_height), "white")
    for index, panel in enumerate(panels):
        image.paste(panel, (index * PANEL_SIZE[0], 0))
    draw = ImageDraw.Draw(image)
    x, y = width // 2 - 150, PANEL_SIZE[1] + legend_height // 2
    for arm in curves:
        colour = ARM_COLOURS.get(arm, _AXIS)
        draw.line([(x, y), (x + 28, y)], fill=colour, width=3)
        draw.ellipse([x + 10, y - 4, x + 18, y + 4], fill=colour)
        draw.text((x + 36, y), ARM_NAMES.get(arm, arm), fill=_TEXT, font=font(15), anchor="lm")
        x += 170
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        image.save(tmp, format="PNG")
    return destination

"""The demo's learning curve as a PNG, drawn with Pillow (no plotting library needed).

Two panels side by side, one line per arm (pretrained, from scratch): the Dice on the slices nobody
annotated against the number of annotated slices, with the spread over seeds as error bars; and the
validation Dice against optimizer steps (time to quality). :func:`draw_panel` draws one chart.
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
_ERROR_BAR_SHIFT = 8.0
"""Pixels between the arms' points at one x, so that their error bars do not hide each other."""


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
    errors: dict[str, Sequence[float]] | None = None,
    x_range: tuple[float, float] | None = None,
) -> Any:
    """One line chart (a Pillow image): ``series`` maps an arm to its ``(x, y)`` points; ``errors`` optionally to a
    half-length per point, drawn as an error bar (the arms' bars a few pixels apart, so that both show). The axes
    cover ``x_range`` and ``y_range`` when given, else 0 to the largest value."""
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    errors = errors or {}
    points = [p for values in series.values() for p in values]
    spans = [(y - e, y + e) for arm, values in series.items() for (_, y), e in zip(values, errors.get(arm, [0.0] * len(values)))]
    x_ticks = nice_ticks(*(x_range or (0.0, max([x for x, _ in points], default=1.0))))
    if y_range is None:
        y_ticks = nice_ticks(min(0.0, min((low for low, _ in spans), default=0.0)), max((high for _, high in spans), default=1.0))
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
    for index, (arm, values) in enumerate(series.items()):
        colour = ARM_COLOURS.get(arm, _AXIS)
        shift = (index - (len(series) - 1) / 2) * _ERROR_BAR_SHIFT if arm in errors else 0.0
        pixels = [(px + shift, py) for px, py in (to_pixel(x, y) for x, y in values)]
        for (px, _), (x, y), half in zip(pixels, values, errors.get(arm, ())):
            _, low = to_pixel(x, y - half)
            _, high = to_pixel(x, y + half)
            draw.line([(px, low), (px, high)], fill=colour, width=2)
            for end in (low, high):
                draw.line([(px - 5, end), (px + 5, end)], fill=colour, width=2)
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=3, joint="curve")
        for px, py in pixels:
            draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=colour, outline="white")
    return image


def draw_transfer_curve(
    dice: dict[str, list[tuple[float, float, float]]],
    validation: dict[str, list[tuple[float, float]]],
    validation_title: str,
    destination: Path | str,
) -> Path:
    """Write the demo's picture: left, Dice on the unannotated slices against the number of annotated slices,
    ``dice`` mapping an arm to ``(slices, mean, spread)`` points (the spread as error bars); right, validation Dice
    against optimizer steps, ``validation`` mapping an arm to ``(step, Dice)`` points."""
    from PIL import Image, ImageDraw

    lows = [mean - spread for points in dice.values() for _, mean, spread in points]
    floor = max(0.0, math.floor(min(lows, default=0.0) * 10) / 10 - 0.1)
    panels = [
        draw_panel(
            {arm: [(x, y) for x, y, _ in points] for arm, points in dice.items()},
            "Dice on the slices nobody annotated", "annotated axial slices (error bars: SD over seeds)", (floor, 1.0),
            errors={arm: [e for _, _, e in points] for arm, points in dice.items()},
            x_range=(0.0, 1.1 * max((x for points in dice.values() for x, _, _ in points), default=1.0)),
        ),
        draw_panel(validation, validation_title, "optimizer steps", (0.0, 1.0)),
    ]
    legend_height = 36
    width = sum(p.width for p in panels)
    image = Image.new("RGB", (width, PANEL_SIZE[1] + legend_height), "white")
    for index, panel in enumerate(panels):
        image.paste(panel, (index * PANEL_SIZE[0], 0))
    draw = ImageDraw.Draw(image)
    x, y = width // 2 - 150, PANEL_SIZE[1] + legend_height // 2
    for arm in dice:
        colour = ARM_COLOURS.get(arm, _AXIS)
        draw.line([(x, y), (x + 28, y)], fill=colour, width=3)
        draw.ellipse([x + 10, y - 4, x + 18, y + 4], fill=colour)
        draw.text((x + 36, y), ARM_NAMES.get(arm, arm), fill=_TEXT, font=font(15), anchor="lm")
        x += 170
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        image.save(tmp, format="PNG")
    return destination

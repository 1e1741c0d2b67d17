"""`PromptRequest`: a box and optional clicks on one slice, validated on creation.

Coordinates are the slice's column (x) and row (y) indices (:mod:`medtl.prompt.slicing`); a box
``(x0, y0, x1, y1)`` spans columns x0 to x1 and rows y0 to y1, both included.
"""

from __future__ import annotations

from dataclasses import dataclass

from medtl.errors import InvalidRequest

Box = tuple[float, float, float, float]
"""``(x0, y0, x1, y1)``: columns x0 to x1 and rows y0 to y1 of a slice, both included."""


@dataclass(frozen=True)
class Point:
    """A click at column ``x``, row ``y``: ``positive`` adds the spot to the structure, otherwise it excludes it."""

    x: float
    y: float
    positive: bool = True


@dataclass(frozen=True)
class PromptRequest:
    """A prompt on a slice of ``slice_shape`` ``(rows, columns)``: ``box`` ``(x0, y0, x1, y1)`` and ``points``.

    Raises :class:`InvalidRequest` (field ``box`` or ``points``) for a box that is empty or reaches
    outside the slice, and for a click outside it.
    """

    slice_shape: tuple[int, int]
    box: Box
    points: tuple[Point, ...] = ()

    def __post_init__(self) -> None:
        rows, columns = self.slice_shape
        if len(self.box) != 4:
            raise InvalidRequest("box", f"a box is four numbers (x0, y0, x1, y1), not {len(self.box)}")
        x0, y0, x1, y1 = self.box
        if x1 <= x0 or y1 <= y0:
            raise InvalidRequest("box", f"the box ({_n(x0)}, {_n(y0)})–({_n(x1)}, {_n(y1)}) is empty: x1 must be right of x0 and y1 below y0")
        if x0 < 0 or y0 < 0 or x1 > columns - 1 or y1 > rows - 1:
            raise InvalidRequest(
                "box",
                f"the box ({_n(x0)}, {_n(y0)})–({_n(x1)}, {_n(y1)}) reaches outside the slice, whose columns are 0 to {columns - 1} "
                f"and rows 0 to {rows - 1}",
            )
        for point in self.points:
            if not (0 <= point.x <= columns - 1 and 0 <= point.y <= rows - 1):
                raise InvalidRequest(
                    "points",
                    f"the click at ({_n(point.x)}, {_n(point.y)}) is outside the slice, whose columns are 0 to {columns - 1} and rows 0 to {rows - 1}",
                )


def _n(value: float) -> str:
    return f"{value:g}"

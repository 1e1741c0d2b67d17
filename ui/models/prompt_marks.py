"""AI prompts drawn in a view, in the engine's terms (no Qt).

A grid view (:class:`ViewPlane`) shows a slice of the ``[z, y, x]`` array transposed and flipped for
the screen; :mod:`medtl.prompt` cuts the same slice along an array axis without either
(:mod:`medtl.prompt.slicing`: axial ``array[k]``, coronal ``array[:, k]``, sagittal ``array[:, :, k]``).
The helpers here carry a box and clicks drawn on the screen to that cut's column/row coordinates,
and a mask on the cut back to the label's voxels. :class:`PromptMarks` is what the views draw of
the current prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medtl.prompt.slicing import PLANES
from ui.models.label_editor import annotated_axis
from ui.models.view_plane import ViewPlane


@dataclass
class PromptMarks:
    """The current prompt as drawn: on slice ``index`` of ``plane``, a box ``(row0, column0, row1, column1)`` and clicks
    ``(row, column, include)`` in the view's image coordinates."""

    plane: ViewPlane
    index: int
    box: tuple[float, float, float, float]
    points: list[tuple[float, float, bool]] = field(default_factory=list)


def engine_plane(plane: ViewPlane) -> tuple[str, int] | None:
    """The engine's plane name and array axis of a grid view's plane; None for a resampled or projected one."""
    axis = None if plane.projection else annotated_axis(plane)
    return None if axis is None else (PLANES[axis], axis)


def slice_point(plane: ViewPlane, index: int, shape: tuple[int, ...], row: float, column: float) -> tuple[float, float]:
    """(x, y): the column and row on the engine's cut of the image point (``row``, ``column``) of slice ``index``."""
    zyx = plane.to_index(row, column, index, shape)[::-1]
    axis = 2 - plane.normal
    y, x = (float(v) for v in np.delete(zyx, axis))
    return x, y


def slice_box(plane: ViewPlane, index: int, shape: tuple[int, ...], box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The box ``(x0, y0, x1, y1)`` on the engine's cut of an image box ``(row0, column0, row1, column1)``, rounded to
    whole pixels and kept inside the slice."""
    corners = [slice_point(plane, index, shape, box[0], box[1]), slice_point(plane, index, shape, box[2], box[3])]
    rows, columns = np.delete(np.asarray(shape[:3]), 2 - plane.normal)
    xs = np.clip(np.rint(sorted(c[0] for c in corners)), 0, columns - 1)
    ys = np.clip(np.rint(sorted(c[1] for c in corners)), 0, rows - 1)
    return float(xs[0]), float(ys[0]), float(xs[1]), float(ys[1])


def mask_voxels(axis: int, index: int, mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Flat indices into a ``[z, y, x]`` array of ``shape`` of the pixels set in ``mask``, a cut of slice ``index`` along ``axis``."""
    rows, columns = np.nonzero(mask)
    zyx = [rows, columns]
    zyx.insert(axis, np.full(len(rows), index))
    return np.ravel_multi_index(tuple(zyx), tuple(shape[:3]))


def earlier_values(known: tuple[np.ndarray, np.ndarray], voxels: np.ndarray, before: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values voxels had before a prompt's first result: ``known`` (sorted voxels, values), and for the others
    among ``voxels`` their value ``before`` a later step changed them."""
    unique, first = np.unique(np.concatenate([known[0], voxels]), return_index=True)
    return unique, np.concatenate([known[1], before])[first]

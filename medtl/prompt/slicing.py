"""The planes of a volume stored ``[z, y, x]`` and the 2D slice each one cuts, without resampling.

A plane is named by the array axis it is normal to (:data:`medtl.data.sparse.AXES`): ``axial`` cuts
``array[k]`` (rows y, columns x), ``coronal`` ``array[:, k]`` (rows z, columns x) and ``sagittal``
``array[:, :, k]`` (rows z, columns y). Boxes and clicks are given in that slice's column/row indices.
"""

from __future__ import annotations

import numpy as np

from medtl.data.sparse import AXES
from medtl.errors import InvalidRequest

PLANES = AXES


def plane_axis(plane: str) -> int:
    """The array axis (0: z, 1: y, 2: x) that ``plane`` is normal to; InvalidRequest for an unknown plane."""
    if plane not in PLANES:
        raise InvalidRequest("plane", f"the plane {plane!r} is not one of {', '.join(PLANES)}")
    return PLANES.index(plane)


def slice_count(shape: tuple[int, ...], plane: str) -> int:
    """How many slices ``plane`` cuts from a volume of ``shape`` ``(z, y, x[, c])``."""
    return int(shape[plane_axis(plane)])


def check_slice(shape: tuple[int, ...], plane: str, index: int) -> None:
    """InvalidRequest (field ``slice``) unless ``index`` is a slice of ``plane`` in a volume of ``shape``."""
    count = slice_count(shape, plane)
    if not 0 <= index < count:
        raise InvalidRequest("slice", f"slice {index} is outside the volume: the {plane} plane has slices 0 to {count - 1}")


def cut(array: np.ndarray, plane: str, index: int) -> np.ndarray:
    """The slice ``index`` of ``plane`` (rows, columns[, channels]): a view of ``array``."""
    check_slice(array.shape, plane, index)
    return np.take(array, index, axis=plane_axis(plane))


def paste(volume_mask: np.ndarray, plane: str, index: int, mask: np.ndarray) -> None:
    """Write a slice's ``mask`` into ``volume_mask`` at slice ``index`` of ``plane`` (in place)."""
    check_slice(volume_mask.shape, plane, index)
    where: list[object] = [slice(None)] * 3
    where[plane_axis(plane)] = index
    volume_mask[tuple(where)] = mask

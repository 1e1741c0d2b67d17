"""Blending colours over a greyscale picture, and the outline of a label.

Two pixel formats, one arithmetic (``pixel * (1 - a) + colour * a``):

- the viewer's display pixels: ``[h, w, 4]`` uint8 in B, G, R, A byte order (Qt's ``Format_RGB32``
  on a little-endian machine, see :mod:`medtl.render.window`), blended in place with integer
  arithmetic (:func:`mix_bgra`), touching only the covered pixels: this is the paint path;
- RGB pictures written to files: ``[h, w, 3]`` floats in [0, 1] (:func:`blend_rgb`), turned into bytes
  by :func:`rgb_bytes`.
"""

from __future__ import annotations

import numpy as np


def mix_bgra(bgra: np.ndarray, where: np.ndarray, colours: np.ndarray, alpha: int) -> None:
    """pixel = (pixel * (255 - alpha) + colour * alpha) / 255 where ``where``, in uint16 arithmetic, in place.

    ``colours`` (N, 3) are (R, G, B) for the N covered pixels; flat indices are 3x faster than a mask.
    """
    pixels = bgra.reshape(-1, 4)
    index = np.flatnonzero(where)
    base = pixels[index, :3].astype(np.uint16)
    pixels[index, :3] = ((base * (255 - alpha) + colours[:, ::-1] * alpha + 127) // 255).astype(np.uint8)


def blend_rgb(rgb: np.ndarray, colour: np.ndarray, weight: float | np.ndarray) -> np.ndarray:
    """``rgb * (1 - weight) + colour * weight`` (floats in [0, 1]; ``weight`` a number or per pixel ``[..., 1]``)."""
    return (1.0 - weight) * rgb + weight * colour


def rgb_bytes(rgb: np.ndarray) -> np.ndarray:
    """A float RGB picture in [0, 1] as uint8."""
    return np.rint(rgb * 255).astype(np.uint8)


def boundary(cut: np.ndarray) -> np.ndarray:
    """Pixels whose 4-neighbourhood holds another value (or the image edge). ``cut & boundary(cut)`` of a
    boolean mask is its outline: the mask's pixels with a 4-neighbour outside it."""
    padded = np.pad(cut, 1, mode="constant", constant_values=0)
    centre = padded[1:-1, 1:-1]
    return (padded[:-2, 1:-1] != centre) | (padded[2:, 1:-1] != centre) | (padded[1:-1, :-2] != centre) | (padded[1:-1, 2:] != centre)


def outline(mask: np.ndarray) -> np.ndarray:
    """The boundary pixels of a boolean ``mask`` (in the mask, with a 4-neighbour outside it)."""
    return mask & boundary(mask)

"""medtl's own MONAI dictionary transforms (module-level classes, so they pickle under ``spawn``).

Shapes follow MONAI: channel first, ``[C, x, y, z]`` for 3D and ``[C, x, y]`` for 2D, where x
is the image column axis and y the row axis (so a 2D array shows transposed in ``imshow``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable

from medtl.data.images import ImageReadError, read_image

_LUMINANCE = (0.299, 0.587, 0.114)
_GRID_TOLERANCE_MM = 1e-3


class LoadVolumed(MapTransform):
    """Read each key's path with :func:`read_image` into a ``MetaTensor [C, x, y, z]`` (RAS affine).

    With ``reference`` set (the image key), every other key must lie on the same voxel grid as
    it (shape and world geometry); a mask on another grid is an error, not resampled.
    """

    def __init__(self, keys: KeysCollection, reference: str | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.reference = reference

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            path = str(d[key])
            tensor = read_image(path).to_metatensor()
            tensor.meta["filename_or_obj"] = path
            d[key] = tensor
        if self.reference is not None and self.reference in d:
            for key in self.key_iterator(d):
                if key != self.reference:
                    _check_same_grid(d[self.reference], d[key])
        return d


def _check_same_grid(image: MetaTensor, mask: MetaTensor) -> None:
    path = mask.meta["filename_or_obj"]
    if tuple(image.shape[1:]) != tuple(mask.shape[1:]):
        raise ImageReadError(path, f"mask grid {tuple(mask.shape[1:])} (x, y, z) differs from its image's {tuple(image.shape[1:])} ({image.meta['filename_or_obj']})")
    if not torch.allclose(image.affine.double(), mask.affine.double(), atol=_GRID_TOLERANCE_MM):
        raise ImageReadError(path, f"mask geometry (origin/spacing/direction) differs from its image's ({image.meta['filename_or_obj']}); resample the mask onto the image grid")


class CTWindowsd(MapTransform):
    """Map a one-channel HU image to one channel per ``(center, width)`` window, each clipped to [0, 1]."""

    def __init__(self, keys: KeysCollection, windows: Sequence[Sequence[float]], allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.windows = [(float(c), float(w)) for c, w in windows]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            if image.shape[0] != 1:
                raise ValueError(f"CT windowing needs a one-channel image, got {image.shape[0]} channels")
            hu = image.float()
            d[key] = torch.cat([((hu - (c - w / 2)) / w).clamp(0.0, 1.0) for c, w in self.windows], dim=0)
        return d


class ToChannelsd(MapTransform):
    """Make the channel count what the model takes: repeat one channel, or RGB -> grey (luminance)."""

    def __init__(self, keys: KeysCollection, channels: int, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.channels = channels

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            have = image.shape[0]
            if have == self.channels:
                continue
            if have == 1:
                d[key] = image.repeat(self.channels, *([1] * (image.ndim - 1)))
            elif have == 3 and self.channels == 1:
                weights = torch.tensor(_LUMINANCE, dtype=image.dtype).reshape(3, *([1] * (image.ndim - 1)))
                d[key] = (image * weights).sum(dim=0, keepdim=True)
            else:
                raise ValueError(f"cannot turn a {have}-channel image into the {self.channels} channels the model takes")
        return d


def take_slice(tensor: torch.Tensor, index: int) -> torch.Tensor:
    """``tensor[..., index]`` with a MetaTensor's affine moved to that slice."""
    out = tensor[..., index]
    if isinstance(tensor, MetaTensor):
        affine = tensor.affine.clone()
        affine[:3, 3] += affine[:3, 2] * index
        out.affine = affine
    return out


class AxialSliced(MapTransform):
    """2D from 3D, deterministic: the central slice along the last axis (z; axial after RAS/LPS orientation)."""

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = take_slice(d[key], d[key].shape[-1] // 2)
        return d


class RandAxialSliced(Randomizable, MapTransform):
    """2D from 3D for training: one random slice along the last axis per call, the same for all keys.

    With ``label_key``, a slice holding foreground is chosen with probability ``pos_fraction``
    (when the volume has any); otherwise every slice is equally likely.
    """

    def __init__(self, keys: KeysCollection, label_key: str | None = None, pos_fraction: float = 0.5, allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.label_key = label_key
        self.pos_fraction = pos_fraction
        self._index = 0

    def randomize(self, data: tuple[int, np.ndarray]) -> None:
        """Choose the slice index from ``(depth, indices of slices holding foreground)``."""
        depth, foreground = data
        if foreground.size and self.R.random_sample() < self.pos_fraction:
            self._index = int(self.R.choice(foreground))
        else:
            self._index = int(self.R.randint(depth))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        depth = int(d[next(iter(self.key_iterator(d)))].shape[-1])
        label = d.get(self.label_key) if self.label_key else None
        foreground = np.empty(0, dtype=int)
        if label is not None:
            foreground = np.flatnonzero(torch.as_tensor(label).reshape(-1, depth).any(dim=0).cpu().numpy())
        self.randomize((depth, foreground))
        for key in self.key_iterator(d):
            d[key] = take_slice(d[key], self._index)
        return d

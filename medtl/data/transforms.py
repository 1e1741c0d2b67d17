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
from monai.transforms import MapTransform, RandCropByPosNegLabeld, Randomizable

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


def slice_indices(label: torch.Tensor, ignore_label: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(annotated, foreground)``: the indices along the last axis of ``label`` ``[1, ..., depth]`` of the slices
    holding annotated voxels (any value but ``ignore_label``; every slice without one) and of those holding a
    foreground (non-zero) annotated voxel."""
    depth = int(label.shape[-1])
    values = torch.as_tensor(label).reshape(-1, depth)
    if ignore_label is None:
        return np.arange(depth), np.flatnonzero((values != 0).any(dim=0).cpu().numpy())
    annotated = values != ignore_label
    foreground = annotated & (values != 0)
    return np.flatnonzero(annotated.any(dim=0).cpu().numpy()), np.flatnonzero(foreground.any(dim=0).cpu().numpy())


class AxialSliced(MapTransform):
    """2D from 3D, deterministic, along the last axis (z; axial after RAS/LPS orientation).

    With ``label_key`` and a label present (validation), one item per slice of the label that holds annotated
    voxels (every slice without ``ignore_label``), as a list; otherwise (a classification image) the central slice.
    """

    def __init__(self, keys: KeysCollection, label_key: str | None = None, ignore_label: int | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.label_key, self.ignore_label = label_key, ignore_label

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any] | list[dict[Hashable, Any]]:
        d = dict(data)
        label = d.get(self.label_key) if self.label_key else None
        if label is None:
            return self._slice(d, int(d[next(iter(self.key_iterator(d)))].shape[-1]) // 2)
        annotated, _ = slice_indices(label, self.ignore_label)
        indices = annotated.tolist() or [int(label.shape[-1]) // 2]  # nothing annotated: the metrics find nothing to count
        return [self._slice(d, index) for index in indices]

    def _slice(self, d: dict[Hashable, Any], index: int) -> dict[Hashable, Any]:
        out = dict(d)
        for key in self.key_iterator(d):
            out[key] = take_slice(d[key], index)
        return out


class RandAxialSliced(Randomizable, MapTransform):
    """2D from 3D for training: one random slice along the last axis per call, the same for all keys.

    With ``label_key``, only slices holding annotated voxels are chosen (every slice when there is no
    ``ignore_label``), and one holding foreground with probability ``pos_fraction`` (when the volume has any).
    """

    def __init__(
        self, keys: KeysCollection, label_key: str | None = None, pos_fraction: float = 0.5, ignore_label: int | None = None, allow_missing_keys: bool = False
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.label_key = label_key
        self.pos_fraction = pos_fraction
        self.ignore_label = ignore_label
        self._index = 0

    def randomize(self, data: tuple[int, np.ndarray, np.ndarray | None]) -> None:
        """Choose the slice index from ``(depth, slices holding foreground, slices holding annotated voxels (None: all))``."""
        depth, foreground, annotated = data
        if foreground.size and self.R.random_sample() < self.pos_fraction:
            self._index = int(self.R.choice(foreground))
        elif annotated is not None and 0 < annotated.size < depth:
            self._index = int(self.R.choice(annotated))
        else:
            self._index = int(self.R.randint(depth))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        depth = int(d[next(iter(self.key_iterator(d)))].shape[-1])
        label = d.get(self.label_key) if self.label_key else None
        foreground, annotated = np.empty(0, dtype=int), None
        if label is not None:
            annotated, foreground = slice_indices(label, self.ignore_label)
        self.randomize((depth, foreground, annotated))
        for key in self.key_iterator(d):
            d[key] = take_slice(d[key], self._index)
        return d


class RandAnnotatedCropd(RandCropByPosNegLabeld):
    """MONAI's ``RandCropByPosNegLabeld`` (one patch, half centred on foreground) for masks with an ``ignore_label``:
    foreground is annotated non-zero voxels, background annotated zeros, so a patch is never centred on a voxel
    nobody annotated (when the label has annotated ones)."""

    _FOREGROUND, _BACKGROUND = "annotated_foreground_indices", "annotated_background_indices"

    def __init__(self, keys: KeysCollection, label_key: str, spatial_size: Sequence[int], ignore_label: int) -> None:
        super().__init__(
            keys, label_key=label_key, spatial_size=spatial_size, pos=1, neg=1, num_samples=1,
            fg_indices_key=self._FOREGROUND, bg_indices_key=self._BACKGROUND,
        )  # fmt: skip
        self.ignore_label = ignore_label

    def __call__(self, data: Mapping[Hashable, Any], lazy: bool | None = None) -> list[dict[Hashable, Any]]:
        d = dict(data)
        values = torch.as_tensor(d[self.label_key])[0].reshape(-1)
        annotated = values != self.ignore_label
        background = torch.nonzero(annotated & (values == 0)).flatten()
        foreground = torch.nonzero(annotated & (values != 0)).flatten()
        if not foreground.numel() and not background.numel():
            background = torch.arange(values.numel())
        d[self._FOREGROUND], d[self._BACKGROUND] = foreground, background
        return super().__call__(d, lazy)

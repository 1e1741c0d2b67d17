"""Two augmented views of each unlabelled slice, the input of the self-supervised objective.

For every slice, independently per view:

- a random crop: centre uniform inside the slice's foreground box, side ``crop_size × zoom`` pixels
  (``zoom`` uniform in ``zoom_range``), turned by up to ``rotate_degrees``, resampled bilinearly to
  ``crop_size × crop_size`` (outside the slice: 0, the normalised background). No flips: a flip changes
  laterality, which a downstream label may depend on;
- intensity jitter: ``x × (1 ± intensity_scale) ± intensity_shift``;
- Gaussian noise with a standard deviation uniform in ``[0, noise_std]``.

View A is also cut out: random boxes (each side 1/8 to 1/3 of the crop) are filled with uniform noise
until about ``mask_fraction`` of it is hidden. ``clean_a`` is view A after the crop and the jitter but
before noise and cut-out: the reconstruction target. Shapes are ``[B, 1, S, S]`` float32; ``mask_a`` is 1
where view A was cut out.

Everything random comes from the ``torch.Generator`` passed in, so a step's views are reproducible
from its seed (that is what makes a resumed run see the same views as an uninterrupted one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from medtl.errors import MedtlError


@dataclass(frozen=True)
class ViewSettings:
    """How views are made; see the module docstring. Sizes in pixels, angles in degrees, intensities normalised."""

    crop_size: int = 96
    zoom_range: tuple[float, float] = (0.7, 1.4)
    rotate_degrees: float = 15.0
    intensity_scale: float = 0.2
    intensity_shift: float = 0.1
    noise_std: float = 0.05
    mask_fraction: float = 0.3

    def __post_init__(self) -> None:
        object.__setattr__(self, "zoom_range", tuple(float(z) for z in self.zoom_range))
        if self.crop_size < 16:
            raise MedtlError(f"crop_size must be at least 16 pixels, not {self.crop_size}")
        if not 0 < self.zoom_range[0] <= self.zoom_range[1]:
            raise MedtlError(f"zoom_range must be two positive numbers, low first, not {self.zoom_range}")
        if not 0.0 <= self.mask_fraction < 0.9:
            raise MedtlError(f"mask_fraction must be in [0, 0.9), not {self.mask_fraction}")
        if min(self.rotate_degrees, self.intensity_scale, self.intensity_shift, self.noise_std) < 0:
            raise MedtlError("view augmentation ranges must not be negative")


@dataclass(frozen=True)
class Views:
    """A batch of view pairs (see the module docstring)."""

    masked_a: torch.Tensor
    clean_a: torch.Tensor
    mask_a: torch.Tensor
    view_b: torch.Tensor


def foreground_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """``(row0, row1, col0, col1)`` (end exclusive) around the pixels above 5 % of the slice's range; the whole slice when flat."""
    values = image.astype(np.float32)
    low, high = float(values.min()), float(values.max())
    rows, cols = np.nonzero(values > low + 0.05 * (high - low)) if high > low else ((), ())
    if len(rows) == 0:
        return 0, image.shape[0], 0, image.shape[1]
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


def _uniform(generator: torch.Generator, low: float, high: float, count: int = 1) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator)


def _crop(image: torch.Tensor, box: tuple[int, int, int, int], settings: ViewSettings, generator: torch.Generator) -> torch.Tensor:
    """One random rotated, zoomed crop of ``image`` ``[H, W]`` as ``[S, S]``."""
    height, width = image.shape
    row0, row1, col0, col1 = box
    centre_row = float(_uniform(generator, row0, row1))
    centre_col = float(_uniform(generator, col0, col1))
    side = settings.crop_size * float(_uniform(generator, *settings.zoom_range))
    angle = math.radians(float(_uniform(generator, -settings.rotate_degrees, settings.rotate_degrees)))
    cos, sin = math.cos(angle), math.sin(angle)
    # Output coordinates in [-1, 1] to input ones (align_corners=False: x_norm = (2 x + 1) / W - 1).
    theta = torch.tensor(
        [
            [side / width * cos, -side / width * sin, (2 * centre_col + 1) / width - 1],
            [side / height * sin, side / height * cos, (2 * centre_row + 1) / height - 1],
        ],
        dtype=torch.float32,
    )
    size = (1, 1, settings.crop_size, settings.crop_size)
    grid = F.affine_grid(theta[None], list(size), align_corners=False)
    return F.grid_sample(image[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0]


def _jitter(crop: torch.Tensor, settings: ViewSettings, generator: torch.Generator) -> torch.Tensor:
    scale = 1.0 + float(_uniform(generator, -settings.intensity_scale, settings.intensity_scale))
    shift = float(_uniform(generator, -settings.intensity_shift, settings.intensity_shift))
    return crop * scale + shift


def _noisy(crop: torch.Tensor, settings: ViewSettings, generator: torch.Generator) -> torch.Tensor:
    std = float(_uniform(generator, 0.0, settings.noise_std))
    return crop + std * torch.randn(crop.shape, generator=generator)


def _cut_out(size: int, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """A ``[S, S]`` mask (1: hidden) of random boxes covering about ``fraction`` of the crop."""
    mask = torch.zeros(size, size)
    for _ in range(64):  # bounded: boxes overlap, so the fraction is approached, not met exactly
        if float(mask.mean()) >= fraction:
            break
        box_h, box_w = (int(_uniform(generator, size / 8, size / 3)) for _ in range(2))
        top = int(_uniform(generator, 0, size - box_h))
        left = int(_uniform(generator, 0, size - box_w))
        mask[top : top + box_h, left : left + box_w] = 1.0
    return mask


def make_views(images: Sequence[torch.Tensor], boxes: Sequence[tuple[int, int, int, int]], settings: ViewSettings, generator: torch.Generator) -> Views:
    """View pairs of ``images`` (each ``[H, W]`` float, its foreground box in ``boxes``); see the module docstring."""
    masked, clean, masks, second = [], [], [], []
    for image, box in zip(images, boxes):
        a = _jitter(_crop(image, box, settings, generator), settings, generator)
        b = _noisy(_jitter(_crop(image, box, settings, generator), settings, generator), settings, generator)
        mask = _cut_out(settings.crop_size, settings.mask_fraction, generator)
        fill = torch.rand(mask.shape, generator=generator)
        masked.append(torch.where(mask > 0, fill, _noisy(a, settings, generator)))
        clean.append(a)
        masks.append(mask)
        second.append(b)

    def stack(tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(tensors)[:, None].contiguous()

    return Views(stack(masked), stack(clean), stack(masks), stack(second))

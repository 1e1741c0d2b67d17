"""The self-supervised objective: contrastive (NT-Xent) plus masked reconstruction, on a registry backbone.

The idea follows the two pretext tasks of MONAI's self-supervised tutorials (contrastive learning of
two augmented views, and reconstruction of cut-out regions, as in ViTAutoEnc's pretraining and
SwinUNETR's contrastive + inpainting pretraining), on a CNN backbone from :mod:`medtl.models.registry`:

    masked view A ─┐                       ┌─ mean-pool ─ projector (MLP) ─ z_A ┐
                   ├─ backbone (stages) ───┤                                     ├─ NT-Xent
    view B ────────┘  (deepest stage out)  ├─ mean-pool ─ projector (MLP) ─ z_B ┘
                                           └─ (A only) light decoder ─ Â ── masked L1 vs clean A

- **NT-Xent** (SimCLR): each view must pick its partner among the ``2B - 1`` other views of the batch by
  cosine similarity of the projections at ``temperature``. It teaches features that ignore crop, zoom,
  rotation, intensity, noise and occlusion but tell anatomy apart.
- **Masked reconstruction**: a light decoder (no skip connections: the picture must come out of the
  deepest features) restores view A from its masked, noisy copy. L1, the hidden pixels weighted 1 and
  the visible ones ``visible_weight``, normalised by the sum of the weights. It keeps local detail in
  the features, which segmentation needs and contrast alone tends to drop.
- **Total** = ``contrastive_weight × NT-Xent + reconstruction_weight × L1``. Defaults 1 and 10: at the
  start NT-Xent is about ``log(2B - 1)`` (≈ 4 for B = 32) and the L1 of [0, 1] images about 0.1-0.3,
  so the two terms start at the same order of magnitude.

Only the backbone (the registry's stages) is kept afterwards, under the architecture's own tensor
names; the projector, the decoder and the architecture's head are discarded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from medtl.errors import MedtlError

if TYPE_CHECKING:
    from medtl.models.registry import Architecture
    from medtl.pretrain.views import Views


@dataclass(frozen=True)
class ObjectiveSettings:
    """Weights and sizes of the objective (see the module docstring)."""

    temperature: float = 0.2
    contrastive_weight: float = 1.0
    reconstruction_weight: float = 10.0
    visible_weight: float = 0.1
    projection_dim: int = 128

    def __post_init__(self) -> None:
        if self.temperature <= 0 or self.projection_dim < 1:
            raise MedtlError("the contrastive temperature and projection size must be positive")
        if min(self.contrastive_weight, self.reconstruction_weight, self.visible_weight) < 0:
            raise MedtlError("objective weights must not be negative")
        if self.contrastive_weight + self.reconstruction_weight <= 0:
            raise MedtlError("at least one of the contrastive and the reconstruction weight must be positive")


def nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over ``[B, D]`` projections: row ``i`` of A is the positive of row ``i`` of B; all other rows are negatives."""
    count = z_a.shape[0]
    z = F.normalize(torch.cat([z_a, z_b]).float(), dim=1)
    similarity = z @ z.T / temperature
    similarity = similarity.masked_fill(torch.eye(2 * count, dtype=torch.bool, device=z.device), float("-inf"))
    partners = torch.cat([torch.arange(count, 2 * count), torch.arange(count)]).to(z.device)
    return F.cross_entropy(similarity, partners)


def masked_l1(reconstruction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, visible_weight: float) -> torch.Tensor:
    """L1 with the hidden pixels (``mask`` 1) weighted 1 and the visible ones ``visible_weight``, normalised."""
    error = (reconstruction.float() - target.float()).abs()
    hidden = (error * mask).sum() / mask.sum().clamp(min=1.0)
    visible = (error * (1 - mask)).sum() / (1 - mask).sum().clamp(min=1.0)
    return (hidden + visible_weight * visible) / (1.0 + visible_weight)


def feature_module_name(model: nn.Module, architecture: Architecture) -> str:
    """The module whose output is the backbone's deepest features: the one holding the deepest stage's parameters."""
    stages = [(name.rsplit(".", 1)[0], architecture.stage_of(name)) for name, _ in model.named_parameters()]
    known = [stage for _, stage in stages if stage is not None]
    if not known:
        raise MedtlError(f"{architecture.name} has no backbone stages to pretrain")
    modules = [module for module, stage in stages if stage == max(known)]
    tokens = [module.split(".") for module in modules]
    common = []
    for parts in zip(*tokens):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    if common:
        return ".".join(common)
    return list(dict.fromkeys(parts[0] for parts in tokens))[-1]  # several top-level modules: the last registered


class _Tapped(Exception):
    """Raised by the feature hook to end the forward pass once the deepest features exist (the head is not needed)."""


class PretrainingNetwork(nn.Module):
    """A registry network's backbone with a projector and a light decoder; see the module docstring.

    ``backbone`` is the whole registry network (so that its state dict keeps the architecture's own
    names); its forward pass is cut short after ``feature_module``. ``crop_size`` is the side of the views.
    """

    def __init__(self, backbone: nn.Module, architecture: Architecture, crop_size: int, projection_dim: int = 128) -> None:
        super().__init__()
        self.backbone = backbone
        self.architecture_name = architecture.name
        self._stage_of = architecture.stage_of
        self.feature_module = feature_module_name(backbone, architecture)
        self._features: torch.Tensor | None = None
        backbone.get_submodule(self.feature_module).register_forward_hook(self._tap)
        channels, side = self._probe(crop_size)
        self.projector = nn.Sequential(nn.Linear(channels, 256), nn.ReLU(inplace=True), nn.Linear(256, projection_dim))
        self.decoder = _light_decoder(channels, side, crop_size)

    def _tap(self, module: nn.Module, inputs: Any, output: Any) -> None:
        self._features = output
        raise _Tapped

    def _probe(self, crop_size: int) -> tuple[int, int]:
        """Channels and side of the deepest features for a ``crop_size`` view (eval mode: BN statistics untouched)."""
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            with torch.no_grad():
                features = self.features(torch.zeros(1, 1, crop_size, crop_size, device=next(self.backbone.parameters()).device))
        finally:
            self.backbone.train(was_training)
        if features.ndim != 4:
            raise MedtlError(f"{self.architecture_name}: its {self.feature_module} output has shape {tuple(features.shape)}, not [B, C, H, W]")
        return int(features.shape[1]), int(features.shape[-1])

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The deepest backbone features ``[B, C, h, w]`` of ``images`` ``[B, 1, S, S]``."""
        self._features = None
        try:
            self.backbone(images)
        except _Tapped:
            pass
        features, self._features = self._features, None
        if features is None:
            raise MedtlError(f"{self.architecture_name}: {self.feature_module} did not run in the forward pass")
        return features

    def forward(self, masked_a: torch.Tensor, view_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z_a, z_b, reconstruction_a)`` for a batch of view pairs (both views through the backbone together)."""
        count = masked_a.shape[0]
        features = self.features(torch.cat([masked_a, view_b]))
        z = self.projector(features.mean(dim=(2, 3)))
        reconstruction = self.decoder(features[:count])
        if reconstruction.shape[-2:] != masked_a.shape[-2:]:
            reconstruction = F.interpolate(reconstruction, size=masked_a.shape[-2:], mode="bilinear", align_corners=False)
        return z[:count], z[count:], reconstruction

    def backbone_state(self) -> dict[str, torch.Tensor]:
        """The backbone's tensors (every registry stage, none of the head) under the architecture's names."""
        return {name: tensor for name, tensor in self.backbone.state_dict().items() if self._stage_of(name) is not None}


def _light_decoder(channels: int, side: int, crop_size: int) -> nn.Sequential:
    """3 × 3 convolutions with ×2 bilinear upsampling from the features' side up to about ``crop_size``; 16-64 channels."""

    def block(inputs: int, outputs: int) -> list[nn.Module]:
        return [nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]

    width = 64
    layers: list[nn.Module] = block(channels, width)
    while side < crop_size:
        narrower = max(16, width // 2)
        layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), *block(width, narrower)]
        width, side = narrower, side * 2
    layers.append(nn.Conv2d(width, 1, 1))
    return nn.Sequential(*layers)


def pretraining_loss(net: nn.Module, views: Views, settings: ObjectiveSettings) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted total (to backpropagate) and its two parts as numbers: ``{"contrastive", "reconstruction"}``."""
    z_a, z_b, reconstruction = net(views.masked_a, views.view_b)
    contrastive = nt_xent(z_a, z_b, settings.temperature)
    restored = masked_l1(reconstruction, views.clean_a, views.mask_a, settings.visible_weight)
    total = settings.contrastive_weight * contrastive + settings.reconstruction_weight * restored
    return total, {"contrastive": float(contrastive.detach()), "reconstruction": float(restored.detach())}

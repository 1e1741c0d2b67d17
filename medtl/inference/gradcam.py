"""Grad-CAM (Selvaraju et al., 2017) on the output of a network's last backbone stage.

The target layer is found from the registry's backbone/head split, so it works for every
classification architecture: the module that holds all parameters of the deepest backbone stage
(ResNet ``layer4``, DenseNet ``features``), or, when that stage is spread over several top-level
modules (EfficientNet ``_conv_head`` + ``_bn1``), the last of them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medtl.errors import MedtlError
from medtl.models.registry import Architecture


def target_layer(model: nn.Module, architecture: Architecture) -> str:
    """The name of the module whose output Grad-CAM weighs: the last backbone stage's output."""
    stages = {name: architecture.stage_of(name) for name, _ in model.named_parameters()}
    backbone = [s for s in stages.values() if s is not None]
    if not backbone:
        raise MedtlError(f"{architecture.name}: no backbone stage found for Grad-CAM")
    last = max(backbone)
    owners = [name.rsplit(".", 1)[0] for name, stage in stages.items() if stage == last]
    common = owners[0].split(".")
    for owner in owners[1:]:
        parts = owner.split(".")
        length = next((i for i, (a, b) in enumerate(zip(common, parts)) if a != b), min(len(common), len(parts)))
        common = common[:length]
    return ".".join(common) if common else owners[-1]


class GradCAM:
    """Class activation maps of ``model`` at module ``layer``: ``ReLU(sum_k mean(dy_c/dA_k) A_k)``."""

    def __init__(self, model: nn.Module, layer: str) -> None:
        self.model = model
        self.module = dict(model.named_modules())[layer]
        self.layer = layer

    def __call__(self, images: torch.Tensor, class_index: torch.Tensor) -> torch.Tensor:
        """Raw maps ``[B, *spatial]`` (>= 0, not normalised) at the images' size for ``class_index`` ``[B]``.

        The hooked activation is cut from the graph as a leaf that requires grad, so only its gradient is
        computed (no parameter gradients); the network continues on a copy, so in-place operations after
        the layer (DenseNet's ReLU) leave the leaf intact.
        """
        captured: list[torch.Tensor] = []

        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> torch.Tensor:
            tracked = output.detach().requires_grad_(True)
            captured.append(tracked)
            return tracked.clone()

        handle = self.module.register_forward_hook(hook)
        try:
            with torch.enable_grad():
                logits = self.model(images)
                if not captured:
                    raise MedtlError(f"Grad-CAM: layer {self.layer} was not used by the forward pass")
                activation = captured[-1]
                score = logits.gather(1, class_index.to(logits.device)[:, None]).sum()
                (gradient,) = torch.autograd.grad(score, activation)
        finally:
            handle.remove()
        weights = gradient.mean(dim=tuple(range(2, gradient.ndim)), keepdim=True)
        cam = F.relu((weights * activation.detach()).sum(dim=1, keepdim=True))
        mode = "bilinear" if cam.ndim == 4 else "trilinear"
        return F.interpolate(cam, size=images.shape[2:], mode=mode, align_corners=False)[:, 0]


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Min-max scaled to [0, 1] over the whole tensor (all zeros when it is constant)."""
    low, high = maps.min(), maps.max()
    return (maps - low) / (high - low) if high > low else torch.zeros_like(maps)

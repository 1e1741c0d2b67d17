"""Uncertainty by sampling: test-time flips (TTA) or Monte Carlo dropout, summarised by predictive entropy.

Both draw several softmax outputs for one input batch, stacked ``[S, B, C, *spatial]``. TTA uses
the identity and a flip along each spatial axis (flipped back before stacking), so it is only valid
for models trained with flip augmentation; MC dropout keeps dropout active (BatchNorm stays in
evaluation mode) and needs a model with dropout.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from medtl.errors import MedtlError
from medtl.inference.prediction import UNCERTAINTY_METHODS as METHODS

MC_SAMPLES = 8

Forward = Callable[[torch.Tensor], torch.Tensor]


def flip_samples(forward: Forward, images: torch.Tensor, spatial_output: bool) -> torch.Tensor:
    """Softmax outputs of ``images`` and of each single-axis flip; maps flipped back when ``spatial_output``."""
    samples = [forward(images)]
    for axis in range(2, images.ndim):
        out = forward(torch.flip(images, dims=(axis,)))
        samples.append(torch.flip(out, dims=(axis,)) if spatial_output else out)
    return torch.stack(samples)


def dropout_modules(model: nn.Module, name: str) -> list[nn.Module]:
    """The dropout layers of ``model`` (called ``name`` in the error) with p > 0; MedtlError when there are none."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]
    if not layers:
        raise MedtlError(f"{name} has no dropout layers, so MC dropout cannot estimate uncertainty; use test-time augmentation (tta)")
    return layers


def dropout_samples(model: nn.Module, forward: Forward, images: torch.Tensor, samples: int = MC_SAMPLES) -> torch.Tensor:
    """``samples`` softmax outputs with the model's dropout layers active; the model is left in eval mode."""
    for layer in dropout_modules(model, type(model).__name__):
        layer.train()
    try:
        return torch.stack([forward(images) for _ in range(samples)])
    finally:
        model.eval()


def normalised_entropy(probabilities: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Predictive entropy over ``dim`` divided by log(classes): 0 certain, 1 uniform."""
    classes = probabilities.shape[dim]
    entropy = -(probabilities * torch.log(probabilities.clamp_min(1e-12))).sum(dim=dim)
    return entropy / math.log(classes) if classes > 1 else torch.zeros_like(entropy)

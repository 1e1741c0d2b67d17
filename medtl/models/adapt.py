"""Fitting pretrained tensors into a model, and telling the user exactly what happened.

Names are matched after stripping the wrapper prefix that fits best (``module.``, ``model.``, ...)
and after the architecture's layout renaming (torchvision, Cadene, lukemelas → MONAI). A tensor
whose shape differs is adapted when that keeps its meaning, otherwise dropped with the reason:

- input channels (first convolution): for M source and N target channels every target channel
  gets the sum over source channels divided by N, so a grey image (all channels equal) gives the
  same response: RGB → 1 channel sums, 1 → 3 repeats and divides by 3;
- 2D → 3D inflation (I3D): the 2D kernel repeated along depth and divided by the depth, so a
  volume constant along depth gives the 2D response;
- a 1×1 convolution ↔ a linear layer (same numbers, other shape).

Nothing is dropped silently, and weights that fit less than half of the backbone are refused.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from medtl.errors import MedtlError

if TYPE_CHECKING:
    import torch

    from medtl.models.registry import Architecture

MIN_BACKBONE_FRACTION = 0.5


@dataclass
class LoadReport:
    """What loading weights into a model did. Tensor names are the model's (dropped: the source's)."""

    source: str
    loaded: list[str] = field(default_factory=list)
    adapted: dict[str, str] = field(default_factory=dict)
    new: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    backbone_fraction: float = 0.0
    """Fraction of the backbone's parameter values that came from the source."""
    arch_params: dict[str, Any] = field(default_factory=dict)
    """Constructor arguments the model was built with (set by ``build_model``)."""
    licence: str | None = None
    """The source weights' licence (set by ``build_model``; ``None`` for random initialisation)."""

    def summary(self) -> str:
        """One line for a log or a status bar."""
        if not self.loaded:
            return f"{self.source}: all {len(self.new)} tensors randomly initialised"
        adapted = f", {len(self.adapted)} adapted" if self.adapted else ""
        return (
            f"{self.source}: loaded {len(self.loaded)} tensors{adapted}, {len(self.new)} new (random), "
            f"{len(self.dropped)} dropped; {self.backbone_fraction:.0%} of the backbone pretrained"
        )


def _common_prefix(source: list[str], target: set[str], rename: Callable[[str], str]) -> str:
    """The key prefix (one shared by at least a tenth of the keys) whose removal matches the most target names."""
    shared: Counter[str] = Counter()
    for key in source:
        parts = key.split(".")
        shared.update(".".join(parts[:i]) + "." for i in range(1, min(len(parts), 4)))
    candidates = [""] + [prefix for prefix, count in shared.items() if count * 10 >= len(source)]

    def matches(prefix: str) -> int:
        return sum(1 for key in source if key.startswith(prefix) and rename(key[len(prefix) :]) in target)

    return max(sorted(candidates, key=len), key=matches)


def normalise_keys(state_dict: Mapping[str, torch.Tensor], model: torch.nn.Module, architecture: Architecture) -> dict[str, tuple[str, torch.Tensor]]:
    """Model name → (source name, tensor), after prefix stripping and the architecture's renaming."""
    rename = architecture.renamer(model) if architecture.renamer else (lambda key: key)
    target = set(model.state_dict())
    prefix = _common_prefix(list(state_dict), target, rename)
    return {
        (rename(key[len(prefix) :]) if key.startswith(prefix) else key): (key, tensor)
        for key, tensor in state_dict.items()
    }


def adapt_in_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A convolution weight (out, in, *kernel) for ``channels`` inputs that keeps the response to grey input."""
    total = weight.sum(dim=1, keepdim=True)
    return (total / channels).expand(-1, channels, *weight.shape[2:]).clone()


def inflate(weight: torch.Tensor, depth: int) -> torch.Tensor:
    """A 2D kernel (out, in, h, w) as a 3D one (out, in, depth, h, w) that keeps the response to depth-constant input."""
    return weight.unsqueeze(2).repeat(1, 1, depth, 1, 1) / depth


def _is_linear_pair(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Whether one shape is a linear weight (out, in) and the other a 1×1 convolution (out, in, 1, ...)."""
    linear, conv = sorted((a, b), key=len)
    return len(linear) == 2 and len(conv) > 2 and conv[:2] == linear and math.prod(conv[2:]) == 1


def fit_tensor(source: torch.Tensor, shape: tuple[int, ...], in_channels: int) -> tuple[torch.Tensor, str]:
    """``source`` made to ``shape`` and a note of how; a ValueError with the reason when it can't be."""
    tensor, notes = source, []
    if _is_linear_pair(tuple(tensor.shape), shape):
        return tensor.reshape(shape), "reshaped (1×1 convolution ↔ linear)"
    if tensor.ndim == 4 and len(shape) == 5 and tensor.shape[0] == shape[0] and tuple(tensor.shape[2:]) == shape[3:]:
        tensor = inflate(tensor, shape[2])
        notes.append(f"inflated 2D → 3D (depth {shape[2]})")
    if (
        tensor.ndim == len(shape) >= 3
        and tensor.shape[1] != shape[1] == in_channels
        and tensor.shape[0] == shape[0]
        and tuple(tensor.shape[2:]) == shape[2:]
    ):
        notes.append(f"input channels {tensor.shape[1]} → {shape[1]}")
        tensor = adapt_in_channels(tensor, shape[1])
    if tuple(tensor.shape) != shape:
        raise ValueError(f"shape {tuple(source.shape)} does not fit {shape}")
    return tensor, ", ".join(notes)


def load_weights(
    model: torch.nn.Module,
    architecture: Architecture,
    state_dict: Mapping[str, torch.Tensor],
    in_channels: int,
    source: str,
) -> LoadReport:
    """Copy what fits of ``state_dict`` into ``model`` (in place) and report; MedtlError when the backbone hardly fits."""
    import torch

    target = model.state_dict()
    result = LoadReport(source)
    with torch.no_grad():
        for name, (source_name, tensor) in normalise_keys(state_dict, model, architecture).items():
            if name not in target:
                result.dropped[source_name] = "not in this model"
                continue
            try:
                fitted, note = fit_tensor(tensor, tuple(target[name].shape), in_channels)
            except ValueError as error:
                head = architecture.stage_of(name) is None
                result.dropped[source_name] = f"{error}{' (new head: re-initialised)' if head else ''}"
                continue
            target[name].copy_(fitted)
            result.loaded.append(name)
            if note:
                result.adapted[name] = note
    loaded = set(result.loaded)
    result.new = [name for name in target if name not in loaded]
    backbone = {name: p.numel() for name, p in model.named_parameters() if architecture.stage_of(name) is not None}
    total = sum(backbone.values())
    result.backbone_fraction = sum(n for name, n in backbone.items() if name in loaded) / total if total else 0.0
    if result.backbone_fraction < MIN_BACKBONE_FRACTION:
        examples = "; ".join(f"{k}: {v}" for k, v in list(result.dropped.items())[:3]) or "no tensor names in common"
        raise MedtlError(
            f"{source}: these weights do not fit {architecture.name} ({result.backbone_fraction:.0%} of its backbone "
            f"could be loaded; e.g. {examples}). Choose the architecture the weights were trained for, or no weights."
        )
    return result


def random_init_report(model: torch.nn.Module) -> LoadReport:
    """The report for a model built without pretrained weights."""
    return LoadReport("random initialisation", new=list(model.state_dict()))

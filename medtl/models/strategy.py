"""Freezing strategies: which parts of a pretrained network train, and at which learning rate.

- ``linear_probe``: the backbone is frozen (its batch-norm statistics too); only the head trains.
- ``last_k`` (``k``, ``backbone_lr_factor`` 1.0): the head and the ``k`` deepest backbone stages train.
- ``full`` (``backbone_lr_factor`` 0.1): everything trains, the backbone at ``lr × backbone_lr_factor``.
- ``gradual`` (``every`` 2, ``backbone_lr_factor`` 0.1): the head trains first; every ``every`` epochs
  the next deeper-to-shallower backbone stage is unfrozen (ULMFiT-style gradual unfreezing).

The trainer builds its optimizer once from :func:`param_groups` and calls :func:`epoch_hook` at the
start of every epoch (0-based). Frozen backbone stages keep their normalisation layers in eval mode
even while the model is in training mode, so their running statistics don't drift.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from medtl.models.registry import get_architecture, stages_of

if TYPE_CHECKING:
    import torch

    from medtl.models.spec import ModelSpec

STRATEGIES: dict[str, dict[str, int | float]] = {
    "linear_probe": {},
    "last_k": {"k": 1, "backbone_lr_factor": 1.0},
    "full": {"backbone_lr_factor": 0.1},
    "gradual": {"every": 2, "backbone_lr_factor": 0.1},
}
"""Strategy name → its parameters with their defaults."""
PARAM_MINIMA = {"every": 1}
"""Parameters whose smallest valid value is not 0."""

_PINNED: weakref.WeakKeyDictionary[torch.nn.Module, Any] = weakref.WeakKeyDictionary()


def _settings(spec: ModelSpec) -> dict[str, int | float]:
    return {**STRATEGIES[spec.strategy], **spec.strategy_params}


def trainable_stages(spec: ModelSpec, stages: list[int], epoch: int) -> list[int]:
    """The backbone stages ``spec``'s strategy trains at ``epoch`` (the head always trains)."""
    settings = _settings(spec)
    count = {
        "linear_probe": 0,
        "last_k": int(settings.get("k", 0)),
        "full": len(stages),
        "gradual": epoch // int(settings.get("every", 1)),
    }[spec.strategy]
    return stages[len(stages) - min(count, len(stages)) :]


def _keep_eval(module: torch.nn.Module, _inputs: Any) -> None:
    module.train(False)


def _apply(model: torch.nn.Module, spec: ModelSpec, epoch: int) -> tuple[list[int], list[int], bool]:
    """Set ``requires_grad`` and pin frozen norms for ``epoch``; (all stages, trainable stages, whether anything changed)."""
    architecture = get_architecture(spec.architecture)
    stages = stages_of(architecture, model)
    training = set(trainable_stages(spec, stages, epoch))
    changed = False
    for name, parameter in model.named_parameters():
        stage = architecture.stage_of(name)
        wanted = stage is None or stage in training
        if parameter.requires_grad != wanted:
            parameter.requires_grad_(wanted)
            changed = True
    for name, module in model.named_modules():
        if getattr(module, "running_mean", None) is None:
            continue
        stage = architecture.stage_of(f"{name}.running_mean")
        frozen = stage is not None and stage not in training
        if frozen and module not in _PINNED:
            _PINNED[module] = module.register_forward_pre_hook(_keep_eval)
            module.train(False)
        elif not frozen and module in _PINNED:
            _PINNED.pop(module).remove()
            module.train(model.training)
    return stages, sorted(training), changed


def param_groups(model: torch.nn.Module, spec: ModelSpec, base_lr: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups (``params``, ``lr``, ``name``) for ``spec``'s strategy, freezing as it says.

    The head trains at ``base_lr``, backbone stages at ``base_lr × backbone_lr_factor``. Parameters the
    strategy never trains are left out; for ``gradual`` every stage is included from the start, since
    torch optimizers skip parameters without gradients until :func:`epoch_hook` unfreezes them.
    """
    stages, training, _ = _apply(model, spec, 0)
    architecture = get_architecture(spec.architecture)
    backbone_lr = base_lr * float(_settings(spec).get("backbone_lr_factor", 1.0))
    by_stage: dict[int | None, list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        by_stage.setdefault(architecture.stage_of(name), []).append(parameter)
    groups = [{"params": by_stage.get(None, []), "lr": base_lr, "name": "head"}]
    included = stages if spec.strategy == "gradual" else training
    groups += [{"params": by_stage[stage], "lr": backbone_lr, "name": f"backbone stage {stage}"} for stage in included]
    return [group for group in groups if group["params"]]


def epoch_hook(model: torch.nn.Module, spec: ModelSpec, epoch: int) -> str | None:
    """Apply the strategy at the start of ``epoch`` (0-based); a message at epoch 0 and whenever something changed."""
    stages, training, changed = _apply(model, spec, epoch)
    if not changed and epoch > 0:
        return None
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if not training:
        what = "backbone frozen, training the head"
    elif len(training) == len(stages):
        what = "training the whole network"
    else:
        what = f"training the head and the last {len(training)} of {len(stages)} backbone stages"
    return f"epoch {epoch + 1}: {spec.strategy}: {what} ({trainable:,} trainable parameters)"

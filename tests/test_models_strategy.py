"""Strategies freeze exactly what they claim, keep frozen batch norms in eval, and unfreeze gradually deepest-first."""

from __future__ import annotations

import pytest
import torch

from medtl.models.registry import ARCHITECTURES
from medtl.models.spec import ModelSpec, build_model
from medtl.models.strategy import epoch_hook, param_groups

RESNET = ARCHITECTURES["resnet18"]


def make(strategy: str, **params: float) -> tuple[torch.nn.Module, ModelSpec]:
    spec = ModelSpec("classification", "resnet18", 2, 1, 2, None, strategy, params, {"widen_factor": 0.25})
    return build_model(spec)[0], spec


def counts(model: torch.nn.Module) -> dict[int | None, tuple[int, int]]:
    """Stage → (trainable tensors, tensors)."""
    result: dict[int | None, tuple[int, int]] = {}
    for name, parameter in model.named_parameters():
        trainable, total = result.get(RESNET.stage_of(name), (0, 0))
        result[RESNET.stage_of(name)] = (trainable + parameter.requires_grad, total + 1)
    return result


def trainable_stages(model: torch.nn.Module) -> list[int | None]:
    return [stage for stage, (trainable, total) in counts(model).items() if trainable == total]


def test_linear_probe_trains_only_the_head_with_batch_norm_frozen() -> None:
    model, spec = make("linear_probe")
    groups = param_groups(model, spec, 1e-3)
    assert [g["name"] for g in groups] == ["head"] and len(groups[0]["params"]) == 2
    assert {stage: trainable for stage, (trainable, _) in counts(model).items()} == {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, None: 2}
    model.train()
    before = model.bn1.running_mean.clone()
    model(torch.randn(4, 1, 64, 64) * 5 + 3)
    torch.testing.assert_close(model.bn1.running_mean, before)
    assert not model.layer4[1].bn2.training


def test_last_k_trains_the_deepest_stages() -> None:
    model, spec = make("last_k", k=2)
    groups = param_groups(model, spec, 1e-3)
    assert trainable_stages(model) == [3, 4, None]
    assert [g["name"] for g in groups] == ["head", "backbone stage 3", "backbone stage 4"]
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters())
    model.train()
    model(torch.randn(2, 1, 64, 64))
    assert model.layer4[0].bn1.training and not model.layer2[0].bn1.training


def test_full_trains_everything_with_a_slower_backbone() -> None:
    model, spec = make("full")
    groups = param_groups(model, spec, 1e-3)
    assert all(p.requires_grad for p in model.parameters())
    assert {g["name"]: g["lr"] for g in groups} == {"head": 1e-3, **{f"backbone stage {s}": pytest.approx(1e-4) for s in range(5)}}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_gradual_unfreezes_one_stage_every_e_epochs_deepest_first() -> None:
    model, spec = make("gradual", every=2)
    groups = param_groups(model, spec, 1e-3)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters())), "every stage is in the optimizer"
    seen = []
    for epoch in range(12):
        message = epoch_hook(model, spec, epoch)
        seen.append((epoch, trainable_stages(model), message is not None))
    assert seen == [
        (0, [None], True), (1, [None], False),
        (2, [4, None], True), (3, [4, None], False),
        (4, [3, 4, None], True), (5, [3, 4, None], False),
        (6, [2, 3, 4, None], True), (7, [2, 3, 4, None], False),
        (8, [1, 2, 3, 4, None], True), (9, [1, 2, 3, 4, None], False),
        (10, [0, 1, 2, 3, 4, None], True), (11, [0, 1, 2, 3, 4, None], False),
    ]


def test_gradual_leaves_frozen_stages_untouched_by_the_optimizer() -> None:
    model, spec = make("gradual", every=1)
    optimizer = torch.optim.AdamW(param_groups(model, spec, 1e-2), weight_decay=0.1)
    frozen_before = model.layer1[0].conv1.weight.clone()
    epoch_hook(model, spec, 1)  # unfreezes stage 4 only
    deep_before = model.layer4[0].conv1.weight.clone()
    model.train()
    model(torch.randn(4, 1, 64, 64)).sum().backward()
    optimizer.step()
    torch.testing.assert_close(model.layer1[0].conv1.weight, frozen_before)
    assert not torch.equal(model.layer4[0].conv1.weight, deep_before)


def test_epoch_hook_messages() -> None:
    model, spec = make("last_k", k=1)
    assert epoch_hook(model, spec, 0).startswith("epoch 1: last_k: training the head and the last 1 of 5 backbone stages")
    assert epoch_hook(model, spec, 1) is None
    model, spec = make("linear_probe")
    assert "backbone frozen, training the head" in epoch_hook(model, spec, 0)

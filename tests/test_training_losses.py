"""The segmentation losses: the masked Dice + cross-entropy of sparse labels."""

from __future__ import annotations

import pytest
import torch

from medtl.training.losses import MaskedDiceCELoss
from medtl.workflow.defaults import segmentation_loss

IGNORE = 3


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 8, 8, generator=generator)
    labels = torch.randint(0, 3, (2, 1, 8, 8), generator=generator)
    return logits, labels


def test_without_ignored_voxels_it_is_monais_batch_dice_ce() -> None:
    logits, labels = batch()
    reference = segmentation_loss()(logits, labels)
    assert float(MaskedDiceCELoss(IGNORE)(logits, labels)) == pytest.approx(float(reference), rel=1e-6)
    assert isinstance(segmentation_loss(IGNORE), MaskedDiceCELoss)


def test_ignored_voxels_change_neither_the_loss_nor_the_gradient() -> None:
    logits, labels = batch()
    labels[:, :, :, 5:] = IGNORE
    loss = MaskedDiceCELoss(IGNORE)
    first = logits.clone().requires_grad_(True)
    graph = loss(first, labels)
    graph.backward()
    value = graph.detach()
    assert first.grad is not None and float(first.grad[..., 5:].abs().max()) == 0.0
    changed = logits.clone()
    changed[..., 5:] = torch.randn(2, 3, 8, 3) * 10  # whatever the network says where nobody annotated
    assert float(loss(changed, labels)) == pytest.approx(float(value), rel=1e-6)
    as_background = labels.masked_fill(labels == IGNORE, 0)
    assert float(loss(logits, as_background)) != pytest.approx(float(value), rel=1e-3)  # counting them as background would differ
    assert float(value) == pytest.approx(float(segmentation_loss()(logits[..., :5], labels[..., :5])), rel=1e-6)  # = the annotated part alone


def test_a_batch_with_nothing_annotated_costs_nothing() -> None:
    logits, labels = batch()
    logits.requires_grad_(True)
    value = MaskedDiceCELoss(IGNORE)(logits, torch.full_like(labels, IGNORE))
    value.backward()
    assert float(value.detach()) == pytest.approx(0.0) and float(logits.grad.abs().max()) == 0.0

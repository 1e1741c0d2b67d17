"""Default losses: class-weighted cross-entropy for classification, Dice + cross-entropy for segmentation, and
Dice + cross-entropy over annotated voxels only for sparse masks (:class:`MaskedDiceCELoss`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch import nn


def default_loss(task: str, class_weights: Sequence[float] | None = None) -> nn.Module:
    """``CrossEntropyLoss`` (logits [B, C], class indices [B]) or MONAI ``DiceCELoss`` (logits [B, C, ...], masks [B, 1, ...])."""
    weight = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
    if task == "classification":
        return nn.CrossEntropyLoss(weight=weight)
    from monai.losses import DiceCELoss

    return DiceCELoss(to_onehot_y=True, softmax=True, weight=weight)


class MaskedDiceCELoss(nn.Module):
    """MONAI's ``DiceCELoss(to_onehot_y=True, softmax=True, batch=True)`` over the annotated voxels only.

    Logits ``[B, C, ...]``, masks ``[B, 1, ...]`` holding label values 0..C-1, or ``ignore_label`` where nobody
    annotated: those voxels are left out of the cross-entropy's mean and of the Dice's sums (of the predicted
    probabilities, of the one-hot target and of their product), so they count neither as background nor as
    anything else. The Dice is over the whole batch, per channel (background included), averaged over
    channels, with MONAI's smoothing terms; on a batch without ignored voxels the value is MONAI's.
    """

    def __init__(self, ignore_label: int, smooth: float = 1e-5) -> None:
        super().__init__()
        self.ignore_label, self.smooth = ignore_label, smooth

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        values = labels[:, 0].long()
        annotated = values != self.ignore_label
        target = values.masked_fill(~annotated, 0)
        weight = annotated.to(logits.dtype)
        cross_entropy = (nn.functional.cross_entropy(logits, target, reduction="none") * weight).sum() / weight.sum().clamp_min(1.0)
        probabilities = torch.softmax(logits, dim=1) * weight[:, None]
        one_hot = nn.functional.one_hot(target, logits.shape[1]).movedim(-1, 1).to(logits.dtype) * weight[:, None]
        dims = [0, *range(2, logits.ndim)]
        intersection = (probabilities * one_hot).sum(dims)
        sizes = probabilities.sum(dims) + one_hot.sum(dims)
        dice = 1.0 - (2.0 * intersection + self.smooth) / (sizes + self.smooth)
        return dice.mean() + cross_entropy


def balanced_class_weights(labels: Iterable[int], num_classes: int) -> tuple[float, ...]:
    """``n / (num_classes * count_c)`` per class (scikit-learn's "balanced"); 1.0 for a class with no example."""
    counts = Counter(int(label) for label in labels)
    total = sum(counts.values())
    return tuple(total / (num_classes * counts[c]) if counts[c] else 1.0 for c in range(num_classes))

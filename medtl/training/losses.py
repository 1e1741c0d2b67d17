"""Default losses: class-weighted cross-entropy for classification, Dice + cross-entropy for segmentation."""

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


def balanced_class_weights(labels: Iterable[int], num_classes: int) -> tuple[float, ...]:
    """``n / (num_classes * count_c)`` per class (scikit-learn's "balanced"); 1.0 for a class with no example."""
    counts = Counter(int(label) for label in labels)
    total = sum(counts.values())
    return tuple(total / (num_classes * counts[c]) if counts[c] else 1.0 for c in range(num_classes))

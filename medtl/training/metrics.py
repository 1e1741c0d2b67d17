"""Validation metrics for classification and segmentation, accumulated over batches (and DDP ranks).

Classification: ``accuracy``, ``balanced_accuracy`` (mean recall over the classes present),
``auc`` (one-vs-rest, macro over the classes present, MONAI ``compute_roc_auc``) and
``confusion_matrix`` (rows: true class, columns: predicted class).
Segmentation, one case per batch (a whole image, or the annotated slices of one volume for a 2D
network): ``dice_<label>`` per foreground label and ``mean_dice`` (background excluded; a case's Dice
pools all its slices), and ``hd95_mm`` / ``hd95_mm_<label>`` (MONAI ``HausdorffDistanceMetric``, 95th
percentile, per image or slice, averaged over a case's slices) in millimetres when the labels are MONAI
``MetaTensor``s carrying an affine, ``hd95_voxels`` / ``hd95_voxels_<label>`` otherwise. Voxels holding
the ``ignore_label`` (nobody annotated them) count nowhere: neither predicted nor true, of any label.
Undefined values (a label absent from every case) are ``None``; a case's Dice for a label its annotated
voxels do not hold is undefined, as in MONAI's ``DiceMetric``.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch

PRIMARY_METRIC = {"classification": "balanced_accuracy", "segmentation": "mean_dice"}

Gather = Callable[[Any], list[Any]]


def primary_metric(task: str) -> str:
    """The metric (higher is better) that selects the best model and drives early stopping."""
    return PRIMARY_METRIC[task]


def _value(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def classification_metrics(probabilities: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """Metrics of ``probabilities`` [N, C] (softmax outputs) against class indices ``labels`` [N]."""
    from monai.metrics import compute_roc_auc

    num_classes = probabilities.shape[1]
    labels = labels.long().view(-1)
    predicted = probabilities.argmax(dim=1)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    support = confusion.sum(dim=1)
    present = support > 0
    recall = confusion.diag()[present].double() / support[present]
    one_hot = torch.nn.functional.one_hot(labels, num_classes)
    with warnings.catch_warnings():  # classes absent from the labels give NaN, skipped below
        warnings.simplefilter("ignore")
        per_class_auc = np.asarray(compute_roc_auc(probabilities.double(), one_hot, average="none"), dtype=float)
    return {
        "accuracy": float(confusion.diag().sum()) / max(1, len(labels)),
        "balanced_accuracy": float(recall.mean()) if len(recall) else None,
        "auc": _value(_nanmean(per_class_auc)),
        "confusion_matrix": confusion.tolist(),
    }


def label_spacing(labels: torch.Tensor) -> list[list[float]] | None:
    """Per-case voxel spacing (mm) of batched label MetaTensors from their affines; ``None`` for plain tensors."""
    from monai.data import MetaTensor

    if not isinstance(labels, MetaTensor):
        return None
    spatial = labels.ndim - 2
    affine = labels.affine.double()
    if affine.ndim == 2:
        affine = affine.expand(labels.shape[0], -1, -1)
    return torch.linalg.vector_norm(affine[:, :spatial, :spatial], dim=1).tolist()


def segmentation_case_scores(
    logits: torch.Tensor, labels: torch.Tensor, spacing: list[list[float]] | None, ignore_label: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dice and HD95 of one case per foreground label, each [1, C-1], of ``logits`` [N, C, ...] against masks [N, 1, ...]:
    its N slices (or its one image), voxels holding ``ignore_label`` left out."""
    from monai.metrics import HausdorffDistanceMetric

    num_classes = logits.shape[1]
    values = labels[:, 0].long().as_subclass(torch.Tensor)
    annotated = (values != ignore_label) if ignore_label is not None else torch.ones_like(values, dtype=torch.bool)
    inside = annotated[:, None].to(torch.uint8)  # one byte a voxel: a case may be hundreds of slices
    predicted = torch.nn.functional.one_hot(logits.argmax(dim=1).as_subclass(torch.Tensor), num_classes).movedim(-1, 1).to(torch.uint8) * inside
    truth = torch.nn.functional.one_hot(values.masked_fill(~annotated, 0), num_classes).movedim(-1, 1).to(torch.uint8) * inside
    dims = [0, *range(2, predicted.ndim)]
    true_sizes = truth.sum(dims)[1:].double()
    sizes = predicted.sum(dims)[1:].double() + true_sizes
    overlap = (predicted * truth).sum(dims)[1:].double()
    dice = torch.where(true_sizes > 0, 2 * overlap / sizes.clamp_min(1), torch.full_like(sizes, float("nan")))
    with warnings.catch_warnings():  # empty prediction or truth gives NaN/inf, which the means skip
        warnings.simplefilter("ignore")
        per_item = cast(torch.Tensor, HausdorffDistanceMetric(include_background=False, percentile=95, reduction="none")(predicted, truth, spacing=spacing))
    hd95 = torch.from_numpy(np.array([_nanmean(column) for column in per_item.double().cpu().numpy().T]))
    return dice[None].float().cpu(), hd95[None].float()


def segmentation_metrics(dice: torch.Tensor, hd95: torch.Tensor, in_mm: bool) -> dict[str, Any]:
    """Per-label and mean Dice and HD95 from per-case scores [N, C-1] (label ``i`` is column ``i-1``)."""
    unit = "mm" if in_mm else "voxels"
    per_label_dice = [_nanmean(column) for column in dice.numpy().T]
    per_label_hd = [_nanmean(column) for column in hd95.numpy().T]
    result: dict[str, Any] = {"mean_dice": _value(_nanmean(np.asarray(per_label_dice))), f"hd95_{unit}": _value(_nanmean(np.asarray(per_label_hd)))}
    for label, (d, h) in enumerate(zip(per_label_dice, per_label_hd, strict=True), start=1):
        result[f"dice_{label}"] = _value(d)
        result[f"hd95_{unit}_{label}"] = _value(h)
    return result


class MetricAccumulator:
    """Collects per-sample results batch by batch (segmentation: one case a batch); :meth:`compute` merges them
    across DDP ranks via ``gather``. Segmentation masks holding ``ignore_label`` are scored on their annotated voxels."""

    def __init__(self, task: str, ignore_label: int | None = None) -> None:
        self.task, self.ignore_label = task, ignore_label
        self._parts: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._spacing_known: bool | None = None

    def update(self, logits: torch.Tensor, labels: torch.Tensor, spacing: list[list[float]] | None = None) -> None:
        """Add a batch: ``logits`` [B, C, ...] and labels as the loader gives them (spacing in mm per item, if known);
        for segmentation the batch is one case (its image, or its slices)."""
        logits = logits.detach().float()
        if self.task == "classification":
            self._parts["probabilities"].append(torch.softmax(logits, dim=1).cpu())
            self._parts["labels"].append(labels.detach().view(-1).long().cpu())
            return
        if self._spacing_known is None:
            self._spacing_known = spacing is not None
        elif self._spacing_known != (spacing is not None):
            raise ValueError("some validation batches carry voxel spacing and others do not; HD95 units would mix")
        dice, hd95 = segmentation_case_scores(logits, labels.detach(), spacing, self.ignore_label)
        self._parts["dice"].append(dice)
        self._parts["hd95"].append(hd95)

    def compute(self, gather: Gather | None = None, keep: int | None = None) -> dict[str, Any]:
        """Metrics over every rank's samples; ``keep`` drops this rank's samples after the first ``keep`` (padding)."""
        local = {name: torch.cat(parts)[:keep] for name, parts in self._parts.items()}
        shards = gather((local, self._spacing_known)) if gather else [(local, self._spacing_known)]
        merged = {name: torch.cat([shard[name] for shard, _ in shards]) for name in local}
        if self.task == "classification":
            return classification_metrics(merged["probabilities"], merged["labels"])
        return segmentation_metrics(merged["dice"], merged["hd95"], in_mm=bool(shards[0][1]))

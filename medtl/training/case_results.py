"""Per-case results: the best model of a run on each of its validation cases (which case failed, and how badly).

:func:`evaluate_cases` runs a model over the validation loader with the preprocessing and the metrics
of validation (:mod:`medtl.training.metrics`), so the table holds the figures that the run's
validation metric summarises:

- segmentation: Dice and HD95 per case and foreground label, HD95 in mm (the loader's masks carry
  their affine; in voxels otherwise); ``None`` where a figure is undefined (a label absent from both
  the mask and the prediction; for HD95 also when either is empty);
- classification: per case the true class, the class probabilities and the predicted class; over the
  cases the confusion matrix (rows: true class, columns: predicted class), the ROC curve of each class
  against the others (with two classes only the second class's) with its AUC, and the macro AUC that
  validation reports.

Each case names its image file (and mask), so that the app can open it. :class:`CaseResults` is the
typed table (columns, rows, sorting) and is what the run folder writes as ``case_results.json`` and
``case_results.csv`` (:meth:`~medtl.training.run_folder.RunFolder.write_case_results`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from medtl.progress import CancelToken

if TYPE_CHECKING:
    import torch
    from torch.utils.data import DataLoader

    from medtl.training.config import TrainConfig


@dataclass(frozen=True)
class SegmentationCase:
    """One validation image: Dice and HD95 per foreground label name (``None``: undefined)."""

    image: Path
    mask: Path
    dice: dict[str, float | None]
    hd95: dict[str, float | None]


@dataclass(frozen=True)
class ClassificationCase:
    """One validation image: its true class, the model's probability of each class, and the class it predicts."""

    image: Path
    true_class: str
    probabilities: dict[str, float]
    predicted: str

    @property
    def correct(self) -> bool:
        return self.predicted == self.true_class


Case: TypeAlias = SegmentationCase | ClassificationCase


@dataclass(frozen=True)
class RocCurve:
    """The ROC curve of ``positive_class`` against the other classes, from (0, 0) to (1, 1).

    Point ``i`` counts a case as positive when its probability of ``positive_class`` is at least
    ``thresholds[i]`` (the first threshold is infinite: no case is positive; JSON writes it as ``null``).
    """

    positive_class: str
    false_positive_rate: tuple[float, ...]
    true_positive_rate: tuple[float, ...]
    thresholds: tuple[float, ...]
    auc: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "positive_class": self.positive_class, "false_positive_rate": list(self.false_positive_rate),
            "true_positive_rate": list(self.true_positive_rate), "thresholds": list(self.thresholds), "auc": self.auc,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RocCurve:
        thresholds = tuple(math.inf if t is None else float(t) for t in data["thresholds"])
        return cls(str(data["positive_class"]), tuple(map(float, data["false_positive_rate"])), tuple(map(float, data["true_positive_rate"])), thresholds, float(data["auc"]))


def roc_curve(scores: Sequence[float], positive: Sequence[bool], positive_class: str) -> RocCurve | None:
    """The ROC curve of ``scores`` for cases that are ``positive`` or not, with its AUC (trapezoids; tied
    scores make one diagonal step); ``None`` when the cases are all positive or all negative."""
    positives = sum(bool(p) for p in positive)
    negatives = len(positive) - positives
    if positives == 0 or negatives == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    fpr, tpr, thresholds = [0.0], [0.0], [math.inf]
    true_pos = false_pos = 0
    for rank, index in enumerate(order):
        if positive[index]:
            true_pos += 1
        else:
            false_pos += 1
        if rank + 1 == len(order) or scores[order[rank + 1]] != scores[index]:
            fpr.append(false_pos / negatives)
            tpr.append(true_pos / positives)
            thresholds.append(float(scores[index]))
    auc = sum((fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2 for i in range(1, len(fpr)))
    return RocCurve(positive_class, tuple(fpr), tuple(tpr), tuple(thresholds), auc)


@dataclass(frozen=True)
class CaseResults:
    """A run's results per validation case, as a table (:meth:`columns`, :meth:`row`, :meth:`sorted_by`).

    ``names`` are the foreground label names (segmentation) or the class names (classification), in
    the model's output order; ``distance_unit`` is HD95's (``"mm"`` or ``"voxels"``). The classification
    summaries (``confusion_matrix``, ``roc``, ``auc``) are empty for segmentation.
    """

    task: str
    names: tuple[str, ...]
    cases: tuple[Case, ...]
    distance_unit: str = "mm"
    confusion_matrix: tuple[tuple[int, ...], ...] = ()
    roc: tuple[RocCurve, ...] = ()
    auc: float | None = None

    def columns(self) -> tuple[str, ...]:
        """The table's column names: ``image``, ``mask``, ``dice_<label>``…, ``hd95_<unit>_<label>``… (segmentation) or
        ``image``, ``true_class``, ``predicted``, ``correct``, ``p_<class>``… (classification)."""
        if self.task == "segmentation":
            return ("image", "mask", *(f"dice_{name}" for name in self.names), *(f"hd95_{self.distance_unit}_{name}" for name in self.names))
        return ("image", "true_class", "predicted", "correct", *(f"p_{name}" for name in self.names))

    def row(self, case: Case) -> dict[str, Any]:
        """``case``'s value in each column (paths as text, ``None`` where a figure is undefined)."""
        if isinstance(case, SegmentationCase):
            dice = {f"dice_{name}": case.dice.get(name) for name in self.names}
            hd95 = {f"hd95_{self.distance_unit}_{name}": case.hd95.get(name) for name in self.names}
            return {"image": str(case.image), "mask": str(case.mask), **dice, **hd95}
        probabilities = {f"p_{name}": case.probabilities.get(name) for name in self.names}
        return {"image": str(case.image), "true_class": case.true_class, "predicted": case.predicted, "correct": case.correct, **probabilities}

    def sorted_by(self, column: str, descending: bool = False) -> list[Case]:
        """The cases ordered by ``column``; cases without a value there come last either way."""
        if column not in self.columns():
            raise ValueError(f"no column {column!r}; the columns are {', '.join(self.columns())}")
        values = [(self.row(case)[column], case) for case in self.cases]
        known = sorted((item for item in values if item[0] is not None), key=lambda item: item[0], reverse=descending)
        return [case for _, case in known] + [case for value, case in values if value is None]

    def csv_text(self) -> str:
        """The table as CSV: a header of :meth:`columns`, one line per case, empty cells where undefined."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns(), lineterminator="\n")
        writer.writeheader()
        for case in self.cases:
            writer.writerow({name: "" if value is None else value for name, value in self.row(case).items()})
        return out.getvalue()

    def to_dict(self) -> dict[str, Any]:
        cases: list[dict[str, Any]] = []
        for case in self.cases:
            if isinstance(case, SegmentationCase):
                cases.append({"image": str(case.image), "mask": str(case.mask), "dice": case.dice, "hd95": case.hd95})
            else:
                cases.append({"image": str(case.image), "true_class": case.true_class, "probabilities": case.probabilities, "predicted": case.predicted})
        return {
            "task": self.task, "names": list(self.names), "distance_unit": self.distance_unit, "cases": cases,
            "confusion_matrix": [list(row) for row in self.confusion_matrix], "roc": [curve.to_dict() for curve in self.roc], "auc": self.auc,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResults:
        """Read :meth:`to_dict`'s object; raises KeyError, TypeError or ValueError when it is not one."""
        task = data["task"]
        if task not in ("segmentation", "classification"):
            raise ValueError(f"task {task!r}")
        cases: list[Case] = []
        for item in data["cases"]:
            if task == "segmentation":
                cases.append(SegmentationCase(Path(item["image"]), Path(item["mask"]), _figures(item["dice"]), _figures(item["hd95"])))
            else:
                probabilities = {str(name): float(p) for name, p in item["probabilities"].items()}
                cases.append(ClassificationCase(Path(item["image"]), str(item["true_class"]), probabilities, str(item["predicted"])))
        auc = data.get("auc")
        return cls(
            task, tuple(map(str, data["names"])), tuple(cases), str(data.get("distance_unit", "mm")),
            tuple(tuple(int(n) for n in row) for row in data.get("confusion_matrix") or ()),
            tuple(RocCurve.from_dict(curve) for curve in data.get("roc") or ()), None if auc is None else float(auc),
        )  # fmt: skip


def _figures(values: dict[str, Any]) -> dict[str, float | None]:
    return {str(name): None if value is None else float(value) for name, value in values.items()}


def output_names(task: str, data: dict[str, Any], outputs: int) -> tuple[str, ...]:
    """The names of a model's ``outputs``: its classes, or its foreground labels (output ``i`` is label value ``i``),
    from a run's ``data`` record (``classes``; ``labels`` as ``{"1": "bone"}``), numbered where it names none."""
    if task == "classification":
        classes = [str(name) for name in data.get("classes") or []]
        return tuple(classes) if len(classes) == outputs else tuple(f"class{i}" for i in range(outputs))
    labels = {str(value): str(name) for value, name in (data.get("labels") or {}).items()}
    return tuple(labels.get(str(value), f"label{value}") for value in range(1, outputs))


def evaluate_cases(model: torch.nn.Module, val_loader: DataLoader, config: TrainConfig, data: dict[str, Any], cancel: CancelToken | None = None) -> CaseResults | None:
    """``model`` (on its device) on every case of ``val_loader`` (unshuffled, as training builds it; its dataset's
    items name the files); ``data`` is the run's data record (names of the classes or labels). ``None`` when
    ``cancel`` stops it."""
    import torch

    items: list[dict[str, Any]] = list(val_loader.dataset.data)  # type: ignore[attr-defined]  # a MONAI dataset keeps its items
    device = next(model.parameters()).device
    model.eval()
    outputs: list[tuple[torch.Tensor, Any]] = []
    with torch.no_grad():
        for batch in val_loader:
            if cancel is not None and cancel.cancelled:
                return None
            outputs.append((_forward(model, batch["image"].as_subclass(torch.Tensor).to(device), config.val_roi_size).float().cpu(), batch["label"]))
    if config.task == "segmentation":
        return _segmentation_results(items, outputs, data)
    return _classification_results(items, outputs, data)


def _forward(model: torch.nn.Module, images: torch.Tensor, roi_size: tuple[int, ...] | None) -> torch.Tensor:
    """Logits as validation computes them: whole images, or sliding windows of ``roi_size``."""
    if roi_size is None:
        return model(images)
    from monai.inferers import sliding_window_inference

    return sliding_window_inference(images, roi_size, 1, model)  # type: ignore[return-value]


def _segmentation_results(items: list[dict[str, Any]], outputs: list[tuple[torch.Tensor, Any]], data: dict[str, Any]) -> CaseResults:
    """One case a batch, as validation scores it (a whole image, or the slices of one volume); masks holding the
    ``ignore`` label are scored on their annotated voxels."""
    import torch

    from medtl.training.metrics import MetricAccumulator, label_spacing

    names = output_names("segmentation", data, outputs[0][0].shape[1])
    ignore = data.get("ignore_label")  # sparse masks: the value of voxels nobody annotated, scored nowhere
    cases: list[Case] = []
    unit = "voxels"
    for item, (logits, labels) in zip(items, outputs, strict=True):
        spacing = label_spacing(labels)
        unit = "mm" if spacing is not None else "voxels"
        scores = MetricAccumulator("segmentation", ignore)
        scores.update(logits, labels.as_subclass(torch.Tensor), spacing)
        metrics = scores.compute()
        dice = {name: metrics[f"dice_{value}"] for value, name in enumerate(names, start=1)}
        hd95 = {name: metrics[f"hd95_{unit}_{value}"] for value, name in enumerate(names, start=1)}
        cases.append(SegmentationCase(Path(item["image"]), Path(item["label"]), dice, hd95))
    return CaseResults("segmentation", names, tuple(cases), unit)


def _classification_results(items: list[dict[str, Any]], outputs: list[tuple[torch.Tensor, Any]], data: dict[str, Any]) -> CaseResults:
    import torch

    from medtl.training.metrics import classification_metrics

    probabilities = torch.cat([torch.softmax(logits, dim=1) for logits, _ in outputs])
    truth = torch.cat([labels.as_subclass(torch.Tensor).view(-1).long().cpu() for _, labels in outputs])
    names = output_names("classification", data, probabilities.shape[1])
    cases: list[Case] = []
    for item, row, true in zip(items, probabilities.tolist(), truth.tolist(), strict=True):
        predicted = max(range(len(row)), key=row.__getitem__)
        cases.append(ClassificationCase(Path(item["image"]), names[true], dict(zip(names, row, strict=True)), names[predicted]))
    metrics = classification_metrics(probabilities, truth)
    curves = []
    for index in range(1 if len(names) == 2 else 0, len(names)):  # two classes: one curve, the second class's
        curve = roc_curve(probabilities[:, index].tolist(), [t == index for t in truth.tolist()], names[index])
        if curve is not None:
            curves.append(curve)
    confusion = tuple(tuple(int(n) for n in row) for row in metrics["confusion_matrix"])
    return CaseResults("classification", names, tuple(cases), confusion_matrix=confusion, roc=tuple(curves), auc=metrics["auc"])

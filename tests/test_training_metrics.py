"""Validation metrics against values computed by hand."""

from __future__ import annotations

import pytest
import torch

from medtl.training.metrics import MetricAccumulator, classification_metrics, label_spacing, primary_metric, segmentation_case_scores


def test_classification_metrics_by_hand() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    predicted = torch.tensor([0, 1, 1, 1, 2, 0])
    probabilities = torch.nn.functional.one_hot(predicted, 3).float() * 0.8 + 0.2 / 3
    result = classification_metrics(probabilities, labels)
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["balanced_accuracy"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)


def test_binary_auc_by_hand() -> None:
    # Class-1 scores 0.1, 0.4, 0.35, 0.8 for labels 0, 0, 1, 1: 3 of the 4 positive/negative pairs are ordered.
    probabilities = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
    assert classification_metrics(probabilities, torch.tensor([0, 0, 1, 1]))["auc"] == pytest.approx(0.75)


def test_classes_absent_from_the_labels_are_left_out_of_the_means() -> None:
    probabilities = torch.tensor([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.2, 0.3, 0.5]])
    result = classification_metrics(probabilities, torch.tensor([0, 1, 1]))
    assert result["balanced_accuracy"] == pytest.approx((1 + 1 / 2) / 2)
    assert result["auc"] == pytest.approx(1.0)
    assert result["confusion_matrix"][2] == [0, 0, 0]


def one_case(truth: torch.Tensor, predicted: torch.Tensor, classes: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.nn.functional.one_hot(predicted, classes).permute(2, 0, 1)[None].float()
    return logits, truth[None, None]


def test_dice_and_hd95_by_hand_in_voxels_and_millimetres() -> None:
    from monai.data import MetaTensor

    truth = torch.zeros(8, 8, dtype=torch.long)
    truth[2:4, 2:4] = 1  # 4 pixels
    predicted = torch.zeros(8, 8, dtype=torch.long)
    predicted[2:5, 2:4] = 1  # 6 pixels, 4 shared, one extra row at distance 1
    logits, labels = one_case(truth, predicted)

    accumulator = MetricAccumulator("segmentation")
    accumulator.update(logits, labels)
    result = accumulator.compute()
    assert result["dice_1"] == pytest.approx(2 * 4 / (4 + 6)) and result["mean_dice"] == pytest.approx(0.8)
    assert result["hd95_voxels"] == pytest.approx(1.0)

    labels_mm = MetaTensor(labels, affine=torch.diag(torch.tensor([2.0, 1.0, 1.0, 1.0]))[None])
    assert label_spacing(labels_mm) == [[2.0, 1.0]]
    accumulator = MetricAccumulator("segmentation")
    accumulator.update(logits, labels_mm, label_spacing(labels_mm))
    assert accumulator.compute()["hd95_mm"] == pytest.approx(2.0)  # the extra row is 2 mm away


def test_a_label_absent_everywhere_is_undefined_not_zero() -> None:
    truth = torch.zeros(8, 8, dtype=torch.long)
    truth[1:5, 1:5] = 1
    logits, labels = one_case(truth, truth.clone(), classes=3)
    dice, _ = segmentation_case_scores(logits, labels, None)
    assert dice.shape == (1, 2)
    accumulator = MetricAccumulator("segmentation")
    accumulator.update(logits, labels)
    result = accumulator.compute()
    assert result["dice_1"] == pytest.approx(1.0) and result["dice_2"] is None and result["mean_dice"] == pytest.approx(1.0)


def test_accumulator_merges_what_gather_returns_from_every_rank() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    accumulator = MetricAccumulator("classification")
    accumulator.update(logits, torch.tensor([0, 0]))
    other_rank = ({"probabilities": torch.tensor([[0.1, 0.9]]), "labels": torch.tensor([1])}, None)
    result = accumulator.compute(lambda local: [local, other_rank])
    assert result["confusion_matrix"] == [[1, 1], [0, 1]]


def test_primary_metrics() -> None:
    assert primary_metric("classification") == "balanced_accuracy"
    assert primary_metric("segmentation") == "mean_dice"


def test_ignored_voxels_count_neither_as_background_nor_as_a_label() -> None:
    truth = torch.zeros(8, 8, dtype=torch.long)
    truth[2:4, 2:4] = 1
    truth[:, 5:] = 2  # nobody annotated the right columns
    predicted = torch.zeros(8, 8, dtype=torch.long)
    predicted[2:4, 2:4] = 1
    predicted[0:3, 6:8] = 1  # foreground predicted where nothing is known
    logits, labels = one_case(truth, predicted)
    masked = MetricAccumulator("segmentation", ignore_label=2)
    masked.update(logits, labels)
    result = masked.compute()
    assert result["dice_1"] == pytest.approx(1.0) and result["hd95_voxels"] == pytest.approx(0.0)
    as_background = MetricAccumulator("segmentation")
    as_background.update(logits, labels.clamp(max=1) * (labels == 1))
    assert as_background.compute()["dice_1"] < 0.9  # what counting them as background would have scored


def test_a_case_of_slices_pools_its_dice() -> None:
    """Two annotated slices of one volume: 4 true pixels on one, 1 missed on the other: one Dice over both."""
    truth = torch.zeros(2, 8, 8, dtype=torch.long)
    truth[0, 2:4, 2:4] = 1
    truth[1, 6, 6] = 1
    predicted = truth.clone()
    predicted[1, 6, 6] = 0
    logits = torch.nn.functional.one_hot(predicted, 2).permute(0, 3, 1, 2).float()
    dice, hd95 = segmentation_case_scores(logits, truth[:, None], None)
    assert dice.shape == (1, 1) and float(dice[0, 0]) == pytest.approx(2 * 4 / (4 + 5))  # not the mean of 1 and 0
    assert float(hd95[0, 0]) == pytest.approx(0.0)  # the slice without a prediction has no finite distance

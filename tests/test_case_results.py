"""Per-case results: Dice and HD95 (mm) per case and label, classification probabilities, confusion matrix and ROC, checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medtl.data.preprocessing import Intensity, Preprocessing
from medtl.dicom.volume import Volume
from medtl.export.nifti import write_nifti
from medtl.training.case_results import CaseResults, ClassificationCase, SegmentationCase, evaluate_cases, roc_curve
from medtl.training.config import TrainConfig
from medtl.training.run_folder import RunFolder

SPACING_MM = 2.0
SIZE = 32


class EncodedLabels(nn.Module):
    """Segmentation logits read off the image: pixel value v/2 means 'label v' (the test writes the prediction into the image)."""

    def __init__(self, labels: int = 3) -> None:
        super().__init__()
        self.labels = labels
        self.anchor = nn.Parameter(torch.zeros(1))  # evaluate_cases finds the device through a parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = (x[:, 0] * 2).round().long()
        return torch.nn.functional.one_hot(values, self.labels).movedim(-1, 1).float() * 10 + self.anchor


class TabledProbabilities(nn.Module):
    """Classification logits looked up by case: an image of constant value i/10 gets log(table[i])."""

    def __init__(self, table: list[list[float]]) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table).log(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = (x.flatten(1).amax(dim=1) * 10).round().long()  # the padding around the image is 0
        return self.table[index]


def write(path: Path, array: np.ndarray) -> str:
    write_nifti(Volume(array[None].astype(np.float32), (SPACING_MM,) * 3, (0.0, 0.0, 0.0)), path)
    return str(path)


def loader(items: list[dict], preprocessing: Preprocessing, batch_size: int):  # noqa: ANN201
    from monai.data import DataLoader, Dataset

    return DataLoader(Dataset(items, preprocessing.eval_transforms()), batch_size=batch_size, shuffle=False)


def preprocessing(task: str) -> Preprocessing:
    return Preprocessing(
        task=task, spatial_dims=2, channels=1, intensity=Intensity("range", a_min=0.0, a_max=1.0), spatial_size=(SIZE, SIZE),
        size_mode="crop_pad" if task == "classification" else "patch", orientation=None, augmentation=None,
    )  # fmt: skip


def test_roc_curve_and_auc_by_hand() -> None:
    # positives 0.9, 0.8, 0.6; negatives 0.7, 0.55, 0.4: 8 of the 9 pairs are ordered right
    curve = roc_curve([0.9, 0.8, 0.7, 0.6, 0.55, 0.4], [True, True, False, True, False, False], "yes")
    assert curve is not None and curve.auc == pytest.approx(8 / 9)
    third = 1 / 3
    assert curve.false_positive_rate == pytest.approx((0, 0, 0, third, third, 2 * third, 1))
    assert curve.true_positive_rate == pytest.approx((0, third, 2 * third, 2 * third, 1, 1, 1))
    assert curve.thresholds[0] == float("inf") and curve.thresholds[1:] == (0.9, 0.8, 0.7, 0.6, 0.55, 0.4)
    tied = roc_curve([0.5, 0.5], [True, False], "yes")  # a tie is one diagonal step: chance
    assert tied is not None and tied.auc == 0.5 and tied.false_positive_rate == (0.0, 1.0)
    assert roc_curve([0.2, 0.3], [True, True], "yes") is None  # no negatives: no curve


def test_auc_agrees_with_monai() -> None:
    from monai.metrics import compute_roc_auc

    rng = np.random.default_rng(0)
    scores, truth = rng.random(50), rng.random(50) < 0.4
    scores[::7] = 0.5  # some ties
    curve = roc_curve(scores.tolist(), truth.tolist(), "yes")
    assert curve is not None
    assert curve.auc == pytest.approx(float(compute_roc_auc(torch.tensor(scores), torch.tensor(truth.astype(float)))))


def test_segmentation_dice_and_hd95_in_mm_per_case_and_label(tmp_path: Path) -> None:
    """Case 1: label 1 a 10 x 10 square predicted 2 rows lower (Dice 2*80/200 = 0.8); label 2 a 10-pixel line predicted
    3 pixels to the side (Dice 0, every surface point 3 pixels = 6 mm away). Case 2: perfect label 1, no label 2 anywhere."""
    truth1, predicted1 = np.zeros((SIZE, SIZE)), np.zeros((SIZE, SIZE))
    truth1[10:20, 10:20], predicted1[12:22, 10:20] = 1, 1
    truth1[5:15, 25], predicted1[5:15, 28] = 2, 2
    truth2 = np.zeros((SIZE, SIZE))
    truth2[4:9, 4:12] = 1
    items = [
        {"image": write(tmp_path / f"image{i}.nii.gz", predicted / 2), "label": write(tmp_path / f"mask{i}.nii.gz", truth)}
        for i, (truth, predicted) in enumerate([(truth1, predicted1), (truth2, truth2)])
    ]
    config = TrainConfig(task="segmentation")
    data = {"labels": {"0": "background", "1": "organ", "2": "vessel"}}
    results = evaluate_cases(EncodedLabels(), loader(items, preprocessing("segmentation"), 1), config, data)
    assert results is not None and results.names == ("organ", "vessel") and results.distance_unit == "mm"
    first, second = results.cases
    assert isinstance(first, SegmentationCase) and first.image == Path(items[0]["image"]) and first.mask == Path(items[0]["label"])
    assert first.dice == pytest.approx({"organ": 0.8, "vessel": 0.0})
    assert first.hd95["vessel"] == pytest.approx(3 * SPACING_MM)
    assert second.dice == {"organ": pytest.approx(1.0), "vessel": None} and second.hd95 == {"organ": pytest.approx(0.0), "vessel": None}
    assert results.columns() == ("image", "mask", "dice_organ", "dice_vessel", "hd95_mm_organ", "hd95_mm_vessel")
    assert results.sorted_by("dice_organ") == [first, second]  # the worst case first
    assert results.sorted_by("dice_vessel", descending=True) == [first, second]  # undefined last, either way

    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.write_case_results(results)
    assert run.read_case_results() == results
    lines = run.case_results_paths[1].read_text().splitlines()
    assert lines[0] == "image,mask,dice_organ,dice_vessel,hd95_mm_organ,hd95_mm_vessel"
    assert lines[2].endswith(",1.0,,0.0,")  # an undefined figure is an empty cell


def test_classification_probabilities_confusion_matrix_and_roc(tmp_path: Path) -> None:
    """Six cases of three classes with chosen probabilities; the matrix and the one-vs-rest curves follow by hand."""
    classes = ["a", "b", "c"]
    table = [[0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.1, 0.25, 0.65], [0.5, 0.2, 0.3]]
    truth = [0, 0, 1, 1, 2, 2]
    items = [{"image": write(tmp_path / f"case{i}.nii.gz", np.full((8, 8), i / 10)), "label": label} for i, label in enumerate(truth)]
    results = evaluate_cases(TabledProbabilities(table), loader(items, preprocessing("classification"), 4), TrainConfig(task="classification"), {"classes": classes})
    assert results is not None and results.names == tuple(classes)
    first = results.cases[0]
    assert isinstance(first, ClassificationCase) and first.image == Path(items[0]["image"])
    assert (first.true_class, first.predicted, first.correct) == ("a", "a", True)
    assert first.probabilities == pytest.approx({"a": 0.7, "b": 0.2, "c": 0.1})
    assert [case.predicted for case in results.cases] == ["a", "b", "b", "c", "c", "a"]  # type: ignore[union-attr]
    assert results.confusion_matrix == ((1, 1, 0), (0, 1, 1), (1, 0, 1))
    aucs = {curve.positive_class: curve.auc for curve in results.roc}
    # a: positives 0.7, 0.4 vs negatives 0.2, 0.3, 0.1, 0.5 -> 4 + 3 = 7 of 8 pairs in order; b: 0.7, 0.3 vs 0.2, 0.5, 0.25, 0.2 -> 4 + 3;
    # c: 0.65, 0.3 vs 0.1, 0.1, 0.1, 0.4 -> 4 + 3
    assert aucs == pytest.approx({"a": 7 / 8, "b": 7 / 8, "c": 7 / 8})
    assert results.auc == pytest.approx(7 / 8)
    assert results.roc[0].true_positive_rate == pytest.approx((0, 0.5, 0.5, 1, 1, 1, 1))  # a: 0.7+, 0.5-, 0.4+, 0.3-, 0.2-, 0.1-
    assert results.roc[0].false_positive_rate == pytest.approx((0, 0, 0.25, 0.25, 0.5, 0.75, 1))
    assert results.sorted_by("p_c", descending=True)[0] is results.cases[4]
    assert CaseResults.from_dict(json.loads(json.dumps(results.to_dict(), allow_nan=True))) == results


def test_two_classes_have_one_curve_for_the_second_class(tmp_path: Path) -> None:
    table = [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.45, 0.55]]
    items = [{"image": write(tmp_path / f"case{i}.nii.gz", np.full((8, 8), i / 10)), "label": label} for i, label in enumerate([0, 1, 1, 0])]
    results = evaluate_cases(TabledProbabilities(table), loader(items, preprocessing("classification"), 8), TrainConfig(task="classification"), {"classes": ["no", "yes"]})
    assert results is not None and [curve.positive_class for curve in results.roc] == ["yes"]
    # yes: positives 0.7, 0.4 vs negatives 0.2, 0.55 -> 2 + 1 = 3 of 4
    assert results.roc[0].auc == pytest.approx(0.75) and results.auc == pytest.approx(0.75)
    assert results.confusion_matrix == ((1, 1), (1, 1))

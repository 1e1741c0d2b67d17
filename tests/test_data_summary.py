"""The datalist summary shown before training: cases per class / label and the split, as training will split."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel
import numpy as np
import pytest

from medtl.data.summary import summarise_datalist
from medtl.progress import CancelToken


def test_segmentation_masks_are_counted_per_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = []
    for number in range(4):
        mask = np.zeros((8, 8, 3), np.uint8)
        mask[2:4, 2:4, 1] = 1 + (number % 2)  # label 1 in two cases, label 2 in the other two
        nibabel.save(nibabel.Nifti1Image(mask, np.eye(4)), tmp_path / f"m{number}.nii.gz")
        nibabel.save(nibabel.Nifti1Image(mask.astype(np.float32), np.eye(4)), tmp_path / f"i{number}.nii.gz")
        entries.append({"image": f"i{number}.nii.gz", "label": f"m{number}.nii.gz", "patient_id": f"P{number // 2}"})
    path = tmp_path / "seg.json"
    path.write_text(json.dumps({"training": entries, "labels": {"0": "background", "1": "liver", "2": "tumour"}}))
    reports = []
    summary = summarise_datalist(path, None, lambda done, total, _m="": reports.append((done, total)), CancelToken())
    assert summary.task == "segmentation" and reports[0] == (0, 4)
    assert (summary.training.patients, summary.validation.patients) == (1, 1)  # both cases of a patient stay together
    assert summary.training.per_label == {"liver": 1, "tumour": 1} and "liver 2 (1/1)" in summary.lines()[2]

"""Datalist parsing: paths, task inference, classes/labels, and the error messages a user sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medtl.data.datalist import DatalistError, load_datalist


def _write(folder: Path, document: dict, files: tuple[str, ...] = ()) -> Path:
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    path = folder / "datalist.json"
    path.write_text(json.dumps(document))
    return path


def test_classification_paths_classes_and_patients(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "c.png"
    outside.parent.mkdir()
    outside.write_bytes(b"x")
    document = {
        "training": [{"image": "img/a.png", "label": "rotated", "patient_id": "P1"}, {"image": str(outside), "label": "upright"}],
        "validation": [{"image": "img/b.png", "label": "upright", "patient_id": 7}],
        "classes": ["upright", "rotated"],
        "modality": {"0": "ct"},
    }
    datalist = load_datalist(_write(tmp_path / "task", document, ("img/a.png", "img/b.png")))
    assert datalist.task == "classification"
    assert datalist.classes == ["upright", "rotated"]  # declared order = index order
    assert datalist.modality == "CT"
    assert datalist.training[0].image == (tmp_path / "task" / "img" / "a.png").resolve()
    assert datalist.training[1].image == outside.resolve()
    assert [c.patient_id for c in datalist.cases] == ["P1", None, "7"]
    assert datalist.training[1].group != datalist.training[0].group
    assert datalist.validation[0].entry == "validation[0]"


def test_segmentation_inferred_with_labels(tmp_path: Path) -> None:
    document = {"training": [{"image": "a.nii.gz", "label": "a_mask.nii.gz"}], "labels": {"0": "background", "1": "bone", "2": "metal"}}
    datalist = load_datalist(_write(tmp_path, document, ("a.nii.gz", "a_mask.nii.gz")))
    assert datalist.task == "segmentation"
    assert datalist.labels == {0: "background", 1: "bone", 2: "metal"}
    assert datalist.training[0].label == (tmp_path / "a_mask.nii.gz").resolve()
    assert datalist.classes == []


def test_classes_default_to_sorted_names(tmp_path: Path) -> None:
    document = {"training": [{"image": "a.png", "label": "b"}, {"image": "a.png", "label": "a"}]}
    assert load_datalist(_write(tmp_path, document, ("a.png",))).classes == ["a", "b"]


@pytest.mark.parametrize(
    ("document", "files", "task", "expected"),
    [
        ({"training": [{"image": "a.png", "label": "x"}, {"image": "gone.png", "label": "x"}]}, ("a.png",), None, r"training\[1\] \"image\": file not found: .*gone\.png"),
        ({"training": [{"image": "a.png", "label": "x"}], "validation": [{"image": "a.png", "label": "m/gone.nii.gz"}]}, ("a.png",), "segmentation", r"training\[0\] has no mask"),
        ({"training": [{"image": "a.png", "label": "m.nii.gz"}], "validation": [{"image": "a.png", "label": "m/gone.nii.gz"}]}, ("a.png", "m.nii.gz"), None, r"validation\[0\] \"label\": file not found"),
        ({"training": [{"image": "a.png", "label": "cat"}], "classes": ["dog"]}, ("a.png",), None, r"training\[0\] has label 'cat', which is not in \"classes\""),
        ({"training": []}, (), None, r"\"training\" list is empty"),
        ({"validation": [{"image": "a.png", "label": "x"}]}, ("a.png",), None, r"\"training\" list is empty"),
        ({"training": [{"image": "a.png"}]}, ("a.png",), None, r"training\[0\] \(a\.png\) has no \"label\""),
        ({"training": [{"image": "a.png", "label": "m.nii.gz"}, {"image": "a.png", "label": "x"}]}, ("a.png", "m.nii.gz"), None, r"mixes mask-file labels \(training\[0\]\) and class-name labels \(training\[1\]\)"),
        ({"training": [{"image": "a.png", "label": "m.nii.gz"}]}, ("a.png", "m.nii.gz"), "classification", r"training\[0\] has a mask file"),
        ({"training": [{"image": "a.png", "label": "m.nii.gz"}], "labels": {"1": "bone"}}, ("a.png", "m.nii.gz"), None, r"mask values 0\.\.N-1"),
    ],
)
def test_errors_name_the_entry_and_reason(tmp_path: Path, document: dict, files: tuple[str, ...], task: str | None, expected: str) -> None:
    path = _write(tmp_path, document, files)
    with pytest.raises(DatalistError, match=expected) as info:
        load_datalist(path, task=task)
    assert str(path) in str(info.value)


def test_unreadable_json(tmp_path: Path) -> None:
    path = tmp_path / "datalist.json"
    path.write_text("{not json")
    with pytest.raises(DatalistError, match="not a readable JSON datalist"):
        load_datalist(path)
    with pytest.raises(DatalistError, match="datalist file not found"):
        load_datalist(tmp_path / "missing.json")

"""The offline real-data tasks: files that load, on matching grids, with the documented contents."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from medtl.data.datalist import load_datalist
from medtl.data.images import read_image
from medtl.data.tasks import ORIENTATION_VALIDATION, build_task, task_names
from medtl.errors import MedtlError


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tasks")
    return {name: build_task(name, root / name) for name in task_names()}


def test_orientation_task(built: dict[str, Path]) -> None:
    datalist = load_datalist(built["orientation"], task="classification")
    assert datalist.classes == ["upright", "rotated"] and datalist.modality == "OT"
    assert Counter(c.label for c in datalist.training) == {"upright": 212, "rotated": 212}
    assert Counter(c.label for c in datalist.validation) == {"upright": 28, "rotated": 28}
    held_out = {c.patient_id for c in datalist.validation}
    assert held_out == set(ORIENTATION_VALIDATION) and not held_out & {c.patient_id for c in datalist.training}
    assert len({c.patient_id for c in datalist.training}) == 11
    brain_planes = Counter(c.patient_id for c in datalist.cases if "_brain-" in c.image.name and c.label == "upright")
    # 16 slices of each plane of a training volume (nibabel's have only 12 axial slices in their middle half), 8 held out
    assert brain_planes == {"mni152": 48, "colin27": 24, "itk-t1": 48, "nibabel-anatomical": 44, "nibabel-example4d": 44}
    pairs = {}
    for case in datalist.cases:
        pairs.setdefault(case.image.name.rsplit("_", 1)[0], {})[case.label] = read_image(case.image).array[0]
    for pictures in pairs.values():
        assert pictures["upright"].dtype == np.uint8 and pictures["upright"].std() > 10
        np.testing.assert_array_equal(np.rot90(pictures["upright"], 2), pictures["rotated"])


def test_orientation_pictures_have_square_pixels(built: dict[str, Path]) -> None:
    """ITK's T1 has 3 mm between its coronal slices and 2 mm pixels in them (128 S x 62 P x 128 L): axial and
    sagittal pictures show the 62 slices as 93 rows or columns of 2 mm, as a viewer does, not squashed to 62."""
    shapes = {}
    for case in load_datalist(built["orientation"]).cases:
        if match := re.match(r"itk-t1_brain-([a-z]+)\d+_", case.image.name):
            shapes.setdefault(match.group(1), set()).add(read_image(case.image).shape[1:])
    assert shapes == {"axial": {(93, 128)}, "coronal": {(128, 128)}, "sagittal": {(128, 93)}}


def test_explicit_vr_un_abdomen_is_turned_upright(built: dict[str, Path]) -> None:
    """That CT is stored with rows running anterior; upright puts the spine (dense, posterior) at the bottom."""
    image = next(c.image for c in load_datalist(built["orientation"]).cases if c.image.name == "explicit_VR-UN_abdomen-axial_upright.png")
    picture = read_image(image).array[0].astype(float)
    rows = np.flatnonzero((picture > 200).any(axis=1))  # bone in the display window
    assert np.median(rows) > picture.shape[0] / 2


@pytest.mark.parametrize(("name", "cases", "label"), [("ct_bone", 5, "bone"), ("mni_brain", 35, "brain")])
def test_segmentation_tasks_load_on_matching_grids(built: dict[str, Path], name: str, cases: int, label: str) -> None:
    datalist = load_datalist(built[name], task="segmentation")
    assert datalist.labels == {0: "background", 1: label} and len(datalist.training) == cases
    fractions = []
    for case in datalist.training:
        image, mask = read_image(case.image), read_image(case.label)
        assert image.shape == mask.shape and image.shape[0] == 1
        np.testing.assert_allclose(image.affine_lps(), mask.affine_lps(), atol=1e-6)
        assert set(np.unique(mask.array)) <= {0, 1}
        fractions.append(float(mask.array.mean()))
    if name == "ct_bone":
        head = [f for c, f in zip(datalist.training, fractions) if c.patient_id in ("693_UNCI", "J2K_pixelrep_mismatch")]
        assert min(head) > 0.04 and 0.003 < min(fractions) and max(fractions) < 0.15
    else:
        assert min(fractions) > 0.02 and len({c.patient_id for c in datalist.training}) >= 5


def test_ct_bone_image_is_hu(built: dict[str, Path]) -> None:
    case = load_datalist(built["ct_bone"]).training[0]
    image, mask = read_image(case.image), read_image(case.label)
    assert image.array[mask.array > 0].min() > 300 - 400  # filled holes may be below the threshold
    assert np.median(image.array[mask.array > 0]) > 600
    document = json.loads(built["ct_bone"].read_text())
    assert document["modality"] == "CT"


def test_mni_tissue_is_one_volume_annotated_on_a_few_axial_slices(built: dict[str, Path]) -> None:
    datalist = load_datalist(built["mni_tissue"], task="segmentation")
    assert datalist.ignore_label == 3 and datalist.trained_labels == {0: "background", 1: "grey matter", 2: "white matter"}
    (case,) = datalist.training
    image, mask = read_image(case.image), read_image(case.label)
    reference = read_image(case.image.parent.parent / json.loads(built["mni_tissue"].read_text())["training"][0]["reference"])
    assert image.shape == mask.shape == reference.shape and image.shape[0] > 60 and image.spacing == (2.0, 2.0, 2.0)
    annotated = np.flatnonzero((mask.array != 3).any(axis=(1, 2)))
    assert len(annotated) == 4 and (mask.array[annotated] != 3).all()  # whole axial slices, nothing else
    np.testing.assert_array_equal(mask.array[annotated], reference.array[annotated])
    fractions = np.bincount(reference.array.ravel(), minlength=3) / reference.array.size
    assert set(np.unique(reference.array)) == {0, 1, 2} and fractions[1] > fractions[2] > 0.1  # more grey than white matter
    assert np.median(image.array[reference.array == 2]) > np.median(image.array[reference.array == 1])  # T1: white is brighter


@pytest.mark.parametrize(
    ("variable", "file", "package"),
    [("MEDTL_COLIN27", "ch2.nii.gz", "mricron-data"), ("MEDTL_ITK_T1", "KmeansTest_T1UCharRaw.nii.gz", "insighttoolkit5-examples")],
)
def test_orientation_task_without_a_debian_file_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, file: str, package: str) -> None:
    monkeypatch.setenv(variable, str(tmp_path / file))
    with pytest.raises(MedtlError, match=rf"{re.escape(file)} is not there: .*{package}"):
        build_task("orientation", tmp_path / "task")


def test_unknown_task(tmp_path: Path) -> None:
    with pytest.raises(MedtlError, match="unknown task 'bones'; known tasks: orientation, ct_bone, mni_brain, mni_tissue"):
        build_task("bones", tmp_path)

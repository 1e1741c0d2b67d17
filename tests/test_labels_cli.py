"""`medtl project` and `medtl labels`: a NIfTI label imported into a project comes back voxel-exact as DICOM SEG
(referencing its series), NIfTI and an MSD dataset, and a de-identified export holds no byte of the patient's identity."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medtl.cli import main
from medtl.data.images import read_image
from medtl.dicom.series import load_series
from medtl.dicom.volume import Volume
from medtl.export.deidentify import phi_found
from medtl.export.nifti import write_nifti
from medtl.labels.mask_import import read_mask
from medtl.project import Project
from medtl.project.agreement import reader_agreement
from tests.dicomgen import SeriesSpec, phantom, write_series

IDENTITY = ("Doe^Jane", "PAT12345", "19700101")


@pytest.fixture
def study(tmp_path: Path) -> tuple[Volume, Path, np.ndarray]:
    """A CT series of a named patient, and a two-label mask of it as NIfTI."""
    files = write_series(tmp_path / "dicom" / "ct", phantom((6, 20, 24)), SeriesSpec(patient_id="PAT12345", patient_name="Doe^Jane"))
    volume = load_series(files)
    mask = np.zeros(volume.shape, np.uint8)
    mask[1:4, 4:10, 5:15] = 1
    mask[2, 12:16, 2:6] = 2
    write_nifti(Volume(mask, volume.spacing, volume.origin, volume.direction), tmp_path / "mask.nii.gz")
    return volume, tmp_path / "mask.nii.gz", mask


def medtl(*words: object) -> int:
    return main([str(word) for word in words])


def test_a_nifti_label_comes_back_voxel_exact_as_seg_nifti_and_msd(study: tuple[Volume, Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    volume, mask_file, mask = study
    uid, project = volume.metadata["series_uid"], tmp_path / "project"
    assert medtl("project", "init", project) == 0
    assert medtl("project", "add", project, tmp_path / "dicom") == 0
    assert f"series {uid}  CT" in capsys.readouterr().out
    assert medtl("labels", "import", project, "--series", uid, mask_file, "--reader", "reader one") == 0
    assert "imported as version 1 of reader one's mask" in capsys.readouterr().out
    assert medtl("labels", "list", project) == 0
    listing = capsys.readouterr().out
    voxel_ml = float(np.prod(volume.spacing)) / 1000
    assert f"label 1 {np.sum(mask == 1) * voxel_ml:.2f} mL" in listing and "reader reader one  version 1 (complete)" in listing
    assert medtl("project", "info", project) == 0
    assert "readers: reader one" in capsys.readouterr().out

    assert medtl("labels", "export", project, "--format", "seg", "-o", tmp_path / "seg") == 0
    seg = tmp_path / "seg" / "case_0001" / "seg.dcm"
    assert [path.name for path in (tmp_path / "seg").rglob("*")] == ["case_0001", "seg.dcm"]
    header = pydicom.dcmread(seg)
    assert header.Modality == "SEG" and header.ReferencedSeriesSequence[0].SeriesInstanceUID == uid
    assert np.array_equal(read_mask(seg, volume).array, mask)  # read back with highdicom onto the series' grid
    assert medtl("labels", "import", project, "--series", uid, seg, "--reader", "reader two") == 0  # the SEG as a second reader's labels
    with Project.open(project, read_only=True) as opened:
        assert reader_agreement(opened, uid, "reader one", "reader two") == {1: 1.0, 2: 1.0}
        assert [label.name for label in opened.labels()] == ["label 1", "label 2"]
    assert medtl("labels", "agreement", project, "--series", uid, "reader one", "reader two") == 0
    assert "1 label 1: Dice 1.0000" in capsys.readouterr().out
    assert medtl("labels", "history", project, "--label", 1) == 0
    history = capsys.readouterr().out.splitlines()
    assert "label table: label 1, defined 'label 1'" in history[0] and "import: series" in history[1] and "reader reader one" in history[1]

    assert medtl("labels", "export", project, "--format", "nifti", "-o", tmp_path / "nifti") == 0
    assert np.array_equal(read_mask(tmp_path / "nifti" / "case_0001.nii.gz", volume).array, mask)

    assert medtl("labels", "export", project, "--format", "msd", "-o", tmp_path / "msd") == 0
    dataset = json.loads((tmp_path / "msd" / "dataset.json").read_text())
    assert dataset["labels"] == {"0": "background", "1": "label 1", "2": "label 2"} and dataset["modality"] == {"0": "CT"}
    label = read_image(tmp_path / "msd" / dataset["training"][0]["label"])
    assert np.array_equal(label.array, mask) and np.allclose(label.affine_lps(), volume.affine_lps(), atol=1e-4)


def test_a_deidentified_export_holds_no_byte_of_the_patients_name_id_or_birth_date(study: tuple[Volume, Path, np.ndarray], tmp_path: Path) -> None:
    volume, mask_file, mask = study
    uid, project = volume.metadata["series_uid"], tmp_path / "project"
    with Project.create(project) as opened:
        opened.add_dicom(tmp_path / "dicom")
    assert medtl("labels", "import", project, "--series", uid, mask_file) == 0
    for fmt in ("seg", "nifti", "msd"):
        assert medtl("labels", "export", project, "--format", fmt, "-o", tmp_path / fmt, "--deidentify") == 0
    exported = [path for fmt in ("seg", "nifti", "msd") for path in (tmp_path / fmt).rglob("*") if path.is_file()]
    assert len(exported) >= 6 + volume.shape[0]
    for path in exported:
        content = path.read_bytes()
        content = gzip.decompress(content) if path.name.endswith(".gz") else content
        assert phi_found(content, IDENTITY) == [], path
        assert phi_found(str(path.relative_to(tmp_path)).encode(), IDENTITY) == []
        assert uid.encode() not in content, f"{path} names the original series UID"
    assert phi_found(next((tmp_path / "dicom" / "ct").iterdir()), IDENTITY) == list(IDENTITY)  # the check finds them where they are
    seg = pydicom.dcmread(tmp_path / "seg" / "case_0001" / "seg.dcm")
    images = [pydicom.dcmread(path) for path in (tmp_path / "seg" / "case_0001" / "images").iterdir()]
    assert len(images) == volume.shape[0] and {image.SeriesInstanceUID for image in images} == {seg.ReferencedSeriesSequence[0].SeriesInstanceUID}
    referenced = {item.ReferencedSOPInstanceUID for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {image.SOPInstanceUID for image in images}  # one export, one set of pseudonyms


def test_bad_input_gets_a_one_line_error_naming_the_file_or_the_holder(study: tuple[Volume, Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    volume, mask_file, _ = study
    uid, project = volume.metadata["series_uid"], tmp_path / "project"
    assert medtl("labels", "list", project) == 2
    assert "not a medtl project" in capsys.readouterr().err
    holder = Project.create(project, user="someone else")
    holder.add_dicom(tmp_path / "dicom")
    assert medtl("labels", "import", project, "--series", uid, mask_file) == 2
    assert "being edited by someone else" in capsys.readouterr().err
    holder.close()
    small = tmp_path / "small.nii.gz"
    write_nifti(Volume(np.zeros((6, 10, 24), np.uint8), volume.spacing, volume.origin, volume.direction), small)
    assert medtl("labels", "import", project, "--series", uid, small) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "small.nii.gz" in error
    assert medtl("labels", "import", project, "--series", "1.2.3", mask_file) == 2
    assert "no series 1.2.3" in capsys.readouterr().err
    assert medtl("labels", "export", project, "--format", "seg", "-o", tmp_path / "out") == 2
    assert "no saved masks" in capsys.readouterr().err


def test_init_from_the_label_store_brings_its_labels_into_the_new_project(study: tuple[Volume, Path, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from medtl.labels.store import LabelStore

    volume, _, mask = study
    files = sorted((tmp_path / "dicom" / "ct").iterdir())
    LabelStore(tmp_path / "labels").save(mask, volume, files, {1: "liver", 2: "cyst"})
    monkeypatch.setenv("MEDTL_LABELS", str(tmp_path / "labels"))
    assert medtl("project", "init", tmp_path / "project", "--from-label-store") == 0
    assert "1 series, 1 mask version(s) (the store is kept)" in capsys.readouterr().out
    with Project.open(tmp_path / "project", read_only=True) as project:
        (version,) = project.current_masks()
        assert np.array_equal(project.load_mask(version).array, mask) and [label.name for label in project.labels()] == ["liver", "cyst"]

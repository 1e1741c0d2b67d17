"""Scanning folders of real (pydicom, pydicom-data) and generated DICOM, with the junk real folders hold."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_file

from medtl.dicom.header import read_header
from medtl.dicom.records import ScanResult
from medtl.dicom.scan import scan
from medtl.errors import DicomReadError, MedtlError
from medtl.progress import CancelToken, Cancelled
from tests.dicomgen import SeriesSpec, phantom, rotation, write_series

PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(32)


def pydicom_file(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not installed (pydicom-data)")
    return Path(path)


def messy_folder(root: Path) -> dict[str, Path]:
    """A folder as users have them: two series (one nested, one implicit VR without extensions), a duplicate,
    non-image objects, and junk: text, JSON, PNG, an empty .dcm, a truncated copy, an image without pixels."""
    ct = write_series(root / "a" / "b", phantom((5, 16, 16)), SeriesSpec(series_description="nested ct"))
    write_series(root / "mr", phantom((4, 16, 16)), SeriesSpec(modality="MR", implicit_vr=True, extension="", series_description="implicit mr"))
    (root / "junk").mkdir()
    (root / "README.txt").write_text("exported by some PACS\n")
    (root / "junk" / "meta.json").write_text('{"a": 1}')
    (root / "junk" / "scout.png").write_bytes(PNG_BYTES)
    (root / "junk" / "empty.dcm").write_bytes(b"")
    data = ct[0].read_bytes()
    (root / "junk" / "truncated.dcm").write_bytes(data[: len(data) // 2])
    without_pixels = pydicom.dcmread(ct[1])
    del without_pixels.PixelData
    without_pixels.SOPInstanceUID = pydicom.uid.generate_uid()
    without_pixels.save_as(root / "junk" / "nopixels.dcm")
    (root / "copies").mkdir()
    shutil.copy(ct[2], root / "copies" / "same_instance.dcm")
    shutil.copy(pydicom_file("rtplan.dcm"), root / "rtplan.dcm")
    shutil.copy(pydicom_file("test-SR.dcm"), root / "report")
    shutil.copy(pydicom_file("ExplVR_LitEndNoMeta.dcm"), root / "nometa")  # no preamble, no file meta
    return {"ct": ct[0].parent.resolve(), "duplicate": (root / "copies" / "same_instance.dcm").resolve()}


def series_named(result: ScanResult, description: str):
    matches = [series for series in result.all_series() if series.description == description]
    assert len(matches) == 1, [series.description for series in result.all_series()]
    return matches[0]


def reasons(result: ScanResult) -> dict[str, str]:
    return {problem.path.name: problem.reason for problem in result.errors}


def test_sample_export_hierarchy(sample_dir: Path) -> None:
    result = scan(sample_dir)
    assert [patient.patient_id for patient in result.patients] == ["77654033", "98890234"]
    assert len(result.all_series()) == 13
    archibald = result.patients[0]
    assert [study.study_date for study in archibald.studies] == ["19950903", "20010101"]
    ct = archibald.studies[0].series[0]
    assert (ct.modality, len(ct.instances), ct.rows, ct.columns) == ("CT", 4, 16, 16)
    assert [series.series_number for series in archibald.studies[1].series] == [1, 2, 3]
    assert "mixed orientations (localizer?)" in series_named(result, "Scout").warnings[0]
    # TINY_ALPHA holds CT objects stripped of their pixels: reported, not fatal
    assert len(result.errors) == 50
    assert all("TINY_ALPHA" in str(problem.path) and "no pixel data" in problem.reason for problem in result.errors)
    assert result.files_seen == result.files_read == 91
    assert result.skipped_non_dicom == 10  # README files and DICOMDIRs
    assert result.duplicates == 0


def test_scan_is_deterministic(sample_dir: Path) -> None:
    first, second = scan(sample_dir), scan(sample_dir)
    assert [s.files for s in first.all_series()] == [s.files for s in second.all_series()]
    for series in first.all_series():
        numbers = [instance.instance_number for instance in series.instances]
        assert numbers == sorted(numbers)


def test_messy_folder(tmp_path: Path) -> None:
    made = messy_folder(tmp_path)
    result = scan(tmp_path)
    ct, mr = series_named(result, "nested ct"), series_named(result, "implicit mr")
    assert len(ct.instances) == 5 and all(path.parent == made["ct"] for path in ct.files)
    assert len(mr.instances) == 4 and all(path.suffix == "" for path in mr.files)
    assert result.duplicates == 1 and made["duplicate"] not in ct.files  # the copy is counted, not used
    assert any("1 duplicate instance" in warning for warning in ct.warnings)
    problems = reasons(result)
    assert set(problems) == {"empty.dcm", "truncated.dcm", "nopixels.dcm"}
    assert "empty file" in problems["empty.dcm"]
    assert "truncated" in problems["truncated.dcm"]
    assert "no pixel data" in problems["nopixels.dcm"]
    assert result.skipped_non_dicom == 3  # README.txt, meta.json, scout.png


def test_non_image_objects_are_series_not_errors(tmp_path: Path) -> None:
    messy_folder(tmp_path)
    result = scan(tmp_path)
    modalities = {series.modality: series for series in result.all_series()}
    assert {"RTPLAN", "SR"} <= modalities.keys()
    for modality in ("RTPLAN", "SR"):
        assert modalities[modality].rows is None and modalities[modality].columns is None
    assert not any(problem.path.name in ("rtplan.dcm", "report", "nometa") for problem in result.errors)


def test_segmentation_is_flagged_non_image(tmp_path: Path) -> None:
    shutil.copy(pydicom_file("liver_1frame.dcm"), tmp_path / "seg.dcm")
    (series,) = scan(tmp_path).all_series()
    assert series.modality == "SEG" and series.rows is None


def test_series_warnings_sizes_and_orientations(tmp_path: Path) -> None:
    uid = pydicom.uid.generate_uid()
    study = pydicom.uid.generate_uid()
    write_series(tmp_path / "small", phantom((3, 16, 16)), SeriesSpec(series_uid=uid, study_uid=study))
    write_series(tmp_path / "large", phantom((3, 20, 24)), SeriesSpec(series_uid=uid, study_uid=study, seed=1))
    oblique = pydicom.uid.generate_uid()
    write_series(tmp_path / "axial", phantom((3, 16, 16)), SeriesSpec(series_uid=oblique, study_uid=study))
    write_series(tmp_path / "tilted", phantom((2, 16, 16)), SeriesSpec(series_uid=oblique, study_uid=study, direction=rotation("x", 30)))
    result = scan(tmp_path)
    assert any("different sizes: 16x16, 20x24" in warning for warning in result.series_by_uid(uid).warnings)
    assert any("mixed orientations" in warning for warning in result.series_by_uid(oblique).warnings)
    assert len(result.series_by_uid(oblique).instances) == 5


def test_pydicom_data_files(tmp_path: Path) -> None:
    for name in ("emri_small.dcm", "693_J2KR.dcm", "emri_small_jpeg_2k_lossless_too_short.dcm", "MR_truncated.dcm", "rtplan_truncated.dcm"):
        shutil.copy(pydicom_file(name), tmp_path / name)
    result = scan(tmp_path)
    enhanced = next(series for series in result.all_series() if series.instances[0].number_of_frames == 10)
    assert (enhanced.modality, enhanced.rows, enhanced.columns) == ("MR", 64, 64)
    assert len(result.all_series()) == 2
    problems = reasons(result)
    assert set(problems) == {"emri_small_jpeg_2k_lossless_too_short.dcm", "MR_truncated.dcm", "rtplan_truncated.dcm"}
    assert all("truncated" in reason for reason in problems.values())


def test_process_pool_gives_the_same_result(tmp_path: Path) -> None:
    """Workers forked from the main thread (the CLI) or started by a forkserver from a worker thread (the app)."""
    messy_folder(tmp_path)
    write_series(tmp_path / "more", phantom((30, 8, 8)), SeriesSpec(series_description="thirty"))
    serial, pooled = scan(tmp_path, workers=1), scan(tmp_path, workers=2)
    with ThreadPoolExecutor(1) as app_worker:
        from_thread = app_worker.submit(scan, tmp_path, workers=2).result(timeout=120)
    for result in (pooled, from_thread):
        assert [s.files for s in serial.all_series()] == [s.files for s in result.all_series()]
        assert serial.errors == result.errors
        assert (serial.skipped_non_dicom, serial.duplicates) == (result.skipped_non_dicom, result.duplicates)


def test_progress_and_cancel(tmp_path: Path) -> None:
    write_series(tmp_path, phantom((40, 8, 8)))
    calls = []
    scan(tmp_path, progress=lambda done, total, message="": calls.append((done, total)), workers=1)
    assert calls[-1] == (40, 40)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        scan(tmp_path, cancel=token)


def test_single_file_and_missing_path(tmp_path: Path) -> None:
    (path,) = write_series(tmp_path, phantom((1, 8, 8)))
    assert len(scan(path).all_series()) == 1
    with pytest.raises(MedtlError, match="no such file or folder"):
        scan(tmp_path / "absent")


def test_dicomdir_cross_check(tmp_path: Path, sample_dir: Path) -> None:
    export = tmp_path / "export"
    shutil.copytree(sample_dir, export, ignore=shutil.ignore_patterns("TINY_ALPHA", "DICOMDIR-*"))
    (export / "77654033" / "CT2" / "17136").unlink()
    (export / "98892003").rename(export / "moved")  # breaks its 17 references; the walk still finds the files
    os.rename(export / "77654033" / "CR1", export / "77654033" / "cr1")  # case changed: still matched
    write_series(export / "extra", phantom((2, 8, 8)), SeriesSpec(series_description="not in DICOMDIR"))
    result = scan(export)
    assert len(series_named(result, "not in DICOMDIR").instances) == 2
    (problem,) = result.errors
    assert problem.path.name == "DICOMDIR"
    assert "references 18 file(s) that are missing" in problem.reason and "77654033/CT2/17136" in problem.reason


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_broken_dicomdir_does_not_break_the_scan(tmp_path: Path, sample_dir: Path, damage: str) -> None:
    write_series(tmp_path / "s", phantom((3, 8, 8)))
    original = (sample_dir / "DICOMDIR").read_bytes()
    broken = original[:140] + b"\xff" * 50 if damage == "garbage" else original[: len(original) // 2]
    (tmp_path / "DICOMDIR").write_bytes(broken)
    result = scan(tmp_path)
    assert len(result.all_series()) == 1 and len(result.all_series()[0].instances) == 3
    (problem,) = result.errors
    assert problem.path.name == "DICOMDIR" and "the folder was scanned file by file" in problem.reason


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    (path, _) = write_series(tmp_path, phantom((2, 8, 8)))
    path.chmod(0)
    try:
        result = scan(tmp_path)
    finally:
        path.chmod(0o644)
    assert "cannot read the file" in reasons(result)[path.name]


@pytest.mark.parametrize("undefined_length", [False, True])
def test_header_longer_than_the_read_prefix(tmp_path: Path, undefined_length: bool) -> None:
    (path,) = write_series(tmp_path, phantom((1, 8, 8)))
    ds = pydicom.dcmread(path)
    item = pydicom.Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    ds.ReferencedImageSequence = [item] * 2000  # about 200 KB before Rows, Columns and Pixel Data
    ds["ReferencedImageSequence"].is_undefined_length = undefined_length
    ds.save_as(path)
    header = read_header(path)
    assert header is not None and (header.rows, header.columns, header.has_pixels) == (8, 8, True)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DicomReadError, match="truncated"):
        read_header(path)


def test_read_header(tmp_path: Path, sample_dir: Path) -> None:
    (path,) = write_series(tmp_path, phantom((1, 8, 12)), SeriesSpec(implicit_vr=True))
    header = read_header(path)
    assert header is not None and (header.rows, header.columns, header.modality, header.has_pixels) == (8, 12, "CT", True)
    assert header.pixel_spacing == (0.7, 0.7) and header.image_orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert np.allclose(header.image_position, (-120.0, -110.0, 40.0))
    assert read_header(sample_dir / "README.txt") is None
    assert read_header(sample_dir / "DICOMDIR") is None
    assert read_header(pydicom_file("ExplVR_BigEndNoMeta.dcm")).modality == "RTPLAN"
    (japanese,) = get_charset_files("chrH31.dcm")  # ISO 2022 escape sequences in the name
    assert read_header(Path(japanese)).patient_name == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    (tmp_path / "empty.dcm").write_bytes(b"")
    with pytest.raises(DicomReadError, match="empty.dcm: empty file"):
        read_header(tmp_path / "empty.dcm")
    (tmp_path / "empty").write_bytes(b"")
    assert read_header(tmp_path / "empty") is None

"""`load_series` / `load_path`: the kinds of input, metadata, progress, cancel and the errors a user can cause."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medtl.dicom.series import load_path, load_series
from medtl.errors import DicomReadError, GeometryError, MedtlError
from medtl.progress import CancelToken, Cancelled
from tests.dicomgen import SeriesSpec, phantom, rotation, write_enhanced, write_series


def data(name: str) -> Path:
    return Path(get_testdata_file(name, download=False))


def test_enhanced_frames_are_ordered_by_position_not_frame_number(tmp_path: Path) -> None:
    values = phantom((8, 20, 24))
    spec = SeriesSpec(direction=rotation("y", 30) @ np.diag([1.0, -1.0, -1.0]), spacing=(0.5, 0.6, 1.25))
    order = [5, 2, 7, 0, 3, 1, 6, 4]
    volume = load_series([write_enhanced(tmp_path / "e.dcm", values, spec, frame_order=order)])
    np.testing.assert_array_equal(volume.array, values)
    np.testing.assert_allclose(volume.direction, spec.direction, atol=1e-7)
    np.testing.assert_allclose(volume.spacing, spec.spacing)
    np.testing.assert_allclose(volume.origin, spec.origin, atol=1e-6)
    assert volume.metadata["kind"] == "enhanced" and volume.metadata["units"] == "HU"


def test_enhanced_with_a_missing_frame_position_is_interpolated(tmp_path: Path) -> None:
    values = phantom((12, 20, 24))
    volume = load_series([write_enhanced(tmp_path / "e.dcm", values, frame_order=[0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11])])
    assert volume.interpolated_slices == (4,) and volume.shape == values.shape


def test_classic_metadata(tmp_path: Path) -> None:
    spec = SeriesSpec(series_description="chest", patient_id="P123")
    ds_files = write_series(tmp_path, phantom((3, 10, 12)), spec)
    volume = load_series(ds_files)
    first = pydicom.dcmread(ds_files[0])
    assert volume.metadata["modality"] == "CT" and volume.metadata["units"] == "HU"
    assert volume.metadata["series_uid"] == first.SeriesInstanceUID and volume.metadata["study_uid"] == first.StudyInstanceUID
    assert volume.metadata["frame_of_reference_uid"] == first.FrameOfReferenceUID
    assert volume.metadata["series_description"] == "chest" and volume.metadata["patient_id"] == "P123"
    assert volume.metadata["photometric"] == "MONOCHROME2" and volume.metadata["kind"] == "classic"
    assert volume.metadata["instances"] == 3


def test_real_ct_single_slice() -> None:
    volume = load_series([data("CT_small.dcm")])
    ds = pydicom.dcmread(data("CT_small.dcm"))
    assert volume.shape == (1, 128, 128)
    np.testing.assert_allclose(volume.origin, [float(v) for v in ds.ImagePositionPatient])
    assert volume.spacing == (0.661468, 0.661468, 5.0)  # single slice: z spacing from SliceThickness
    assert "window_center" not in volume.metadata  # CT_small has none


def test_2d_images() -> None:
    rgb = load_series([data("US1_UNCR.dcm")])
    assert rgb.array.shape == (1, 480, 640, 3) and rgb.is_rgb and rgb.metadata["kind"] == "image2d"
    assert rgb.spacing == (1.0, 1.0, 1.0) and "1 mm pixels assumed" in rgb.warnings[0]
    sc = load_series([data("SC_rgb.dcm")])
    assert sc.spacing == (1.0, 1.0, 1.0) and sc.warnings == []  # PixelSpacing 1.0 in the file
    nm = load_series([data("JPEG-LL.dcm")])
    assert nm.spacing == (2.26, 2.26, 1.0) and nm.warnings == []


def test_imager_pixel_spacing_is_used_when_pixel_spacing_is_absent(tmp_path: Path) -> None:
    ds = pydicom.dcmread(data("RG1_UNCR.dcm"))
    del ds.PixelSpacing
    ds.ImagerPixelSpacing = [0.15, 0.2]
    ds.save_as(tmp_path / "cr.dcm")
    volume = load_series([tmp_path / "cr.dcm"])
    assert volume.spacing == (0.2, 0.15, 1.0) and volume.warnings == []


def test_unplaced_multiframe_is_stacked_with_a_warning() -> None:
    volume = load_series([data("emri_small.dcm")])
    assert volume.shape == (10, 64, 64) and volume.spacing == (1.0, 1.0, 1.0)
    assert any("no positions in space" in w for w in volume.warnings)
    np.testing.assert_array_equal(volume.array, pydicom.dcmread(data("emri_small.dcm")).pixel_array)


def test_rt_dose_is_placed_by_grid_frame_offsets_and_scaled_to_dose() -> None:
    ds = pydicom.dcmread(data("rtdose.dcm"))
    volume = load_series([data("rtdose.dcm")])
    assert volume.shape == (15, 10, 10) and volume.warnings == []
    assert volume.spacing == (10.0, 10.0, 5.0) and volume.metadata["units"] == ds.DoseUnits
    np.testing.assert_allclose(volume.array, ds.pixel_array * float(ds.DoseGridScaling), rtol=1e-6)


def test_non_images_and_broken_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DicomReadError, match="liver.dcm: is a SEG object, not an image"):
        load_series([data("liver.dcm")])
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DicomReadError, match="notes.txt: not a DICOM file"):
        load_series([tmp_path / "notes.txt"])
    with pytest.raises(MedtlError, match="no DICOM files"):
        load_series([])


def test_files_of_several_series_are_refused(tmp_path: Path) -> None:
    files = write_series(tmp_path / "a", phantom((2, 8, 8))) + write_series(tmp_path / "b", phantom((2, 8, 8)))
    with pytest.raises(MedtlError, match="belong to 2 different series"):
        load_series(files)


def test_inconsistent_slice_sizes_are_refused(tmp_path: Path) -> None:
    files = write_series(tmp_path / "a", phantom((3, 8, 8)), SeriesSpec(series_uid="1.2.3"))
    files += write_series(tmp_path / "b", phantom((1, 8, 10)), SeriesSpec(series_uid="1.2.3", origin=(-120.0, -110.0, 47.5)))
    with pytest.raises(GeometryError, match="image is 8x10"):
        load_series(files)


def test_progress_and_cancel(tmp_path: Path) -> None:
    files = write_series(tmp_path, phantom((6, 8, 8)))
    seen: list[tuple[int, int]] = []
    load_series(files, progress=lambda done, total, message="": seen.append((done, total)))
    assert seen[-1] == (6, 6) and all(total == 6 for _, total in seen)
    assert [done for done, _ in seen] == sorted({done for done, _ in seen})  # increasing, one call per batch of slices
    token = CancelToken()

    def cancel_after_first(done: int, total: int, message: str = "") -> None:
        token.cancel()

    with pytest.raises(Cancelled):
        load_series(files, progress=cancel_after_first, cancel=token)


def test_load_path_picks_the_only_series_or_the_requested_one(tmp_path: Path) -> None:
    values = phantom((4, 10, 12))
    write_series(tmp_path / "one", values)
    np.testing.assert_array_equal(load_path(tmp_path / "one").array, values)
    write_series(tmp_path / "two", values + 1, SeriesSpec(series_uid="1.2.826.0.1.99", series_description="second", modality="MR"))
    with pytest.raises(MedtlError) as raised:
        load_path(tmp_path)
    message = str(raised.value)
    assert "holds 2 image series" in message and "1.2.826.0.1.99  MR  'second'  4 instance(s)" in message
    np.testing.assert_array_equal(load_path(tmp_path, series_uid="1.2.826.0.1.99").array, values + 1)
    with pytest.raises(MedtlError, match="no series 9.9.9"):
        load_path(tmp_path, series_uid="9.9.9")


def test_load_path_on_a_file_and_on_nothing(tmp_path: Path) -> None:
    assert load_path(data("MR_small.dcm")).shape == (1, 64, 64)
    with pytest.raises(MedtlError, match="no such file or folder"):
        load_path(tmp_path / "missing")
    shutil.copy(data("liver.dcm"), tmp_path / "seg.dcm")
    with pytest.raises(MedtlError, match="no DICOM image series"):
        load_path(tmp_path)


def test_per_slice_rescale_is_applied_slice_by_slice(tmp_path: Path) -> None:
    """PET-like: each file has its own slope; the volume is float32 in one unit."""
    values = phantom((6, 10, 12))
    same = {"series_uid": "1.2.3", "study_uid": "1.2.4"}
    files = write_series(tmp_path / "a", values[:3], SeriesSpec(**same))
    files += write_series(tmp_path / "b", values[3:] + 0.5, SeriesSpec(**same, slope=0.5, origin=(-120.0, -110.0, 47.5)))
    volume = load_series(files)
    assert volume.array.dtype == np.float32
    np.testing.assert_array_equal(volume.array[:3], values[:3])
    np.testing.assert_array_equal(volume.array[3:], values[3:] + 0.5)

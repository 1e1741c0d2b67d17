"""Damaged or lying DICOM: never silently wrong values, never a traceback, always one line naming the file and the tag."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import Decoder
from pydicom.uid import RLELossless

from medtl.cli import main
from medtl.dicom import series
from medtl.dicom.scan import scan
from medtl.dicom.series import load_path, load_series
from medtl.errors import DicomReadError, GeometryError, MedtlError
from tests.dicomgen import SeriesSpec, phantom, write_series


def data(name: str) -> Path:
    return Path(get_testdata_file(name, download=False))


def ct_series(folder: Path, slices: int = 6, **spec: object) -> list[Path]:
    return write_series(folder, phantom((slices, 10, 12)), SeriesSpec(order="sorted", **spec))  # type: ignore[arg-type]


def edit(files: list[Path], change: Callable[[Dataset], None]) -> None:
    for file in files:
        ds = pydicom.dcmread(file)
        change(ds)
        ds.save_as(file)


def set_raw(files: list[Path], keyword: str, raw: bytes) -> None:
    """Give ``keyword`` the bytes ``raw`` as its value, whatever they are (pydicom refuses to write most damage itself)."""
    raw = raw.ljust(max(10, len(raw) + len(raw) % 2))  # DS and IS values may end in spaces
    placeholder = ("-.314159265358979323846" * 2)[: len(raw)]
    edit(files, lambda ds: setattr(ds, keyword, placeholder))
    for file in files:
        content = file.read_bytes()
        assert content.count(placeholder.encode()) == 1
        file.write_bytes(content.replace(placeholder.encode(), raw))


def convert(folder: Path, output: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["convert", str(folder), "-o", str(output)])
    return code, capsys.readouterr().err


# --- silently wrong values --------------------------------------------------------------------


@pytest.mark.parametrize(("keyword", "value"), [("RescaleSlope", b"NaN"), ("RescaleIntercept", b"inf"), ("RescaleSlope", b"0")])
def test_a_rescale_that_is_not_finite_or_zero_is_refused_and_convert_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keyword: str, value: bytes
) -> None:
    files = ct_series(tmp_path / "ct")
    set_raw(files[2:3], keyword, value)
    code, err = convert(tmp_path / "ct", tmp_path / "out.nii.gz", capsys)
    assert code == 2 and f"{files[2].name}: {keyword} (0028,105" in err and err.count("\n") == 1
    assert not (tmp_path / "out.nii.gz").exists()


def test_a_huge_slope_that_overflows_float32_is_refused(tmp_path: Path) -> None:
    files = ct_series(tmp_path)
    set_raw(files[:1], "RescaleSlope", b"1e38")
    with pytest.raises(DicomReadError, match="not finite numbers after the rescale"):
        load_series(files)


def test_bits_allocated_8_on_16_bit_pixels_is_refused(tmp_path: Path) -> None:
    files = ct_series(tmp_path)

    def eight_bits(ds: Dataset) -> None:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7

    edit(files, eight_bits)
    with pytest.raises(DicomReadError, match=r"IM00001.dcm: the Pixel Data holds 240 bytes but .* make 120; the header does not describe the pixels"):
        load_path(tmp_path)


def test_rows_smaller_than_the_pixel_data_are_refused(tmp_path: Path) -> None:
    files = ct_series(tmp_path)
    edit(files, lambda ds: setattr(ds, "Rows", 5))
    with pytest.raises(DicomReadError, match=r"\(5 x 12 x 1 x 1 x 16 bits\) make 120"):
        load_path(tmp_path)


def test_a_little_trailing_padding_is_read_with_a_warning() -> None:
    padded, plain = load_series([data("MR_small_padded.dcm")]), load_series([data("MR_small.dcm")])
    np.testing.assert_array_equal(padded.array, plain.array)
    assert "hold up to 128 bytes of pixel data beyond what their header describes" in padded.warnings[0]


@pytest.mark.parametrize("damage", ["header cut", "pixels cut", "not DICOM"])
def test_a_broken_slice_in_the_middle_is_named_not_interpolated(tmp_path: Path, damage: str) -> None:
    files = ct_series(tmp_path, slices=10)
    content = files[4].read_bytes()
    files[4].write_bytes({"header cut": content[:300], "pixels cut": content[:-50], "not DICOM": b"junk" * 100}[damage])
    scanned = scan(tmp_path).all_series()[0].files
    assert files[4] not in scanned and len(scanned) == 9
    for load in (lambda: load_path(tmp_path), lambda: load_series(scanned)):  # the CLI's loader and the app's
        with pytest.raises(DicomReadError, match=f"{files[4].name}: .*(belongs|may belong) to this series.*remove it to load the series without it"):
            load()
    files[4].unlink()  # the user's choice: then the gap is interpolated, and said so
    assert load_path(tmp_path).interpolated_slices == (4,)


def test_a_broken_last_slice_of_the_series_is_named(tmp_path: Path) -> None:
    files = ct_series(tmp_path, slices=6)
    files[-1].write_bytes(files[-1].read_bytes()[:-50])
    with pytest.raises(DicomReadError, match=f"{files[-1].name}: truncated.*it belongs to this series"):
        load_path(tmp_path)


def test_same_sop_instance_uid_with_different_pixels_is_refused(tmp_path: Path) -> None:
    files = ct_series(tmp_path)
    twin = pydicom.dcmread(files[1])
    twin.PixelData = (twin.pixel_array + 5).astype(np.int16).tobytes()
    twin.save_as(tmp_path / "copy.dcm")
    series = scan(tmp_path).all_series()[0]
    assert len(series.instances) == 7 and "1 file(s) share a SOP Instance UID with another file but differ from it" in series.warnings[0]
    with pytest.raises(GeometryError, match="IM00002.dcm and copy.dcm have the same SOP Instance UID but different pixels"):
        load_path(tmp_path)


def test_same_sop_instance_uid_at_another_position_is_refused(tmp_path: Path) -> None:
    files = ct_series(tmp_path, slices=10)
    uid = pydicom.dcmread(files[1]).SOPInstanceUID
    edit(files[2:3], lambda ds: setattr(ds, "SOPInstanceUID", uid))
    with pytest.raises(GeometryError, match="same SOP Instance UID but different positions"):
        load_path(tmp_path)


def test_an_identical_copy_of_an_instance_is_used_once(tmp_path: Path) -> None:
    files = ct_series(tmp_path / "a")
    shutil.copy(files[1], tmp_path / "a" / "copy.dcm")
    assert load_path(tmp_path / "a").shape == (6, 10, 12)
    volume = load_series([*files, tmp_path / "a" / "copy.dcm"])  # given the copy directly, it is named
    assert volume.shape == (6, 10, 12) and "ignored (copy.dcm)" in volume.warnings[0]


def test_one_series_uid_in_two_frames_of_reference_is_refused_not_interleaved(tmp_path: Path) -> None:
    same = {"series_uid": "1.2.3", "study_uid": "1.2.4"}
    ct_series(tmp_path / "a", slices=4, frame_of_reference_uid="1.2.5", **same)
    ct_series(tmp_path / "b", slices=4, frame_of_reference_uid="1.2.6", origin=(-120.0, -110.0, 41.25), seed=1, **same)
    with pytest.raises(GeometryError, match=r"2 different frames of reference \(FrameOfReferenceUID \(0020,0052\) differs: e.g. a/IM00001.dcm, b/IM00001.dcm\)"):
        load_path(tmp_path)


# --- one-line reasons instead of tracebacks ------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "raw", "reason"),
    [
        ("ImagePositionPatient", b"nan\\0\\0 ", r"ImagePositionPatient \(0020,0032\) is .*nan.*, not a finite number"),
        ("ImagePositionPatient", b"0\\inf\\0 ", r"ImagePositionPatient \(0020,0032\) is .*inf.*, not a finite number"),
        ("ImageOrientationPatient", b"1\\0\\0\\0\\nan\\0 ", r"ImageOrientationPatient \(0020,0037\) is .*nan.*, not a finite number"),
        ("PixelSpacing", b"inf\\inf ", r"PixelSpacing \(0028,0030\) is .*inf.*, not a finite number"),
        ("PixelSpacing", b"1e308\\1e308 ", r"PixelSpacing \(0028,0030\) is .*; no value may exceed 10000"),
        ("PixelSpacing", b"-1\\-1 ", r"PixelSpacing \(0028,0030\) is \[-1.0, -1.0\]; a pixel spacing must be positive"),
        ("RescaleSlope", b"x.25", r"RescaleSlope \(0028,1053\) is 'x.25', not a number"),
        ("NumberOfFrames", b"1A", r"NumberOfFrames \(0028,0008\) is '1A', not a number"),
    ],
)
def test_bad_geometry_and_pixel_values_are_one_line_naming_the_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keyword: str, raw: bytes, reason: str
) -> None:
    files = ct_series(tmp_path / "ct")
    set_raw(files[3:4], keyword, raw)
    with pytest.raises(DicomReadError, match=f"{files[3].name}: {reason}"):
        load_path(tmp_path / "ct")
    code, err = convert(tmp_path / "ct", tmp_path / "out.nii.gz", capsys)
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "out.nii.gz").exists()


def test_a_window_that_is_not_a_number_is_ignored_with_a_warning(tmp_path: Path) -> None:
    files = ct_series(tmp_path)
    set_raw(files, "WindowWidth", b"abc ")
    volume = load_path(tmp_path)
    assert "window_width" not in volume.metadata
    assert volume.warnings == ["IM00001.dcm: WindowWidth (0028,1051) is 'abc', not a number; its display window is ignored"]


def test_a_bad_vr_and_a_bad_dose_scaling_are_read_errors(tmp_path: Path) -> None:
    with pytest.raises(DicomReadError, match=r"badVR.dcm: NumberOfFrames \(0028,0008\) is '1A', not a number"):
        load_series([data("badVR.dcm")])
    dose = tmp_path / "dose.dcm"
    shutil.copy(data("rtdose.dcm"), dose)
    set_raw([dose], "DoseGridScaling", b"abc ")
    with pytest.raises(DicomReadError, match=r"dose.dcm: DoseGridScaling \(3004,000E\) is 'abc', not a number"):
        load_series([dose])


def test_missing_rows_is_a_read_error(tmp_path: Path) -> None:
    files = ct_series(tmp_path)
    edit(files[:1], lambda ds: delattr(ds, "Rows"))
    with pytest.raises(DicomReadError, match="IM00001.dcm: is not an image"):
        load_series(files)


def test_a_decoder_panic_is_a_read_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class PanicException(BaseException):  # what pyo3 raises when a Rust decoder panics
        pass

    def panic(*args: object, **kwargs: object) -> None:
        raise PanicException("index out of bounds")

    monkeypatch.setattr(Decoder, "as_array", panic)
    files = ct_series(tmp_path, transfer_syntax=RLELossless)
    with pytest.raises(DicomReadError, match=r"IM0000\d.dcm: cannot decode pixel data \(RLE Lossless\): index out of bounds"):
        load_series(files)


def test_declared_sizes_are_bounded_by_the_file_before_any_memory_is_asked(tmp_path: Path) -> None:
    files = ct_series(tmp_path / "plain")
    edit(files, lambda ds: setattr(ds, "NumberOfFrames", 1))

    def huge(ds: Dataset) -> None:
        ds.Rows = ds.Columns = 65535

    rle = ct_series(tmp_path / "rle", transfer_syntax=RLELossless)
    edit(rle[:1], huge)
    with pytest.raises(DicomReadError, match=r"IM00001.dcm: .*\(65535 x 65535 x 1 x 1 x 16 bits\) make 8192 MiB of pixels, impossible in a file of"):
        load_series(rle[:1])
    edit(files[:1], lambda ds: setattr(ds, "NumberOfFrames", 100000))
    with pytest.raises(DicomReadError, match="the Pixel Data holds 240 bytes"):
        load_series(files[:1])


def test_a_volume_larger_than_memory_is_refused_with_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(series, "_physical_memory", lambda: 1000.0)
    with pytest.raises(MedtlError, match=r"the volume \(6 x 10 x 12 int16\) needs 0.0 GiB, more than this computer's memory"):
        load_series(ct_series(tmp_path))

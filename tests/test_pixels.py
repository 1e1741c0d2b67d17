"""Pixel decoding to modality units: real files from pydicom / pydicom-data and generated series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels.decoders.base import Decoder
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from medtl.dicom.pixels import Rescale, ValuesDoNotFit, decode_frame, modality_dtypes, write_modality
from medtl.dicom.series import load_series
from medtl.errors import DicomReadError
from tests.dicomgen import SeriesSpec, phantom, write_series


def data(name: str) -> Path:
    return Path(get_testdata_file(name, download=False))


def load(name: str) -> np.ndarray:
    return load_series([data(name)]).array


@pytest.mark.parametrize(
    ("plain", "compressed"),
    [
        ("MR_small.dcm", "MR_small_RLE.dcm"),
        ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm"),
        ("MR_small.dcm", "MR_small_jp2klossless.dcm"),
        ("MR_small.dcm", "MR_small_bigendian.dcm"),
        ("MR_small.dcm", "MR_small_implicit.dcm"),
        ("emri_small.dcm", "emri_small_RLE.dcm"),
        ("emri_small.dcm", "emri_small_jpeg_2k_lossless.dcm"),
        ("SC_rgb.dcm", "SC_rgb_rle.dcm"),
        ("US1_UNCR.dcm", "US1_J2KR.dcm"),
        ("RG1_UNCR.dcm", "RG1_J2KR.dcm"),
    ],
)
def test_compressed_twins_decode_to_the_same_values(plain: str, compressed: str) -> None:
    expected, actual = load(plain), load(compressed)
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)


def test_ct_is_rescaled_to_hu() -> None:
    ds = pydicom.dcmread(data("CT_small.dcm"))
    volume = load_series([data("CT_small.dcm")])
    assert volume.metadata["units"] == "HU" and volume.array.dtype == np.int16
    np.testing.assert_array_equal(volume.array[0], ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept))


def test_non_integral_slope_gives_float32() -> None:
    ds = pydicom.dcmread(data("MR2_UNCR.dcm"))
    array = load("MR2_UNCR.dcm")
    assert array.dtype == np.float32
    np.testing.assert_allclose(array[0], ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept), rtol=1e-6)


def test_enhanced_ct_rescale_comes_from_functional_groups() -> None:
    ds = pydicom.dcmread(data("eCT_Supplemental.dcm"))
    volume = load_series([data("eCT_Supplemental.dcm")])
    assert "RescaleIntercept" not in ds and volume.metadata["units"] == "HU"
    # The slice normal (row x column cosines) points to -z (feet) here, so frame 2 comes first.
    np.testing.assert_array_equal(volume.array, ds.pixel_array[::-1].astype(np.int32) - 1024)
    assert (volume.metadata["window_center"], volume.metadata["window_width"]) == (49.0, 102.0)


def test_monochrome1_keeps_modality_values_and_records_photometric() -> None:
    ds = pydicom.dcmread(data("RG1_UNCR.dcm"))
    volume = load_series([data("RG1_UNCR.dcm")])
    assert volume.metadata["photometric"] == "MONOCHROME1"
    np.testing.assert_array_equal(volume.array[0], ds.pixel_array)  # not inverted


def test_ybr_and_palette_become_rgb() -> None:
    ybr = load("SC_rgb_jpeg_gdcm.dcm")  # YBR_FULL_422 JPEG baseline
    np.testing.assert_allclose(ybr.astype(int), load("SC_rgb.dcm").astype(int), atol=6)  # lossy
    palette = load_series([data("OBXXXX1A.dcm")])
    assert palette.array.shape == (1, 600, 800, 3) and palette.array.dtype == np.uint16
    assert palette.metadata["photometric"] == "RGB"


def test_jpeg_lossless_8_bit() -> None:
    array = load("JPGLosslessP14SV1_1s_1f_8b.dcm")
    assert array.dtype == np.uint8 and array.shape == (1, 768, 1024)


def test_unsigned_storage_with_intercept_and_slope(tmp_path: Path) -> None:
    values = phantom((3, 16, 20))
    unsigned = load_series(write_series(tmp_path / "u", values, SeriesSpec(unsigned=True, intercept=-1024)))
    np.testing.assert_array_equal(unsigned.array, values)
    assert unsigned.array.dtype == np.int16  # 16 stored bits + intercept could overflow int16; values do not
    on_grid = values * 0.5 + 0.25  # on the stored grid -512.25 + 0.5 k
    sloped = load_series(write_series(tmp_path / "s", on_grid, SeriesSpec(slope=0.5, intercept=-512.25)))
    assert sloped.array.dtype == np.float32
    np.testing.assert_array_equal(sloped.array, on_grid)


def test_values_beyond_int16_widen_the_output(tmp_path: Path) -> None:
    values = phantom((3, 16, 20)) + 40000.0  # stored uint16 up to ~42000 + intercept 0
    volume = load_series(write_series(tmp_path, values, SeriesSpec(unsigned=True, intercept=0, modality="MR")))
    assert volume.array.dtype == np.uint16
    np.testing.assert_array_equal(volume.array, values)
    stored = np.array([[40000]], dtype=np.uint16)
    with pytest.raises(ValuesDoNotFit):
        write_modality(stored, Rescale(1, -1024), np.empty((1, 1), np.int16))


def test_dtype_choice() -> None:
    ds = pydicom.Dataset()
    ds.update({"BitsStored": 12, "BitsAllocated": 16, "PixelRepresentation": 0, "SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2"})
    assert modality_dtypes(ds, [Rescale(1, -1024)]) == [np.int16]
    assert modality_dtypes(ds, [Rescale()]) == [np.int16]
    assert modality_dtypes(ds, [Rescale(2.5, 0)]) == [np.float32]
    ds.BitsStored = 16
    assert modality_dtypes(ds, [Rescale()]) == [np.uint16]
    assert modality_dtypes(ds, [Rescale(1, -1024)]) == [np.int16, np.int32]


def test_missing_decoder_names_syntax_and_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(Decoder, "is_available", property(lambda self: False))
    for name, syntax, package in [
        ("MR_small_jpeg_ls_lossless.dcm", JPEGLSLossless, "pyjpegls"),
        ("MR_small_jp2klossless.dcm", JPEG2000Lossless, "pylibjpeg-openjpeg"),
        ("MR_small_RLE.dcm", RLELossless, "pylibjpeg-rle"),
    ]:
        with pytest.raises(DicomReadError) as raised:
            load_series([data(name)])
        message = str(raised.value)
        assert name in message and syntax.name in message and "pip install" in message and package in message


def test_undecodable_file_is_a_read_error() -> None:
    with pytest.raises(DicomReadError, match="JPEG-lossy.dcm: cannot decode pixel data"):
        load_series([data("JPEG-lossy.dcm")])  # a known-broken 12-bit JPEG only GDCM reads
    ds = pydicom.dcmread(data("MR_small.dcm"), stop_before_pixels=True)
    with pytest.raises(DicomReadError, match="no pixel data"):
        decode_frame(ds, Path("x.dcm"))


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless])
def test_compressed_generated_series_are_exact(tmp_path: Path, syntax: str) -> None:
    values = phantom((4, 64, 64))  # openjpeg's encoder needs tiles of at least 2**5 pixels
    volume = load_series(write_series(tmp_path, values, SeriesSpec(transfer_syntax=syntax)))
    np.testing.assert_array_equal(volume.array, values)


def test_truncated_pixel_data_is_a_read_error(tmp_path: Path) -> None:
    files = write_series(tmp_path, phantom((3, 16, 20)))
    files[1].write_bytes(files[1].read_bytes()[:-100])
    with pytest.raises(DicomReadError, match=f"{files[1].name}: truncated"):
        load_series(files)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR2_UNCR.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm"])
def test_direct_native_read_matches_pydicom(name: str) -> None:
    ds = pydicom.dcmread(data(name))
    np.testing.assert_array_equal(decode_frame(ds, data(name)), ds.pixel_array)

"""medtl's volumes against SimpleITK (GDCM), which uses the same [z,y,x] / (x,y,z) / LPS conventions.

Where both are right they agree exactly (values, spacing, origin, direction). medtl deliberately
differs here, and each difference is tested below:

- Missing slice: SimpleITK stacks the slices it has and reports an averaged spacing (wrong world
  positions past the gap); medtl restores the uniform grid, interpolating the missing slice.
- Gantry tilt: SimpleITK keeps the identity direction with the distance between positions as
  spacing (slices land in the wrong place); medtl resamples each slice in-plane onto the
  orthogonal grid whose z axis is the slice normal.
- MONOCHROME1: SimpleITK inverts the values (``2**BitsStored - 1 - v``); medtl keeps modality
  values and records ``photometric: MONOCHROME1`` for the viewer.
- RT Dose: SimpleITK returns stored integers; medtl applies DoseGridScaling (values in Gy).
- Enhanced multi-frame whose normal opposes the frame order: SimpleITK keeps frame order with a
  z axis along it (a left-handed direction); medtl orders along row x column. Same world grid.
- Single slice: SimpleITK reports z spacing 1 where medtl uses SliceThickness (no voxel moves).
- Output dtype: SimpleITK widens int16 + intercept to int32 and slope != 1 to float64; medtl
  keeps int16 when the values fit, float32 otherwise.
"""

from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file

from medtl.cli import main
from medtl.dicom.series import load_series
from medtl.dicom.volume import Volume
from tests.dicomgen import SeriesSpec, phantom, rotation, write_series

sitk.ProcessObject.SetGlobalWarningDisplay(False)

SPECS = {
    "axial_shuffled": SeriesSpec(),
    "reversed_implicit": SeriesSpec(order="reversed", implicit_vr=True, extension=""),
    "oblique": SeriesSpec(direction=rotation("x", 17) @ rotation("z", -33) @ rotation("y", 8), spacing=(0.8, 0.6, 1.5)),
    "flipped": SeriesSpec(direction=np.diag([-1.0, 1.0, -1.0])),
    "sagittal_unsigned": SeriesSpec(direction=np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float), unsigned=True),
    "slope": SeriesSpec(slope=0.5, intercept=-512.25),
}


def data(name: str) -> str:
    return str(get_testdata_file(name, download=False))


def read_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def assert_same_grid(volume: Volume, image: sitk.Image, values_atol: float = 0.0) -> None:
    np.testing.assert_allclose(volume.array, sitk.GetArrayViewFromImage(image).reshape(volume.array.shape), atol=values_atol, rtol=0)
    np.testing.assert_allclose(volume.spacing, image.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(volume.origin, image.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(volume.direction, np.reshape(image.GetDirection(), (3, 3)), atol=1e-6)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_generated_series_match_simpleitk(tmp_path: Path, name: str) -> None:
    values = phantom((10, 24, 28))
    if name == "slope":
        values = values * 0.5 + 0.25
    write_series(tmp_path, values, SPECS[name])
    assert_same_grid(load_series(sorted(tmp_path.iterdir())), read_series(tmp_path))


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR2_UNCR.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "US1_J2KR.dcm", "SC_rgb.dcm", "emri_small.dcm"]
)
def test_real_files_match_simpleitk(name: str) -> None:
    volume, image = load_series([data(name)]), sitk.ReadImage(data(name))
    np.testing.assert_allclose(volume.array, sitk.GetArrayViewFromImage(image).reshape(volume.array.shape), rtol=1e-6)
    np.testing.assert_allclose(volume.origin, image.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(volume.direction, np.reshape(image.GetDirection(), (3, 3)), atol=1e-6)
    np.testing.assert_allclose(volume.spacing[:2], image.GetSpacing()[:2], atol=1e-6)


def test_single_slice_z_spacing_differs() -> None:
    volume, image = load_series([data("MR_small.dcm")]), sitk.ReadImage(data("MR_small.dcm"))
    assert image.GetSpacing()[2] == 1.0 and volume.spacing[2] == 0.8  # SliceThickness


def test_gap_simpleitk_averages_medtl_interpolates(tmp_path: Path) -> None:
    values = phantom((12, 24, 28))
    write_series(tmp_path, values, SeriesSpec(drop_slices=(4,)))
    volume, image = load_series(sorted(tmp_path.iterdir())), read_series(tmp_path)
    assert image.GetSize()[2] == 11 and image.GetSpacing()[2] == pytest.approx(27.5 / 10)  # slices after the gap misplaced
    assert volume.shape[0] == 12 and volume.spacing[2] == pytest.approx(2.5) and volume.interpolated_slices == (4,)
    sitk_array = sitk.GetArrayViewFromImage(image)
    np.testing.assert_array_equal(volume.array[[0, 1, 2, 3, 5, 6]], sitk_array[[0, 1, 2, 3, 4, 5]])


def test_tilt_simpleitk_keeps_the_shear_medtl_resamples(tmp_path: Path) -> None:
    values = phantom((10, 30, 28))
    spacing = (0.7, 0.7, 2.5)
    write_series(tmp_path, values, SeriesSpec(spacing=spacing, gantry_tilt=float(np.degrees(np.arctan(0.7 / 2.5)))))
    volume, image = load_series(sorted(tmp_path.iterdir())), read_series(tmp_path)
    assert image.GetSpacing()[2] == pytest.approx(np.hypot(2.5, 0.7))  # distance between positions, not along the normal
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), np.eye(3), atol=1e-9)
    # The true position of stored row y of slice z is y + z rows: medtl puts it there, SimpleITK at row y.
    sitk_array = sitk.GetArrayViewFromImage(image)
    for z in range(10):
        np.testing.assert_array_equal(volume.array[z, z:], sitk_array[z, : 30 - z])
    assert volume.spacing[2] == pytest.approx(2.5)


def test_monochrome1_simpleitk_inverts_medtl_keeps_values() -> None:
    volume, image = load_series([data("RG1_UNCR.dcm")]), sitk.ReadImage(data("RG1_UNCR.dcm"))
    bits = int(pydicom.dcmread(data("RG1_UNCR.dcm"), stop_before_pixels=True).BitsStored)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image).astype(np.int64), (1 << bits) - 1 - volume.array.astype(np.int64))
    assert volume.metadata["photometric"] == "MONOCHROME1"


def test_rt_dose_simpleitk_gives_stored_values_medtl_dose() -> None:
    volume, image = load_series([data("rtdose.dcm")]), sitk.ReadImage(data("rtdose.dcm"))
    scaling = float(pydicom.dcmread(data("rtdose.dcm"), stop_before_pixels=True).DoseGridScaling)
    np.testing.assert_allclose(volume.array, sitk.GetArrayViewFromImage(image) * scaling, rtol=1e-6)
    np.testing.assert_allclose(volume.origin, image.GetOrigin())
    np.testing.assert_allclose(volume.spacing, image.GetSpacing())


def test_enhanced_ct_same_world_grid_other_slice_order() -> None:
    volume, image = load_series([data("eCT_Supplemental.dcm")]), sitk.ReadImage(data("eCT_Supplemental.dcm"))
    sitk_array = sitk.GetArrayViewFromImage(image)
    for index in [(0, 0, 0), (100, 200, 1), (511, 300, 0), (256, 256, 1)]:
        point = volume.index_to_lps(np.array(index))[0]
        x, y, z = image.TransformPhysicalPointToIndex(point.tolist())
        assert volume.array[index[2], index[1], index[0]] == sitk_array[z, y, x]
    assert np.linalg.det(volume.direction) == pytest.approx(1.0)


def test_converted_nifti_has_the_same_world_coordinates_in_nibabel_and_simpleitk(tmp_path: Path) -> None:
    spec = SPECS["oblique"]
    values = phantom((10, 24, 28))
    write_series(tmp_path / "dicom", values, spec)
    out = tmp_path / "ct.nii.gz"
    assert main(["convert", str(tmp_path / "dicom"), "-o", str(out)]) == 0
    by_nibabel, by_sitk, from_dicom = nibabel.load(out), sitk.ReadImage(str(out)), read_series(tmp_path / "dicom")
    for index in [(0, 0, 0), (27, 0, 0), (0, 23, 9), (13, 11, 4), (27, 23, 9)]:
        ras = nibabel.affines.apply_affine(by_nibabel.affine, index)
        lps = np.array(by_sitk.TransformIndexToPhysicalPoint(index))
        np.testing.assert_allclose(ras * [-1, -1, 1], lps, atol=1e-3)  # NIfTI stores float32 affines
        np.testing.assert_allclose(lps, from_dicom.TransformIndexToPhysicalPoint(index), atol=1e-3)
        assert by_sitk[index] == values[index[2], index[1], index[0]] == np.asarray(by_nibabel.dataobj)[index]


def test_rgb_nifti_reads_back_as_rgb_in_simpleitk(tmp_path: Path) -> None:
    out = tmp_path / "us.nii.gz"
    assert main(["convert", data("US1_UNCR.dcm"), "-o", str(out)]) == 0
    image = sitk.ReadImage(str(out))
    assert image.GetNumberOfComponentsPerPixel() == 3
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image), load_series([data("US1_UNCR.dcm")]).array[0])

"""`write_nifti` writes NIfTI-1 itself: the same file nibabel writes, read alike by nibabel and SimpleITK."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk

from medtl.cli.convert_command import axis_codes
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.export.nifti import DATATYPE_CODES, write_nifti
from tests.dicomgen import rotation

OBLIQUE = rotation("x", 17) @ rotation("z", -33) @ rotation("y", 8)
DIRECTIONS = {
    "axial": np.eye(3),
    "flipped_z": np.diag([1.0, -1.0, -1.0]),
    "sagittal": np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float),
    "oblique": OBLIQUE,
    "oblique_left_handed": OBLIQUE @ np.diag([1.0, 1.0, -1.0]),
}
SPACING, ORIGIN = (0.7, 0.9, 2.5), (12.0, -40.0, 7.5)


def volume_of(dtype: str, direction: np.ndarray, rgb: bool = False) -> Volume:
    values = np.random.default_rng(0).normal(0, 100, (4, 5, 6, 3) if rgb else (4, 5, 6))
    return Volume(values.astype(dtype), SPACING, ORIGIN, direction)


def payload(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("direction", sorted(DIRECTIONS))
@pytest.mark.parametrize("dtype", [*DATATYPE_CODES, ">i2", ">f4"])
def test_bytes_are_what_nibabel_writes(tmp_path: Path, dtype: str, direction: str, suffix: str) -> None:
    volume = volume_of(dtype, DIRECTIONS[direction])
    nibabel.save(volume.to_nifti(), tmp_path / f"nibabel{suffix}")
    write_nifti(volume, tmp_path / f"medtl{suffix}")
    assert payload(tmp_path / f"medtl{suffix}") == payload(tmp_path / f"nibabel{suffix}")


@pytest.mark.parametrize("direction", ["axial", "oblique"])
def test_rgb_bytes_are_what_nibabel_writes(tmp_path: Path, direction: str) -> None:
    volume = volume_of("uint8", DIRECTIONS[direction], rgb=True)
    nibabel.save(volume.to_nifti(), tmp_path / "nibabel.nii")
    write_nifti(volume, tmp_path / "medtl.nii.gz")
    assert payload(tmp_path / "medtl.nii.gz") == payload(tmp_path / "nibabel.nii")


@pytest.mark.parametrize("direction", sorted(DIRECTIONS))
@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "int32", "float32", "float64"])
def test_nibabel_and_simpleitk_read_the_volume_back(tmp_path: Path, dtype: str, direction: str) -> None:
    volume = volume_of(dtype, DIRECTIONS[direction])
    path = write_nifti(volume, tmp_path / "v.nii.gz")
    image = nibabel.load(path)
    np.testing.assert_allclose(image.affine, volume.affine_ras(), atol=1e-5)
    np.testing.assert_allclose(image.get_qform(), volume.affine_ras(), atol=1e-5)
    assert image.get_data_dtype() == np.dtype(dtype)
    np.testing.assert_array_equal(np.asarray(image.dataobj).transpose(2, 1, 0), volume.array)
    itk = sitk.ReadImage(str(path))  # ITK reads NIfTI into LPS, as DICOM and Volume
    np.testing.assert_allclose(itk.GetSpacing(), SPACING, atol=1e-5)
    np.testing.assert_allclose(itk.GetOrigin(), ORIGIN, atol=1e-4)
    np.testing.assert_allclose(np.reshape(itk.GetDirection(), (3, 3)), volume.direction, atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(itk), volume.array)


def test_unsupported_dtypes_are_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(MedtlError, match="cannot write int64 voxels"):
        write_nifti(volume_of("int64", np.eye(3)), tmp_path / "v.nii.gz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", range(200))
def test_axis_codes_match_nibabel(seed: int) -> None:
    rng = np.random.default_rng(seed)
    direction = rotation("x", rng.uniform(-80, 80)) @ rotation("y", rng.uniform(-80, 80)) @ rotation("z", rng.uniform(-180, 180))
    volume = Volume(np.zeros((2, 2, 2)), tuple(rng.uniform(0.3, 3, 3)), (0.0, 0.0, 0.0), direction @ np.diag(rng.choice([-1.0, 1.0], 3)))
    assert axis_codes(volume.affine_ras()) == "".join(nibabel.aff2axcodes(volume.affine_ras()))

"""read_image: NIfTI geometry exactly as written, pictures, DICOM through the series loader."""

from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from medtl.data.images import ImageReadError, read_image
from medtl.dicom.volume import LPS_TO_RAS, Volume
from tests.dicomgen import SeriesSpec, phantom, write_series


def _oblique_affine() -> np.ndarray:
    angle = np.radians(17.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])
    tilt = np.radians(-9.0)
    rotation = rotation @ np.array([[1.0, 0.0, 0.0], [0.0, np.cos(tilt), -np.sin(tilt)], [0.0, np.sin(tilt), np.cos(tilt)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation * np.array([0.7, 0.9, 2.5])[None, :]
    affine[:3, 3] = (12.5, -40.25, 7.0)
    return affine


def test_nifti_oblique_geometry_is_exact(tmp_path: Path) -> None:
    data = np.arange(5 * 6 * 4, dtype=np.int16).reshape(5, 6, 4)  # stored [x, y, z]
    affine = _oblique_affine()
    nibabel.save(nibabel.Nifti1Image(data, affine), str(tmp_path / "oblique.nii.gz"))
    volume = read_image(tmp_path / "oblique.nii.gz")
    assert volume.shape == (4, 6, 5)
    assert volume.array[3, 2, 1] == data[1, 2, 3]
    assert volume.array.dtype == np.int16
    stored = nibabel.load(str(tmp_path / "oblique.nii.gz")).affine  # the header holds float32
    np.testing.assert_allclose(volume.affine_ras(), stored, rtol=0, atol=1e-9)
    np.testing.assert_allclose(stored, affine, rtol=0, atol=1e-5)
    np.testing.assert_allclose(volume.spacing, (0.7, 0.9, 2.5), rtol=0, atol=1e-6)
    lps = LPS_TO_RAS @ stored
    np.testing.assert_allclose(volume.origin, lps[:3, 3], rtol=0, atol=1e-9)
    np.testing.assert_allclose(volume.index_to_lps(np.array([[4.0, 5.0, 3.0]]))[0], (lps @ [4.0, 5.0, 3.0, 1.0])[:3], rtol=0, atol=1e-9)
    np.testing.assert_allclose(volume.direction.T @ volume.direction, np.eye(3), rtol=0, atol=1e-6)


def test_nifti_2d_becomes_one_slice(tmp_path: Path) -> None:
    nibabel.save(nibabel.Nifti1Image(np.ones((7, 3), dtype=np.uint8), np.diag([0.5, 0.5, 3.0, 1.0])), str(tmp_path / "flat.nii"))
    volume = read_image(tmp_path / "flat.nii")
    assert volume.shape == (1, 3, 7)
    assert volume.spacing == (0.5, 0.5, 3.0)


def test_nifti_shear_and_time_series_are_refused(tmp_path: Path) -> None:
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    nibabel.save(nibabel.Nifti1Image(np.zeros((3, 3, 3), np.float32), sheared), str(tmp_path / "shear.nii.gz"))
    with pytest.raises(ImageReadError, match=r"shear\.nii\.gz: .*shear"):
        read_image(tmp_path / "shear.nii.gz")
    nibabel.save(nibabel.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), np.eye(4)), str(tmp_path / "time.nii.gz"))
    with pytest.raises(ImageReadError, match="time series"):
        read_image(tmp_path / "time.nii.gz")


def test_png_grey_and_rgb(tmp_path: Path) -> None:
    grey = np.arange(12 * 20, dtype=np.uint16).reshape(12, 20) * 200
    Image.fromarray(grey).save(tmp_path / "grey.png")
    volume = read_image(tmp_path / "grey.png")
    assert volume.shape == (1, 12, 20)
    np.testing.assert_array_equal(volume.array[0], grey)
    assert volume.spacing == (1.0, 1.0, 1.0) and volume.origin == (0.0, 0.0, 0.0)
    rgba = np.zeros((8, 9, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba).save(tmp_path / "colour.png")
    colour = read_image(tmp_path / "colour.png")
    assert colour.is_rgb and colour.array.shape == (1, 8, 9, 3)
    assert colour.to_metatensor().shape == (3, 9, 8, 1)


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match=r"broken\.png: not a readable picture"):
        read_image(tmp_path / "broken.png")
    with pytest.raises(ImageReadError, match=r"missing\.nii\.gz: file not found"):
        read_image(tmp_path / "missing.nii.gz")


def test_palette_grey_alpha_float_and_multipage_pictures(tmp_path: Path) -> None:
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 128, 255]], np.uint8)
    indices = np.tile(np.arange(3, dtype=np.uint8), (4, 2))
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette(colours.ravel().tolist())
    palette.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(read_image(tmp_path / "palette.png").array[0], colours[indices])  # as RGB
    grey = np.arange(30, dtype=np.uint8).reshape(5, 6)
    Image.fromarray(np.dstack([grey, np.full_like(grey, 255)]), mode="LA").save(tmp_path / "alpha.png")
    np.testing.assert_array_equal(read_image(tmp_path / "alpha.png").array[0], grey)  # the grey, alpha dropped
    floats = np.linspace(-1000.0, 3000.0, 20, dtype=np.float32).reshape(4, 5)
    Image.fromarray(floats, mode="F").save(tmp_path / "float.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "float.tif").array[0], floats)
    pages = [Image.fromarray(grey), Image.fromarray(grey + 1)]
    pages[0].save(tmp_path / "pages.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(ImageReadError, match=r"pages\.tif: picture with 2 pages is not one grey or RGB image"):
        read_image(tmp_path / "pages.tif")
    whole = (tmp_path / "palette.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.png: not a readable picture"):
        read_image(tmp_path / "cut.png")


def test_dicom_file_goes_through_the_series_loader() -> None:
    volume = read_image(get_testdata_file("CT_small.dcm", download=False))
    assert volume.shape == (1, 128, 128)
    assert volume.metadata.get("modality") == "CT"
    assert volume.array.min() < -800 and volume.array.max() > 1000  # HU, rescale applied


@pytest.mark.parametrize("suffix", [".tif", ".jpg"])
def test_tiff_and_jpeg(tmp_path: Path, suffix: str) -> None:
    picture = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (10, 1))
    Image.fromarray(picture).save(tmp_path / f"p{suffix}")
    volume = read_image(tmp_path / f"p{suffix}")
    assert volume.shape == (1, 10, 25)
    np.testing.assert_allclose(volume.array[0], picture, atol=0 if suffix == ".tif" else 8)


def test_dicom_folder_with_nifti_mask_on_its_grid(tmp_path: Path) -> None:
    from medtl.data.transforms import LoadVolumed

    values = phantom((6, 20, 24))
    write_series(tmp_path / "series", values, SeriesSpec(spacing=(0.8, 0.8, 2.0)))
    volume = read_image(tmp_path / "series")
    np.testing.assert_array_equal(volume.array, values)
    mask = Volume((values > 0).astype(np.uint8), volume.spacing, volume.origin, volume.direction)
    nibabel.save(mask.to_nifti(), str(tmp_path / "mask.nii.gz"))
    loaded = LoadVolumed(["image", "label"], reference="image")({"image": str(tmp_path / "series"), "label": str(tmp_path / "mask.nii.gz")})
    assert loaded["image"].shape == loaded["label"].shape == (1, 24, 20, 6)
    shifted = Volume(mask.array, mask.spacing, (mask.origin[0] + 1.0, *mask.origin[1:]), mask.direction)
    nibabel.save(shifted.to_nifti(), str(tmp_path / "shifted.nii.gz"))
    with pytest.raises(ImageReadError, match=r"shifted\.nii\.gz: mask geometry .* differs from its image's"):
        LoadVolumed(["image", "label"], reference="image")({"image": str(tmp_path / "series"), "label": str(tmp_path / "shifted.nii.gz")})

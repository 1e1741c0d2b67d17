"""Masks from NIfTI and DICOM SEG land voxel-exact on the series they label, or are refused naming the file and the misfit."""

from __future__ import annotations

import gzip
from pathlib import Path

import highdicom as hd
import nibabel
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from medtl.dicom.scan import scan, segmentations_for
from medtl.dicom.series import load_series
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.export.label_export import LabelInfo, export_nifti, export_seg
from medtl.labels.mask_import import read_mask
from tests.dicomgen import SeriesSpec, phantom, rotation, write_series

SHAPE = (6, 20, 24)  # z, y, x
LABELS = [LabelInfo(1, "liver", (220, 40, 40)), LabelInfo(2, "lesion", (40, 220, 90))]


def ct(folder: Path, **spec: object) -> tuple[Volume, list[Path]]:
    files = write_series(folder, phantom(SHAPE), SeriesSpec(**spec))  # type: ignore[arg-type]
    return load_series(files), files


def drawn(shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """Two labels, asymmetric along every axis (a flip or a transposition would show)."""
    mask = np.zeros(shape, np.uint8)
    mask[1:4, 3:9, 2:15] = 1
    mask[4, 12:15, 16:18] = 2
    mask[0, 0, 1] = 2
    return mask


def nifti(path: Path, mask: np.ndarray, affine_ras: np.ndarray) -> Path:
    nibabel.save(nibabel.Nifti1Image(np.transpose(mask, (2, 1, 0)), affine_ras), path)
    return path


def manual_seg(path: Path, files: list[Path], pixels: np.ndarray, kind: str = "BINARY", segments: int = 1) -> Path:
    """A SEG made with highdicom directly (as another tool would), frames in the series' instance order."""
    sources = sorted((pydicom.dcmread(f) for f in files), key=lambda ds: float(ds.ImagePositionPatient[2]))
    descriptions = [
        hd.seg.SegmentDescription(number, f"organ {number}", codes.SCT.Tissue, codes.SCT.Tissue, hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for number in range(1, segments + 1)
    ]
    seg = hd.seg.Segmentation(
        sources, pixels, kind, descriptions, generate_uid(), 5, generate_uid(), 1, "other", "tool", "1", "0", max_fractional_value=200
    )
    seg.save_as(path)
    return path


@pytest.mark.parametrize("orientation", ["LPS as medtl writes", "RAS canonical", "axes swapped and slices reversed"])
def test_a_nifti_mask_on_the_series_grid_comes_back_voxel_exact_in_any_axis_order(tmp_path: Path, orientation: str) -> None:
    volume, _ = ct(tmp_path / "ct", direction=rotation("z", 90) if orientation.startswith("axes") else None)
    mask = drawn()
    if orientation.startswith("LPS"):
        path = export_nifti(mask, volume, LABELS, tmp_path / "mask.nii.gz")
    elif orientation.startswith("RAS"):
        path = tmp_path / "mask.nii.gz"
        nibabel.save(nibabel.as_closest_canonical(nibabel.Nifti1Image(np.transpose(mask, (2, 1, 0)), volume.affine_ras())), path)
        assert nibabel.aff2axcodes(nibabel.load(path).affine) == ("R", "A", "S")
    else:  # store x, y, z as (y, x, reversed z): the same voxels in space
        permuted = np.transpose(mask, (1, 2, 0))[:, :, ::-1]  # [y, x, z reversed] as the file's (i, j, k)
        affine = volume.affine_ras() @ np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, -1, SHAPE[0] - 1], [0, 0, 0, 1]], float)
        path = tmp_path / "mask.nii"
        nibabel.save(nibabel.Nifti1Image(permuted, affine), path)
    imported = read_mask(path, volume)
    assert np.array_equal(imported.array, mask) and imported.array.dtype == np.uint8
    expected = {1: "liver", 2: "lesion"} if orientation.startswith("LPS") else {1: "label 1", 2: "label 2"}  # names from medtl's sidecar
    assert imported.names == expected


def test_a_nifti_mask_that_does_not_fit_the_series_is_refused_saying_how(tmp_path: Path) -> None:
    volume, _ = ct(tmp_path / "ct")
    uid = volume.metadata["series_uid"]
    coarse = np.diag([-1.4, -1.4, 2.5, 1.0])
    coarse[:3, 3] = volume.affine_ras()[:3, 3]
    path = nifti(tmp_path / "coarse.nii.gz", np.zeros((6, 10, 12), np.uint8), coarse)
    with pytest.raises(MedtlError, match=rf"^{path}: 12×10×6 voxels of 1\.4×1\.4×2\.5 mm does not fit series {uid}'s 24×20×6 voxels of 0\.7×0\.7×2\.5 mm$"):
        read_mask(path, volume)
    shifted = volume.affine_ras() @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 2], [0, 0, 0, 1]], float)  # two slices higher
    with pytest.raises(MedtlError, match=r"shifted.nii.gz: 24×20×6 voxels .* does not fit .*; it lies 5 mm away from the series$"):
        read_mask(nifti(tmp_path / "shifted.nii.gz", drawn(), shifted), volume)
    turned = volume.affine_ras().copy()
    turned[:3, :3] = turned[:3, :3] @ rotation("z", 10)
    with pytest.raises(MedtlError, match=r"turned.nii.gz: .*; its axes are rotated against the series' axes$"):
        read_mask(nifti(tmp_path / "turned.nii.gz", drawn(), turned), volume)


def test_a_probability_map_or_negative_values_are_not_a_mask(tmp_path: Path) -> None:
    volume, _ = ct(tmp_path / "ct")
    with pytest.raises(MedtlError, match=r"probs.nii.gz: holds values that are not whole numbers"):
        read_mask(nifti(tmp_path / "probs.nii.gz", drawn().astype(np.float32) * 0.4, volume.affine_ras()), volume)
    with pytest.raises(MedtlError, match=r"negative.nii.gz: holds values -1..2"):
        read_mask(nifti(tmp_path / "negative.nii.gz", (drawn().astype(np.int16) - (drawn() == 1) * 2).astype(np.int16), volume.affine_ras()), volume)


def test_a_name_is_given_to_a_mask_of_one_label_only(tmp_path: Path) -> None:
    volume, _ = ct(tmp_path / "ct")
    single = nifti(tmp_path / "one.nii.gz", (drawn() == 1).astype(np.uint8) * 3, volume.affine_ras())
    assert read_mask(single, volume, name="spleen").names == {3: "spleen"}
    with pytest.raises(MedtlError, match=r"two.nii.gz: holds 2 labels \(label 1, label 2\); one name"):
        read_mask(nifti(tmp_path / "two.nii.gz", drawn(), volume.affine_ras()), volume, name="spleen")


def test_a_seg_from_another_tool_is_placed_by_plane_position_and_fractional_segments_from_half_their_maximum(tmp_path: Path) -> None:
    volume, files = ct(tmp_path / "ct", order="shuffled")
    probabilities = np.zeros(SHAPE, np.float32)
    probabilities[2, 4:8, 5:9] = 0.9
    probabilities[3, 4:8, 5:9] = 0.3  # below one half: not in the mask
    probabilities[5, 0:2, 0:3] = 0.5
    path = manual_seg(tmp_path / "fractional.dcm", files, probabilities, kind="FRACTIONAL")
    imported = read_mask(path, volume)
    assert np.array_equal(imported.array, (probabilities >= 0.5).astype(np.uint8)) and imported.names == {1: "organ 1"}
    binary = manual_seg(tmp_path / "binary.dcm", files, np.stack([drawn() == 1, drawn() == 2], axis=-1), segments=2)
    assert np.array_equal(read_mask(binary, volume).array, drawn())


def test_overlapping_segments_are_refused_not_painted_over(tmp_path: Path) -> None:
    volume, files = ct(tmp_path / "ct")
    whole, part = drawn() == 1, np.zeros(SHAPE, bool)
    part[2, 4, 4:6] = True
    path = manual_seg(tmp_path / "overlap.dcm", files, np.stack([whole, part], axis=-1), segments=2)
    with pytest.raises(MedtlError, match=r"overlap.dcm: segments 1 \(organ 1\) and 2 \(organ 2\) overlap \(on slice 2\)"):
        read_mask(path, volume)


def test_a_seg_of_another_series_is_refused_naming_both(tmp_path: Path) -> None:
    volume, files = ct(tmp_path / "ct")
    other, _ = ct(tmp_path / "other")
    seg = export_seg(drawn(), LABELS, files, tmp_path / "labels.dcm")
    with pytest.raises(MedtlError, match=rf"labels.dcm: segments series {volume.metadata['series_uid']}, not series {other.metadata['series_uid']}"):
        read_mask(seg, other)


def test_a_seg_in_a_scanned_folder_is_a_label_layer_of_the_series_it_references(tmp_path: Path) -> None:
    volume, files = ct(tmp_path / "study" / "ct")
    _, other_files = ct(tmp_path / "study" / "other")
    seg = export_seg(drawn(), LABELS, files, tmp_path / "study" / "seg" / "labels.dcm")
    result = scan(tmp_path / "study")
    assert result.errors == []
    assert segmentations_for(result, volume.metadata["series_uid"]) == [seg]
    assert segmentations_for(result, pydicom.dcmread(other_files[0]).SeriesInstanceUID) == []
    assert np.array_equal(read_mask(seg.parent, volume).array, drawn())  # a folder holding one SEG
    with pytest.raises(MedtlError, match=r"study/ct: holds no DICOM SEG file$"):
        read_mask(tmp_path / "study" / "ct", volume)
    with pytest.raises(MedtlError, match=r"IM00001.dcm: is a CT Image Storage object, not a DICOM SEG"):
        read_mask(files[0].with_name("IM00001.dcm"), volume)
    with pytest.raises(MedtlError, match=r"labels.dcm: is a SEG object, not an image; import it as the labels"):
        load_series([seg])


def cut(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.3, 0.7, 0.97])
def test_truncated_or_garbage_seg_and_nifti_files_give_an_error_naming_the_file(tmp_path: Path, fraction: float) -> None:
    volume, files = ct(tmp_path / "ct")
    seg = export_seg(drawn(), LABELS, files, tmp_path / "labels.dcm").read_bytes()
    mask = export_nifti(drawn(), volume, LABELS, tmp_path / "labels.nii.gz").read_bytes()
    rng = np.random.default_rng(int(fraction * 100))
    damaged = {
        "cut.dcm": cut(seg, fraction),
        "garbage.dcm": rng.bytes(int(4096 * fraction) + 1),
        "scrambled.dcm": seg[:132] + rng.bytes(len(seg) - 132),  # a DICOM preamble, then noise
        "cut.nii.gz": cut(mask, fraction),
        "cut.nii": cut(gzip.decompress(mask), fraction),
        "garbage.nii": rng.bytes(int(4096 * fraction) + 1),
    }
    for name, data in damaged.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(MedtlError, match=rf"^{path}: ") as refused:
            read_mask(path, volume)
        assert "\n" not in str(refused.value)  # one line, shown as it is

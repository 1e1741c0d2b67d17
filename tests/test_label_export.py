"""Drawn labels leave as DICOM SEG, NIfTI and an MSD dataset that highdicom, nibabel and MONAI read back voxel-exact."""

from __future__ import annotations

import json
from pathlib import Path

import highdicom as hd
import nibabel
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from monai.data import load_decathlon_datalist

from medtl.dicom.series import load_series
from medtl.errors import MedtlError
from medtl.export.label_export import LabelInfo, MsdCase, export_msd, export_nifti, export_seg
from medtl.labels.mask_import import read_mask
from tests.dicomgen import SeriesSpec, phantom, rotation, write_enhanced, write_series
from tests.test_label_import import SHAPE, ct, drawn, nifti

LABELS = [LabelInfo(2, "liver", (255, 0, 0)), LabelInfo(5, "lesion", (0, 0, 255)), LabelInfo(7, "spleen", (0, 160, 0))]


def liver_and_lesion() -> np.ndarray:
    mask = drawn()
    return np.where(mask == 1, 2, np.where(mask == 2, 5, 0)).astype(np.uint8)


def test_a_label_imported_from_nifti_comes_back_voxel_exact_through_dicom_seg_referencing_its_series(tmp_path: Path) -> None:
    volume, files = ct(tmp_path / "ct")
    imported = read_mask(nifti(tmp_path / "drawn.nii.gz", liver_and_lesion(), volume.affine_ras()), volume)
    out = export_seg(imported.array, LABELS, files, tmp_path / "out" / "labels.seg.dcm")
    seg = hd.seg.segread(out)
    instances = [where.sop_instance_uid for where in volume.slice_sources]  # slice z's instance
    numbers = seg.get_pixels_by_source_instance(source_sop_instance_uids=instances, combine_segments=True)
    values = np.array([0, 2, 5])[numbers]  # segment 1 is value 2, segment 2 value 5: the values present, in order
    assert np.array_equal(values, liver_and_lesion())  # read by highdicom, placed by the source instances
    described = [(item.SegmentNumber, item.SegmentLabel, item.SegmentAlgorithmType) for item in seg.SegmentSequence]
    assert described == [(1, "liver", "MANUAL"), (2, "lesion", "MANUAL")]  # spleen is absent from the mask: no segment
    colours = [hd.color.CIELabColor.from_dicom_value(item.RecommendedDisplayCIELabValue).to_rgb() for item in seg.SegmentSequence]
    assert colours == [(255, 0, 0), (0, 0, 255)]
    referenced = seg.ReferencedSeriesSequence
    series_uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    assert [item.SeriesInstanceUID for item in referenced] == [series_uid] and seg.StudyInstanceUID == pydicom.dcmread(files[0]).StudyInstanceUID
    assert sorted(item.ReferencedSOPInstanceUID for item in referenced[0].ReferencedInstanceSequence) == sorted(instances)
    back = read_mask(out, volume)  # medtl reads its own SEG back: segment N is value N, the names say which label it was
    by_name = {label.name: label.value for label in LABELS}
    assert np.array_equal(np.array([0, *(by_name[back.names[n]] for n in (1, 2))])[back.array], liver_and_lesion())


def test_a_seg_of_an_empty_mask_or_of_unnamed_values_is_refused(tmp_path: Path) -> None:
    _, files = ct(tmp_path / "ct")
    with pytest.raises(MedtlError, match=r"empty.dcm: the mask is empty"):
        export_seg(np.zeros(SHAPE, np.uint8), LABELS, files, tmp_path / "empty.dcm")
    with pytest.raises(MedtlError, match=r"unnamed.dcm: the mask holds values \[1\] that no label names"):
        export_seg(drawn(), LABELS, files, tmp_path / "unnamed.dcm")
    with pytest.raises(MedtlError, match=r"small.dcm: the mask's 6×10×24 voxels \(z×y×x\) are not its image's 6×20×24"):
        export_seg(np.zeros((6, 10, 24), np.uint8), LABELS, files, tmp_path / "small.dcm")
    assert not list(tmp_path.glob("*.dcm"))


def test_a_nifti_export_carries_names_and_colours_in_its_sidecar(tmp_path: Path) -> None:
    volume, _ = ct(tmp_path / "ct")
    out = export_nifti(liver_and_lesion(), volume, LABELS, tmp_path / "labels.nii.gz")
    image = nibabel.load(out)
    assert np.array_equal(np.asarray(image.dataobj).transpose(2, 1, 0), liver_and_lesion()) and np.allclose(image.affine, volume.affine_ras(), atol=1e-4)
    sidecar = json.loads((tmp_path / "labels.json").read_text())
    assert sidecar["labels"][:2] == [{"value": 2, "name": "liver", "colour": [255, 0, 0]}, {"value": 5, "name": "lesion", "colour": [0, 0, 255]}]
    assert sidecar["series_uid"] == volume.metadata["series_uid"]
    assert read_mask(out, volume).names == {2: "liver", 5: "lesion"}


def test_an_msd_export_is_the_layout_monai_reads_with_every_case_on_its_series_grid(tmp_path: Path) -> None:
    first, first_files = ct(tmp_path / "a")
    second, second_files = ct(tmp_path / "b", spacing=(0.8, 0.6, 3.0), origin=(5.0, -20.0, 100.0), seed=3)
    masks = [liver_and_lesion(), np.flip(liver_and_lesion(), axis=0).copy()]
    cases = [MsdCase("case_001", first, masks[0], first_files), MsdCase("case_002", second, masks[1], second_files)]
    dataset = export_msd(cases, LABELS, tmp_path / "Task01_Liver", name="Liver", modality="CT")
    assert dataset == tmp_path / "Task01_Liver" / "dataset.json"
    document = json.loads(dataset.read_text())
    assert document["labels"] == {"0": "background", "1": "liver", "2": "lesion", "3": "spleen"}  # consecutive, as nnU-Net wants
    assert (document["name"], document["modality"], document["numTraining"], document["tensorImageSize"]) == ("Liver", {"0": "CT"}, 2, "3D")
    assert document["training"][0] == {"image": "./imagesTr/case_001.nii.gz", "label": "./labelsTr/case_001.nii.gz"}
    listed = load_decathlon_datalist(dataset, is_segmentation=True, data_list_key="training", base_dir=dataset.parent)
    assert len(listed) == 2
    for entry, volume, mask in zip(listed, (first, second), masks):
        image, label = nibabel.load(entry["image"]), nibabel.load(entry["label"])
        assert np.array_equal(np.asarray(label.dataobj).transpose(2, 1, 0), np.select([mask == 2, mask == 5], [1, 2], 0))
        assert np.array_equal(np.asarray(image.dataobj).transpose(2, 1, 0), volume.array)  # modality units, as loaded
        assert np.allclose(label.affine, volume.affine_ras(), atol=1e-4) and np.allclose(image.affine, label.affine)
        itk = sitk.ReadImage(entry["label"])  # as nnU-Net reads it: LPS geometry, array [z, y, x]
        assert np.allclose(itk.GetOrigin(), volume.origin, atol=1e-4) and np.allclose(itk.GetSpacing(), volume.spacing, atol=1e-5)
        assert np.array_equal(sitk.GetArrayFromImage(itk) != 0, mask != 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Task01_Liver", "a", "b"]  # no partial folder left beside it
    assert sorted(p.name for p in dataset.parent.iterdir()) == ["dataset.json", "imagesTr", "imagesTs", "labelsTr"]


def test_an_msd_export_writes_all_or_nothing_into_a_new_folder(tmp_path: Path) -> None:
    volume, files = ct(tmp_path / "ct")
    good = MsdCase("good", volume, liver_and_lesion(), files)
    with pytest.raises(MedtlError, match=r"case bad: the mask's 6×20×23 voxels"):
        export_msd([good, MsdCase("bad", volume, np.zeros((6, 20, 23), np.uint8), files)], LABELS, tmp_path / "msd", name="x", modality="CT")
    with pytest.raises(MedtlError, match=r"the case id 'Doe, Jane' is not a file name"):
        export_msd([MsdCase("Doe, Jane", volume, liver_and_lesion(), files)], LABELS, tmp_path / "msd", name="x", modality="CT")
    with pytest.raises(MedtlError, match=r"the label names must differ"):
        export_msd([good], [*LABELS, LabelInfo(9, "liver", (1, 1, 1))], tmp_path / "msd", name="x", modality="CT")
    with pytest.raises(MedtlError, match=r"two cases share the id good"):
        export_msd([good, good], LABELS, tmp_path / "msd", name="x", modality="CT")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct"]
    export_msd([good], LABELS, tmp_path / "msd", name="x", modality="CT")
    with pytest.raises(MedtlError, match=r"msd: already exists and is not an empty folder"):
        export_msd([good], LABELS, tmp_path / "msd", name="x", modality="CT")


@pytest.mark.parametrize("source", ["oblique series", "enhanced multi-frame with frames out of order"])
def test_the_seg_round_trip_holds_on_oblique_and_enhanced_multiframe_sources(tmp_path: Path, source: str) -> None:
    if source.startswith("oblique"):
        files = write_series(tmp_path / "ct", phantom(SHAPE), SeriesSpec(direction=rotation("x", 17) @ rotation("z", -33)))
    else:
        files = [write_enhanced(tmp_path / "ct" / "enhanced.dcm", phantom(SHAPE), frame_order=[3, 1, 0, 5, 4, 2])]
    volume = load_series(files)
    imported = read_mask(nifti(tmp_path / "drawn.nii.gz", drawn(), volume.affine_ras()), volume)
    seg = export_seg(imported.array, [LabelInfo(1, "a", (9, 9, 9)), LabelInfo(2, "b", (8, 8, 8))], files, tmp_path / "labels.dcm")
    assert np.array_equal(imported.array, drawn()) and np.array_equal(read_mask(seg, volume).array, drawn())

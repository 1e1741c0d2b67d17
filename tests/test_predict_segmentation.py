"""Segmentation prediction: masks exactly on the input's grid, DICOM SEG that references its source, the CLI."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import nibabel
import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file
from torch import nn

from medtl.cli import main
from medtl.data.images import read_image
from medtl.dicom.volume import Volume
from medtl.errors import GeometryError, MedtlError
from medtl.export.dicom_seg import write_dicom_seg
from medtl.inference.predictor import Predictor
from medtl.progress import Cancelled, CancelToken
from tests.dicomgen import SeriesSpec, phantom, rotation, write_enhanced, write_series
from tests.test_predict_runs import oblique_ct, segmentation_preprocessing, segmentation_run, segmentation_spec

BONE_HU = 300.0
LABELS = {0: "background", 1: "bone"}


class ThresholdNet(nn.Module):
    """Logits that make the mask exactly ``HU > 300`` under medtl's wide CT window ([-1000, 2000] HU -> [0, 1])."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        margin = (x - (BONE_HU + 1000.0) / 3000.0) * 100.0
        return torch.cat([-margin, margin], dim=1)


def threshold_predictor(spatial_dims: int) -> Predictor:
    roi = (32, 32, 16) if spatial_dims == 3 else None
    return Predictor(ThresholdNet(), segmentation_spec(spatial_dims), segmentation_preprocessing(spatial_dims), classes=[], labels=LABELS, device=torch.device("cpu"), roi_size=roi)


@pytest.fixture(scope="module")
def ct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return oblique_ct(tmp_path_factory.mktemp("series") / "ct")


def assert_same_grid(mask, volume) -> None:  # noqa: ANN001
    assert mask.shape == volume.shape
    assert mask.spacing == volume.spacing and mask.origin == volume.origin
    assert np.array_equal(mask.direction, volume.direction)


def test_a_2d_model_mask_is_exact_on_an_oblique_series(ct: Path) -> None:
    prediction = threshold_predictor(2).predict(ct)
    volume = read_image(ct)
    assert_same_grid(prediction.mask, volume)
    assert np.array_equal(prediction.mask.array, (volume.array > BONE_HU).astype(np.uint8))
    expected_mm3 = float((volume.array > BONE_HU).sum()) * float(np.prod(volume.spacing))
    assert prediction.volumes_mm3 == {"bone": pytest.approx(expected_mm3)}


def test_a_3d_model_resampled_to_another_spacing_maps_back_onto_the_input_grid(ct: Path) -> None:
    """The network sees RAS at 1.5 x 1.5 x 2 mm; the mask comes back on the oblique 0.7 x 0.9 x 2.5 mm grid."""
    prediction = threshold_predictor(3).predict(ct)
    volume = read_image(ct)
    assert_same_grid(prediction.mask, volume)
    truth = volume.array > BONE_HU
    found = prediction.mask.array.astype(bool)
    dice = 2 * (truth & found).sum() / (truth.sum() + found.sum())
    assert dice > 0.9
    centre = lambda m: np.argwhere(m).mean(axis=0)  # noqa: E731
    assert np.abs(centre(found) - centre(truth)).max() < 1.0  # voxels: no flip, shift or swap


def test_progress_is_reported_and_cancel_stops_between_batches(ct: Path) -> None:
    predictor = threshold_predictor(2)
    calls: list[tuple[int, int, str]] = []
    predictor.predict(ct, progress=lambda done, total, message="": calls.append((done, total, message)))
    assert calls[-1] == (12, 12, "segmenting") and len(calls) == 2  # batches of 8 slices
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        predictor.predict(ct, cancel=token)


def test_tta_gives_a_voxel_uncertainty_map_on_the_input_grid(ct: Path) -> None:
    prediction = threshold_predictor(2).predict(ct, uncertainty="tta")
    assert_same_grid(prediction.uncertainty_map, prediction.source)
    values = prediction.uncertainty_map.array
    assert values.dtype == np.float32 and 0.0 <= values.min() and values.max() <= 1.0
    assert prediction.uncertainty is not None and 0.0 <= prediction.uncertainty <= 1.0


def test_dicom_seg_references_every_source_instance_and_holds_the_mask(ct: Path, tmp_path: Path) -> None:
    prediction = threshold_predictor(2).predict(ct)
    assert write_dicom_seg(prediction.mask, LABELS, prediction.source, tmp_path / "ct.seg.dcm", "threshold") == []
    seg = hd.seg.segread(tmp_path / "ct.seg.dcm")
    sources = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(f) for f in sorted(ct.iterdir()))}
    assert {uid for _, _, uid in seg.get_source_image_uids()} == set(sources)
    assert [seg.get_segment_description(1).SegmentLabel] == ["bone"] and seg.number_of_segments == 1
    volume = prediction.source
    for uid, ds in sources.items():
        z = round((np.asarray(ds.ImagePositionPatient, float) - volume.origin) @ volume.direction[:, 2] / volume.spacing[2])
        pixels = seg.get_pixels_by_source_instance([uid], combine_segments=True, assert_missing_frames_are_empty=True)[0]
        assert np.array_equal(pixels, prediction.mask.array[z]), uid


def test_dicom_seg_numbers_segments_in_label_order(ct: Path, tmp_path: Path) -> None:
    volume = read_image(ct)
    values = np.select([volume.array > BONE_HU, volume.array > 0], [4, 2], 0).astype(np.uint8)
    mask = Volume(values, volume.spacing, volume.origin, volume.direction, metadata=volume.metadata)
    write_dicom_seg(mask, {0: "background", 2: "soft tissue", 4: "bone"}, volume, tmp_path / "x.seg.dcm")
    seg = hd.seg.segread(tmp_path / "x.seg.dcm")
    assert [seg.get_segment_description(n).SegmentLabel for n in (1, 2)] == ["soft tissue", "bone"]
    uid = next(ds.SOPInstanceUID for ds in (pydicom.dcmread(f) for f in ct.iterdir()) if np.allclose(ds.ImagePositionPatient, volume.origin, atol=1e-3))
    assert np.array_equal(seg.get_pixels_by_source_instance([uid], combine_segments=True)[0], values[0] // 2)
    with pytest.raises(MedtlError, match=r"values \[4\]"):
        write_dicom_seg(mask, {0: "background", 2: "soft tissue"}, volume, tmp_path / "y.seg.dcm")


def test_dicom_seg_of_an_enhanced_multiframe_object_follows_its_frame_order(tmp_path: Path) -> None:
    path = write_enhanced(tmp_path / "enhanced.dcm", phantom((6, 20, 24)), SeriesSpec(direction=rotation("y", 20)), frame_order=[3, 0, 5, 1, 4, 2])
    prediction = threshold_predictor(2).predict(path)
    assert write_dicom_seg(prediction.mask, LABELS, prediction.source, tmp_path / "x.seg.dcm") == []
    seg, source, volume = hd.seg.segread(tmp_path / "x.seg.dcm"), pydicom.dcmread(path), prediction.source
    frames = seg.get_pixels_by_source_frame(source.SOPInstanceUID, list(range(1, 7)), combine_segments=True, assert_missing_frames_are_empty=True)
    for frame, item in zip(frames, source.PerFrameFunctionalGroupsSequence):
        position = np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, float)
        assert np.array_equal(frame, prediction.mask.array[round((position - volume.origin) @ volume.direction[:, 2] / volume.spacing[2])])


def test_dicom_seg_leaves_out_slices_interpolated_into_a_gap(tmp_path: Path) -> None:
    write_series(tmp_path / "gap", phantom((8, 20, 24)), SeriesSpec(drop_slices=[3]))
    prediction = threshold_predictor(2).predict(tmp_path / "gap")
    assert prediction.mask.shape == (8, 20, 24)
    assert write_dicom_seg(prediction.mask, LABELS, prediction.source, tmp_path / "x.seg.dcm") == ["1 slice(s) interpolated into gaps have no source image and are not in the DICOM SEG"]
    assert len(hd.seg.segread(tmp_path / "x.seg.dcm").get_source_image_uids()) == 7


def test_dicom_seg_of_real_ct_slices(tmp_path: Path) -> None:
    """pydicom's abdominal CT has no SliceThickness (highdicom alone writes a SEG it cannot read back); its neck CT has no frame of reference."""
    abdomen = Path(get_testdata_file("explicit_VR-UN.dcm"))
    prediction = threshold_predictor(2).predict(abdomen)
    write_dicom_seg(prediction.mask, LABELS, prediction.source, tmp_path / "abdomen.seg.dcm")
    seg = hd.seg.segread(tmp_path / "abdomen.seg.dcm")
    uid = pydicom.dcmread(abdomen, stop_before_pixels=True).SOPInstanceUID
    assert np.array_equal(seg.get_pixels_by_source_instance([uid], combine_segments=True)[0], prediction.mask.array[0])
    neck = threshold_predictor(2).predict(Path(get_testdata_file("bad_sequence.dcm")))
    with pytest.raises(MedtlError, match="no Frame Of Reference"):
        write_dicom_seg(neck.mask, LABELS, neck.source, tmp_path / "neck.seg.dcm")


def test_dicom_seg_is_refused_for_a_series_resampled_for_gantry_tilt(tmp_path: Path) -> None:
    ct = oblique_ct(tmp_path / "tilted", gantry_tilt=15.0)
    prediction = threshold_predictor(2).predict(ct)
    with pytest.raises(GeometryError, match="gantry tilt"):
        write_dicom_seg(prediction.mask, LABELS, prediction.source, tmp_path / "x.seg.dcm")
    assert not (tmp_path / "x.seg.dcm").exists()


def test_dicom_seg_references_the_recorded_instances_without_searching_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A study folder with two series: the SEG of the chosen one references its instances, slice by slice, and the folder is not scanned again."""
    chosen = "1.2.826.0.1.3680043.8.498.2"
    write_series(tmp_path / "study" / "1", phantom((10, 32, 36)), SeriesSpec(series_uid="1.2.826.0.1.3680043.8.498.1"))
    oblique_ct(tmp_path / "study" / "2", series_uid=chosen)
    prediction = threshold_predictor(2).predict(tmp_path / "study", series_uid=chosen)

    def no_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("the folder was scanned again")

    monkeypatch.setattr("medtl.dicom.scan.scan", no_scan)
    assert write_dicom_seg(prediction.mask, LABELS, prediction.source, tmp_path / "x.seg.dcm") == []
    seg = hd.seg.segread(tmp_path / "x.seg.dcm")
    recorded = [where.sop_instance_uid for where in prediction.source.slice_sources]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == chosen
    assert sorted(uid for _, _, uid in seg.get_source_image_uids()) == sorted(recorded)
    assert set(recorded) == {pydicom.dcmread(f).SOPInstanceUID for f in (tmp_path / "study" / "2").iterdir()}
    for z, uid in enumerate(recorded):
        pixels = seg.get_pixels_by_source_instance([uid], combine_segments=True, assert_missing_frames_are_empty=True)[0]
        assert np.array_equal(pixels, prediction.mask.array[z]), z


def test_dicom_seg_refuses_a_source_file_replaced_since_loading(tmp_path: Path) -> None:
    ct = oblique_ct(tmp_path / "ct")
    prediction = threshold_predictor(2).predict(ct)
    first, second = (where.path for where in prediction.source.slice_sources[:2])
    second.write_bytes(first.read_bytes())
    with pytest.raises(MedtlError, match=f"{second.name}: holds another image than when the series was loaded"):
        write_dicom_seg(prediction.mask, LABELS, prediction.source, tmp_path / "x.seg.dcm")
    assert not (tmp_path / "x.seg.dcm").exists()


def test_dicom_seg_needs_a_source_loaded_from_dicom(ct: Path, tmp_path: Path) -> None:
    nifti = tmp_path / "ct.nii.gz"
    nibabel.save(read_image(ct).to_nifti(), nifti)
    prediction = threshold_predictor(2).predict(nifti)
    with pytest.raises(MedtlError, match="x.seg.dcm: the image does not record its DICOM source files"):
        write_dicom_seg(prediction.mask, LABELS, prediction.source, tmp_path / "x.seg.dcm")


def test_predict_cli_writes_nifti_and_dicom_seg(ct: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = segmentation_run(tmp_path / "run")
    nifti = tmp_path / "phantom.nii.gz"
    nibabel.save(read_image(ct).to_nifti(), nifti)
    assert main(["predict", "--run", str(run), str(ct), str(nifti), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ct.nii.gz", "ct.seg.dcm", "phantom.nii.gz"]
    written = nibabel.load(tmp_path / "out" / "phantom.nii.gz")
    assert written.shape == (48, 40, 12) and np.allclose(written.affine, nibabel.load(nifti).affine)
    assert "bone" in capsys.readouterr().out


def test_predict_cli_reports_bad_input_in_one_line(ct: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = segmentation_run(tmp_path / "run")
    junk = tmp_path / "notes.nii.gz"
    junk.write_text("not an image")
    assert main(["predict", "--run", str(run), str(junk), str(ct), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "notes.nii.gz" in err and "Traceback" not in err
    assert (tmp_path / "out" / "ct.nii.gz").exists()
    assert main(["predict", "--run", str(run), str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "missing: no such file or folder" in capsys.readouterr().err


def test_predict_cli_chooses_a_series_of_a_folder_that_holds_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A study folder with an axial and a smaller oblique series: without --series the error lists both UIDs;
    with one, the mask and the DICOM SEG are of that series; --series on a NIfTI input is refused by name."""
    run, study, out = segmentation_run(tmp_path / "run"), tmp_path / "study", tmp_path / "out"
    write_series(study / "1", phantom((10, 32, 36)), SeriesSpec(series_uid="1.2.826.0.1.3680043.8.498.1", series_description="axial"))
    oblique_ct(study / "2", series_uid="1.2.826.0.1.3680043.8.498.2", series_description="oblique")
    assert main(["predict", "--run", str(run), str(study), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "holds 2 image series" in err and "--series" in err and "1.2.826.0.1.3680043.8.498.2" in err
    assert main(["predict", "--run", str(run), str(study), "--series", "1.2.826.0.1.3680043.8.498.2", "--out", str(out), "--device", "cpu"]) == 0
    assert nibabel.load(out / "study.nii.gz").shape == (48, 40, 12)
    assert pydicom.dcmread(out / "study.seg.dcm").ReferencedSeriesSequence[0].SeriesInstanceUID == "1.2.826.0.1.3680043.8.498.2"
    nifti = tmp_path / "phantom.nii.gz"
    nibabel.save(read_image(study, "1.2.826.0.1.3680043.8.498.1").to_nifti(), nifti)
    assert main(["predict", "--run", str(run), str(nifti), "--series", "1.2.826.0.1.3680043.8.498.1", "--out", str(out), "--device", "cpu"]) == 2
    assert "phantom.nii.gz: a series UID chooses among DICOM series; this is a nifti file" in capsys.readouterr().err

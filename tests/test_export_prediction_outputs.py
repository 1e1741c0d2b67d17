"""The files written for a prediction (what `medtl predict` writes): names, contents and warnings."""

from __future__ import annotations

import gzip
from pathlib import Path

import highdicom as hd
import nibabel
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from medtl.data.images import read_image
from medtl.dicom.volume import Volume
from medtl.export.deidentify import phi_found
from medtl.export.nifti import write_nifti
from medtl.export.prediction_outputs import (
    PredictionOutputs,
    SegVariant,
    classification_row,
    export_prediction,
    output_names,
    seg_deidentifier,
    write_prediction_outputs,
    write_predictions_csv,
)
from medtl.inference.prediction import ClassificationPrediction
from tests.dicomgen import SeriesSpec, phantom, write_series
from tests.test_predict_runs import oblique_ct
from tests.test_predict_segmentation import threshold_predictor


def test_a_dicom_segmentation_with_uncertainty_gives_its_mask_uncertainty_and_dicom_seg(tmp_path: Path) -> None:
    ct = oblique_ct(tmp_path / "ct")
    prediction = threshold_predictor(2).predict(ct, uncertainty="tta")
    out = tmp_path / "out"
    outputs = write_prediction_outputs(prediction, out, "case", "unet")
    assert outputs == PredictionOutputs((out / "case.nii.gz", out / "case_uncertainty.nii.gz", out / "case.seg.dcm"), ())
    assert np.array_equal(np.asarray(nibabel.load(out / "case.nii.gz").dataobj), np.transpose(prediction.mask.array, (2, 1, 0)))
    assert np.allclose(nibabel.load(out / "case_uncertainty.nii.gz").affine, prediction.source.affine_ras())
    seg = hd.seg.segread(out / "case.seg.dcm")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == prediction.source.metadata["series_uid"]
    assert seg.get_segment_description(1).SegmentAlgorithmName == "unet" and seg.ManufacturerModelName == "unet"


def test_a_nifti_segmentation_gives_no_dicom_seg(tmp_path: Path) -> None:
    volume = read_image(oblique_ct(tmp_path / "ct"))
    prediction = threshold_predictor(2).predict(write_nifti(volume, tmp_path / "ct.nii.gz"))
    assert write_prediction_outputs(prediction, tmp_path / "out", "ct", "unet").files == (tmp_path / "out" / "ct.nii.gz",)


def test_dicom_seg_warnings_name_their_file(tmp_path: Path) -> None:
    write_series(tmp_path / "gap", phantom((8, 20, 24)), SeriesSpec(drop_slices=[3]))
    prediction = threshold_predictor(2).predict(tmp_path / "gap")
    outputs = write_prediction_outputs(prediction, tmp_path / "out", "gap", "unet")
    destination = tmp_path / "out" / "gap.seg.dcm"
    assert outputs.warnings == (f"{destination}: 1 slice(s) interpolated into gaps have no source image and are not in the DICOM SEG",)


def classification(slice_probabilities: list[list[float]], uncertainty: float | None = None) -> ClassificationPrediction:
    source = Volume(np.arange(len(slice_probabilities) * 12, dtype=np.float32).reshape(-1, 3, 4), (0.5, 0.5, 2.0), (1.0, 2.0, 3.0))
    heatmap = Volume(np.linspace(0, 1, source.array.size, dtype=np.float32).reshape(source.shape), source.spacing, source.origin)
    per_slice = np.array(slice_probabilities)
    return ClassificationPrediction(
        source, Path("/data/case.nii.gz"), ("normal", "fracture"), per_slice.mean(axis=0), heatmap, per_slice, uncertainty=uncertainty
    )


def test_a_classification_gives_heatmaps_and_per_slice_probabilities(tmp_path: Path) -> None:
    prediction = classification([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]])
    outputs = write_prediction_outputs(prediction, tmp_path, "case", "resnet10")
    assert outputs == PredictionOutputs((tmp_path / "case_heatmap.nii.gz", tmp_path / "case_heatmap.png", tmp_path / "case_slices.csv"))
    assert (tmp_path / "case_slices.csv").read_text() == "slice,p_normal,p_fracture\n0,0.250000,0.750000\n1,0.500000,0.500000\n2,1.000000,0.000000\n"
    assert np.allclose(nibabel.load(tmp_path / "case_heatmap.nii.gz").get_fdata(), np.transpose(prediction.heatmap.array, (2, 1, 0)))
    assert np.asarray(Image.open(tmp_path / "case_heatmap.png")).shape == (3, 4, 3)
    single = classification([[0.25, 0.75]])
    assert write_prediction_outputs(single, tmp_path / "one", "case", "resnet10").files == (tmp_path / "one" / "case_heatmap.nii.gz", tmp_path / "one" / "case_heatmap.png")


def test_the_predictions_csv_has_one_row_per_input_with_uncertainty_when_estimated(tmp_path: Path) -> None:
    row = classification_row(classification([[0.25, 0.75]], uncertainty=0.125))
    assert row == {"input": "/data/case.nii.gz", "predicted": "fracture", "p_normal": "0.250000", "p_fracture": "0.750000", "uncertainty": "0.125000"}
    assert "uncertainty" not in classification_row(classification([[0.25, 0.75]]))
    destination = write_predictions_csv(tmp_path / "predictions.csv", [row, {**row, "input": "/data/b.png", "predicted": "normal"}])
    assert destination.read_text() == (
        "input,predicted,p_normal,p_fracture,uncertainty\n/data/case.nii.gz,fracture,0.250000,0.750000,0.125000\n/data/b.png,normal,0.250000,0.750000,0.125000\n"
    )


def test_one_classification_exported_as_the_app_does_adds_its_predictions_csv(tmp_path: Path) -> None:
    outputs = export_prediction(classification([[0.25, 0.75]]), tmp_path, "case", "resnet10")
    assert outputs.files == (tmp_path / "case_heatmap.nii.gz", tmp_path / "case_heatmap.png", tmp_path / "predictions.csv")
    assert (tmp_path / "predictions.csv").read_text() == "input,predicted,p_normal,p_fracture\n/data/case.nii.gz,fracture,0.250000,0.750000\n"


def test_output_names_are_distinct_stems(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "study").mkdir()
    files = [tmp_path / "a.nii.gz", tmp_path / "x" / "a.nii.gz", tmp_path / "b.PNG"]
    for path in files:
        path.write_bytes(b"")
    assert output_names([files[0], files[1], tmp_path / "study", files[2], files[0]]) == ["a", "a_2", "study", "b", "a_3"]


def test_a_classification_needs_one_probability_per_class() -> None:
    prediction = classification([[0.25, 0.75]])
    with pytest.raises(ValueError, match=r"2 classes need probabilities of shape \(2,\)"):
        ClassificationPrediction(prediction.source, None, ("normal", "fracture"), np.array([1.0]), prediction.heatmap)
    assert not prediction.probabilities.flags.writeable


def named_ct(folder: Path) -> tuple[Path, list[str]]:
    """pydicom's real CT_small.dcm (GE private tags, patient CompressedSamples^CT1, ID 1CT1) with a birth date, in ``folder``."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.PatientBirthDate = "19620315"
    folder.mkdir(parents=True)
    ds.save_as(folder / "ct.dcm")
    return folder, [str(ds.PatientName), ds.PatientID, ds.PatientBirthDate]


def every_byte(paths: tuple[Path, ...]) -> bytes:
    """The files' bytes, NIfTI decompressed, and their names."""
    return b"".join((gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()) + path.name.encode() for path in paths)


def test_a_shared_seg_holds_no_byte_of_the_patients_identity_and_references_the_deidentified_source(tmp_path: Path) -> None:
    folder, identity = named_ct(tmp_path / "in")
    prediction = threshold_predictor(2).predict(folder)
    export = seg_deidentifier("shared")
    outputs = write_prediction_outputs(prediction, tmp_path / "out", "in", "unet", export)
    assert [path.name for path in outputs.files] == ["in.nii.gz", "in.seg.dcm"]
    assert phi_found(every_byte(outputs.files), [*identity, "GEMS_IDEN_01", "JFK IMAGING"]) == []
    seg = hd.seg.segread(outputs.files[1])
    source = export.apply(pydicom.dcmread(folder / "ct.dcm"))  # a copy of the source, de-identified in the same export
    referenced = seg.ReferencedSeriesSequence[0]
    instance = referenced.ReferencedInstanceSequence[0]
    assert (referenced.SeriesInstanceUID, instance.ReferencedSOPInstanceUID) == (source.SeriesInstanceUID, source.SOPInstanceUID)
    derivation = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0]
    assert derivation.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID  # per frame too
    assert (seg.StudyInstanceUID, seg.FrameOfReferenceUID, seg.PatientID) == (source.StudyInstanceUID, source.FrameOfReferenceUID, source.PatientID)
    assert (str(seg.PatientName), seg.PatientBirthDate, seg.PatientIdentityRemoved) == ("", "", "YES")
    assert [item.CodeValue for item in seg.DeidentificationMethodCodeSequence] == ["113100", "113107"]
    assert prediction.mask.array.any() and np.array_equal(seg.pixel_array.reshape(128, 128), prediction.mask.array[0] == 1)  # still the mask


def test_a_pacs_seg_keeps_the_patient_module(tmp_path: Path) -> None:
    folder, identity = named_ct(tmp_path / "in")
    outputs = export_prediction(threshold_predictor(2).predict(folder), tmp_path / "out", "in", "unet")
    seg = hd.seg.segread(outputs.files[-1])
    source = pydicom.dcmread(folder / "ct.dcm")
    assert [str(seg.PatientName), seg.PatientID, seg.PatientBirthDate] == identity and seg.StudyInstanceUID == source.StudyInstanceUID
    assert "PatientIdentityRemoved" not in seg


def test_one_export_gives_two_series_of_a_patient_the_same_pseudonyms(tmp_path: Path) -> None:
    spec = {"patient_name": "Doe^Jane", "patient_id": "MRN0042", "study_uid": generate_uid()}
    first = oblique_ct(tmp_path / "first", **spec)
    second = oblique_ct(tmp_path / "second", **spec, seed=1)
    export = seg_deidentifier("shared")
    outputs = [write_prediction_outputs(threshold_predictor(2).predict(ct), tmp_path / "out", ct.name, "unet", export) for ct in (first, second)]
    segs = [hd.seg.segread(written.files[-1]) for written in outputs]
    assert segs[0].PatientID == segs[1].PatientID == export.identifier("MRN0042")
    assert segs[0].StudyInstanceUID == segs[1].StudyInstanceUID == export.uid(spec["study_uid"])
    assert segs[0].ReferencedSeriesSequence[0].SeriesInstanceUID != segs[1].ReferencedSeriesSequence[0].SeriesInstanceUID
    assert phi_found(every_byte(tuple((tmp_path / "out").iterdir())), ["Doe^Jane", "MRN0042", "19700101"]) == []


@pytest.mark.parametrize("seg", ["pacs", "shared"])
def test_no_output_file_is_named_after_the_patient(tmp_path: Path, seg: SegVariant) -> None:
    folder = oblique_ct(tmp_path / "DOE_JANE_MRN0042", patient_name="Doe^Jane", patient_id="MRN0042")
    prediction = threshold_predictor(2).predict(folder)
    (name,) = output_names([folder])
    outputs = export_prediction(prediction, tmp_path / "out", name, "unet", seg)
    names = [path.name for path in outputs.files]
    assert phi_found(" ".join(names).encode(), ["Doe^Jane", "MRN0042"]) == []
    assert names[0].startswith("series_") and names == [names[0], names[0].replace(".nii.gz", ".seg.dcm")]


def test_an_unknown_seg_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="the DICOM SEG variant must be one of pacs, shared, not 'public'"):
        seg_deidentifier("public")  # type: ignore[arg-type]

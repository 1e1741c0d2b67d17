"""The prediction job: PredictRequest validation (messages in the user's words), per-input outcomes, the CLI's flags."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from medtl.cli import main
from medtl.inference.prediction import SegmentationPrediction
from medtl.progress import Cancelled, CancelToken
from medtl.workflow.predict import FailedInput, PredictedInput, PredictRequest, predict
from medtl.workflow.request import InvalidRequest
from tests.test_predict_runs import oblique_ct, segmentation_run


@pytest.fixture(scope="module")
def ct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return oblique_ct(tmp_path_factory.mktemp("series") / "ct")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"inputs": ()}, "inputs", "give at least one image to predict on"),
        ({"inputs": ("missing.nii.gz",)}, "inputs", "missing.nii.gz: no such file or folder"),
        ({"batch_size": 0}, "batch_size", "the batch size must be at least 1, not 0"),
        ({"series_uid": " "}, "series_uid", "the series UID must not be empty"),
        ({"uncertainty": "dropout"}, "uncertainty", "the uncertainty method must be one of tta, mc, not 'dropout'"),
        ({"device": "tpu"}, "device", "the device must be one of auto, cpu, cuda, mps, not 'tpu'"),
        ({"seg": "public"}, "seg", "the DICOM SEG variant must be one of pacs, shared, not 'public'"),
    ],
)
def test_a_request_names_the_field_that_cannot_work(ct: Path, tmp_path: Path, change: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        PredictRequest(**{"run_dir": tmp_path / "run", "inputs": (ct,), "out_dir": tmp_path / "out", **change})
    assert (raised.value.field, str(raised.value)) == (field, message)


def test_an_out_folder_that_is_a_file_is_refused(ct: Path, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("")
    with pytest.raises(InvalidRequest, match="out: is a file, not a folder to write the results into") as raised:
        PredictRequest(tmp_path / "run", (ct,), tmp_path / "out")
    assert raised.value.field == "out_dir"


def test_a_request_is_frozen_with_paths(ct: Path, tmp_path: Path) -> None:
    request = PredictRequest(str(tmp_path / "run"), [str(ct)])  # type: ignore[arg-type]
    assert request.run_dir == tmp_path / "run" and request.inputs == (ct,) and request.out_dir is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.batch_size = 2  # type: ignore[misc]


def test_each_input_gives_an_outcome_in_order_and_a_failure_does_not_stop_the_others(ct: Path, tmp_path: Path) -> None:
    junk = tmp_path / "notes.nii.gz"
    junk.write_text("not an image")
    request = PredictRequest(segmentation_run(tmp_path / "run"), (junk, ct), device="cpu")
    failed, predicted = predict(request)
    assert isinstance(failed, FailedInput) and failed.name == "notes" and "notes.nii.gz" in failed.reason
    assert isinstance(predicted, PredictedInput) and (predicted.input, predicted.name, predicted.model_name) == (ct, "ct", "unet")
    assert isinstance(predicted.prediction, SegmentationPrediction) and predicted.prediction.mask.shape == (12, 40, 48)


def test_cancelling_stops_the_job_rather_than_failing_an_input(ct: Path, tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        list(predict(PredictRequest(segmentation_run(tmp_path / "run"), (ct, ct), device="cpu"), cancel=token))


def test_the_cli_puts_its_flag_in_front_of_the_request_message(ct: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--run", str(tmp_path / "run"), str(ct), "--out", str(tmp_path / "out"), "--batch-size", "0"]) == 2
    assert capsys.readouterr().err == "medtl predict: error: --batch-size: the batch size must be at least 1, not 0\n"


def test_the_cli_writes_a_deidentified_seg_on_request_and_names_no_file_after_the_patient(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import highdicom as hd

    from medtl.export.deidentify import phi_found

    ct = oblique_ct(tmp_path / "Doe_Jane", patient_name="Doe^Jane", patient_id="MRN0042")
    assert PredictRequest(tmp_path / "run", (ct,)).seg == "pacs"  # the default: a SEG that goes back to the PACS
    run, out = segmentation_run(tmp_path / "run"), tmp_path / "out"
    assert main(["predict", "--run", str(run), str(ct), "--out", str(out), "--device", "cpu", "--seg", "shared"]) == 0
    written = sorted(out.iterdir())
    assert [path.suffixes for path in written] == [[".nii", ".gz"], [".seg", ".dcm"]] and all(path.name.startswith("series_") for path in written)
    assert phi_found(written[1].read_bytes() + " ".join(path.name for path in written).encode(), ["Doe^Jane", "MRN0042", "19700101"]) == []
    assert hd.seg.segread(written[1]).PatientIdentityRemoved == "YES"
    assert "Doe" not in capsys.readouterr().out.split("->")[-1]  # the files it lists

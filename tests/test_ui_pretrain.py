"""The pretraining panel: a tiny run on real DICOM started in the worker and cancelled; a finished run offered as weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from medtl.training.events import StepProgress
from medtl.training.run_folder import RunFolder
from medtl.workflow.pretrain import PretrainRequest
from medtl.workflow.request import InvalidRequest
from ui.qt.pretrain_panel import PretrainPanel

TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def dicom_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real one-slice DICOM images from pydicom (a CT and an MR), two patients, no labels."""
    folder = tmp_path_factory.mktemp("unlabelled")
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(get_testdata_file(name), folder / name)  # type: ignore[arg-type]
    return folder


def test_the_opened_folder_is_the_default_input_and_an_empty_form_does_not_start(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    panel = PretrainPanel()
    qtbot.addWidget(panel)
    assert not panel.start() and "cannot start: add at least one folder" in panel.monitor.log.toPlainText()
    panel.set_input_folder(tmp_path / "study")
    panel.set_input_folder(tmp_path / "other")  # a newly opened folder replaces the proposed one
    assert panel.input_paths() == (tmp_path / "other",) and panel.out_dir.text() == str(tmp_path / "study-pretrained")
    with pytest.raises(InvalidRequest, match=f"the input {tmp_path / 'missing'} does not exist") as missing:
        PretrainRequest((tmp_path / "missing",), tmp_path / "run")
    assert missing.value.field == "paths"
    with pytest.raises(InvalidRequest, match="choose an output folder for the run") as no_folder:
        PretrainRequest((tmp_path,), Path(""))
    assert no_folder.value.field == "out_dir"


def test_a_tiny_run_starts_in_the_worker_and_cancels(qtbot, dicom_folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    panel = PretrainPanel(folder=dicom_folder)
    qtbot.addWidget(panel)
    panel.out_dir.setText(str(tmp_path / "run"))
    panel.device_box.setCurrentText("cpu")
    assert panel.request().time_limit_minutes == 3.0 and panel.request().model == "basicunet"
    with qtbot.waitSignal(panel.monitor.event_received, timeout=TIMEOUT_MS, check_params_cb=lambda event: isinstance(event, StepProgress)):
        assert panel.start()
    assert panel.running and not panel.start_button.isEnabled() and panel.cancel_button.isEnabled()
    assert panel.monitor.progress.step_loss and "epoch 1" in panel.monitor.status.text()
    with qtbot.waitSignal(panel.monitor.task.finished, timeout=TIMEOUT_MS):  # type: ignore[union-attr]
        panel.cancel()
    assert not panel.running and panel.start_button.isEnabled()
    assert "cancelled; the checkpoint" in panel.monitor.log.toPlainText()
    assert (tmp_path / "run" / "checkpoint.pt").is_file()  # what `--resume` continues from


def test_a_finished_run_is_offered_as_pretrained_weights(qtbot, dicom_folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    panel = PretrainPanel(folder=dicom_folder)
    qtbot.addWidget(panel)
    panel.out_dir.setText(str(tmp_path / "run"))
    panel.device_box.setCurrentText("cpu")
    panel.epochs.setValue(2)
    panel.minutes.setValue(0)  # no limit: the two epochs
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT_MS) as finished:
        assert panel.start()
    assert finished.args[0].stopped_because == "completed" and finished.args[0].details["data"]["volumes"] == 2
    assert [epoch for epoch, _ in panel.monitor.progress.epoch_loss] == [1.0, 2.0] and set(panel.monitor.progress.metrics) == {"contrastive", "reconstruction"}
    assert str(tmp_path / "run") in panel.result.text() and panel.use_button.isEnabled()
    with qtbot.waitSignal(panel.weights_chosen) as chosen:
        panel.use_button.click()
    assert chosen.args == [f"run:{tmp_path / 'run'}"]
    assert RunFolder(tmp_path / "run").best_model_path.is_file()

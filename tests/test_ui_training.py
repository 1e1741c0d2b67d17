"""The fine-tune panel: events folded into curves and status, a tiny run started in the worker and cancelled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skimage.io
from PySide6.QtCore import QSettings, QThreadPool

from medtl.training.compare import runs_in
from medtl.training.events import EpochEnd, Finished, LogLine, StepProgress
from medtl.training.run_folder import RunFolder
from medtl.training.run_summary import RunSummary
from medtl.workflow.request import InvalidRequest
from medtl.workflow.train import TrainRequest
from ui.models.training_progress import TrainingProgress, progress_of_run
from ui.qt.main_window import MainWindow
from ui.qt.settings import AppSettings
from ui.qt.training_panel import TrainingPanel

TIMEOUT_MS = 120_000


@pytest.fixture
def settings(tmp_path: Path) -> AppSettings:
    return AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture(scope="module")
def datalist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 32 x 32 pictures of a bar, upright or lying, as a two-class datalist."""
    folder = tmp_path_factory.mktemp("bars")
    entries = []
    for index in range(8):
        picture = np.zeros((32, 32), np.uint8)
        rotated = index % 2 == 1
        picture[4:28, 14 + index % 3 : 18 + index % 3] = 255
        picture = picture.T.copy() if rotated else picture
        skimage.io.imsave(folder / f"bar{index}.png", picture, check_contrast=False)
        entries.append({"image": f"bar{index}.png", "label": "rotated" if rotated else "upright", "patient_id": f"P{index}"})
    path = folder / "datalist.json"
    path.write_text(json.dumps({"training": entries, "classes": ["upright", "rotated"], "modality": "OT"}))
    return path


def fill_form(panel: TrainingPanel, datalist: Path, out_dir: Path) -> None:
    """A small network from scratch (nothing to fetch) on the CPU, with more epochs than a test waits for."""
    panel.datalist.setText(str(datalist))
    panel.task_box.setCurrentText("classification")  # as the datalist's summary will (the panel starts on segmentation)
    panel.out_dir.setText(str(out_dir))
    panel.model_box.setCurrentText("resnet10")
    panel.weights_box.setCurrentIndex(1)
    panel.epochs.setValue(50)
    panel.device_box.setCurrentText("cpu")


def test_progress_folds_events_into_curves_and_a_status_line() -> None:
    progress = TrainingProgress()
    assert progress.status() == "preparing data and model…" and progress.fraction(10) is None
    assert progress.add(LogLine("data: 8 cases")) == "data: 8 cases"
    assert progress.add(StepProgress(1, 2, 4, 0.7, 12.5, 30.0)) is None
    assert progress.fraction(10.0) == pytest.approx(0.25)
    line = progress.add(EpochEnd(1, 0.65, {"auc": 0.8, "confusion": [[1, 0], [0, 1]]}, is_best=True, seconds=2.0))
    assert line == "epoch 1: loss 0.6500, auc 0.8000 (best so far), 2.0 s"
    assert progress.step_loss == [(0.5, 0.7)] and progress.epoch_loss == [(1.0, 0.65)] and progress.metrics == {"auc": [(1.0, 0.8)]}
    assert progress.status() == "epoch 1, step 2/4, loss 0.7000, 12.5 images/s, 30 s left; best auc 0.8000 (epoch 1)"
    assert progress.add(Finished(RunSummary("classification", 3, 9.0, "completed", "cpu"))) == "finished: completed"


def test_an_incomplete_form_does_not_start(qtbot, settings: AppSettings, datalist: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest, match="the datalist .*missing.json does not exist") as missing:
        TrainRequest(tmp_path / "missing.json", "classification", tmp_path / "run")
    assert missing.value.field == "datalist"
    with pytest.raises(InvalidRequest, match="choose an output folder") as no_folder:
        TrainRequest(datalist, "classification", Path(""))
    assert no_folder.value.field == "out_dir"
    with pytest.raises(InvalidRequest, match="positive number of minutes, not -1") as bad_minutes:
        TrainRequest(datalist, "classification", tmp_path / "run", time_limit_minutes=-1)
    assert bad_minutes.value.field == "time_limit_minutes"
    with pytest.raises(InvalidRequest, match="^choose a datalist"):
        TrainRequest(Path(""), "classification", tmp_path / "run")
    panel = TrainingPanel(settings)
    qtbot.addWidget(panel)
    assert not panel.start() and "cannot start: choose a datalist (.json file) to train on" in panel.monitor.log.toPlainText()
    fill_form(panel, datalist, Path(""))
    assert not panel.start() and "cannot start: choose an output folder for the run" in panel.monitor.log.toPlainText()


def test_a_tiny_run_starts_in_the_worker_and_cancels(qtbot, settings: AppSettings, datalist: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    panel = TrainingPanel(settings)
    qtbot.addWidget(panel)
    fill_form(panel, datalist, tmp_path / "run")
    with qtbot.waitSignal(panel.monitor.event_received, timeout=TIMEOUT_MS, check_params_cb=lambda event: isinstance(event, StepProgress)):
        assert panel.start()
    assert panel.running and not panel.start_button.isEnabled() and panel.cancel_button.isEnabled()
    assert panel.monitor.progress.step_loss and "epoch 1" in panel.monitor.status.text()
    with qtbot.waitSignal(panel.monitor.task.finished, timeout=TIMEOUT_MS):  # type: ignore[union-attr]
        panel.cancel()
    assert not panel.running and panel.start_button.isEnabled()
    assert "cancelled" in panel.monitor.log.toPlainText()
    assert (tmp_path / "run" / "checkpoint.pt").is_file()  # what a resumed run continues from


def test_closing_during_training_asks_then_stops_it(
    qtbot, settings: AppSettings, datalist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    panel = window.training
    fill_form(panel, datalist, tmp_path / "run")
    with qtbot.waitSignal(panel.monitor.event_received, timeout=TIMEOUT_MS, check_params_cb=lambda event: isinstance(event, StepProgress)):
        panel.start()
    monkeypatch.setattr(window, "confirm_stop_training", lambda: False)
    assert not window.close() and window.isVisible() and panel.running
    monkeypatch.setattr(window, "confirm_stop_training", lambda: True)
    assert window.close()
    assert QThreadPool.globalInstance().activeThreadCount() == 0  # no orphan worker


def test_past_runs_are_compared_curve_by_curve(qtbot, settings: AppSettings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    comparison = tmp_path / "cmp"
    for arm, auc in (("pretrained", 0.9), ("scratch", 0.7)):
        folder = RunFolder(comparison / arm)
        (comparison / arm).mkdir(parents=True)
        (comparison / arm / "config.json").write_text("{}")
        for epoch in (1, 2, 3):
            folder.append_metrics({"epoch": epoch, "train_loss": 1 / epoch, "lr": 0.1, "seconds": 1.0, "auc": auc * epoch / 3})
        folder.write_summary(RunSummary("classification", 3, 3.0, "completed", "cpu", best_metric_name="auc", best_metric=auc))
    assert [name for name, _ in runs_in(comparison)] == ["cmp pretrained", "cmp from scratch"]
    panel = TrainingPanel(settings)
    qtbot.addWidget(panel)
    panel.show_runs([comparison])
    assert [name for name, _ in panel.history] == ["cmp pretrained", "cmp from scratch"]
    scratch = progress_of_run(comparison / "scratch")
    assert [epoch for epoch, _ in scratch.metrics["auc"]] == [1.0, 2.0, 3.0] and scratch.metrics["auc"][-1][1] == pytest.approx(0.7)
    assert list(scratch.metrics) == ["auc"] and scratch.epoch_loss[0] == (1.0, 1.0)  # lr and seconds are not metrics
    assert [curve.name for curve in panel.monitor.plot.curves] == [
        "cmp pretrained loss",
        "cmp pretrained auc",
        "cmp from scratch loss",
        "cmp from scratch auc",
    ]
    assert "cmp from scratch: 3 epochs, best auc 0.7" in panel.monitor.log.toPlainText()


def test_the_panel_names_the_device_auto_picks(qtbot, settings: AppSettings) -> None:  # type: ignore[no-untyped-def]
    panel = TrainingPanel(settings)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitUntil(lambda: panel.device_label.text().startswith("auto uses: "), timeout=TIMEOUT_MS)
    assert len(panel.device_label.text()) > len("auto uses: ")


def test_the_panel_shows_the_network_start_would_train_and_why(qtbot, settings: AppSettings, datalist: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    panel = TrainingPanel(settings)
    qtbot.addWidget(panel)
    panel.out_dir.setText(str(tmp_path / "run"))
    panel.datalist.setText(str(datalist))  # the summary, then the choice, follow in workers
    qtbot.waitUntil(lambda: panel.choice.text().startswith(("efficientnet-lite0", "densenet121")), timeout=TIMEOUT_MS)
    assert "the pretrained default for 2D classification" in panel.choice.text() or "random initialisation" in panel.choice.text()
    panel.weights_box.setCurrentIndex(1)  # from scratch: one click away, and the choice follows
    qtbot.waitUntil(lambda: "random initialisation: as asked" in panel.choice.text(), timeout=TIMEOUT_MS)
    assert not (tmp_path / "run").exists()

"""The fine-tune panel before Start: the datalist's cases per class / label and split, and each weight source's licence."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from medtl.data.summary import summarise_datalist
from medtl.models.weights import PACKAGED
from tests.test_ui_training import datalist  # noqa: F401 - the fixture
from ui.qt.settings import AppSettings
from ui.qt.training_panel import FROM_SCRATCH, TrainingPanel

TIMEOUT_MS = 20_000


@pytest.fixture
def panel(qtbot, tmp_path: Path) -> TrainingPanel:  # type: ignore[no-untyped-def]
    panel = TrainingPanel(AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(panel)
    panel.show()
    return panel


def test_choosing_a_datalist_shows_cases_per_class_and_the_split(qtbot, panel: TrainingPanel, datalist: Path) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(panel.summary_shown, timeout=TIMEOUT_MS) as shown:
        panel.datalist.setText(str(datalist))
    summary = shown.args[0]
    assert (summary.training.cases, summary.validation.cases) == (6, 2) and summary.training.patients == 6
    assert summary.training.per_label == {"rotated": 3, "upright": 3} and summary.validation.per_label == {"rotated": 1, "upright": 1}
    text = panel.data_summary.text()
    assert "8 cases from 8 patients" in text and "validation 2 / 2" in text and "upright 4 (3/1)" in text


def test_a_broken_datalist_is_explained_not_raised(qtbot, panel: TrainingPanel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "bad.json").write_text('{"training": []}')
    panel.datalist.setText(str(tmp_path / "bad.json"))
    qtbot.waitUntil(lambda: "empty" in panel.data_summary.text(), timeout=TIMEOUT_MS)


def test_the_weights_choice_shows_its_licence(panel: TrainingPanel) -> None:
    panel.weights_box.setCurrentText("efficientnet-lite0")
    assert PACKAGED["efficientnet-lite0"].licence in panel.licence.text() and "Apache-2.0" in panel.licence.text()
    panel.weights_box.setCurrentText(FROM_SCRATCH)
    assert "nothing to license" in panel.licence.text()
    index = panel.weights_box.findText("astra")
    assert "MIT" in panel.weights_box.itemData(index, Qt.ItemDataRole.ToolTipRole)
    panel.weights_box.setEditText("nonsense.bin")
    assert "no such weight file" in panel.licence.text()


def test_the_summary_runs_in_a_worker(qtbot, panel: TrainingPanel, datalist: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    threads = []
    real = summarise_datalist

    def spy(*args: object) -> object:
        threads.append(threading.current_thread())
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr("ui.qt.training_panel.summarise_datalist", spy)
    with qtbot.waitSignal(panel.summary_shown, timeout=TIMEOUT_MS):
        panel.datalist.setText(str(datalist))
    assert threads and threads[0] is not threading.main_thread()

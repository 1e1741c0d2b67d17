"""The fine-tune panel before Start: the datalist's cases per class / label and split, and each weight source's licence."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import nibabel
import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt

from medtl.models.weights import PACKAGED
from medtl.progress import CancelToken
from tests.test_ui_training import datalist  # noqa: F401 - the fixture
from medtl.data.summary import summarise_datalist
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


def test_segmentation_masks_are_counted_per_label_off_the_gui_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = []
    for number in range(4):
        mask = np.zeros((8, 8, 3), np.uint8)
        mask[2:4, 2:4, 1] = 1 + (number % 2)  # label 1 in two cases, label 2 in the other two
        nibabel.save(nibabel.Nifti1Image(mask, np.eye(4)), tmp_path / f"m{number}.nii.gz")
        nibabel.save(nibabel.Nifti1Image(mask.astype(np.float32), np.eye(4)), tmp_path / f"i{number}.nii.gz")
        entries.append({"image": f"i{number}.nii.gz", "label": f"m{number}.nii.gz", "patient_id": f"P{number // 2}"})
    path = tmp_path / "seg.json"
    path.write_text(json.dumps({"training": entries, "labels": {"0": "background", "1": "liver", "2": "tumour"}}))
    reports = []
    summary = summarise_datalist(path, None, lambda done, total, _m="": reports.append((done, total)), CancelToken())
    assert summary.task == "segmentation" and reports[0] == (0, 4)
    assert (summary.training.patients, summary.validation.patients) == (1, 1)  # both cases of a patient stay together
    assert summary.training.per_label == {"liver": 1, "tumour": 1} and "liver 2 (1/1)" in summary.lines()[2]


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

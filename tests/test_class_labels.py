"""Class labels in the app: number keys classify the shown series or slice, progress n/N, Next unlabelled moves on."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from medtl.errors import MedtlError
from tests.dicomgen import SeriesSpec, phantom, write_series
from tests.test_ui_labels import shown_window, temporary_settings
from tests.test_ui_window import click_into, open_and_show
from ui.models.class_labels import ClassLabels
from ui.qt.main_window import MainWindow

SHAPE = (12, 32, 32)


@pytest.fixture(scope="module")
def ct_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("class_ct")
    write_series(folder, phantom(SHAPE), SeriesSpec(series_description="phantom", spacing=(0.8, 0.8, 2.0), patient_id="P7"))
    return folder


@pytest.fixture
def window(qtbot, tmp_path: Path, ct_folder: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:  # type: ignore[no-untyped-def]
    window = shown_window(qtbot, temporary_settings(tmp_path))
    monkeypatch.setattr(window, "ask_unsaved_label", lambda: QMessageBox.StandardButton.Discard)  # closing at the end never asks
    open_and_show(qtbot, window, ct_folder)
    window.label_tools.class_labels.number_keys.setChecked(True)  # the number keys classify now
    return window


def test_number_keys_classify_the_series_and_the_progress_says_so(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    panel = window.label_tools.class_labels
    assert panel.progress.text() == "0/1 series classified" and panel.progress.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_2)
    assert panel.progress.text() == "1/1 series classified" and "2 class 2" in panel.current.text()
    assert panel.status_progress.text() == "1/1 series classified" and panel.status_progress.isVisible()  # in the status bar too
    qtbot.keyClick(window, Qt.Key.Key_7)  # no class 7 yet: nothing changes, and the panel says why
    assert panel.progress.text() == "1/1 series classified" and "no class 7" in panel.current.text()
    panel.classes.item(0).setText("normal")  # renaming in the list
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert "1 normal" in panel.current.text()
    qtbot.keyClick(window, Qt.Key.Key_0)
    assert panel.progress.text() == "0/1 series classified" and "no class" in panel.current.text()


def test_per_slice_keys_and_next_unlabelled_goes_to_the_right_slice(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    panel, model = window.label_tools.class_labels, window.viewer.model
    assert model is not None
    panel.mode.setCurrentIndex(1)  # per slice
    start = int(model.cursor[2])
    assert panel.progress.text() == f"0/{SHAPE[0]} slices classified"
    qtbot.keyClick(window, Qt.Key.Key_1)
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert int(model.cursor[2]) == start + 1 and f"slice {start + 2}: no class" in panel.current.text()
    qtbot.keyClick(window, Qt.Key.Key_2)
    model.set_cursor(model.cursor + [0, 0, 2])  # the user scrolls on to start + 3 and classifies it
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert panel.progress.text() == f"3/{SHAPE[0]} slices classified"
    model.set_cursor(model.cursor - [0, 0, 3])  # back to the first classified slice
    panel.next_unlabelled()
    assert int(model.cursor[2]) == start + 2  # skips start + 1 (classified), stops at the gap
    model.set_cursor(model.cursor * [1, 1, 0] + [0, 0, SHAPE[0] - 1])
    qtbot.keyClick(window, Qt.Key.Key_1)
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert int(model.cursor[2]) == 0  # wraps round to the first slice


def test_next_unlabelled_series_asks_the_window_for_it(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    panel = window.label_tools.class_labels
    panel.labels.include("1.2.3.other", 5)
    assert panel.progress.text() == "0/2 series classified"
    qtbot.keyClick(window, Qt.Key.Key_1)
    with qtbot.waitSignal(panel.series_requested, timeout=1000) as requested:
        qtbot.keyClick(window, Qt.Key.Key_N)
    assert requested.args == ["1.2.3.other", None]


def test_number_keys_choose_window_presets_again_once_classifying_is_off(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    panel, model = window.label_tools.class_labels, window.viewer.model
    assert model is not None
    panel.number_keys.setChecked(False)
    click_into(qtbot, window.viewer.active_view)
    qtbot.keyClick(window.viewer.active_view, Qt.Key.Key_4)  # preset 4: CT bone
    assert (model.window.width, model.window.center) == (2000, 300) and panel.progress.text() == "0/1 series classified"
    panel.number_keys.setChecked(True)
    qtbot.keyClick(window.viewer.active_view, Qt.Key.Key_1)
    assert panel.progress.text() == "1/1 series classified"


def test_class_labels_round_trip_and_bad_data_is_refused() -> None:
    labels = ClassLabels({1: "normal", 2: "nodule"}, [("a", 3), ("b", 2)], per_slice=True)
    labels.assign(2, "a", 1)
    labels.assign(1, "b", 0)
    again = ClassLabels.from_dict(labels.to_dict(), [("a", 3), ("b", 2)])
    assert again.class_of("a", 1) == 2 and again.progress() == (2, 5) and again.next_unlabelled("a", 1) == ("a", 2)
    with pytest.raises(MedtlError, match="unknown"):
        ClassLabels.from_dict({"classes": {"1": "x"}, "series": {"a": 4}})

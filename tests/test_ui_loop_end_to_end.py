"""The label-few loop through the real widgets, with real training: open the sample, paint 4 slices, Start, the
prediction appears on the series, Accept it, correct it with the brush, Train again from that model, and the second
run's provenance names the first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from medtl.labels.store import LabelStore
from medtl.training.run_folder import RunFolder
from tests.test_ui_labels import drag, screen_point, shown_window, temporary_settings
from tests.test_ui_window import click_into
from ui.models.overlays import LabelLayer

SAMPLE_TIMEOUT_MS = 120_000
RUN_TIMEOUT_MS = 600_000  # one short epoch and a prediction of the whole sample, on a shared 2-core machine


def test_label_four_slices_train_see_the_prediction_accept_correct_and_train_again(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    store = LabelStore(tmp_path / "labels")
    window = shown_window(qtbot, temporary_settings(tmp_path), store)
    monkeypatch.setattr(window, "ask_unsaved_label", lambda: QMessageBox.StandardButton.Discard)  # closing never waits on a dialog
    with qtbot.waitSignal(window.series_shown, timeout=SAMPLE_TIMEOUT_MS):
        window.open_sample()
    model, tools, view = window.viewer.model, window.label_tools, window.viewer.active_view
    assert model is not None and view.plane is not None
    tools.actions_by_name["new_label"].trigger()
    editor = model.editor
    assert editor is not None
    tools.size.setValue(12.0)
    tools.actions_by_name["brush"].trigger()
    click_into(qtbot, view)
    rows, columns, _ = view.plane.size(model.volume.shape)
    painted = []
    for _ in range(4):  # four slices, 6 apart, each with a stroke across the middle of the head
        painted.append(model.slice_index(view.plane))
        drag(view, [screen_point(view, rows * 0.5, columns * f) for f in (0.35, 0.45, 0.55, 0.65)])
        for _ in range(6):
            qtbot.keyClick(view, Qt.Key.Key_Down)
    assert editor.annotated.slices[0] == set(painted)
    with qtbot.waitSignal(window.label_saved, timeout=SAMPLE_TIMEOUT_MS):
        qtbot.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)

    panel = window.training
    window.show_training()
    qtbot.mouseClick(panel.from_labels_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.datalist.text() == str(store.root / "datalist.json"), timeout=SAMPLE_TIMEOUT_MS)
    panel.epochs.setValue(1)
    panel.device_box.setCurrentText("cpu")
    first_run = Path(panel.out_dir.text())
    layers_before = list(model.layers)
    with qtbot.waitSignal(window.prediction_shown, timeout=RUN_TIMEOUT_MS):  # the run ends, then predicts the series
        assert panel.start()
    assert panel.monitor.status.text().startswith("done: 1 epoch")
    predicted = [layer for layer in model.layers if isinstance(layer, LabelLayer) and layer not in layers_before]
    assert predicted and predicted[0].mask.shape == model.volume.shape and predicted[0].mask.any()
    assert model.layers[-1] is editor.layer  # the user's label stays on top of the prediction
    assert window.results.run_dir == first_run

    drawn = editor.layer.mask.copy()
    tools.actions_by_name["accept"].trigger()
    accepted = editor.layer.mask.copy()
    assert (accepted != drawn).any() and np.array_equal(accepted[painted], drawn[painted])  # the painted slices are the user's
    tools.actions_by_name["eraser"].trigger()
    click_into(qtbot, view)
    corrected_slice = model.slice_index(view.plane)
    drag(view, [screen_point(view, rows * 0.5, columns * f) for f in (0.4, 0.5, 0.6)])
    assert (editor.layer.mask[corrected_slice] < accepted[corrected_slice]).any()  # the eraser took part of the prediction away
    with qtbot.waitSignal(window.label_saved, timeout=SAMPLE_TIMEOUT_MS):
        window.save_label()

    assert panel.again_button.isEnabled()
    second_run = Path(panel.out_dir.text())
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS):
        panel.again_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=RUN_TIMEOUT_MS)
    summary = json.loads(RunFolder(second_run).summary_path.read_text())
    assert summary["parent_run"] == str(first_run) and summary["pretrained_source"] == f"run:{first_run}"

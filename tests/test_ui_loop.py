"""The label-few loop in the app: paint a few slices of the sample, accept a prediction without losing a stroke, save
versions, sparse training masks, a fine-tune panel that needs no typing, Resume and Train again.

The first tests drive the pure parts (``ui.models``) without a QApplication; the others drive the real widgets."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from medtl.data.datalist import load_datalist
from medtl.data.images import read_image
from medtl.data.sparse import Annotated
from medtl.dicom.volume import Volume
from medtl.inference.prediction import SegmentationPrediction
from medtl.labels.store import INFO_NAME, TRAINING_MASK_NAME, LabelStore
from medtl.render.colours import LABEL_PALETTE
from medtl.render.window import WindowLevel
from medtl.training.events import CANCELLED, COMPLETED, TIME_LIMIT, StepProgress
from medtl.training.run_folder import RunFolder
from medtl.training.run_summary import RunSummary
from tests.dicomgen import rotation
from tests.test_ui_labels import drag, screen_point, shown_window, temporary_settings
from tests.test_ui_training import datalist, fill_form  # noqa: F401 - the bars datalist fixture
from tests.test_ui_window import click_into
from ui.models.label_editor import LabelEditor, annotated_axis
from ui.models.overlays import PREDICTION_PALETTE, LabelLayer
from ui.models.prediction_layers import prediction_layers
from ui.models.projection import ProjectionPlane
from ui.models.run_request import RunOutcome, default_run_dir, default_runs_root
from ui.models.training_progress import TrainingProgress, ended_status
from ui.models.view_plane import PlaneKind, ViewPlane
from ui.models.viewer_model import ViewerModel, projection_window, window_text
from ui.qt.training_panel import TrainingPanel

SAMPLE_TIMEOUT_MS = 120_000  # the sample study is built on first use (a few seconds)
TRAIN_TIMEOUT_MS = 120_000
SPACING = (1.0, 1.0, 1.0)


# --- pure view models ---------------------------------------------------------------------------


def painted(editor: LabelEditor, plane: ViewPlane, index: int, row: float, column: float, erase: bool = False) -> None:
    editor.begin(plane, index)
    editor.paint(row, column, SPACING, erase=erase)
    editor.end()


def test_accepting_a_prediction_keeps_every_voxel_the_user_drew_and_undoes_in_one_step() -> None:
    axial = ViewPlane.of_kind(PlaneKind.AXIAL, np.eye(3))
    editor = LabelEditor(LabelLayer("label", np.zeros((6, 12, 12), np.uint8)), {1: "label 1"}, radius_mm=0.4)
    painted(editor, axial, 2, 5, 5)  # drawn: label 1 at [2, 5, 5]
    painted(editor, axial, 3, 6, 6, erase=True)  # drawn: "nothing here" at [3, 6, 6]
    before, annotated = editor.layer.mask.copy(), editor.annotated
    assert annotated == Annotated().add(0, [2, 3]) and editor.edits == 2  # the eraser over background is an edit too
    prediction = np.zeros_like(before)
    prediction[1:5, 4:8, 4:8] = 2
    assert editor.accept(prediction, {2: "ventricle"}) is not None
    mask = editor.layer.mask
    assert mask[2, 5, 5] == 1 and mask[3, 6, 6] == 0  # the user's strokes win
    assert mask[2, 4, 4] == 0 and mask[3, 4, 4] == 0  # and so do the rest of the slices the user annotated
    assert mask[1, 4, 4] == 2 and mask[4, 7, 7] == 2 and editor.names == {1: "label 1", 2: "ventricle"}
    assert editor.annotated.complete and editor.annotated.slices == annotated.slices and editor.layer.colors[2] == LABEL_PALETTE[1]
    assert editor.undo() and np.array_equal(editor.layer.mask, before) and editor.annotated == annotated
    assert editor.redo() and editor.layer.mask[1, 4, 4] == 2 and editor.annotated.complete
    assert editor.accept(prediction, {2: "ventricle"}) is None  # nothing left to add


def test_a_second_prediction_replaces_the_first_but_not_the_strokes() -> None:
    axial = ViewPlane.of_kind(PlaneKind.AXIAL, np.eye(3))
    editor = LabelEditor(LabelLayer("label", np.zeros((4, 10, 10), np.uint8)), radius_mm=0.4)
    first = np.zeros((4, 10, 10), np.uint8)
    first[:, 2:6, 2:6] = 1
    editor.accept(first, {1: "lesion"})
    painted(editor, axial, 1, 3, 3, erase=True)  # the user corrects the prediction
    editor.undo()
    editor.redo()  # undo then redo keeps the correction the user's
    editor.accept(np.zeros_like(first), {1: "lesion"})  # a later, empty prediction
    assert not editor.layer.mask[0].any() and editor.layer.mask[1, 3, 3] == 0
    painted(editor, axial, 2, 4, 4)  # a stroke undone is no longer the user's
    editor.undo()
    editor.accept(np.ones_like(first), {})
    assert editor.layer.mask[2, 4, 4] == 1 and editor.layer.mask[1, 3, 3] == 0


def test_strokes_mark_their_slice_per_array_axis_and_oblique_planes_mark_none() -> None:
    shape = (6, 8, 10)
    editor = LabelEditor(LabelLayer("label", np.zeros(shape, np.uint8)), radius_mm=0.4)
    for kind, index in ((PlaneKind.AXIAL, 4), (PlaneKind.CORONAL, 5), (PlaneKind.SAGITTAL, 7)):
        painted(editor, ViewPlane.of_kind(kind, np.eye(3)), index, 2, 2)
    assert editor.annotated.slices == (frozenset({4}), frozenset({5}), frozenset({7})) and not editor.annotated.complete
    volume = Volume(np.zeros((14, 40, 48), np.int16), (0.9, 0.9, 2.5), (0.0, 0.0, 0.0), rotation("x", 20), metadata={"kind": "classic"})
    oblique = ViewerModel(volume).patient_planes()[0]
    assert oblique.computed and annotated_axis(oblique) is None
    assert annotated_axis(ViewPlane.of_kind(PlaneKind.AXIAL, rotation("z", 90))) == 0


def test_the_edited_label_stays_on_top_and_predictions_have_their_own_colours() -> None:
    model = ViewerModel(Volume(np.zeros((4, 8, 8), np.int16), SPACING, (0.0, 0.0, 0.0)))
    editor = model.edit_label(np.zeros((4, 8, 8), np.uint8), {1: "a"}, annotated=Annotated())
    mask = np.zeros((4, 8, 8), np.uint8)
    mask[1, 2:4, 2:4], mask[2, 2:4, 2:4] = 1, 2
    grid = (SPACING, (0.0, 0.0, 0.0))
    prediction = SegmentationPrediction(Volume(np.zeros((4, 8, 8)), *grid), None, {0: "bg", 1: "a", 2: "b"}, Volume(mask, *grid), {})
    for layer in prediction_layers(prediction, "run"):
        model.add_layer(layer)
    predicted = model.layers[0]
    assert model.layers[-1] is editor.layer and isinstance(predicted, LabelLayer)
    assert predicted.colors == {1: PREDICTION_PALETTE[0], 2: PREDICTION_PALETTE[1]}
    assert predicted.colors[1] != predicted.colors[2] and not set(PREDICTION_PALETTE) & set(LABEL_PALETTE)


def test_window_text_is_rounded_and_a_projection_gets_its_own_window() -> None:
    assert window_text(WindowLevel(317.062, 60.5625)) == "W 317 L 61" and window_text(WindowLevel(2.5, 1.25)) == "W 2.5 L 1.25"
    values = np.zeros((40, 30, 30), np.int16)
    values[5:35, 5:25, 5:25] = 100 + np.arange(20)[None, None, :]  # a body with a gradient
    values[20, 15, 15] = 1000  # and one bright spot
    model = ViewerModel(Volume(values, SPACING, (0.0, 0.0, 0.0)))
    mip = ProjectionPlane.of_kind(PlaneKind.CORONAL, np.eye(3))
    model.prepare_projection(mip)
    assert model.render(mip) is not None and model.window_of(mip) == projection_window(mip.extract(values, 0))
    low, high = model.window_of(mip).center - model.window_of(mip).width / 2, model.window_of(mip).center + model.window_of(mip).width / 2
    assert 100 <= low < high <= 1000 and high - low < 100  # the body's gradient spans the grey levels
    assert model.window_of(ViewPlane.of_kind(PlaneKind.AXIAL, np.eye(3))) == model.window
    model.set_window(WindowLevel(50, 110), mip)
    assert model.window_of(mip) == WindowLevel(50, 110) and model.window != WindowLevel(50, 110)
    assert "W 50 L 110" in model.corner_text(mip).bottom_left[1]
    model.reset()
    assert model.window_of(mip) == model.window  # made again at the next render


def test_default_run_folders_are_new_and_dated(tmp_path: Path) -> None:
    now = datetime(2025, 3, 4, 5, 6, 7)
    first = default_run_dir(tmp_path, now)
    assert first == tmp_path / "2025-03-04_05-06-07" and not first.exists()
    first.mkdir()
    assert default_run_dir(tmp_path, now) == tmp_path / "2025-03-04_05-06-07-2"
    assert default_run_dir().parent == default_runs_root() and default_runs_root().parent.name == "medtl"


def test_resume_and_train_again_follow_the_outcome(tmp_path: Path) -> None:
    """Which follow-up a run allows; the requests they make are tested on a real run in test_ui_review."""
    datalist_file = tmp_path / "datalist.json"
    run = tmp_path / "run"
    folder = RunFolder(run)
    run.mkdir()
    outcome = RunOutcome(run, run, datalist_file, "cpu", CANCELLED)
    assert not outcome.resumable and not outcome.has_model  # no checkpoint yet
    folder.checkpoint_path.touch()
    folder.best_model_path.touch()
    assert outcome.resumable and not outcome.has_model
    finished = RunOutcome(run, run, datalist_file, "cpu", COMPLETED)
    assert finished.has_model and not finished.resumable
    assert RunOutcome(run, run, datalist_file, "cpu", TIME_LIMIT).resumable


def test_the_status_line_follows_the_run() -> None:
    progress = TrainingProgress(epochs=5)
    assert progress.status() == "preparing data and model…"
    progress.add(StepProgress(2, 1, 4, 0.5, 10.0, None))
    assert progress.status().startswith("epoch 2/5, step 1/4")
    summary = RunSummary("segmentation", 5, 30.0, COMPLETED, "cpu", "dice", 0.81234, 4)
    assert ended_status(summary) == "done: 5 epochs in 30 s; best dice 0.8123 at epoch 4"
    assert ended_status(RunSummary("segmentation", 2, 9.0, CANCELLED, "cpu")).startswith("cancelled after 2 epochs: Resume")
    assert "time limit" in ended_status(RunSummary("segmentation", 3, 60.0, TIME_LIMIT, "cpu"))


# --- the real widgets ---------------------------------------------------------------------------


def sample_prediction(shape: tuple[int, int, int], box: tuple[slice, slice, slice]) -> SegmentationPrediction:
    """What the predictor returns for the sample, without torch: label 2 ("ventricle") in ``box``."""
    mask = np.zeros(shape, np.uint8)
    mask[box] = 2
    grid = (SPACING, (0.0, 0.0, 0.0))
    return SegmentationPrediction(Volume(np.zeros(shape, np.uint8), *grid), None, {0: "background", 2: "ventricle"}, Volume(mask, *grid), {})


def test_paint_accept_save_and_train_on_the_sample_without_losing_a_stroke(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    store = LabelStore(tmp_path / "labels")
    window = shown_window(qtbot, temporary_settings(tmp_path), store)
    with qtbot.waitSignal(window.series_shown, timeout=SAMPLE_TIMEOUT_MS):
        window.open_sample()
    model, tools, view = window.viewer.model, window.label_tools, window.viewer.active_view
    assert model is not None and view.plane is not None and view.plane.kind is PlaneKind.AXIAL
    tools.actions_by_name["new_label"].trigger()
    editor = model.editor
    assert editor is not None and editor.annotated.count() == 0
    tools.size.setValue(3.0)
    tools.actions_by_name["brush"].trigger()
    click_into(qtbot, view)
    first = model.slice_index(view.plane)
    drag(view, [screen_point(view, 100, 80), screen_point(view, 100, 110)])
    for _ in range(3):
        qtbot.keyClick(view, Qt.Key.Key_Down)
    second = model.slice_index(view.plane)
    assert second == first + 3
    drag(view, [screen_point(view, 150, 60)])
    tools.actions_by_name["eraser"].trigger()
    drag(view, [screen_point(view, 60, 60)])  # over background: "nothing here" on this slice
    shape = model.volume.shape

    def voxel(row: float, column: float, index: int) -> tuple[int, int, int]:
        x, y, z = np.rint(view.plane.to_index(row, column, index, shape)).astype(int)  # type: ignore[union-attr]
        return int(z), int(y), int(x)

    stroke, other_stroke, erased = voxel(100, 95, first), voxel(150, 60, second), voxel(60, 60, second)
    assert editor.layer.mask[stroke] == 1 and editor.layer.mask[other_stroke] == 1 and editor.layer.mask[erased] == 0
    assert editor.annotated.slices[0] == {first, second} and editor.edits == 3

    with qtbot.waitSignal(window.label_saved, timeout=SAMPLE_TIMEOUT_MS) as saved:
        qtbot.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    label = saved.args[0]
    record = json.loads((label.mask.parent / INFO_NAME).read_text())
    assert record["annotated"] == {"complete": False, "axial": [first, second], "coronal": [], "sagittal": []}
    drawn = editor.layer.mask.copy()
    written = load_datalist(store.write_datalist())
    assert written.labels == {0: "background", 1: "label 1", 2: "ignore"} and written.training[0].label.name == TRAINING_MASK_NAME
    training = read_image(written.training[0].label).array
    assert np.array_equal(training[[first, second]], drawn[[first, second]]) and (np.delete(training, [first, second], axis=0) == 2).all()

    box = (slice(first - 5, second + 5), *(slice(min(stroke[a], erased[a]) - 4, max(stroke[a], erased[a]) + 4) for a in (1, 2)))
    for layer in prediction_layers(sample_prediction(shape, box), "run 1"):
        model.add_layer(layer)
    prediction = model.layers[-2]
    assert model.layers[-1] is editor.layer and isinstance(prediction, LabelLayer)  # the edits lie on the prediction
    assert prediction.colors[2] != editor.layer.colour_of(2) and prediction.colors[2] != editor.layer.colors[1]
    tools.actions_by_name["accept"].trigger()
    mask = editor.layer.mask
    assert mask[stroke] == 1 and mask[other_stroke] == 1 and mask[erased] == 0  # every stroke survived
    assert mask[first - 2, stroke[1], stroke[2]] == 2 and editor.names[2] == "ventricle" and editor.annotated.complete
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(editor.layer.mask, drawn) and editor.annotated.slices[0] == {first, second}  # one undo: as before
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    merged = editor.layer.mask.copy()
    assert merged[first - 2, stroke[1], stroke[2]] == 2

    with qtbot.waitSignal(window.label_saved, timeout=SAMPLE_TIMEOUT_MS):
        window.save_label()
    uids = (str(model.volume.metadata["study_uid"]), str(model.volume.metadata["series_uid"]))
    versions = store.versions(*uids)
    assert "earlier saves kept: 1 in" in window.status_message.text()
    assert [v.number for v in versions] == [1] and np.array_equal(read_image(versions[0].mask).array, drawn)
    assert np.array_equal(read_image(label.mask).array, merged) and store.find(*uids).annotated.complete  # type: ignore[union-attr]
    restored = store.restore(*uids, 1)
    assert np.array_equal(read_image(restored.mask).array, drawn) and restored.annotated.slices[0] == {first, second}
    assert [v.number for v in store.versions(*uids)] == [1, 2] and np.array_equal(read_image(store.versions(*uids)[1].mask).array, merged)

    panel = window.training
    assert panel.task_box.currentText() == "segmentation"
    assert Path(panel.out_dir.text()).parent == default_runs_root() and not Path(panel.out_dir.text()).exists()
    window.show_training()
    click_into(qtbot, view)
    before = model.slice_index(view.plane)
    qtbot.mouseClick(panel.from_labels_button, Qt.MouseButton.LeftButton)  # a panel button leaves the focus on the image
    qtbot.waitUntil(lambda: panel.datalist.text() == str(store.root / "datalist.json"), timeout=SAMPLE_TIMEOUT_MS)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Down)
    assert model.slice_index(view.plane) == before + 1

    panel.out_dir.setText("")
    assert not panel.start()
    assert panel.monitor.status.text() == "cannot start: choose an output folder for the run"
    assert window.problems.topLevelItem(window.problems.topLevelItemCount() - 1).text(0) == "fine-tuning"
    taken = tmp_path / "taken"
    taken.mkdir()
    RunFolder(taken).checkpoint_path.touch()  # the folder holds a run: the engine refuses it
    panel.out_dir.setText(str(taken))
    panel.device_box.setCurrentText("cpu")
    with qtbot.waitSignal(window.training.monitor.problem, timeout=TRAIN_TIMEOUT_MS):
        assert panel.start()
    qtbot.waitUntil(lambda: not panel.running, timeout=TRAIN_TIMEOUT_MS)
    assert panel.monitor.status.text().startswith("failed:") and "already holds a training run" in panel.monitor.status.text()
    assert "already holds a training run" in window.status_message.text() and "see Problems" in window.status_message.text()
    assert "already holds" in window.problems.topLevelItem(window.problems.topLevelItemCount() - 1).text(1)
    assert Path(panel.out_dir.text()).parent == default_runs_root()  # the next run gets a new folder
    editor.saved(editor.edits)  # let the window close without asking


def test_resume_a_cancelled_run_and_train_again_from_a_finished_one(qtbot, tmp_path: Path, datalist: Path) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    panel = TrainingPanel(temporary_settings(tmp_path))
    qtbot.addWidget(panel)
    assert not panel.resume_button.isEnabled() and not panel.again_button.isEnabled()
    assert panel.task_box.currentText() == "segmentation"
    panel.datalist.setText(str(datalist))
    qtbot.waitUntil(lambda: panel.task_box.currentText() == "classification", timeout=TRAIN_TIMEOUT_MS)  # the datalist names classes
    fill_form(panel, datalist, tmp_path / "run")
    with qtbot.waitSignal(panel.monitor.event_received, timeout=TRAIN_TIMEOUT_MS, check_params_cb=lambda event: isinstance(event, StepProgress)):
        assert panel.start()
    assert panel.monitor.status.text().startswith("epoch 1/50")
    with qtbot.waitSignal(panel.monitor.task.finished, timeout=TRAIN_TIMEOUT_MS):  # type: ignore[union-attr]
        panel.cancel()
    assert panel.resume_button.isEnabled() and not panel.again_button.isEnabled()
    assert panel.monitor.status.text().startswith("cancelled") and panel.out_dir.text() != str(tmp_path / "run")
    with qtbot.waitSignal(panel.monitor.event_received, timeout=TRAIN_TIMEOUT_MS, check_params_cb=lambda event: isinstance(event, StepProgress)):
        panel.resume_button.click()
    assert "resuming" in panel.monitor.log.toPlainText() and not panel.resume_button.isEnabled()
    with qtbot.waitSignal(panel.monitor.task.finished, timeout=TRAIN_TIMEOUT_MS):  # type: ignore[union-attr]
        panel.cancel()

    panel.epochs.setValue(1)
    panel.out_dir.setText(str(tmp_path / "short"))
    with qtbot.waitSignal(panel.run_finished, timeout=TRAIN_TIMEOUT_MS):
        assert panel.start()
    qtbot.waitUntil(lambda: not panel.running, timeout=TRAIN_TIMEOUT_MS)
    assert panel.again_button.isEnabled() and panel.monitor.status.text().startswith("done: 1 epoch")
    next_folder = Path(panel.out_dir.text())
    with qtbot.waitSignal(panel.monitor.event_received, timeout=TRAIN_TIMEOUT_MS, check_params_cb=lambda event: isinstance(event, StepProgress)):
        panel.again_button.click()
    assert f"training again from {tmp_path / 'short'}" in panel.monitor.log.toPlainText()
    with qtbot.waitSignal(panel.monitor.task.finished, timeout=TRAIN_TIMEOUT_MS):  # type: ignore[union-attr]
        panel.cancel()
    assert RunFolder(next_folder).read_config().model["weights"] == f"run:{tmp_path / 'short'}"


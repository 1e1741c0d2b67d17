"""Labels in the app: accept a prediction as a label, paint and erase it in any plane, undo / redo, save, reuse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QMessageBox

from medtl.data.datalist import load_datalist
from medtl.data.images import read_image
from medtl.dicom.volume import Volume
from medtl.inference.prediction import SegmentationPrediction
from medtl.labels.store import LabelStore
from medtl.progress import CancelToken
from tests.dicomgen import SeriesSpec, phantom, rotation, write_series
from tests.test_ui_window import TIMEOUT_MS, open_and_show, pixels, send_mouse
from ui.models.label_editor import LabelEditor, Tool, disc
from ui.models.overlays import LabelLayer
from ui.models.prediction_layers import prediction_layers
from ui.models.view_plane import PlaneKind, ViewPlane
from ui.qt.main_window import MainWindow
from ui.qt.settings import AppSettings
from ui.qt.slice_view import SliceView
from ui.qt.viewer_widget import Layout

SHAPE = (20, 48, 56)


@pytest.fixture(scope="module")
def ct_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("labels_ct")
    write_series(folder, phantom(SHAPE), SeriesSpec(series_description="phantom", spacing=(0.8, 0.8, 2.0), patient_id="P9"))
    return folder


@pytest.fixture
def store(tmp_path: Path) -> LabelStore:
    return LabelStore(tmp_path / "labels")


def shown_window(qtbot, settings: AppSettings, store: LabelStore | None = None) -> MainWindow:  # type: ignore[no-untyped-def]
    """A main window on ``settings`` (and ``store``), shown at a size that fits three views."""
    window = MainWindow(settings, label_store=store)
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    return window


def temporary_settings(folder: Path) -> AppSettings:
    return AppSettings(QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def window(qtbot, tmp_path: Path, store: LabelStore) -> MainWindow:  # type: ignore[no-untyped-def]
    return shown_window(qtbot, temporary_settings(tmp_path), store)


def fake_prediction(shape: tuple[int, int, int]) -> SegmentationPrediction:
    """What the predictor returns for a segmentation, without torch: a mask volume and its label names."""
    mask = np.zeros(shape, np.uint8)
    mask[8:12, 10:20, 12:30] = 1
    grid = ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    return SegmentationPrediction(Volume(np.zeros(shape), *grid), None, {0: "background", 1: "bone"}, Volume(mask, *grid), {"bone": float(mask.sum())})


def drag(view: SliceView, points: list[QPointF]) -> None:
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    send_mouse(view, QMouseEvent.Type.MouseButtonPress, points[0], left, left)
    for point in points[1:]:
        send_mouse(view, QMouseEvent.Type.MouseMove, point, none, left)
    send_mouse(view, QMouseEvent.Type.MouseButtonRelease, points[-1], left, none)


def screen_point(view: SliceView, row: float, column: float) -> QPointF:
    """The widget point at the centre of image pixel (``row``, ``column``)."""
    assert view.plane is not None and view.model is not None
    rows, columns, _ = view.plane.size(view.model.volume.shape)
    rect = view.image_rect()
    return QPointF(rect.left() + (column + 0.5) * rect.width() / columns, rect.top() + (row + 0.5) * rect.height() / rows)


@pytest.mark.parametrize("kind", list(PlaneKind))
def test_the_brush_paints_the_voxels_shown_under_it_in_every_plane(kind: PlaneKind) -> None:
    direction = rotation("z", 180) @ np.diag([1.0, 1.0, -1.0])  # flipped axes: the screen runs against the index axes
    plane = ViewPlane.of_kind(kind, direction)
    layer = LabelLayer("label", np.zeros((6, 10, 12), np.uint8))
    editor = LabelEditor(layer, {1: "a", 2: "b"}, value=2, radius_mm=0.4)
    editor.begin(plane, 3)
    editor.paint(1, 2, (1.0, 1.0, 1.0))
    assert editor.end() is not None and editor.dirty and layer.mask.sum() == 2
    x, y, z = plane.to_index(1, 2, 3, layer.mask.shape).astype(int)
    assert layer.mask[z, y, x] == 2 and plane.extract(layer.mask, 3)[1, 2] == 2
    assert editor.undo() and not layer.mask.any() and editor.redo() and layer.mask[z, y, x] == 2


def test_a_drag_leaves_no_gaps_and_the_eraser_erases() -> None:
    plane = ViewPlane.of_kind(PlaneKind.AXIAL, np.eye(3))
    layer = LabelLayer("label", np.zeros((1, 40, 40), np.uint8))
    editor = LabelEditor(layer, radius_mm=1.5)
    editor.begin(plane, 0)
    editor.paint(20, 2, (1.0, 1.0, 1.0))
    editor.paint(20, 37, (1.0, 1.0, 1.0))  # one jump across the image
    editor.end()
    assert layer.mask[0, 20, 2:38].all()
    editor.begin(plane, 0)
    editor.paint(20, 20, (1.0, 1.0, 1.0), erase=True)
    editor.end()
    assert not layer.mask[0, 20, 20] and layer.mask[0, 20, 2] and editor.edits == 2


def test_undo_history_is_bounded_in_bytes() -> None:
    plane = ViewPlane.of_kind(PlaneKind.AXIAL, np.eye(3))
    editor = LabelEditor(LabelLayer("label", np.zeros((1, 64, 64), np.uint8)), radius_mm=3, undo_bytes=400)
    for column in range(4, 60, 8):
        editor.begin(plane, 0)
        editor.paint(30, column, (1.0, 1.0, 1.0))
        editor.end()
    strokes = 0
    while editor.undo():
        strokes += 1
    assert 1 <= strokes < 7 and editor.layer.mask.any()  # the oldest strokes were forgotten, so they stay painted


def test_disc_respects_anisotropic_pixels() -> None:
    rows, columns = disc(10, 10, 2.0, (2.0, 0.5), (30, 30))
    assert set(rows) == {9, 10, 11} and columns.min() == 6 and columns.max() == 14


def test_accept_paint_undo_save_and_reuse_as_training_label(qtbot, window: MainWindow, ct_folder: Path, store: LabelStore) -> None:  # type: ignore[no-untyped-def]
    open_and_show(qtbot, window, ct_folder)
    model, tools = window.viewer.model, window.label_tools
    assert model is not None and not tools.actions_by_name["accept"].isEnabled()
    for layer in prediction_layers(fake_prediction(model.volume.shape), "bones"):
        model.add_layer(layer)
    prediction = model.layers[0]
    assert tools.actions_by_name["accept"].isEnabled() and not tools.actions_by_name["brush"].isEnabled()
    tools.actions_by_name["accept"].trigger()
    editor = model.editor
    assert editor is not None and editor.layer is model.layers[-1] and editor.layer is not prediction
    assert np.array_equal(editor.layer.mask, prediction.mask) and editor.names == {1: "bone"}
    assert window.layers.list.count() == 2 and "label (from bones: bone)" in window.layers.list.item(0).text()
    # the prediction is hidden once merged, so that what the eraser takes away from the label shows
    assert not prediction.visible and window.layers.list.item(1).checkState() == Qt.CheckState.Unchecked

    window.viewer.set_layout_mode(Layout.MPR)
    coronal = window.viewer.views[1]
    assert coronal.plane is not None and coronal.plane.kind is PlaneKind.CORONAL
    tools.size.setValue(1.0)
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert tools.actions_by_name["brush"].isChecked() and coronal.tool is Tool.BRUSH
    before = pixels(coronal)
    row, column = 3.0, 40.0
    x, y, z = np.rint(coronal.plane.to_index(row, column, model.slice_index(coronal.plane), model.volume.shape)).astype(int)
    assert editor.layer.mask[z, y, x] == 0
    cursor_before = model.cursor.copy()
    drag(coronal, [screen_point(coronal, row, column), screen_point(coronal, row, column + 6)])
    assert editor.layer.mask[z, y, x] == 1 and editor.layer.mask[z, y, x + 6] == 1  # the voxels the pointer was over
    assert np.array_equal(model.cursor, cursor_before)  # painting does not move the crosshair
    assert not np.array_equal(pixels(coronal), before) and editor.dirty and "Unsaved" in tools.status.text()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert editor.layer.mask[z, y, x] == 0 and np.array_equal(editor.layer.mask, prediction.mask)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert editor.layer.mask[z, y, x] == 1
    tools.actions_by_name["add_value"].trigger()
    assert editor.value == 2 and editor.layer.names[2] == "label 2" and tools.value_box.currentText() == "2: label 2"
    drag(coronal, [screen_point(coronal, row + 4, column)])
    assert editor.layer.mask.max() == 2 and 2 in editor.layer.colors
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    tools.value_box.setCurrentIndex(0)
    assert editor.value == 1
    qtbot.keyClick(window, Qt.Key.Key_E)
    assert coronal.tool is Tool.ERASER
    drag(coronal, [screen_point(coronal, row, column + 6)])
    assert editor.layer.mask[z, y, x + 6] == 0 and editor.layer.mask[z, y, x] == 1

    with qtbot.waitSignal(window.label_saved, timeout=TIMEOUT_MS) as saved:
        qtbot.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not editor.dirty and tools.status.text() == "Label saved; every slice annotated"
    written = read_image(saved.args[0].mask)
    assert np.array_equal(written.array, editor.layer.mask) and np.allclose(written.affine_lps(), model.volume.affine_lps())

    window.training.use_saved_labels()
    qtbot.waitUntil(lambda: window.training.datalist.text().endswith("datalist.json"), timeout=TIMEOUT_MS)
    datalist = load_datalist(window.training.datalist.text())
    assert window.training.task_box.currentText() == "segmentation" == datalist.task
    assert datalist.training[0].image == ct_folder.resolve() and datalist.labels == {0: "background", 1: "bone", 2: "label 2"}


def test_a_saved_label_comes_back_with_its_series(qtbot, window: MainWindow, ct_folder: Path, store: LabelStore) -> None:  # type: ignore[no-untyped-def]
    open_and_show(qtbot, window, ct_folder)
    model = window.viewer.model
    assert model is not None
    model.edit_label(fake_prediction(model.volume.shape).mask.array, {1: "bone"})
    with qtbot.waitSignal(window.label_saved, timeout=TIMEOUT_MS):
        window.save_label()
    open_and_show(qtbot, window, ct_folder)
    again = window.viewer.model
    assert again is not model and again is not None and again.editor is not None and not again.editor.dirty
    assert np.array_equal(again.editor.layer.mask, model.editor.layer.mask)  # type: ignore[union-attr]
    assert window.label_tools.actions_by_name["brush"].isEnabled()


def test_closing_with_unsaved_edits_asks(qtbot, window: MainWindow, ct_folder: Path, store: LabelStore, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    open_and_show(qtbot, window, ct_folder)
    window.label_tools.actions_by_name["new_label"].trigger()
    model = window.viewer.model
    assert model is not None and model.editor is not None and not model.editor.dirty
    view = window.viewer.active_view
    window.label_tools.actions_by_name["brush"].trigger()
    drag(view, [screen_point(view, 20, 20)])
    assert model.editor.dirty
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save]
    monkeypatch.setattr(window, "ask_unsaved_label", lambda: answers.pop(0))
    assert not window.close() and window.isVisible()  # cancelled: the window and the edits stay
    assert window.close()  # saved, then closed
    assert not answers and store.saved()[0].patient_id == "P9"
    assert read_image(store.saved()[0].mask).array.sum() > 0


def test_unsaved_edits_survive_remove_and_series_change_and_shortcuts_are_listed(
    qtbot, window: MainWindow, ct_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    open_and_show(qtbot, window, ct_folder)
    window.label_tools.actions_by_name["new_label"].trigger()
    model = window.viewer.model
    assert model is not None and model.editor is not None
    view = window.viewer.active_view
    window.label_tools.actions_by_name["brush"].trigger()
    drag(view, [screen_point(view, 20, 20)])
    monkeypatch.setattr(window.layers, "confirm_discard_label", lambda: False)
    window.layers.remove_button.click()
    assert model.editor.layer in model.layers
    monkeypatch.setattr(window, "ask_unsaved_label", lambda: QMessageBox.StandardButton.Cancel)
    window.open_path(ct_folder)  # the scan selects the series again: loading it would drop the edits
    qtbot.waitSignal(window.scan_finished, timeout=TIMEOUT_MS).wait()
    assert window.viewer.model is model and model.editor.dirty
    monkeypatch.setattr(window, "ask_unsaved_label", lambda: QMessageBox.StandardButton.Discard)
    dialog = window.show_shortcuts()
    qtbot.addWidget(dialog)
    listed = {dialog.table.item(r, 1).text(): dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())}
    assert listed["Brush"] == "B" and listed["Eraser"] == "E" and listed["Accept prediction as label"] == "Ctrl+L"
    assert listed["Undo stroke"] == "Ctrl+Z" and listed["Save label"] == "Ctrl+S"


def test_a_failed_save_keeps_the_edits_and_says_so(qtbot, tmp_path: Path, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "not-a-folder").write_text("")
    window = shown_window(qtbot, temporary_settings(tmp_path), LabelStore(tmp_path / "not-a-folder" / "labels"))
    open_and_show(qtbot, window, ct_folder)
    model = window.viewer.model
    assert model is not None
    editor = model.edit_label(fake_prediction(model.volume.shape).mask.array, {1: "bone"})
    window.save_label()
    qtbot.waitUntil(lambda: "NOT saved" in window.status_message.text(), timeout=TIMEOUT_MS)
    assert editor.dirty and window.problems.topLevelItemCount() == 1
    editor.saved(editor.edits)  # let the window close without asking


def test_a_damaged_saved_label_is_reported_and_the_series_still_opens(qtbot, window: MainWindow, ct_folder: Path, store: LabelStore) -> None:  # type: ignore[no-untyped-def]
    open_and_show(qtbot, window, ct_folder)
    model = window.viewer.model
    assert model is not None
    model.edit_label(fake_prediction(model.volume.shape).mask.array, {1: "bone"})
    with qtbot.waitSignal(window.label_saved, timeout=TIMEOUT_MS) as saved:
        window.save_label()
    saved.args[0].mask.write_bytes(b"not a NIfTI file")
    open_and_show(qtbot, window, ct_folder)
    again = window.viewer.model
    assert again is not None and again.editor is None  # shown without the label
    assert any("the saved label was not loaded" in w for w in again.volume.warnings)


def test_an_older_snapshot_never_overwrites_a_newer_saved_label(qtbot, window: MainWindow, ct_folder: Path, store: LabelStore) -> None:  # type: ignore[no-untyped-def]
    from ui.models.label_session import save_call

    open_and_show(qtbot, window, ct_folder)
    model = window.viewer.model
    assert model is not None
    model.edit_label(np.zeros(model.volume.shape, np.uint8), {1: "bone"})
    older, _ = save_call(model, store)  # snapshot of the empty label
    view = window.viewer.active_view
    window.label_tools.actions_by_name["brush"].trigger()
    drag(view, [screen_point(view, 20, 20)])
    newer, edits = save_call(model, store)
    written = newer(lambda *_: None, CancelToken())
    older(lambda *_: None, CancelToken())  # finishes last, as a slow first save would
    model.editor.saved(edits)  # type: ignore[union-attr]  # as the window does when the save reports back
    assert read_image(written.mask).array.any()  # the painted stroke is what stays on disk

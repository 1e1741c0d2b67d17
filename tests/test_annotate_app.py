"""The annotation tools in the app, driven with the mouse and keys: lasso, threshold brush, region growing and the 3D
ball on every plane, interpolation between drawn slices, and 120 undo steps of the editor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QMessageBox
from skimage.segmentation import flood

from medtl.data.sparse import Annotated
from tests.test_class_labels import ct_folder  # noqa: F401 - the fixture
from tests.test_ui_labels import drag, screen_point, shown_window, temporary_settings
from tests.test_ui_window import open_and_show, send_mouse
from ui.models.label_editor import LabelEditor
from ui.models.overlays import LabelLayer
from ui.models.view_plane import PlaneKind, ViewPlane
from ui.qt.main_window import MainWindow
from ui.qt.slice_view import SliceView
from ui.qt.viewer_widget import Layout


@pytest.fixture
def window(qtbot, tmp_path: Path, ct_folder: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:  # type: ignore[no-untyped-def]  # noqa: F811
    """The window showing the series in three planes, with a new empty label."""
    window = shown_window(qtbot, temporary_settings(tmp_path))
    monkeypatch.setattr(window, "ask_unsaved_label", lambda: QMessageBox.StandardButton.Discard)  # closing at the end never asks
    open_and_show(qtbot, window, ct_folder)
    window.viewer.set_layout_mode(Layout.MPR)
    window.label_tools.actions_by_name["new_label"].trigger()
    return window


def view_of(window: MainWindow, kind: PlaneKind) -> SliceView:
    return next(view for view in window.viewer.views if view.plane is not None and view.plane.kind is kind and not view.plane.projection)


def click(view: SliceView, point: QPointF) -> None:
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    send_mouse(view, QMouseEvent.Type.MouseButtonPress, point, left, left)
    send_mouse(view, QMouseEvent.Type.MouseButtonRelease, point, left, none)


@pytest.mark.parametrize("kind", list(PlaneKind))
def test_lasso_threshold_and_growing_paint_the_slice_of_any_plane(qtbot, window: MainWindow, kind: PlaneKind) -> None:  # type: ignore[no-untyped-def]
    model, tools, view = window.viewer.model, window.label_tools, view_of(window, kind)
    assert model is not None and model.editor is not None and view.plane is not None
    mask, image, plane = model.editor.layer.mask, model.volume.array, view.plane
    index = model.slice_index(plane)
    shown = plane.extract(mask, index)  # the slice as the view lays it out
    rows, columns, _ = plane.size(mask.shape)

    tools.actions_by_name["lasso"].trigger()
    corners = [(2, 2), (2, columns - 3), (rows - 3, columns - 3), (rows - 3, 2)]
    drag(view, [screen_point(view, r, c) for r, c in corners + [corners[0]]])
    assert shown[2 : rows - 2, 2 : columns - 2].all() and mask.sum() == shown.sum() == (rows - 4) * (columns - 4)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not mask.any()

    tools.actions_by_name["threshold"].trigger()
    tools.low.setValue(0)
    tools.high.setValue(200)  # soft tissue, not air nor bone
    tools.size.setValue(100.0)
    drag(view, [screen_point(view, rows // 2, columns // 2)])
    values = plane.extract(image, index)
    assert shown.any() and np.array_equal(shown == 1, (values >= 0) & (values <= 200)) and mask.sum() == shown.sum()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)

    tools.actions_by_name["grow"].trigger()
    tools.tolerance.setValue(30)
    seed = (rows // 2, columns // 2)
    click(view, screen_point(view, *seed))
    expected = flood(values.astype(np.float32), seed, tolerance=30)
    assert expected.sum() > 20 and np.array_equal(shown == 1, expected) and mask.sum() == shown.sum()
    assert model.editor.annotated.slices[2 - plane.normal] == {index}
    stroke = model.editor.last_stroke
    assert stroke is not None and stroke.tool == "grow"  # what an audit log records


def test_ctrl_drag_with_the_threshold_tool_paints_the_band_inside_a_box(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    model, tools, view = window.viewer.model, window.label_tools, view_of(window, PlaneKind.CORONAL)
    assert model is not None and model.editor is not None and view.plane is not None
    tools.actions_by_name["threshold"].trigger()
    tools.low.setValue(-1100)
    tools.high.setValue(-900)  # air only
    left, none, ctrl = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier
    start, end = screen_point(view, 0, 0), screen_point(view, 5, 31)
    for kind, point, button, buttons in (
        (QMouseEvent.Type.MouseButtonPress, start, left, left), (QMouseEvent.Type.MouseMove, end, none, left),
        (QMouseEvent.Type.MouseButtonRelease, end, left, none),
    ):  # fmt: skip
        QApplication.sendEvent(view, QMouseEvent(kind, point, view.mapToGlobal(point), button, buttons, ctrl))
    index = model.slice_index(view.plane)
    shown, values = view.plane.extract(model.editor.layer.mask, index), view.plane.extract(model.volume.array, index)
    air = (values >= -1100) & (values <= -900)
    assert shown[:6].any() and np.array_equal(shown[:6] == 1, air[:6]) and not shown[6:].any()
    stroke = model.editor.last_stroke
    assert stroke is not None and stroke.tool == "threshold box"


def test_the_3d_ball_paints_neighbouring_slices(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    model, tools, view = window.viewer.model, window.label_tools, view_of(window, PlaneKind.AXIAL)
    assert model is not None and model.editor is not None and view.plane is not None
    tools.actions_by_name["brush"].trigger()
    tools.size.setValue(4.5)
    qtbot.keyClick(window, Qt.Key.Key_D)  # 3D
    drag(view, [screen_point(view, 16, 16)])
    z = np.flatnonzero(model.editor.layer.mask.any(axis=(1, 2)))
    index = model.slice_index(view.plane)
    assert list(z) == [index - 2, index - 1, index, index + 1, index + 2]  # 4.5 mm over 2 mm slices


def test_interpolation_fills_the_slices_between_two_drawn_ones(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    model, tools, view = window.viewer.model, window.label_tools, view_of(window, PlaneKind.AXIAL)
    assert model is not None and model.editor is not None and view.plane is not None
    window.viewer.active_view = view
    mask = model.editor.layer.mask
    tools.actions_by_name["brush"].trigger()
    for index, radius in ((2, 1.5), (9, 8.0)):
        model.go_to_slice(view.plane, index)
        tools.size.setValue(radius)
        drag(view, [screen_point(view, 16, 16)])
    areas = [int(mask[z].sum()) for z in range(2, 10)]
    assert areas[1:-1] == [0] * 6
    qtbot.keyClick(window, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    areas = [int(mask[z].sum()) for z in range(2, 10)]
    assert all(a < b for a, b in zip(areas, areas[1:])) and "Interpolated 6 slices" in tools.status.text()
    assert model.editor.annotated.slices[0] == set(range(2, 10))
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not mask[3:9].any() and model.editor.annotated.slices[0] == {2, 9}


def test_the_editor_undoes_120_steps_exactly() -> None:
    rng = np.random.default_rng(3)
    image = rng.normal(0, 50, (10, 40, 40)).astype(np.float32)
    original = np.zeros(image.shape, np.uint8)
    original[2:5, 5:15, 5:15] = 2
    editor = LabelEditor(LabelLayer("label", original.copy()), {1: "a", 2: "b"}, annotated=Annotated())
    planes = [ViewPlane.of_kind(kind, np.eye(3)) for kind in PlaneKind]
    for step in range(120):
        plane = planes[step % 3]
        index = int(rng.integers(0, plane.size(image.shape)[2]))
        row, column = (float(v) for v in rng.integers(0, 10, 2))
        editor.value = int(rng.integers(1, 3))
        if step % 3 == 0:
            editor.begin(plane, index)
            editor.paint(row, column, (1.0, 1.0, 1.0), erase=bool(step % 2))
            editor.paint(row + 5, column + 3, (1.0, 1.0, 1.0), erase=bool(step % 2))
            editor.end()
        elif step % 3 == 1:
            editor.lasso(plane, index, [(row, column), (row, column + 6), (row + 5, column + 2)])
        else:
            editor.grow(plane, index, row, column, image, plane.extract(image, index), (1.0, 1.0, 1.0))
    undone = 0
    while editor.undo():
        undone += 1
    assert undone >= 100 and np.array_equal(editor.layer.mask, original) and editor.annotated == Annotated()
    assert np.array_equal(editor.counts, np.bincount(original.ravel(), minlength=256))

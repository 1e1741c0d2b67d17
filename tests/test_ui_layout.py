"""The 2×2 layout: axial, coronal, sagittal and a coronal maximum intensity projection, remembered between sessions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QMouseEvent

from tests.dicomgen import SeriesSpec, phantom, write_series
from tests.test_ui_labels import drag, screen_point, shown_window, temporary_settings
from tests.test_ui_window import TIMEOUT_MS, open_and_show, pixels, send_mouse
from ui.models.overlays import LabelLayer
from ui.models.projection import ProjectionPlane
from ui.models.view_plane import PlaneKind
from ui.qt.settings import AppSettings
from ui.qt.viewer_widget import Layout


@pytest.fixture(scope="module")
def ct_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("grid_ct")
    write_series(folder, phantom((20, 48, 56)), SeriesSpec(spacing=(0.8, 0.8, 2.0)))
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> AppSettings:
    return temporary_settings(tmp_path)


def test_2x2_shows_three_planes_and_a_coronal_mip(qtbot, settings: AppSettings, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    window = shown_window(qtbot, settings)
    open_and_show(qtbot, window, ct_folder)
    model = window.viewer.model
    assert model is not None
    with qtbot.waitSignal(window.viewer.projection_ready, timeout=TIMEOUT_MS):
        window.viewer.actions_by_name["layout_grid"].trigger()
    axial, coronal, sagittal, mip = window.viewer.views
    assert all(view.isVisible() and view.show_crosshair for view in window.viewer.views)
    assert [view.plane.kind for view in (axial, coronal, sagittal)] == list(PlaneKind)  # type: ignore[union-attr]
    assert isinstance(mip.plane, ProjectionPlane) and mip.plane.kind is PlaneKind.CORONAL
    assert axial.geometry().top() == coronal.geometry().top() < sagittal.geometry().top() == mip.geometry().top()
    expected = coronal.plane.extract(model.volume.array.max(axis=1, keepdims=True), 0)  # type: ignore[union-attr]
    assert np.array_equal(model.cuts.cached(mip.plane, model.volume.array, 0), expected)
    assert model.corner_text(mip.plane).top_right[1] == "coronal MIP" and model.corner_text(mip.plane).bottom_left[0] == "whole volume"
    assert pixels(mip).std() > 0

    bare = pixels(mip)
    mask = np.zeros(model.volume.shape, np.uint8)
    mask[3, 10:20, 30:40] = 1  # one slice far from the crosshair: a coronal MIP still shows it
    model.add_layer(LabelLayer("lesion", mask))
    assert not np.array_equal(pixels(mip), bare)

    cursor = model.cursor.copy()
    send_mouse(mip, QMouseEvent.Type.MouseButtonPress, screen_point(mip, 2, 5), Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
    x, y, z = model.cursor
    assert y == cursor[1] and (x, z) != (cursor[0], cursor[2])  # the click picks left-right and head-foot, not depth
    assert model.slice_index(axial.plane) == z  # type: ignore[arg-type]
    model.step(mip.plane, 3)  # type: ignore[arg-type]
    assert np.array_equal(model.cursor, (x, y, z))


def test_painting_is_refused_on_the_projection(qtbot, settings: AppSettings, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    window = shown_window(qtbot, settings)
    open_and_show(qtbot, window, ct_folder)
    window.viewer.set_layout_mode(Layout.GRID)
    window.label_tools.actions_by_name["new_label"].trigger()
    window.label_tools.actions_by_name["brush"].trigger()
    mip = window.viewer.views[3]
    drag(mip, [screen_point(mip, 10, 10), screen_point(mip, 12, 20)])
    assert window.viewer.model is not None and window.viewer.model.editor is not None
    assert not window.viewer.model.editor.layer.mask.any()


def test_the_layout_is_remembered(qtbot, settings: AppSettings) -> None:  # type: ignore[no-untyped-def]
    first = shown_window(qtbot, settings)
    assert first.viewer.layout_mode is Layout.SINGLE
    first.viewer.actions_by_name["layout_grid"].trigger()
    first.close()
    second = shown_window(qtbot, settings)
    assert second.viewer.layout_mode is Layout.GRID and second.viewer.actions_by_name["layout_grid"].isChecked()
    assert not second.viewer.actions_by_name["layout_grid"].icon().isNull()
    settings.store.setValue("viewer/layout", "7×7")
    assert settings.viewer_layout() is Layout.SINGLE


def test_the_wheel_over_a_panel_scrolls_it_and_never_changes_a_setting(qtbot, settings: AppSettings) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    window = shown_window(qtbot, settings)
    window.training_dock.show()
    window.training_dock.raise_()
    strategy = window.training.strategy_box
    before = strategy.currentText()
    centre = QPointF(strategy.rect().center())
    for _ in range(3):  # what a user scrolling down the panel over the combo box sends
        event = QWheelEvent(centre, QPointF(strategy.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, -120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(strategy, event)
    assert strategy.currentText() == before
    strategy.setFocus()
    qtbot.waitUntil(strategy.hasFocus, timeout=TIMEOUT_MS)
    event = QWheelEvent(centre, QPointF(strategy.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, -120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(strategy, event)
    assert strategy.currentText() != before  # a field the user clicked into takes the wheel as usual

"""The main window driven with pytest-qt (offscreen): open, browse, view, scroll, window, layouts, overlays."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget

from medtl.dicom.records import ScanResult
from medtl.progress import CancelToken, ProgressCallback
from tests.dicomgen import SeriesSpec, phantom, write_series
from tests.test_ui_app import image_array
from ui.models.overlays import LabelLayer, LabelStyle
from ui.models.view_plane import PlaneKind
from ui.qt.main_window import MainWindow
from ui.qt.settings import AppSettings
from ui.qt.slice_view import SliceView
from ui.qt.viewer_widget import Layout

TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def ct_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ct")
    write_series(folder, phantom((24, 64, 72)), SeriesSpec(series_description="phantom"))
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> AppSettings:
    return AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def window(qtbot, settings: AppSettings) -> MainWindow:  # type: ignore[no-untyped-def]
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    return window


def open_and_show(qtbot, window: MainWindow, path: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.series_shown, timeout=TIMEOUT_MS):
        window.open_path(path)


def pixels(widget: QWidget) -> np.ndarray:
    return image_array(widget.grab().toImage())


def click_into(qtbot, view: SliceView) -> None:  # type: ignore[no-untyped-def]
    """Give ``view`` the keyboard focus as a click would (slice keys act on the view with the focus)."""
    view.activateWindow()
    view.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(view.hasFocus)


def send_mouse(view: SliceView, kind: QMouseEvent.Type, point: QPointF, button: Qt.MouseButton, buttons: Qt.MouseButton) -> None:
    QApplication.sendEvent(view, QMouseEvent(kind, point, view.mapToGlobal(point), button, buttons, Qt.KeyboardModifier.NoModifier))


def test_open_sample_lists_its_patients_series_and_problems(qtbot, window: MainWindow, sample_dir: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.scan_finished, timeout=TIMEOUT_MS) as scanned:
        open_and_show(qtbot, window, sample_dir)
    result = scanned.args[0]
    tree = window.browser.model
    patients = [tree.item(row).text() for row in range(tree.rowCount())]
    assert len(patients) == 2 and "Doe^Archibald" in patients[0] and "98890234" in patients[1]
    assert window.browser.visible_series_count() == len(result.all_series()) == 13
    problems = [window.problems.topLevelItem(i).text(1) for i in range(window.problems.topLevelItemCount())]
    assert any("no pixel data" in problem for problem in problems)
    assert any("irregular slice spacing" in problem for problem in problems)  # the first CT failed to load: listed, not a dialog
    assert window.problems_dock.windowTitle() == f"Problems ({len(problems)})"
    assert window.viewer.model is not None and pixels(window.viewer.active_view).std() > 0
    window.browser.filter_box.setText("carotids")
    assert window.browser.visible_series_count() == 2


def test_anonymised_mode_hides_identities_in_browser_and_corners(qtbot, window: MainWindow, sample_dir: Path) -> None:  # type: ignore[no-untyped-def]
    open_and_show(qtbot, window, sample_dir)
    window.viewer.actions_by_name["anonymise"].trigger()
    model, tree = window.viewer.model, window.browser.model
    assert model is not None and model.anonymised
    assert [tree.item(row).text() for row in range(tree.rowCount())] == ["Patient 1", "Patient 2"]
    assert all(tree.item(0).child(row, 2).text() == "" for row in range(tree.item(0).rowCount()))
    window.browser.filter_box.setText("Doe")
    assert window.browser.visible_series_count() == 0  # hidden names cannot be found either
    window.viewer.actions_by_name["anonymise"].trigger()
    assert "Doe^Archibald" in tree.item(0).text()


def test_scroll_and_window_level_change_the_pixels(qtbot, window: MainWindow, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    open_and_show(qtbot, window, ct_folder)
    view, model = window.viewer.active_view, window.viewer.model
    assert model is not None and view.plane is not None and view.plane.kind is PlaneKind.AXIAL
    first_index, first = model.slice_index(view.plane), pixels(view)
    click_into(qtbot, view)
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert model.slice_index(view.plane) == first_index + 1
    assert not np.array_equal(pixels(view), first)
    qtbot.keyClick(view, Qt.Key.Key_PageUp)
    assert model.slice_index(view.plane) == first_index + 1 - 10
    centre = QPointF(view.width() / 2, view.height() / 2)
    wheel = QWheelEvent(
        centre,
        view.mapToGlobal(centre),
        QPoint(),
        QPoint(0, -120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view, wheel)
    assert model.slice_index(view.plane) == first_index + 2 - 10

    before, window_before = pixels(view), model.window
    send_mouse(view, QMouseEvent.Type.MouseButtonPress, centre, Qt.MouseButton.RightButton, Qt.MouseButton.RightButton)
    send_mouse(view, QMouseEvent.Type.MouseMove, centre + QPointF(60, 30), Qt.MouseButton.NoButton, Qt.MouseButton.RightButton)
    send_mouse(view, QMouseEvent.Type.MouseButtonRelease, centre + QPointF(60, 30), Qt.MouseButton.RightButton, Qt.MouseButton.NoButton)
    assert model.window.width > window_before.width and model.window.center > window_before.center
    assert not np.array_equal(pixels(view), before)
    qtbot.keyClick(view, Qt.Key.Key_4)  # preset 4: CT bone
    assert (model.window.width, model.window.center) == (2000, 300)
    qtbot.keyClick(view, Qt.Key.Key_R)
    assert model.window == model.initial_window


def test_status_bar_shows_the_value_and_world_position(qtbot, window: MainWindow, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    open_and_show(qtbot, window, ct_folder)
    view = window.viewer.active_view
    centre = QPointF(view.width() / 2, view.height() / 2)
    send_mouse(view, QMouseEvent.Type.MouseMove, centre, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    text = window.pixel_label.text()
    assert "HU" in text and "LPS" in text


def test_1x3_layout_shares_a_crosshair(qtbot, window: MainWindow, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    open_and_show(qtbot, window, ct_folder)
    window.viewer.set_layout_mode(Layout.MPR)
    model = window.viewer.model
    assert model is not None
    axial, coronal, sagittal = window.viewer.views[:3]
    assert [view.plane.kind for view in window.viewer.views if view.plane] == list(PlaneKind)
    assert all(view.isVisible() and view.show_crosshair for view in window.viewer.views[:3])
    coronal_before, sagittal_before = model.slice_index(coronal.plane), model.slice_index(sagittal.plane)
    rect = axial.image_rect()
    corner = QPointF(rect.left() + rect.width() * 0.2, rect.top() + rect.height() * 0.8)
    send_mouse(axial, QMouseEvent.Type.MouseButtonPress, corner, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
    assert model.slice_index(sagittal.plane) < sagittal_before  # towards the patient's right (screen left)
    assert model.slice_index(coronal.plane) > coronal_before  # towards posterior (screen down)
    coronal_pixels = pixels(coronal)
    click_into(qtbot, coronal)
    qtbot.keyClick(coronal, Qt.Key.Key_Up)
    assert not np.array_equal(pixels(coronal), coronal_pixels)


def test_overlay_layer_shows_and_hides(qtbot, window: MainWindow, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    open_and_show(qtbot, window, ct_folder)
    model, view = window.viewer.model, window.viewer.active_view
    assert model is not None
    bare = pixels(view)
    mask = np.zeros(model.volume.shape, np.uint8)
    mask[:, 20:40, 20:50] = 1
    layer = LabelLayer("lesion", mask)
    model.add_layer(layer)
    shown = pixels(view)
    assert not np.array_equal(shown, bare)
    panel = window.layers
    assert panel.list.count() == 1 and panel.selected() is layer
    panel.opacity.setValue(90)
    assert layer.opacity == 0.9 and not np.array_equal(pixels(view), shown)
    panel.style_box.setCurrentText("outline")
    assert layer.style is LabelStyle.OUTLINE
    panel.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert not layer.visible and np.array_equal(pixels(view), bare)
    panel.remove_button.click()
    assert model.layers == [] and panel.list.count() == 0


def test_shortcuts_dialog_lists_keys_and_mouse(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    dialog = window.show_shortcuts()
    qtbot.addWidget(dialog)
    rows = {dialog.table.item(row, 1).text(): dialog.table.item(row, 0).text() for row in range(dialog.table.rowCount())}
    assert rows["Next slice"] == "Down, Right"
    assert "PgDown" in rows["10 slices forward"] or "Page Down" in rows["10 slices forward"]
    assert any("window / level" in what for what in rows)


def test_recent_folders_and_geometry_are_remembered(qtbot, settings: AppSettings, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    first = MainWindow(settings)
    qtbot.addWidget(first)
    first.show()
    first.layers_dock.close()  # the offscreen screen is 800 px wide: make room
    first.training_dock.close()
    first.resize(700, 500)
    open_and_show(qtbot, first, ct_folder)
    size = first.size()
    first.close()
    assert settings.recent_folders()[0] == str(ct_folder.resolve())
    second = MainWindow(settings)
    qtbot.addWidget(second)
    second.show()
    assert second.size() == size and size.height() == 500
    assert not second.layers_dock.isVisible() and second.browser_dock.isVisible()  # the dock layout came back too


def test_scan_runs_off_the_gui_thread_and_cancels(qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """While a (slow) scan runs, the event loop keeps turning, the status bar shows progress, and Cancel stops it."""
    gui_thread, seen = threading.current_thread(), {}

    def slow_scan(path: Path, catalog: object, progress: ProgressCallback, cancel: CancelToken) -> ScanResult:
        seen["thread"] = threading.current_thread()
        for step in range(1000):
            progress(step, 1000, "reading headers")
            cancel.raise_if_cancelled()
            time.sleep(0.01)
        raise AssertionError("the scan was not cancelled")

    monkeypatch.setattr("ui.qt.main_window.scan", slow_scan)
    window.open_path(tmp_path)
    ticks = []
    timer = QTimer(window)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    qtbot.waitUntil(lambda: window.progress.value() > 5, timeout=TIMEOUT_MS)
    assert seen["thread"] is not gui_thread and len(ticks) > 3
    assert window.progress.isVisible() and window.cancel_button.isVisible()
    with qtbot.waitSignal(window.cancel_button.clicked):
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=TIMEOUT_MS)
    assert window.status_message.text() == "Cancelled"


def test_a_prediction_appears_as_an_overlay_layer(qtbot, window: MainWindow, ct_folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.test_predict_runs import segmentation_run

    run = segmentation_run(tmp_path / "bones")
    open_and_show(qtbot, window, ct_folder)
    model = window.viewer.model
    assert model is not None
    with qtbot.waitSignal(window.prediction_shown, timeout=60_000):
        window.predict_with_run(run)
    layer = model.layers[-1]
    assert isinstance(layer, LabelLayer) and layer.name == "bones: bone" and layer.mask.shape == model.volume.shape
    assert window.layers.list.count() == 1
    assert window.status_message.text().startswith("Segmented: bone")


def test_a_prediction_exports_the_files_medtl_predict_writes(qtbot, window: MainWindow, ct_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Model → Export prediction writes the mask as NIfTI on the series' grid and as DICOM SEG; a bad folder is a problem, not a crash."""
    import nibabel
    import pydicom

    from tests.test_predict_runs import segmentation_run

    run = segmentation_run(tmp_path / "bones")
    assert not window.export_action.isEnabled()
    open_and_show(qtbot, window, ct_folder)
    model = window.viewer.model
    assert model is not None
    with qtbot.waitSignal(window.prediction_shown, timeout=60_000):
        window.predict_with_run(run)
    assert window.export_action.isEnabled()
    monkeypatch.setattr("ui.qt.main_window.QFileDialog.getExistingDirectory", lambda *args: str(tmp_path / "export"))
    with qtbot.waitSignal(window.prediction_exported, timeout=60_000) as exported:
        window.export_action.trigger()  # Model → Export prediction…, the folder chosen in the dialog
    names = sorted(path.name for path in exported.args[0].files)
    assert names == ["bones_prediction.nii.gz", "bones_prediction.seg.dcm"]
    mask = np.asarray(nibabel.load(tmp_path / "export" / "bones_prediction.nii.gz").dataobj)
    layer = model.layers[-1]
    assert int(mask.sum()) == int(layer.mask.sum()) > 0 and mask.size == layer.mask.size
    seg = pydicom.dcmread(tmp_path / "export" / "bones_prediction.seg.dcm")
    assert seg.Modality == "SEG" and "Exported to" in window.status_message.text()
    blocked = tmp_path / "a file"
    blocked.write_text("not a folder")
    with qtbot.waitSignal(window.task_failed, timeout=60_000):
        window.export_prediction(blocked)
    assert window.status_message.text() == f"Could not export to {blocked}: see Problems"


def test_zoom_pan_fit_and_drop_a_folder(qtbot, window: MainWindow, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(ct_folder))])
    centre = QPointF(window.width() / 2, window.height() / 2)
    enter = QDragEnterEvent(centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    with qtbot.waitSignal(window.series_shown, timeout=TIMEOUT_MS):
        drop = QDropEvent(centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(window, drop)
    view = window.viewer.active_view
    fitted = view.image_rect()
    point = QPointF(view.width() * 0.3, view.height() * 0.3)
    under_pointer = view.image_position(point)
    zoom = QWheelEvent(
        point,
        view.mapToGlobal(point),
        QPoint(),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view, zoom)
    zoomed = view.image_rect()
    assert view.zoom == pytest.approx(1.25**2) and zoomed.width() == pytest.approx(fitted.width() * 1.25**2)
    assert view.image_position(point) == pytest.approx(under_pointer)  # zoomed about the pointer
    send_mouse(view, QMouseEvent.Type.MouseButtonPress, point, Qt.MouseButton.MiddleButton, Qt.MouseButton.MiddleButton)
    send_mouse(view, QMouseEvent.Type.MouseMove, point + QPointF(30, -20), Qt.MouseButton.NoButton, Qt.MouseButton.MiddleButton)
    send_mouse(view, QMouseEvent.Type.MouseButtonRelease, point + QPointF(30, -20), Qt.MouseButton.MiddleButton, Qt.MouseButton.NoButton)
    assert view.image_rect().topLeft() == zoomed.topLeft() + QPointF(30, -20)
    click_into(qtbot, view)
    qtbot.keyClick(view, Qt.Key.Key_F)
    assert view.image_rect() == fitted


def test_series_get_thumbnails_in_the_background(qtbot, window: MainWindow, sample_dir: Path) -> None:  # type: ignore[no-untyped-def]
    open_and_show(qtbot, window, sample_dir)
    patient = window.browser.model.item(0)
    ct_series = patient.child(0).child(0)  # Routine Brain: it does not load as a volume, but its middle image does
    qtbot.waitUntil(lambda: not ct_series.icon().isNull(), timeout=TIMEOUT_MS)
    assert image_array(ct_series.icon().pixmap(48, 48).toImage(), grey=True).std() > 5


def test_the_pretrain_panel_takes_the_opened_folder_and_hands_its_run_to_the_fine_tune_panel(qtbot, window: MainWindow, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    open_and_show(qtbot, window, ct_folder)
    assert [window.pretrain.inputs.item(i).text() for i in range(window.pretrain.inputs.count())] == [str(ct_folder)]
    window.pretrain.weights_chosen.emit("run:/runs/pretrained")
    assert window.training.weights_box.currentText() == "run:/runs/pretrained"
    assert not window.training_dock.visibleRegion().isEmpty()  # the fine-tune tab is in front
    assert "P&retrain on unlabelled images…" in [a.text() for a in window.menuBar().actions()[1].menu().actions()]

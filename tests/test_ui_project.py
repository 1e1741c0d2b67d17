"""The app works on a project: labels saved into it with who and which tool, a second program gets it read-only,
training reads straight from it, and two readers' masks of a series are compared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from medtl.dicom.series import load_series
from medtl.labels.store import LabelStore, SavedLabel
from medtl.project import MaskVersion, Project
from medtl.project.agreement import dice_per_label
from medtl.project.from_label_store import default_project_dir
from medtl.project.records import BRUSH, IMPORT, PREDICTION, RESTORE
from medtl.training.run_summary import RunSummary
from medtl.workflow.train import PROJECT_DATA, TrainRequest, TrainResult, preview
from tests.dicomgen import SeriesSpec, phantom, write_series
from tests.test_ui_labels import drag, fake_prediction, screen_point, shown_window, temporary_settings
from tests.test_ui_window import TIMEOUT_MS, open_and_show
from ui.models.label_editor import Tool
from ui.qt.main_window import MainWindow

SHAPE = (12, 40, 44)


@pytest.fixture(scope="module")
def ct_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("project_ct")
    write_series(folder, phantom(SHAPE), SeriesSpec(series_description="phantom", spacing=(0.8, 0.8, 2.0), patient_id="P7"))
    return folder


@pytest.fixture(autouse=True)
def user_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default project, runs and settings of these tests live in the test's own folders, never the user's."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture
def window(qtbot, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    return shown_window(qtbot, temporary_settings(tmp_path), LabelStore(tmp_path / "labels"))


def paint_and_erase(qtbot, window: MainWindow) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A new label on the shown series: a brush stroke, then an eraser stroke across part of it; returns the mask."""
    window.new_label()
    view = window.viewer.views[0]
    window.label_tools.actions_by_name["brush"].trigger()
    assert view.tool is Tool.BRUSH
    drag(view, [screen_point(view, 18, 10), screen_point(view, 18, 30)])
    window.label_tools.actions_by_name["eraser"].trigger()
    drag(view, [screen_point(view, 18, 28)])
    model = window.viewer.model
    assert model is not None and model.editor is not None and model.editor.layer.mask.any()
    return model.editor.layer.mask


def save(qtbot, window: MainWindow) -> object:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.label_saved, timeout=TIMEOUT_MS) as saved:
        window.save_label()
    return saved.args[0]


def series_uid(folder: Path) -> str:
    return str(load_series(sorted(folder.iterdir())).metadata["series_uid"])


def test_a_label_painted_in_the_window_is_saved_in_the_project_with_the_reader_and_tools(qtbot, window: MainWindow, tmp_path: Path, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "study project"
    assert window.projects.set_reader("Dr Ada") == "Dr Ada" and window.settings.reader_name() == "Dr Ada"
    assert window.projects.new_project(folder)
    assert "study project" in window.windowTitle() and "read-only" not in window.windowTitle()
    open_and_show(qtbot, window, ct_folder)
    mask = paint_and_erase(qtbot, window).copy()

    version = save(qtbot, window)
    assert isinstance(version, MaskVersion) and version.reader == "Dr Ada" and version.version == 1
    assert window.layers.list.item(0).text() == "label (Dr Ada, version 1)  (labels)"  # before: "label (new)" after any save
    project = window.project_session.project
    assert project is not None
    uid = series_uid(ct_folder)
    entry = project.history(series_uid=uid)[-1]
    assert (entry.who, entry.reader, entry.tool, entry.value, entry.mask_version) == ("Dr Ada", "Dr Ada", "brush + eraser", 1, 1)
    assert entry.slices is not None and entry.slices.count() >= 1  # the slice painted on
    assert np.array_equal(project.load_mask(project.mask(uid, "Dr Ada")).array, mask)  # type: ignore[arg-type]
    assert [(label.value, label.name) for label in project.labels()] == [(1, "label 1")]
    model = window.viewer.model
    assert model is not None and model.editor is not None and not model.editor.dirty
    window._show_progress(0, 0, "saving the label into the project study project")  # a Ctrl+S racing the autosave...
    window.projects.label_saved(model.editor, model.editor.edits, None)  # ...finds its snapshot saved already
    assert window.status_message.text() == "Label saved in the project study project (no change since its last save)"  # before: "saving…"

    view = window.viewer.views[0]
    window.label_tools.actions_by_name["brush"].trigger()
    drag(view, [screen_point(view, 10, 10)])
    assert save(qtbot, window).version == 2  # type: ignore[attr-defined]
    assert project.history(series_uid=uid)[-1].tool == BRUSH  # only the tools used since the last save

    dialog = window.projects.show_history()
    assert dialog is not None and dialog.table.rowCount() == len(project.history(series_uid=uid))
    assert (dialog.cell(0, "Who"), dialog.cell(0, "Tool"), dialog.cell(0, "Label"), dialog.cell(0, "Version")) == ("Dr Ada", "brush", "1: label 1", "2")
    dialog.close()

    second = Project.open(folder)  # another program opening the project while the window holds it
    try:
        assert second.read_only and second.notice is not None and "Dr Ada" in second.notice and "read-only" in second.notice
    finally:
        second.close()
    open_and_show(qtbot, window, ct_folder)  # the reader's newest mask comes back with the series
    shown = window.viewer.model
    assert shown is not None and shown.editor is not None and "version 2" in shown.editor.layer.name
    assert np.array_equal(shown.editor.layer.mask, project.load_mask(project.mask(uid, "Dr Ada")).array)  # type: ignore[arg-type]
    entries = len(project.history(series_uid=uid))
    window.save_label()  # Ctrl+S on the label as it came back: nothing to save (before: a copy saved as version 3, tool "edit")
    qtbot.waitUntil(lambda: "save_label" not in window._tasks.running, timeout=TIMEOUT_MS)
    assert len(project.history(series_uid=uid)) == entries and "no change since its last save" in window.status_message.text()

    window.show_label_versions()  # with a project: its history, to restore one of the reader's versions
    history = window.projects.history_dialog
    assert history is not None and history.isVisible() and not history.restore_button.isEnabled()
    history.table.selectRow(next(row for row in range(history.table.rowCount()) if history.cell(row, "Version") == "1"))
    with qtbot.waitSignal(window.label_restored, timeout=TIMEOUT_MS) as restored:
        history.restore_button.click()
    assert restored.args[0].version == 3 and project.history(series_uid=uid)[-1].tool == RESTORE
    shown = window.viewer.model
    assert shown is not None and shown.editor is not None and np.array_equal(shown.editor.layer.mask, mask)  # version 1 again


def test_another_reader_gets_their_own_label_and_the_first_readers_edits_stay_theirs(qtbot, window: MainWindow, tmp_path: Path, ct_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    window.projects.set_reader("Dr Ada")
    assert window.projects.new_project(tmp_path / "project")
    open_and_show(qtbot, window, ct_folder)
    ada = paint_and_erase(qtbot, window).copy()  # unsaved
    monkeypatch.setattr(window, "ask_unsaved_label", lambda: QMessageBox.StandardButton.Save)
    assert window.projects.set_reader("Dr Bea") == "Dr Bea"
    qtbot.waitUntil(lambda: "load_label" not in window._tasks.running, timeout=TIMEOUT_MS)
    project, uid, model = window.project_session.project, series_uid(ct_folder), window.viewer.model
    assert project is not None and model is not None
    assert np.array_equal(project.load_mask(project.mask(uid, "Dr Ada")).array, ada)  # type: ignore[arg-type]  # saved as Ada's
    assert model.editor is None and project.mask(uid, "Dr Bea") is None  # Bea starts with no label, not Ada's
    assert "you have no label of this series yet" in window.status_message.text()
    window.new_label()
    assert model.editor is not None
    view = window.viewer.views[0]
    window.label_tools.actions_by_name["brush"].trigger()
    drag(view, [screen_point(view, 10, 10), screen_point(view, 10, 20)])
    assert save(qtbot, window).reader == "Dr Bea"  # type: ignore[attr-defined]
    window.projects.set_reader("Dr Ada")  # back to Ada: her label again
    qtbot.waitUntil(lambda: "load_label" not in window._tasks.running, timeout=TIMEOUT_MS)
    assert model.editor is not None and np.array_equal(model.editor.layer.mask, ada) and "Dr Ada" in model.editor.layer.name


def test_an_accepted_prediction_is_recorded_with_the_run_that_made_it(qtbot, window: MainWindow, tmp_path: Path, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    assert window.projects.new_project(tmp_path / "project")
    open_and_show(qtbot, window, ct_folder)
    model = window.viewer.model
    assert model is not None
    run = tmp_path / "runs" / "bones"
    window._predicted(model, run, fake_prediction(model.volume.shape), None, None)  # as a finished prediction shows it
    window.label_tools.actions_by_name["accept"].trigger()
    save(qtbot, window)
    project = window.project_session.project
    assert project is not None
    entry = project.history(series_uid=series_uid(ct_folder))[-1]
    assert (entry.tool, entry.detail, entry.value) == (PREDICTION, f"run {run}", 1)
    assert [(label.value, label.name) for label in project.labels()] == [(1, "bone")]

    dialog = window.projects.show_history()  # the run's path is the widest cell: the table still fits, Detail in sight
    assert dialog is not None
    qtbot.waitExposed(dialog)
    table, detail = dialog.table, dialog.COLUMNS.index("Detail")
    assert dialog.cell(0, "Detail") == f"run {run}" and table.item(0, detail).toolTip() == f"run {run}"
    assert table.horizontalScrollBar().maximum() == 0  # before: scrolled sideways, the Detail header out of sight
    assert table.columnViewportPosition(detail) + table.columnWidth(detail) <= table.viewport().width()
    dialog.close()


def test_a_project_held_by_another_program_is_read_only_and_a_stale_lock_can_be_taken_over(qtbot, window: MainWindow, tmp_path: Path, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "shared"
    Project.create(folder).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys; from medtl.project import Project; p = Project.open({str(folder)!r}, user='Dr Bea'); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert window.projects.open_project(folder)
        assert window.project_session.read_only and "read-only" in window.windowTitle()
        banner = window.projects.banner
        assert banner.isVisible() and "Dr Bea" in banner.text.text() and not banner.take_over_button.isVisible()  # a live holder

        open_and_show(qtbot, window, ct_folder)
        paint_and_erase(qtbot, window)
        saved = save(qtbot, window)
        assert isinstance(saved, SavedLabel) and saved.mask.is_file()  # kept in the label store instead
    finally:
        holder.kill()
        holder.wait()
    with Project.open(folder, read_only=True) as project:
        assert project.series() == [] and project.history() == []  # nothing was written into the project

    assert window.projects.open_project(folder)  # the holder is gone: its lock is stale
    assert window.project_session.read_only and banner.take_over_button.isVisible()
    banner.take_over_button.click()
    assert not window.project_session.read_only and not banner.isVisible() and "read-only" not in window.windowTitle()
    assert isinstance(save(qtbot, window), MaskVersion)  # now the label goes into the project


def project_with_masks(folder: Path, ct_folder: Path, readers: dict[str, np.ndarray]) -> str:
    """A project holding the CT series and one mask per reader (label 1 "bone"); returns the series UID."""
    volume = load_series(sorted(ct_folder.iterdir()))
    uid = str(volume.metadata["series_uid"])
    with Project.create(folder) as project:
        project.add_dicom(ct_folder)
        project.define_label("bone")
        for reader, mask in readers.items():
            project.save_mask(uid, mask, volume, tool=BRUSH, reader=reader)
    return uid


def test_training_from_the_project_needs_no_datalist_and_lists_the_run(qtbot, window: MainWindow, tmp_path: Path, ct_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "project"
    mask = np.zeros(SHAPE, np.uint8)
    mask[4:8, 10:30, 12:32] = 1
    project_with_masks(folder, ct_folder, {"Dr Ada": mask})
    panel = window.training
    assert not panel.from_project.isEnabled()
    assert window.projects.open_project(folder)
    assert panel.from_project.isEnabled()
    panel.from_project.setChecked(True)
    assert not panel.datalist.isEnabled()
    run = tmp_path / "run"
    panel.out_dir.setText(str(run))
    panel.model_box.setCurrentText("unet")
    panel.weights_box.setCurrentIndex(1)  # from scratch
    panel.epochs.setValue(1)
    panel.device_box.setCurrentText("cpu")
    request = panel.request()  # validated on creation
    assert request.project == folder.absolute() and request.datalist == run / PROJECT_DATA / "datalist.json" and request.task == "segmentation"
    assert preview(request).architecture == "unet"  # the engine plans it from the project's labels

    started: list[TrainRequest] = []

    def fake_train(request: TrainRequest, on_event: object = None, cancel: object = None) -> TrainResult:
        from medtl.workflow import train as workflow

        started.append(request)
        workflow._project_data(request, request.datalist.parent, lambda line: started.append(line))  # type: ignore[arg-type]
        return TrainResult(request.out_dir, RunSummary("segmentation", 1, 0.1, "completed", "cpu"))

    monkeypatch.setattr("medtl.workflow.train.train", fake_train)
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT_MS):
        assert panel.start()
    assert started[0] == request and (run / PROJECT_DATA / "datalist.json").is_file()
    assert not any("not listed" in str(line) for line in started)  # the app listed it; the engine did not try
    project = window.project_session.project
    assert project is not None and [r.path for r in project.runs()] == [run]
    assert project.history()[-1].tool == "training" and "listed in the project" in panel.monitor.log.toPlainText()


def test_a_new_project_needs_a_new_or_empty_folder_and_the_chooser_starts_beside_the_open_project(qtbot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    refusals: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text: refusals.append(text))
    crowded = tmp_path / "home"
    (crowded / "scans").mkdir(parents=True)
    assert not window.projects.new_project(crowded)  # before: a project's files were strewn among the folder's own
    assert refusals == [f"{crowded}: not empty; choose or create an empty folder for the new project"]
    assert not (crowded / "project.sqlite").exists() and window.project_session.project is None

    assert window.projects.new_project(tmp_path / "projects" / "first")
    starts: list[str] = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda _parent, _caption, start: starts.append(start) or "")
    assert not window.projects.new_project() and not window.projects.open_project()  # the chooser is cancelled
    assert starts == [str(tmp_path / "projects")] * 2  # before: the folder the app was started from


def test_use_my_saved_labels_trains_on_the_open_project_where_the_labels_are_saved(qtbot, window: MainWindow, tmp_path: Path, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "project"
    mask = np.zeros(SHAPE, np.uint8)
    mask[4:8, 10:30, 12:32] = 1
    project_with_masks(folder, ct_folder, {"Dr Ada": mask})
    assert window.projects.open_project(folder)
    panel = window.training
    panel.out_dir.setText(str(tmp_path / "run"))
    panel.from_labels_button.click()  # the label store is empty: the labels are in the project
    assert panel.from_project.isChecked() and not panel.datalist.isEnabled()
    assert panel.request().project == folder.absolute() and "saved in the project" in panel.monitor.log.toPlainText()
    assert window.problems.topLevelItemCount() == 0 and "no datalist" not in panel.monitor.status.text()


def test_the_agreement_dialog_shows_dice_per_label_for_two_readers(qtbot, window: MainWindow, tmp_path: Path, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    first, second = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    first[2:10, 10:30, 10:30] = 1
    second[2:10, 15:35, 10:30] = 1
    expected = dice_per_label(first, second)[1]
    assert expected is not None and 0.5 < expected < 1
    folder = tmp_path / "readers"
    project_with_masks(folder, ct_folder, {"Dr Ada": first, "Dr Bea": second})
    assert window.projects.open_project(folder)
    open_and_show(qtbot, window, ct_folder)
    dialog = window.projects.show_agreement()
    assert dialog is not None and dialog.compare_button.isEnabled()
    assert [dialog.first.itemText(i) for i in range(dialog.first.count())] == ["Dr Ada", "Dr Bea"] and dialog.second.currentText() == "Dr Bea"
    with qtbot.waitSignal(dialog.compared, timeout=TIMEOUT_MS):
        dialog.compare_button.click()
    assert dialog.table.item(0, 0).text() == "1: bone" and dialog.table.item(0, 1).text() == f"{expected:.3f}"
    dialog.close()


def test_at_start_the_default_project_opens_with_the_label_store_moved_in(qtbot, window: MainWindow, tmp_path: Path, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    volume = load_series(sorted(ct_folder.iterdir()))
    mask = np.zeros(SHAPE, np.uint8)
    mask[3:6, 5:15, 5:15] = 1
    window.label_store.save(mask, volume, sorted(ct_folder.iterdir()), {1: "lesion"})
    with qtbot.waitSignal(window.projects.opened, timeout=TIMEOUT_MS) as opened:
        window.projects.open_at_start()
    project = opened.args[0]
    assert project.folder == default_project_dir() and str(tmp_path / "data") in str(project.folder)  # never the user's own
    assert not project.read_only and window.settings.last_project() == project.folder
    assert [label.name for label in project.labels()] == ["lesion"] and project.history()[-1].tool == IMPORT
    open_and_show(qtbot, window, ct_folder)  # the moved label is the one shown
    model = window.viewer.model
    assert model is not None and model.editor is not None and np.array_equal(model.editor.layer.mask, mask)
    assert model.editor.names == {1: "lesion"}

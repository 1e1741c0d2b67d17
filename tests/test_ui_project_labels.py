"""The label table and the class labels live in the open project: what the user changes there is written into it (and
its audit log), comes back when the series or the project is opened again, and a read-only project is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QColorDialog, QMessageBox

from medtl.project import Project
from medtl.project.records import CLASS_LABEL, LABEL_TABLE
from tests.dicomgen import SeriesSpec, phantom, write_series
from tests.test_ui_project import ct_folder, paint_and_erase, save, series_uid, user_folders, window  # noqa: F401 - fixtures
from tests.test_ui_window import TIMEOUT_MS, open_and_show
from ui.models.label_session import series_uids
from ui.qt.label_table import COLOUR, LOCKED, NAME, SHOWN
from ui.qt.main_window import MainWindow

READER = "Dr Ada"


@pytest.fixture(scope="module")
def three_series(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three small CT series, each in its own folder."""
    folders = []
    for number in range(3):
        folder = tmp_path_factory.mktemp(f"series{number}")
        write_series(folder, phantom((6, 24, 24)), SeriesSpec(series_description=f"series {number}", patient_id=f"P{number}", seed=number))
        folders.append(folder)
    return folders


@pytest.fixture(autouse=True)
def never_asks(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing the window at the end (or after a failure) never waits on a question about unsaved edits."""
    monkeypatch.setattr(window, "ask_unsaved_label", lambda: QMessageBox.StandardButton.Discard)


def definitions(folder: Path) -> list[tuple[int, str, tuple[int, int, int], bool, bool]]:
    """The project's label definitions, as a second program opening it sees them."""
    with Project.open(folder, read_only=True) as project:
        return [(label.value, label.name, label.colour, label.hidden, label.locked) for label in project.labels()]


def table_rows(window: MainWindow) -> list[tuple[str, tuple[int, int, int], bool, bool]]:
    """What the label table shows: name, colour swatch, shown, locked."""
    table = window.label_tools.label_table.table
    checked = Qt.CheckState.Checked
    return [
        (table.item(row, NAME).text(), table.item(row, COLOUR).background().color().getRgb()[:3],
         table.item(row, SHOWN).checkState() == checked, table.item(row, LOCKED).checkState() == checked)
        for row in range(table.rowCount())
    ]  # fmt: skip


def test_label_table_changes_are_kept_in_the_project_and_shown_again(qtbot, window: MainWindow, tmp_path: Path, ct_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "project"
    window.projects.set_reader(READER)
    assert window.projects.new_project(folder)
    open_and_show(qtbot, window, ct_folder)
    paint_and_erase(qtbot, window)
    table = window.label_tools.label_table
    table.add()  # label 2
    table.table.item(0, NAME).setText("liver")  # the user edits the name cell
    monkeypatch.setattr(QColorDialog, "getColor", lambda *args: QColor(10, 200, 30))
    table.choose_colour(0)
    table.table.item(0, LOCKED).setCheckState(Qt.CheckState.Checked)
    table.table.item(1, SHOWN).setCheckState(Qt.CheckState.Unchecked)  # hide label 2
    saved = definitions(folder)
    assert [row[:2] for row in saved] == [(1, "liver"), (2, "label 2")]
    assert saved[0][2:] == ((10, 200, 30), False, True) and saved[1][3:] == (True, False)
    with Project.open(folder, read_only=True) as project:
        details = [entry.detail for entry in project.history() if entry.tool == LABEL_TABLE]
        assert {entry.who for entry in project.history() if entry.tool == LABEL_TABLE} == {READER}
    assert {"renamed 'label 1' to 'liver'", "colour #0ac81e", "locked", "hidden"} <= set(details)

    save(qtbot, window)
    open_and_show(qtbot, window, ct_folder)  # the series again: the table shows the project's definitions
    assert table_rows(window) == [("liver", (10, 200, 30), True, True), ("label 2", saved[1][2], False, False)]
    model = window.viewer.model
    assert model is not None and model.editor is not None and model.editor.locked == {1} and model.editor.hidden == {2}

    table.table.selectRow(1)
    table.delete_selected()
    assert [row[0] for row in definitions(folder)] == [1]
    with Project.open(folder, read_only=True) as project:
        assert project.history()[-1].detail == "deleted 'label 2'" and project.history()[-1].value == 2
    window.label_tools.actions_by_name["undo"].trigger()  # Ctrl+Z: the label is back, in the project too
    assert definitions(folder) == saved
    assert [row[0] for row in table_rows(window)] == ["liver", "label 2"]


def test_a_read_only_project_is_not_written_and_the_panels_say_why(qtbot, window: MainWindow, tmp_path: Path, ct_folder: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "held"
    with Project.create(folder) as project:
        project.add_dicom(ct_folder)
        project.define_label("liver", (10, 200, 30))
    holder = Project.open(folder, user="Dr Bea")  # another program writes the project
    try:
        before = holder.history()
        assert window.projects.open_project(folder) and window.project_session.read_only
        open_and_show(qtbot, window, ct_folder)
        window.new_label()
        assert table_rows(window) == [("liver", (10, 200, 30), True, False)]  # shown from the project all the same
        table = window.label_tools.label_table
        table.table.item(0, NAME).setText("spleen")
        assert "not saved in the project" in table.message.text() and "Dr Bea" in table.message.text()
        panel = window.label_tools.class_labels
        panel.number_keys.setChecked(True)
        qtbot.keyClick(window, Qt.Key.Key_1)
        assert "Class not saved" in panel.current.text() and "read-only" in window.status_message.text()
        assert panel.progress.text() == "0/1 series classified"  # nothing was kept that the project does not hold
        assert holder.history() == before and holder.labels()[0].name == "liver" and holder.classes() == []
    finally:
        holder.close()


def test_class_labels_are_kept_in_the_project_and_next_unlabelled_opens_its_next_series(qtbot, window: MainWindow, tmp_path: Path, three_series: list[Path]) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "classes"
    uids = [series_uid(path) for path in three_series]
    with Project.create(folder) as project:
        for path in three_series:
            project.add_dicom(path)
        project.define_class("benign")
        project.define_class("malignant")
    window.projects.set_reader(READER)
    assert window.projects.open_project(folder)
    panel = window.label_tools.class_labels
    assert panel.labels.classes == {1: "benign", 2: "malignant"} and panel.progress.text() == "0/3 series classified"
    panel.number_keys.setChecked(True)

    open_and_show(qtbot, window, three_series[0])
    qtbot.keyClick(window, Qt.Key.Key_1)  # the number key
    open_and_show(qtbot, window, three_series[1])
    window.label_tools.actions_by_name["class_2"].trigger()  # the Label menu's action
    assert panel.progress.text() == "2/3 series classified" and window.label_tools.class_labels.status_progress.text() == "2/3 series classified"
    with Project.open(folder, read_only=True) as project:
        assert project.class_labels(uids[0], READER) == {None: "benign"} and project.class_labels(uids[1], READER) == {None: "malignant"}
        assert [entry.who for entry in project.history() if entry.tool == CLASS_LABEL][-2:] == [READER, READER]
    panel.classes.item(0).setText("benign lesion")  # renamed in the panel: the project's class too
    with Project.open(folder, read_only=True) as project:
        assert project.classes() == ["benign lesion", "malignant"] and project.class_labels(uids[0], READER) == {None: "benign lesion"}

    with qtbot.waitSignal(window.series_shown, timeout=TIMEOUT_MS):
        window.label_tools.actions_by_name["next_unlabelled"].trigger()  # the third series is in no folder opened yet
    model = window.viewer.model
    assert model is not None and series_uids(model)[1] == uids[2]
    panel.mode.setCurrentIndex(1)  # per slice
    model.set_cursor([*model.cursor[:2], 4])
    qtbot.keyClick(window, Qt.Key.Key_2)
    window.label_tools.actions_by_name["class_0"].trigger()  # and taken off again
    qtbot.keyClick(window, Qt.Key.Key_1)
    with Project.open(folder, read_only=True) as project:
        assert project.class_labels(uids[2], READER) == {4: "benign lesion"}

    assert window.projects.open_project(folder)  # opened again: the panel shows what the project holds
    assert panel.labels.classes == {1: "benign lesion", 2: "malignant"} and panel.labels.slice_classes == {(uids[2], 4): 1}
    assert panel.labels.series_classes == {uids[0]: 1, uids[1]: 2} and panel.progress.text() == "1/18 slices classified"

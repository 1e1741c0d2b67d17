"""The label table in the app: add, rename, recolour, hide, lock, delete (undoable) and the volume in mL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QColorDialog, QMessageBox

from medtl.errors import MedtlError
from tests.test_class_labels import ct_folder  # noqa: F401 - the fixture
from tests.test_ui_labels import drag, screen_point, shown_window, temporary_settings
from tests.test_ui_window import open_and_show
from ui.models.label_definitions import LabelDefinitions
from ui.qt.label_table import COLOUR, LOCKED, NAME, SHOWN, VOLUME
from ui.qt.main_window import MainWindow

SPACING_ML = 0.8 * 0.8 * 2.0 / 1000


@pytest.fixture
def window(qtbot, tmp_path: Path, ct_folder: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:  # type: ignore[no-untyped-def]  # noqa: F811
    """The window showing the series with an editable label: label 1 (1000 voxels) and label 2 (100)."""
    window = shown_window(qtbot, temporary_settings(tmp_path))
    monkeypatch.setattr(window, "ask_unsaved_label", lambda: QMessageBox.StandardButton.Discard)  # closing at the end never asks
    open_and_show(qtbot, window, ct_folder)
    model = window.viewer.model
    assert model is not None
    mask = np.zeros(model.volume.shape, np.uint8)
    mask[2:12, 5:15, 5:15] = 1
    mask[6, 20:30, 20:30] = 2
    model.edit_label(mask, {1: "label 1", 2: "label 2"})
    window.label_tools.refresh()
    return window


def cells(window: MainWindow, column: int) -> list[str]:
    table = window.label_tools.label_table.table
    return [table.item(row, column).text() for row in range(table.rowCount())]


def test_volumes_in_ml_follow_the_edits(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    assert cells(window, VOLUME) == [f"{1000 * SPACING_ML:.2f} mL", f"{100 * SPACING_ML:.2f} mL"]
    view = window.viewer.active_view
    window.label_tools.actions_by_name["eraser"].trigger()
    window.label_tools.size.setValue(100.0)
    drag(view, [screen_point(view, 10, 10)])  # erases everything on the shown slice
    model = window.viewer.model
    assert model is not None and model.editor is not None
    assert cells(window, VOLUME)[0] == f"{(model.editor.layer.mask == 1).sum() * SPACING_ML:.2f} mL" != f"{1000 * SPACING_ML:.2f} mL"


def test_rename_recolour_and_add_show_in_the_table_and_the_tools(qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    tools, table = window.label_tools, window.label_tools.label_table
    table.table.item(0, NAME).setText("liver")  # the user edits the name cell
    assert cells(window, NAME) == ["liver", "label 2"] and tools.value_box.itemText(0) == "1: liver"
    table.table.item(1, NAME).setText("liver")  # a second "liver" is refused, and the old name shown again
    assert cells(window, NAME) == ["liver", "label 2"] and "already" in table.message.text()
    monkeypatch.setattr(QColorDialog, "getColor", lambda *args: QColor(10, 200, 30))
    table.table.cellDoubleClicked.emit(1, COLOUR)
    model = window.viewer.model
    assert model is not None and model.editor is not None
    assert table.table.item(1, COLOUR).background().color() == QColor(10, 200, 30) and model.editor.layer.colors[2] == (10, 200, 30)
    table.add_button.click()
    assert cells(window, NAME) == ["liver", "label 2", "label 3"] and model.editor.value == 3 and tools.value_box.currentText() == "3: label 3"


def test_delete_then_undo_restores_the_label_and_its_voxels(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    model = window.viewer.model
    assert model is not None and model.editor is not None
    table, before = window.label_tools.label_table, model.editor.layer.mask.copy()
    table.table.item(1, NAME).setText("vessel")
    table.table.selectRow(1)
    table.delete_button.click()
    assert cells(window, NAME) == ["label 1"] and not (model.editor.layer.mask == 2).any()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert cells(window, NAME) == ["label 1", "vessel"] and np.array_equal(model.editor.layer.mask, before)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert cells(window, NAME) == ["label 1"]


def test_hidden_labels_are_not_shown_nor_painted_over_and_locked_ones_are_kept(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    model = window.viewer.model
    assert model is not None and model.editor is not None
    table, view, mask = window.label_tools.label_table, window.viewer.active_view, model.editor.layer.mask
    assert view.plane is not None
    model.go_to_slice(view.plane, 6)
    with_label = model.render(view.plane).copy()
    table.table.item(1, SHOWN).setCheckState(Qt.CheckState.Unchecked)  # hide label 2
    hidden = model.render(view.plane)
    assert not np.array_equal(with_label, hidden)
    shown_at = np.argwhere(view.plane.extract(mask, 6) == 2)[0]
    assert np.array_equal(hidden[tuple(shown_at)], model.render(view.plane)[tuple(shown_at)])
    table.table.item(0, LOCKED).setCheckState(Qt.CheckState.Checked)  # lock label 1
    twos, ones = (mask == 2).sum(), (mask == 1).sum()
    window.label_tools.actions_by_name["eraser"].trigger()
    window.label_tools.size.setValue(100.0)
    drag(view, [screen_point(view, 16, 16)])  # the eraser over the whole slice
    assert (mask == 2).sum() == twos and (mask == 1).sum() == ones
    table.table.selectRow(0)
    table.delete_button.click()
    assert (mask == 1).sum() == ones and "locked" in table.message.text()


def test_definitions_round_trip_for_a_project(window: MainWindow) -> None:
    model = window.viewer.model
    assert model is not None and model.editor is not None
    definitions = LabelDefinitions(model.editor, model.volume.spacing)
    definitions.rename(1, "liver")
    definitions.set_locked(2, True)
    stored = definitions.to_dict()
    definitions.rename(1, "spleen")
    definitions.load(stored)
    assert definitions.rows()[0].name == "liver" and definitions.rows()[1].locked
    with pytest.raises(MedtlError, match="repeated"):
        definitions.load({"labels": [{"value": 1, "name": "a", "colour": [1, 2, 3]}, {"value": 1, "name": "b", "colour": [1, 2, 3]}]})

"""`LabelTable`: the table of the edited label's labels: colour, name, shown, locked and volume in mL, with Add and
Delete (Ctrl+Z brings a deleted label back). Double-click a colour to change it, a name to rename the label.

It binds a :class:`~ui.models.label_definitions.LabelDefinitions` (made for each editable label) to a table and
follows the shown series, refreshing when the label changes (volumes update after every stroke).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QColorDialog, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from medtl.errors import MedtlError
from ui.models.label_definitions import LabelDefinition, LabelDefinitions
from ui.models.label_editor import LabelEditor
from ui.models.viewer_model import ViewerModel, follow

COLUMNS = ("", "Name", "Shown", "Locked", "Volume")
COLOUR, NAME, SHOWN, LOCKED, VOLUME = range(len(COLUMNS))


class LabelTable(QWidget):
    """The labels of the editable label of the series shown in ``model`` (set with :meth:`set_model`)."""

    definitions_changed = Signal()  # a label was added, renamed, recoloured, hidden, locked or deleted
    definitions_replaced = Signal()  # the table shows a new editable label's definitions (e.g. a project fills them in now)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model: ViewerModel | None = None
        self.definitions: LabelDefinitions | None = None
        self._shown: list[LabelDefinition] = []
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        self.add_button = QPushButton("Add", self)
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.setToolTip("delete the selected label and its voxels (Ctrl+Z brings it back)")
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        self.add_button.clicked.connect(self.add)
        self.delete_button.clicked.connect(self.delete_selected)
        self.table.itemChanged.connect(self._item_changed)
        self.table.cellDoubleClicked.connect(lambda row, column: self.choose_colour(row) if column == COLOUR else None)
        self.refresh()

    def set_model(self, model: ViewerModel | None) -> None:
        self._model = follow(self._model, model, self.refresh)
        self.refresh()

    @property
    def editor(self) -> LabelEditor | None:
        return self._model.editor if self._model is not None else None

    def refresh(self) -> None:
        """Show the editable label's labels (rebuilt only when something shown changed)."""
        editor = self.editor
        replaced = editor is not None and (self.definitions is None or self.definitions.editor is not editor)
        if editor is None:
            self.definitions = None
        elif replaced:
            assert self._model is not None
            self.definitions = LabelDefinitions(editor, self._model.volume.spacing)
        self._show_rows(editor)
        if replaced:
            self.definitions_replaced.emit()

    def _show_rows(self, editor: LabelEditor | None) -> None:
        rows = self.definitions.rows() if self.definitions is not None else []
        self.add_button.setEnabled(self.definitions is not None)
        self.delete_button.setEnabled(len(rows) > 1)
        if rows == self._shown:
            return
        selected = self.selected_value()
        self._shown = rows
        self.table.blockSignals(True)
        self.table.setRowCount(len(rows))
        for row, label in enumerate(rows):
            swatch = _item("", editable=False)
            swatch.setBackground(QColor(*label.colour))
            swatch.setToolTip(f"label value {label.value}; double-click to change the colour")
            swatch.setData(Qt.ItemDataRole.UserRole, label.value)
            self.table.setItem(row, COLOUR, swatch)
            self.table.setItem(row, NAME, _item(label.name, editable=True))
            self.table.setItem(row, SHOWN, _check(not label.hidden, "shown (unticked: hidden, and not painted over)"))
            self.table.setItem(row, LOCKED, _check(label.locked, "locked: no tool changes it"))
            volume = _item(f"{label.volume_ml:.2f} mL", editable=False)
            volume.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, VOLUME, volume)
            if label.value == selected or (selected is None and editor is not None and label.value == editor.value):
                self.table.selectRow(row)
        self.table.blockSignals(False)

    def selected_value(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return self._shown[rows[0].row()].value if rows and rows[0].row() < len(self._shown) else None

    def add(self) -> None:
        self._change(lambda d: d.add())

    def delete_selected(self) -> None:
        value = self.selected_value()
        if value is not None and self.definitions is not None and not self._change(lambda d: d.delete(value)):
            self.message.setText("A locked label, or the only label, cannot be deleted")

    def choose_colour(self, row: int) -> None:
        """Ask for a new colour for the label in ``row``."""
        label = self._shown[row]
        colour = QColorDialog.getColor(QColor(*label.colour), self, f"Colour of {label.name}")
        if colour.isValid():
            self._change(lambda d: d.recolour(label.value, (colour.red(), colour.green(), colour.blue())))

    def _item_changed(self, item: QTableWidgetItem) -> None:
        label = self._shown[item.row()]
        column = item.column()
        checked = item.checkState() == Qt.CheckState.Checked
        if column == NAME:
            self._change(lambda d: d.rename(label.value, item.text()))
        elif column == SHOWN:
            self._change(lambda d: d.set_hidden(label.value, not checked))
        elif column == LOCKED:
            self._change(lambda d: d.set_locked(label.value, checked))

    def _change(self, change: Callable[[LabelDefinitions], object]) -> object:
        """Apply ``change`` (a call on the definitions), show the result everywhere, or say why it was refused."""
        if self.definitions is None:
            return None
        try:
            result = change(self.definitions)
        except MedtlError as error:
            self.message.setText(str(error))
            self._shown = []  # show the definitions as they are
            self.refresh()
            return None
        self.message.clear()
        assert self._model is not None
        self._model.layer_changed()  # redraw, and let the tools and this table refresh
        self.definitions_changed.emit()
        return result


def _item(text: str, editable: bool) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
    item.setFlags(flags | Qt.ItemFlag.ItemIsEditable if editable else flags)
    return item


def _check(checked: bool, tip: str) -> QTableWidgetItem:
    item = QTableWidgetItem()
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable)
    item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
    item.setToolTip(tip)
    return item

"""`LabelTools`: accept a prediction as a label, brush / eraser with a size in mm, the AI box tool and Propagate
(:mod:`ui.qt.prompt_tool`), undo / redo, save.

The commands are window-wide ``QAction`` s (the main window puts them in its Label menu, so the
shortcuts work wherever the focus is); this widget shows them as buttons under the layers list,
with the brush size, the label value painted, and whether the label has unsaved edits.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from ui.models.label_editor import BRUSH_RANGE_MM, LabelEditor, Tool
from ui.models.overlays import LabelLayer
from ui.models.viewer_model import ViewerModel
from ui.qt.layers_panel import LayersPanel
from ui.qt.viewer_widget import ViewerWidget

_SIZE_STEP = 1.25  # [ and ] scale the brush by this
_BUTTON_CELLS = (  # action, row, column, columns spanned
    ("accept", 0, 0, 2), ("new_label", 0, 2, 1), ("brush", 1, 0, 1), ("eraser", 1, 1, 1), ("box", 1, 2, 1),
    ("undo", 2, 0, 1), ("redo", 2, 1, 1), ("save", 2, 2, 1), ("propagate", 3, 0, 3),
)  # fmt: skip
_BUTTON_TEXT = {  # shorter than the menu's
    "accept": "Accept as label", "new_label": "New label", "undo": "Undo", "redo": "Redo", "box": "AI box", "propagate": "Propagate to next slices",
}  # fmt: skip
_TOOL_ACTIONS = {Tool.BRUSH: "brush", Tool.ERASER: "eraser", Tool.BOX: "box"}


class LabelTools(QWidget):
    """Label editing commands for the series in ``viewer``; ``layers`` says which prediction to accept."""

    save_requested = Signal()
    accept_requested = Signal(object)  # the LabelLayer to copy into the editable label
    new_requested = Signal()
    propagate_requested = Signal()

    def __init__(self, viewer: ViewerWidget, layers: LayersPanel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer, self.layers = viewer, layers
        self._model: ViewerModel | None = None
        self.actions_by_name: dict[str, QAction] = {}
        add = self._add_action
        add("accept", "Accept prediction as label", ["Ctrl+L"], self._accept)
        add("new_label", "New empty label", ["Ctrl+Shift+N"], self.new_requested.emit)
        brush = add("brush", "Brush", ["B"], lambda: self._set_tool(Tool.BRUSH))
        eraser = add("eraser", "Eraser", ["E"], lambda: self._set_tool(Tool.ERASER))
        box = add("box", "AI box (draw a box; click to add, Shift+click to take away)", ["X"], lambda: self._set_tool(Tool.BOX))
        add("propagate", "Propagate the AI mask to the next slices", ["Ctrl+Shift+P"], self.propagate_requested.emit)
        group = QActionGroup(self)
        group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        for action in (brush, eraser, box):
            action.setCheckable(True)
            group.addAction(action)
        add("smaller", "Smaller brush", ["["], lambda: self.size.setValue(self.size.value() / _SIZE_STEP))
        add("larger", "Larger brush", ["]"], lambda: self.size.setValue(self.size.value() * _SIZE_STEP))
        add("undo", "Undo stroke", [QKeySequence.StandardKey.Undo], lambda: self._history(LabelEditor.undo))
        add("redo", "Redo stroke", ["Ctrl+Shift+Z", "Ctrl+Y"], lambda: self._history(LabelEditor.redo))
        add("save", "Save label", ["Ctrl+S"], self.save_requested.emit)
        add("add_value", "Add a label value", [], self._add_value).setIconText("+")
        self.size = QDoubleSpinBox(self)
        self.size.setRange(*BRUSH_RANGE_MM)
        self.size.setDecimals(1)
        self.size.setSuffix(" mm")
        self.size.setToolTip("brush radius ([ smaller, ] larger)")
        self.size.setValue(4.0)
        self.value_box = QComboBox(self)
        self.value_box.setToolTip("the label value the brush paints")
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        buttons = QGridLayout()
        for name, row, column, span in _BUTTON_CELLS:
            button = QToolButton(self)
            button.setDefaultAction(self.actions_by_name[name])
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            button.setProperty("panelButton", True)  # framed like a push button (resources/style/dark.qss); before polishing
            button.setMinimumWidth(button.sizeHint().width())  # never narrower than its text
            buttons.addWidget(button, row, column, 1, span)
        form = QFormLayout()
        form.addRow("Brush radius", self.size)
        value_row = QHBoxLayout()
        value_row.addWidget(self.value_box, 1)
        add_value = QToolButton(self)
        add_value.setDefaultAction(self.actions_by_name["add_value"])
        value_row.addWidget(add_value)
        form.addRow("Paint label", value_row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(buttons)
        layout.addLayout(form)
        layout.addWidget(self.status)
        self.size.valueChanged.connect(self._size_changed)
        self.value_box.currentIndexChanged.connect(self._value_changed)
        layers.list.currentRowChanged.connect(lambda _row: self.refresh())
        self.refresh()

    def set_model(self, model: ViewerModel | None) -> None:
        """Follow the shown series (the viewer shows it already)."""
        if self._model is not None:
            self._model.changed.disconnect(self.refresh)
        self._model = model
        if model is not None:
            model.changed.connect(self.refresh)
        self.refresh()

    @property
    def editor(self) -> LabelEditor | None:
        return self.viewer.model.editor if self.viewer.model is not None else None

    def acceptable_layer(self) -> LabelLayer | None:
        """The label layer "Accept" copies: the selected one, else the top one (never the label being edited)."""
        editor, selected = self.editor, self.layers.selected()
        candidates = [selected, *reversed(self.viewer.model.layers if self.viewer.model else [])]
        return next((c for c in candidates if isinstance(c, LabelLayer) and (editor is None or c is not editor.layer)), None)

    def refresh(self) -> None:
        """Enable what applies to the shown series and its editable label; say whether edits are unsaved."""
        editor = self.editor
        self.actions_by_name["accept"].setEnabled(self.acceptable_layer() is not None)
        self.actions_by_name["new_label"].setEnabled(self.viewer.model is not None)
        for name in ("brush", "eraser", "box", "propagate", "smaller", "larger", "save", "add_value"):
            self.actions_by_name[name].setEnabled(editor is not None)
        self.actions_by_name["undo"].setEnabled(editor is not None and editor.can_undo)
        self.actions_by_name["redo"].setEnabled(editor is not None and editor.can_redo)
        if editor is None:
            self._set_tool(Tool.NAVIGATE)
            self.status.setText("No editable label: accept a prediction, or start a new label.")
            self.value_box.clear()
            return
        if [self.value_box.itemData(i) for i in range(self.value_box.count())] != list(editor.names):
            self.value_box.blockSignals(True)
            self.value_box.clear()
            for value, name in editor.names.items():
                self.value_box.addItem(f"{value}: {name}", value)
            self.value_box.blockSignals(False)
        self.value_box.setCurrentIndex(max(self.value_box.findData(editor.value), 0))
        editor.set_radius(self.size.value())
        annotated = editor.annotated
        extent = "every slice annotated" if annotated.complete else f"{annotated.count()} slice{'s' if annotated.count() != 1 else ''} annotated"
        self.status.setText(("Unsaved edits (Ctrl+S saves)" if editor.dirty else "Label saved") + f"; {extent}")

    def _set_tool(self, tool: Tool) -> None:
        """Switch to ``tool``; choosing the checked tool again goes back to navigating."""
        if tool is not Tool.NAVIGATE and not self.actions_by_name[_TOOL_ACTIONS[tool]].isChecked():
            tool = Tool.NAVIGATE
        if tool is Tool.NAVIGATE:
            for name in _TOOL_ACTIONS.values():
                self.actions_by_name[name].setChecked(False)
        self.viewer.set_tool(tool)

    def _add_value(self) -> None:
        """A further label value (the next free one) to paint with."""
        editor = self.editor
        value = max(editor.names, default=0) + 1 if editor is not None else 256
        if editor is not None and value <= 255:
            editor.names[value] = f"label {value}"  # the layer shares this dict: it names the value too
            editor.value = value
            self.refresh()

    def _accept(self) -> None:
        layer = self.acceptable_layer()
        if layer is not None:
            self.accept_requested.emit(layer)

    def _history(self, move: Callable[[LabelEditor], bool]) -> None:
        editor = self.editor
        if editor is not None and move(editor):
            self.viewer.model.layer_changed()  # type: ignore[union-attr]

    def _size_changed(self, value: float) -> None:
        if self.editor is not None:
            self.editor.set_radius(value)
        for view in self.viewer.views:
            view.update()

    def _value_changed(self, index: int) -> None:
        if self.editor is not None and index >= 0:
            self.editor.value = int(self.value_box.itemData(index))

    def _add_action(self, name: str, text: str, keys: list[str | QKeySequence.StandardKey], slot: Callable[[], object]) -> QAction:
        action = QAction(text, self)
        action.setIconText(_BUTTON_TEXT.get(name, text))
        action.setShortcuts([QKeySequence(key) for key in keys])
        action.triggered.connect(slot)
        self.actions_by_name[name] = action
        return action

"""`LabelTools`: accept a prediction as a label, brush / eraser with a size in mm (a disc, or a ball in 3D), lasso,
threshold brush, region growing, interpolation between annotated slices, the AI box tool and Propagate
(:mod:`ui.qt.prompt_tool`), undo / redo, save; below them the label table (:mod:`ui.qt.label_table`) and the class
labels for classification (:mod:`ui.qt.class_labels`).

The commands are window-wide ``QAction`` s (the main window puts them in its Label menu, so the
shortcuts work wherever the focus is); this widget shows them as buttons under the layers list,
with the brush size, the label value painted, the threshold band and the growing tolerance, and whether the
label has unsaved edits. The class labels' number keys and "Next unlabelled" are among its actions too.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget,
)  # fmt: skip

from ui.models.label_editor import BRUSH_RANGE_MM, LabelEditor, Tool, annotated_axis
from ui.models.overlays import LabelLayer
from ui.models.viewer_model import ViewerModel, follow
from ui.qt.class_labels import ClassLabelsPanel
from ui.qt.label_table import LabelTable
from ui.qt.layers_panel import LayersPanel
from ui.qt.viewer_widget import ViewerWidget

_SIZE_STEP = 1.25  # [ and ] scale the brush by this
_BUTTON_CELLS = (  # action, row, column, columns spanned
    ("accept", 0, 0, 2), ("new_label", 0, 2, 1), ("brush", 1, 0, 1), ("eraser", 1, 1, 1), ("box", 1, 2, 1),
    ("lasso", 2, 0, 1), ("threshold", 2, 1, 1), ("grow", 2, 2, 1), ("ball", 3, 0, 1), ("interpolate", 3, 1, 2),
    ("undo", 4, 0, 1), ("redo", 4, 1, 1), ("save", 4, 2, 1), ("propagate", 5, 0, 3),
)  # fmt: skip
_BUTTON_TEXT = {  # shorter than the menu's
    "accept": "Accept as label", "new_label": "New label", "undo": "Undo", "redo": "Redo", "box": "AI box", "propagate": "Propagate to next slices",
    "lasso": "Lasso", "threshold": "Threshold", "grow": "Grow", "ball": "3D", "interpolate": "Interpolate slices",
}  # fmt: skip
_TOOL_ACTIONS = {Tool.BRUSH: "brush", Tool.ERASER: "eraser", Tool.BOX: "box", Tool.LASSO: "lasso", Tool.THRESHOLD: "threshold", Tool.GROW: "grow"}
_EDITING = ("brush", "eraser", "box", "lasso", "threshold", "grow", "ball", "interpolate", "propagate", "smaller", "larger", "save", "add_value")


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
        lasso = add("lasso", "Lasso (drag round a region to fill it; Shift: erase it)", ["L"], lambda: self._set_tool(Tool.LASSO))
        threshold = add("threshold", "Threshold brush (paints only within the intensity range; Ctrl+drag: within a box)", ["T"], lambda: self._set_tool(Tool.THRESHOLD))
        grow = add("grow", "Region growing (click: the connected region of similar intensity)", ["G"], lambda: self._set_tool(Tool.GROW))
        add("ball", "3D brush and growing (a ball, not a disc)", ["D"], self._ball_toggled).setCheckable(True)
        add("interpolate", "Interpolate between annotated slices", ["Ctrl+Shift+I"], self._interpolate)
        add("propagate", "Propagate the AI mask to the next slices", ["Ctrl+Shift+P"], self.propagate_requested.emit)
        group = QActionGroup(self)
        group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        for action in (brush, eraser, box, lasso, threshold, grow):
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
        self.low, self.high = _spin(self, -100.0, "lowest value the threshold brush paints"), _spin(self, 300.0, "highest value it paints")
        self.tolerance = _spin(self, 60.0, "region growing takes neighbours within this of the clicked value")
        self.tolerance.setMinimum(0.0)
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
        band_row = QHBoxLayout()
        band_row.addWidget(self.low)
        band_row.addWidget(QLabel("to", self))
        band_row.addWidget(self.high)
        form.addRow("Threshold", band_row)
        form.addRow("Grow tolerance", self.tolerance)
        self.label_table = LabelTable(self)
        self.class_labels = ClassLabelsPanel(self)
        self.actions_by_name.update(self.class_labels.actions_by_name)  # window-wide like the others
        self.class_labels.number_keys_toggled.connect(self._lend_number_keys)
        self._preset_keys: dict[QAction, list[QKeySequence]] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(buttons)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(_group("Labels", self.label_table, self))
        layout.addWidget(_group("Classes", self.class_labels, self))
        for spin in (self.low, self.high, self.tolerance):
            spin.valueChanged.connect(lambda _value: self._settings_to_editor())
        self.size.valueChanged.connect(self._size_changed)
        self.value_box.currentIndexChanged.connect(self._value_changed)
        layers.list.currentRowChanged.connect(lambda _row: self.refresh())
        self.refresh()

    def set_model(self, model: ViewerModel | None) -> None:
        """Follow the shown series (the viewer shows it already)."""
        self._model = follow(self._model, model, self.refresh)
        if model is not None:
            units = " HU" if str(model.volume.metadata.get("modality", "")) == "CT" else ""
            for spin in (self.low, self.high, self.tolerance):
                spin.setSuffix(units)
        self.label_table.set_model(model)
        self.class_labels.set_model(model)
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
        self.label_table.refresh()  # volumes follow the strokes
        self.actions_by_name["accept"].setEnabled(self.acceptable_layer() is not None)
        self.actions_by_name["new_label"].setEnabled(self.viewer.model is not None)
        for name in _EDITING:
            self.actions_by_name[name].setEnabled(editor is not None)
        self.actions_by_name["undo"].setEnabled(editor is not None and editor.can_undo)
        self.actions_by_name["redo"].setEnabled(editor is not None and editor.can_redo)
        if editor is None:
            self._set_tool(Tool.NAVIGATE)
            self.status.setText("No editable label: accept a prediction, or start a new label.")
            self.value_box.clear()
            return
        if [self.value_box.itemText(i) for i in range(self.value_box.count())] != [f"{value}: {name}" for value, name in editor.names.items()]:
            self.value_box.blockSignals(True)
            self.value_box.clear()
            for value, name in editor.names.items():
                self.value_box.addItem(f"{value}: {name}", value)
            self.value_box.blockSignals(False)
        self.value_box.setCurrentIndex(max(self.value_box.findData(editor.value), 0))
        self._settings_to_editor()
        annotated = editor.annotated
        extent = "every slice annotated" if annotated.complete else f"{annotated.count()} slice{'s' if annotated.count() != 1 else ''} annotated"
        self.status.setText(("Unsaved edits (Ctrl+S saves)" if editor.dirty else "Label saved") + f"; {extent}")

    def _settings_to_editor(self) -> None:
        """The brush size, 3D switch, threshold band and tolerance shown here are the editor's."""
        editor = self.editor
        if editor is not None:
            editor.set_radius(self.size.value())
            editor.in_3d = self.actions_by_name["ball"].isChecked()
            editor.band = (min(self.low.value(), self.high.value()), max(self.low.value(), self.high.value()))
            editor.tolerance = self.tolerance.value()

    def _lend_number_keys(self, to_classes: bool) -> None:
        """While the number keys classify, the viewer's window presets give up their (number key) shortcuts."""
        if to_classes and not self._preset_keys:
            presets = [action for name, action in self.viewer.actions_by_name.items() if name.startswith("preset_")]
            self._preset_keys = {action: action.shortcuts() for action in presets}
            for action in presets:
                action.setShortcuts([])
        elif not to_classes:
            for action, keys in self._preset_keys.items():
                action.setShortcuts(keys)
            self._preset_keys = {}

    def _ball_toggled(self) -> None:
        self._settings_to_editor()
        for view in self.viewer.views:
            view.update()

    def _interpolate(self) -> None:
        """Fill the slices between annotated ones (along the active view's slices, else the stored slices)."""
        editor, model = self.editor, self.viewer.model
        if editor is None or model is None:
            return
        plane = self.viewer.active_view.plane
        axis = annotated_axis(plane) if plane is not None and not plane.projection else None
        stroke = editor.interpolate(0 if axis is None else axis, model.volume.spacing)
        if stroke is None:
            self.status.setText("Nothing to interpolate: draw a label on two slices with slices between them")
            return
        model.layer_changed()
        filled = len(stroke.annotated[1].slices[0 if axis is None else axis] - stroke.annotated[0].slices[0 if axis is None else axis])
        self.status.setText(f"Interpolated {filled} slice{'s' if filled != 1 else ''} (Ctrl+Z undoes)")

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


def _spin(parent: QWidget, value: float, tip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox(parent)
    spin.setRange(-100000.0, 100000.0)
    spin.setDecimals(0)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


def _group(title: str, content: QWidget, parent: QWidget) -> QGroupBox:
    box = QGroupBox(title, parent)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.addWidget(content)
    return box

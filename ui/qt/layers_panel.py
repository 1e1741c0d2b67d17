"""`LayersPanel`: the overlay layers of the shown series: show/hide, opacity, fill or outline."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QListWidget, QListWidgetItem, QMessageBox, QPushButton, QSlider, QVBoxLayout, QWidget

from ui.models.overlays import LabelLayer, LabelStyle, OverlayLayer
from ui.models.viewer_model import ViewerModel, follow


class LayersPanel(QWidget):
    """Lists ``model.layers`` (top layer first) and edits the selected one's display settings."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model: ViewerModel | None = None
        self._shown: list[OverlayLayer] = []
        self.list = QListWidget(self)
        self.empty_hint = QLabel("No overlay layers. Labels and predictions appear here.", self)
        self.empty_hint.setWordWrap(True)
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.style_box = QComboBox(self)
        self.style_box.addItems([style.value for style in LabelStyle])
        self.remove_button = QPushButton("Remove layer", self)
        form = QFormLayout()
        form.addRow("Opacity", self.opacity)
        form.addRow("Labels drawn as", self.style_box)
        form.addRow("", self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.empty_hint)
        layout.addWidget(self.list)
        layout.addLayout(form)
        self.list.itemChanged.connect(self._visibility_changed)
        self.list.currentRowChanged.connect(self._show_settings)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self.style_box.currentTextChanged.connect(self._style_changed)
        self.remove_button.clicked.connect(self._remove)
        self._refresh()

    def set_model(self, model: ViewerModel | None) -> None:
        self.model = follow(self.model, model, self._model_changed)
        self._refresh()

    def selected(self) -> OverlayLayer | None:
        row = self.list.currentRow()
        return self._shown[row] if 0 <= row < len(self._shown) else None

    def _model_changed(self) -> None:
        """Rebuild the list if layers came or went; else show settings changed elsewhere (visibility, opacity)."""
        if self.model is not None and list(reversed(self.model.layers)) != self._shown:
            self._refresh()
            return
        self.list.blockSignals(True)
        for row, layer in enumerate(self._shown):
            self.list.item(row).setCheckState(_check_state(layer))
            self.list.item(row).setText(_text(layer))  # e.g. the label renamed by a save: "label (reader, version N)"
        self.list.blockSignals(False)
        self._show_settings()

    def _refresh(self) -> None:
        self._shown = list(reversed(self.model.layers)) if self.model is not None else []
        self.list.blockSignals(True)
        self.list.clear()
        for layer in self._shown:
            item = QListWidgetItem(_text(layer))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(_check_state(layer))
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.empty_hint.setVisible(not self._shown)
        self.list.setCurrentRow(0 if self._shown else -1)
        self._show_settings()

    def _show_settings(self, *_: object) -> None:
        layer = self.selected()
        self.opacity.setEnabled(layer is not None)
        self.remove_button.setEnabled(layer is not None)
        self.style_box.setEnabled(isinstance(layer, LabelLayer))
        if layer is not None:
            self.opacity.blockSignals(True)
            self.opacity.setValue(round(layer.opacity * 100))
            self.opacity.blockSignals(False)
        if isinstance(layer, LabelLayer):
            self.style_box.blockSignals(True)
            self.style_box.setCurrentText(layer.style.value)
            self.style_box.blockSignals(False)

    def _visibility_changed(self, item: QListWidgetItem) -> None:
        layer = self._shown[self.list.row(item)]
        layer.visible = item.checkState() == Qt.CheckState.Checked
        self._changed()

    def _opacity_changed(self, value: int) -> None:
        layer = self.selected()
        if layer is not None:
            layer.opacity = value / 100
            self._changed()

    def _style_changed(self, text: str) -> None:
        layer = self.selected()
        if isinstance(layer, LabelLayer):
            layer.style = LabelStyle(text)
            self._changed()

    def _remove(self) -> None:
        layer = self.selected()
        if layer is None or self.model is None:
            return
        editor = self.model.editor
        if editor is not None and editor.layer is layer and editor.dirty and not self.confirm_discard_label():
            return
        self.model.remove_layer(layer)

    def confirm_discard_label(self) -> bool:
        """Ask before removing the label being edited while it has unsaved edits."""
        answer = QMessageBox.question(self, "Remove the label?", "The label has unsaved edits. Remove it and lose them?")
        return answer == QMessageBox.StandardButton.Yes

    def _changed(self) -> None:
        if self.model is not None:
            self.model.layer_changed()


def _check_state(layer: OverlayLayer) -> Qt.CheckState:
    return Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked


def _text(layer: OverlayLayer) -> str:
    kind = "labels" if isinstance(layer, LabelLayer) else f"heatmap {layer.vmin:g}–{layer.vmax:g}"
    return f"{layer.name}  ({kind})"

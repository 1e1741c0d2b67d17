"""`ClassLabelsPanel`: class labels for classification tasks: keys 1-9 give the shown series (or slice) a class (0 takes it off),
"Next unlabelled" (N) moves on to the next one without a class, and the progress n/N stays in view.

The number keys choose window presets in the viewer until "Number keys classify" is ticked
(:attr:`number_keys_toggled`: the label tools then lend the keys to the classes).

A slice is the crosshair's slice along the stored array's first axis (z). When the next unlabelled item is in
another series the panel asks for it (:attr:`series_requested`); the window opens that series.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QToolButton, QVBoxLayout, QWidget

from medtl.errors import MedtlError
from ui.models.class_labels import MAX_CLASS, ClassLabels
from ui.models.label_session import series_uids
from ui.models.viewer_model import ViewerModel, follow


def series_key(model: ViewerModel) -> str:
    """The series UID of ``model`` (its description for images without one)."""
    return series_uids(model)[1] or model.label.series_description or "series"


class ClassLabelsPanel(QWidget):
    """Classify the series shown in the viewer, or its slices."""

    series_requested = Signal(str, object)  # series UID, slice index (or None): the next unlabelled item is there
    labels_changed = Signal()  # a class was assigned, cleared, added or renamed
    number_keys_toggled = Signal(bool)  # the number keys classify (True) or do what they did before

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model: ViewerModel | None = None
        self.labels = ClassLabels()
        self.actions_by_name: dict[str, QAction] = {}
        for number in range(1, MAX_CLASS + 1):
            self._add_action(f"class_{number}", f"Class {number} for this series / slice", str(number), lambda _=False, n=number: self.assign(n))
        self._add_action("class_0", "No class for this series / slice", "0", self.clear)
        self._add_action("next_unlabelled", "Next unlabelled series / slice", "N", self.next_unlabelled)
        self.number_keys = QCheckBox("Number keys classify", self)
        self.number_keys.setToolTip("keys 1-9 give the shown series or slice a class (instead of choosing a window preset)")
        self.mode = QComboBox(self)
        self.mode.addItems(["Per series", "Per slice"])
        self.classes = QListWidget(self)
        self.classes.setToolTip("the number key gives the shown series or slice that class; double-click to rename")
        self.classes.setMaximumHeight(120)
        add = QToolButton(self)
        add.setText("+")
        add.setToolTip("add a class")
        self.current = QLabel(self)
        self.progress = QLabel(self)
        self.progress.setObjectName("classProgress")
        self.status_progress = QLabel()  # the same, for the window's status bar: in view whatever the panel shows
        self.status_progress.setToolTip("class labels: how many series or slices have a class")
        next_button = QPushButton("Next unlabelled", self)
        next_button.setToolTip("N")
        top = QHBoxLayout()
        top.addWidget(self.mode, 1)
        top.addWidget(add)
        bottom = QHBoxLayout()
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(next_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.number_keys)
        layout.addWidget(self.classes)
        layout.addWidget(self.current)
        layout.addLayout(bottom)
        self.number_keys.toggled.connect(self._number_keys_toggled)
        self._number_keys_toggled(False)
        self.mode.currentIndexChanged.connect(lambda index: self.labels.set_per_slice(index == 1))
        add.clicked.connect(self._add_class)
        next_button.clicked.connect(self.next_unlabelled)
        self.classes.itemChanged.connect(self._renamed)
        self.labels.changed.connect(self._labels_changed)
        self._labels_changed()

    def set_labels(self, labels: ClassLabels) -> None:
        """Show and edit ``labels`` (a project's, say)."""
        self.labels.changed.disconnect(self._labels_changed)
        self.labels = labels
        labels.changed.connect(self._labels_changed)
        self._include_shown()
        self._labels_changed()

    def set_model(self, model: ViewerModel | None) -> None:
        """Follow the shown series."""
        self._model = follow(self._model, model, self.refresh)
        self._include_shown()
        self.refresh()

    def position(self) -> tuple[str, int] | None:
        """(series UID, slice index along z) shown now."""
        if self._model is None:
            return None
        return series_key(self._model), int(self._model.cursor[2])

    def assign(self, number: int) -> None:
        """Class ``number`` for the shown series (or slice)."""
        position = self.position()
        if position is None:
            return
        try:
            self.labels.assign(number, *position)
        except MedtlError as error:
            self.current.setText(str(error))

    def clear(self) -> None:
        """Take the class off the shown series (or slice)."""
        position = self.position()
        if position is not None:
            self.labels.clear(*position)

    def next_unlabelled(self) -> None:
        """Show the next series or slice without a class."""
        position = self.position()
        if position is None:
            return
        found = self.labels.next_unlabelled(*position)
        if found is None:
            self.current.setText("Everything has a class")
            return
        uid, index = found
        if uid == position[0] and index is not None and self._model is not None:
            self._model.set_cursor(np.array([self._model.cursor[0], self._model.cursor[1], index]))
        elif uid != position[0]:
            self.series_requested.emit(uid, index)

    def refresh(self) -> None:
        """Say the class of what is shown and the progress."""
        self.progress.setText(self.labels.progress_text())
        self.status_progress.setText(self.labels.progress_text())
        position = self.position()
        if position is None:
            self.current.setText("No series shown")
            return
        number = self.labels.class_of(*position)
        where = f"slice {position[1] + 1}" if self.labels.per_slice else "this series"
        self.current.setText(f"{where}: " + (f"{number} {self.labels.classes[number]}" if number is not None else "no class" + (" (press 1-9)" if self.number_keys.isChecked() else "")))

    def _number_keys_toggled(self, on: bool) -> None:
        for number in range(MAX_CLASS + 1):
            self.actions_by_name[f"class_{number}"].setEnabled(on)
        self.number_keys_toggled.emit(on)
        self.refresh()

    def _labels_changed(self) -> None:
        self.mode.blockSignals(True)
        self.mode.setCurrentIndex(1 if self.labels.per_slice else 0)
        self.mode.blockSignals(False)
        self.classes.blockSignals(True)
        self.classes.clear()
        for number, name in sorted(self.labels.classes.items()):
            item = QListWidgetItem(name)
            item.setData(Qt.ItemDataRole.UserRole, number)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            item.setToolTip(f"key {number}")
            self.classes.addItem(item)
        self.classes.blockSignals(False)
        self.refresh()
        self.labels_changed.emit()

    def _include_shown(self) -> None:
        if self._model is not None:
            self.labels.include(series_key(self._model), int(self._model.volume.shape[0]))

    def _add_class(self) -> None:
        try:
            self.labels.add_class()
        except MedtlError as error:
            self.current.setText(str(error))

    def _renamed(self, item: QListWidgetItem) -> None:
        try:
            self.labels.rename_class(int(item.data(Qt.ItemDataRole.UserRole)), item.text())
        except MedtlError as error:
            self.current.setText(str(error))
            self._labels_changed()

    def _add_action(self, name: str, text: str, key: str, slot: object) -> None:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(key))
        action.triggered.connect(slot)  # type: ignore[arg-type]
        self.actions_by_name[name] = action

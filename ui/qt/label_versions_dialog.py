"""`LabelVersionsDialog`: the earlier saves of the shown series' label, newest first, to restore one.

Restoring keeps the label it replaces as the newest version (the label store does), so a restore is undone by
restoring that version; the dialog says so.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from medtl.labels.store import LabelVersion
from ui.models.label_session import version_text


class LabelVersionsDialog(QDialog):
    """Lists ``versions``; Restore (or a double-click) emits ``restore_requested`` with the version's number and closes."""

    restore_requested = Signal(int)

    def __init__(self, versions: list[LabelVersion], series_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Restore an earlier version of the label")
        self.versions = versions
        intro = QLabel(
            f"Earlier saves of the label of {series_name}, newest first. Restoring one makes it the label again; "
            "the label it replaces is kept as the newest version, so restoring that one undoes it.",
            self,
        )
        intro.setWordWrap(True)
        self.list = QListWidget(self)
        for version in versions:
            item = QListWidgetItem(version_text(version))
            item.setToolTip(str(version.mask))
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        self.list.itemDoubleClicked.connect(lambda _item: self.restore())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.restore_button = QPushButton("Restore", self)
        buttons.addButton(self.restore_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.restore_button.clicked.connect(self.restore)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        self.resize(460, 320)

    def restore(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.versions):
            self.restore_requested.emit(self.versions[row].number)
            self.accept()

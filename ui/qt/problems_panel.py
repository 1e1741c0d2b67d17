"""`ProblemsPanel`: files and series that could not be used, and warnings, listed instead of shown in dialogs."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

from medtl.dicom.records import ScanResult


class ProblemsPanel(QTreeWidget):
    """A two-column list (where, what); ``count_changed`` lets the dock title show the count."""

    count_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Where", "Problem"])
        self.setRootIsDecorated(False)
        self.setAlternatingRowColors(True)
        self.setColumnWidth(0, 380)
        self._root: Path | None = None

    def show_scan(self, root: Path, result: ScanResult) -> None:
        """Replace the list with the scan's unusable files and its series warnings."""
        self.clear()
        self._root = root
        for problem in result.errors:
            self._add(self._relative(problem.path), problem.reason)
        for series in result.all_series():
            for warning in series.warnings:
                self._add(f"series {series.description or series.series_uid}", warning)
        self.count_changed.emit(self.topLevelItemCount())

    def add(self, where: str, problem: str) -> None:
        self._add(where, problem)
        self.count_changed.emit(self.topLevelItemCount())

    def _add(self, where: str, problem: str) -> None:
        item = QTreeWidgetItem([where, problem])
        item.setToolTip(0, where)
        item.setToolTip(1, problem)
        self.addTopLevelItem(item)

    def _relative(self, path: Path) -> str:
        if self._root is not None and path.is_relative_to(self._root):
            return str(path.relative_to(self._root)) or path.name
        return str(path)

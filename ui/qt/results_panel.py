"""`ResultsPanel`: review a finished run: its history (the runs it was trained again from), its per-case results as
a sortable table (and, for classification, the confusion matrix and the ROC curves), and whether its validation
is within-patient. Double-clicking a case asks the window to open it and predict it with the run.

The panel binds :mod:`ui.models.run_review` and :mod:`ui.models.case_table`; the run folder's files are small
(JSON), so they are read on the GUI thread.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.models.case_table import CaseTable, auc_text, confusion_rows
from ui.models.run_review import WITHIN_PATIENT_NOTE, HistoryEntry, RunReview, chain_text, review_run, run_history
from ui.qt.curve_plot import Curve, CurvePlot

WRONG_COLOUR = QColor("#e15759")
WARNING_COLOUR = "#edc948"
_ROC_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2")
_CHANCE_COLOUR = QColor(125, 135, 150, 160)
_HISTORY_ROWS = 4
_TABLE_ROWS = 6  # the least the case table shows; the panel scrolls below it
_RUN_ROLE = Qt.ItemDataRole.UserRole + 1
Index = QModelIndex | QPersistentModelIndex


class CaseTableModel(QAbstractTableModel):
    """A :class:`CaseTable` for a ``QTableView``: sorting goes through the table (undefined values last)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table: CaseTable | None = None

    def set_table(self, table: CaseTable | None) -> None:
        self.beginResetModel()
        self.table = table
        self.endResetModel()

    def image(self, row: int) -> Path:
        assert self.table is not None
        return self.table.rows[row].image

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if self.table is None or parent.isValid() else len(self.table.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if self.table is None or parent.isValid() else len(self.table.headers)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        table = self.table
        if table is None or not index.isValid():
            return None
        row = table.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return table.text(index.row(), index.column())
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(row.image)
        if role == Qt.ItemDataRole.ForegroundRole and row.wrong:
            return QBrush(WRONG_COLOUR)
        if role == Qt.ItemDataRole.TextAlignmentRole and table.decimals[index.column()] is not None:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> object:  # noqa: N802 - Qt API
        if self.table is None or role != Qt.ItemDataRole.DisplayRole:
            return None
        return self.table.headers[section] if orientation == Qt.Orientation.Horizontal else section + 1

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if self.table is None:
            return
        self.layoutAboutToBeChanged.emit()
        self.table.sort(column, descending=order == Qt.SortOrder.DescendingOrder)
        self.layoutChanged.emit()


class ResultsPanel(QWidget):
    """The run shown (:meth:`show_run`), its history, and the per-case results of the run chosen in the history."""

    case_activated = Signal(object, object)  # the case's image Path, the run Path to predict it with

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.review: RunReview | None = None
        self.history: list[HistoryEntry] = []
        self.title = QLabel("No run yet: the results of a run appear here when it finishes.", self)
        self.title.setWordWrap(True)
        self.open_button = QPushButton("Open run…", self)
        self.open_button.setToolTip("review another finished run folder")
        self.open_button.clicked.connect(self._choose_run)
        self.history_label = QLabel("History", self)
        self.history_label.setWordWrap(True)
        self.history_list = QListWidget(self)
        self.history_list.setToolTip("this run and the runs it was trained again from, newest first: click one to see its results")
        self.history_list.setMaximumHeight(self.history_list.fontMetrics().height() * (_HISTORY_ROWS + 1) + 8)
        self.history_list.setWordWrap(True)
        self.history_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.history_list.currentItemChanged.connect(self._history_chosen)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.model = CaseTableModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.doubleClicked.connect(self._case_double_clicked)
        self.table.setMinimumHeight(self.table.verticalHeader().defaultSectionSize() * (_TABLE_ROWS + 1))
        self.hint = QLabel("Double-click a case to open it with this run's prediction.", self)
        self.hint.setWordWrap(True)
        self.uncertainty_box = QCheckBox("Show uncertainty (TTA)", self)
        self.uncertainty_box.setToolTip("predict with test-time flips (or MC dropout) and show how unsure the model is, as a heat map layer")
        self.confusion = QTableWidget(self)
        self.confusion.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.auc = QLabel(self)
        self.roc = CurvePlot(self, x_label="false positive rate", empty_text="No ROC curve: the validation cases are all of one class", legend_at_bottom=True)
        self.roc.setToolTip("ROC curves: true positive rate (up) against false positive rate (across), one class against the others")
        self.classification = QWidget(self)
        extra = QVBoxLayout(self.classification)
        extra.setContentsMargins(0, 0, 0, 0)
        confusion_title = QLabel("Confusion matrix (rows: true class, columns: predicted)", self.classification)
        confusion_title.setWordWrap(True)
        extra.addWidget(confusion_title)
        extra.addWidget(self.confusion)
        extra.addWidget(self.auc)
        extra.addWidget(self.roc)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(header)
        layout.addWidget(self.history_label)
        layout.addWidget(self.history_list)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.hint)
        layout.addWidget(self.uncertainty_box)
        layout.addWidget(self.classification)
        self._show_review(None)

    @property
    def run_dir(self) -> Path | None:
        """The run whose results are shown."""
        return self.review.run_dir if self.review is not None else None

    def show_run(self, run_dir: Path | str) -> None:
        """Show ``run_dir`` 's history and its results."""
        self.history = run_history(Path(run_dir))
        self.history_list.blockSignals(True)
        self.history_list.clear()
        for entry in self.history:
            item = QListWidgetItem(entry.text() if entry.exists else f"{entry.run_dir}: {entry.best}")
            item.setToolTip(str(entry.run_dir))
            item.setData(_RUN_ROLE, str(entry.run_dir))
            if not entry.exists:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self.history_list.addItem(item)
        self.history_list.setCurrentRow(0)
        self.history_list.blockSignals(False)
        self.history_label.setText(f"History: {chain_text(self.history)}" if len(self.history) > 1 else f"History: {self.history[0].run_dir.name} (not trained again from another run)")
        self._show_review(review_run(Path(run_dir)))

    def _history_chosen(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if item is not None:
            self._show_review(review_run(Path(item.data(_RUN_ROLE))))

    def _show_review(self, review: RunReview | None) -> None:
        self.review = review
        results = review.results if review is not None else None
        self.model.set_table(CaseTable(results) if results is not None else None)
        for column, decimals in enumerate(self.model.table.decimals if self.model.table is not None else ()):  # names share the width left by the figures
            self.table.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents if decimals is not None else QHeaderView.ResizeMode.Stretch)
        self.table.setColumnHidden(1, results is not None and results.task == "segmentation" and len(results.names) == 1)  # one label: no need to name it
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        for row in range(self.history_list.count()):
            item = self.history_list.item(row)
            font = QFont(item.font())
            font.setBold(review is not None and item.data(_RUN_ROLE) == str(review.run_dir))
            item.setFont(font)
        if review is None:
            self.note.setText("")
        else:
            self.title.setText(f"<b>{html.escape(review.run_dir.name)}</b>: {review.task or 'run'}, best {html.escape(review.best)}")
            self.title.setToolTip(str(review.run_dir))
            notes = [WITHIN_PATIENT_NOTE] if review.within_patient else []
            if review.problem is not None:
                notes.append(f"No per-case results: {review.problem}")
            self.note.setText("<br>".join(f"<span style='color:{WARNING_COLOUR}'>{html.escape(note)}</span>" for note in notes))
        self.note.setVisible(bool(self.note.text()))
        self.hint.setVisible(results is not None)
        self.classification.setVisible(results is not None and results.task == "classification")
        if results is not None and results.task == "classification":
            self._show_classification_summaries()

    def _show_classification_summaries(self) -> None:
        results = self.review.results  # type: ignore[union-attr]
        assert results is not None
        rows = confusion_rows(results)
        self.confusion.clear()
        self.confusion.setRowCount(len(rows))
        self.confusion.setColumnCount(len(results.names))
        self.confusion.setHorizontalHeaderLabels(list(results.names))
        self.confusion.setVerticalHeaderLabels([name for name, _ in rows])
        for r, (true_class, counts) in enumerate(rows):
            for c, count in enumerate(counts):
                item = QTableWidgetItem(str(count))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if r != c and count:
                    item.setForeground(QBrush(WRONG_COLOUR))
                item.setToolTip(f"{count} case(s) of {true_class} predicted {results.names[c]}")
                self.confusion.setItem(r, c, item)
        height = self.confusion.horizontalHeader().height() + sum(self.confusion.rowHeight(r) for r in range(len(rows))) + 4
        self.confusion.setFixedHeight(height)
        self.auc.setText(auc_text(results))
        curves = [
            Curve(f"{curve.positive_class} (AUC {curve.auc:.2f})", list(zip(curve.false_positive_rate, curve.true_positive_rate)), QColor(colour), width=2.0)
            for colour, curve in zip(_ROC_COLOURS, results.roc)
        ]
        self.roc.set_curves([Curve("chance", [(0.0, 0.0), (1.0, 1.0)], _CHANCE_COLOUR, width=1.0), *curves] if curves else [])

    def _case_double_clicked(self, index: QModelIndex) -> None:
        if self.review is not None and index.isValid():
            self.case_activated.emit(self.model.image(index.row()), self.review.run_dir)

    def _choose_run(self) -> None:
        start = str(self.run_dir.parent) if self.run_dir is not None else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Review a run folder", start)
        if folder:
            self.show_run(Path(folder))

"""`RankingPanel`: what to label next: the unlabelled series ranked by a run's uncertainty (or at random) in a
worker, with progress and cancel, listed with their scores; "Next case" (Ctrl+N) opens them in that order.

The ranking is :func:`medtl.inference.rank.rank`; the window gives the run and the series
(:func:`ui.models.ranking_queue.series_inputs`) and opens what the panel asks for.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QListWidget, QProgressBar, QPushButton, QToolButton, QVBoxLayout, QWidget

from medtl.errors import InvalidRequest
from medtl.inference.rank import RANDOM, Ranking, RankRequest
from medtl.progress import CancelToken, ProgressCallback
from ui.models.ranking_queue import QueueEntry, RankingQueue, SeriesInput
from ui.qt.tasks import EngineTask, start_task

METHODS = (
    ("random order (measured best)", RANDOM),
    ("the model's uncertainty (automatic)", None),
    ("TTA: test-time flips", "tta"),
    ("MC dropout", "mc"),
)
"""Random first: in benchmarks/RESULTS.md ("What to label next") it beat the model's uncertainty in 8 of 9 rounds."""
NEXT_CASE_KEY = "Ctrl+N"


class RankingPanel(QWidget):
    """Rank, cancel, the ranked list, and the "Next case" action (:attr:`next_action`, for the window's menu)."""

    rank_requested = Signal()  # the Rank button: the window gathers the run and the series and calls :meth:`start`
    open_requested = Signal(object)  # QueueEntry to open
    ranked = Signal(object)  # RankingQueue, once the ranking is listed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue: RankingQueue | None = None
        self.task: EngineTask | None = None
        self._skipped: list[str] = []
        self.run_label = QLabel("Ranks the unlabelled series of the study browser with a finished run.", self)
        self.run_label.setWordWrap(True)
        self.method_box = QComboBox(self)
        for text, method in METHODS:
            self.method_box.addItem(text, method)
        self.method_box.setToolTip(
            "how a series is scored: a seeded random order (the default: it beat uncertainty when measured), "
            "or the model's uncertainty about it (most unsure first)"
        )
        self.rank_button = QPushButton("Rank", self)
        self.rank_button.clicked.connect(self.rank_requested.emit)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(self)
        self.list = QListWidget(self)
        self.list.itemDoubleClicked.connect(lambda item: self._open(self.list.row(item)))
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.next_action = QAction("&Next case to label", self)
        self.next_action.setShortcut(QKeySequence(NEXT_CASE_KEY))
        self.next_action.setToolTip(f"open the next series of the ranking ({NEXT_CASE_KEY})")
        self.next_action.triggered.connect(self.next_case)
        next_button = QToolButton(self)
        next_button.setDefaultAction(self.next_action)
        next_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        next_button.setProperty("panelButton", True)
        form = QFormLayout()
        form.addRow("Order by", self.method_box)
        buttons = QHBoxLayout()
        for button in (self.rank_button, self.cancel_button, next_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.run_label)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.status)
        self._set_running(False)

    @property
    def running(self) -> bool:
        return self.task is not None

    @property
    def method(self) -> str | None:
        return self.method_box.currentData()

    def start(self, run_dir: Path, inputs: list[SeriesInput], skipped: list[str]) -> None:
        """Rank ``inputs`` with the run in ``run_dir`` in a worker (``skipped``: the series left out, and why)."""
        self.cancel()
        self.queue = None
        self.list.clear()
        self.run_label.setText(f"Run: {html.escape(run_dir.name)}")
        self.run_label.setToolTip(str(run_dir))
        self._skipped = skipped
        if not inputs:
            self._say(["Nothing to rank: open a folder with unlabelled series first.", *skipped])
            return
        try:
            request = RankRequest(run_dir, tuple(series.path for series in inputs), method=self.method)
        except InvalidRequest as error:
            self._say([f"Cannot rank: {error}"])
            return

        def call(progress: ProgressCallback, cancel: CancelToken) -> Ranking:
            from medtl.inference.rank import rank  # imports torch, in the worker

            return rank(request, progress, cancel)

        task = start_task(
            call, self, done=lambda ranking: self._ranked(ranking, inputs), failed=lambda message: self._say([f"Ranking failed: {message}"]),
            progress=self._progress, cancelled=lambda: self._say(["Ranking cancelled."]),
        )  # fmt: skip
        task.finished.connect(lambda: self._set_running(False) if self.task is task else None)
        self.task = task
        self._set_running(True)
        self._say([f"ranking {len(inputs)} series…"])

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def next_case(self) -> QueueEntry | None:
        """Ask to open the series after the one opened last, in the ranking's order."""
        entry = self.queue.next() if self.queue is not None else None
        if entry is None:
            self._say(["No ranking yet: Rank first." if self.queue is None else "That was the last series of the ranking."])
            return None
        self._show_opened(entry)
        return entry

    def _open(self, row: int) -> None:
        if self.queue is not None:
            self._show_opened(self.queue.opened(row))

    def _show_opened(self, entry: QueueEntry) -> None:
        assert self.queue is not None
        self.list.setCurrentRow(self.queue.position)
        self.open_requested.emit(entry)

    def _ranked(self, ranking: Ranking, inputs: list[SeriesInput]) -> None:
        self.queue = RankingQueue(ranking, inputs)
        for entry in self.queue.entries:
            self.list.addItem(entry.text())
            self.list.item(self.list.count() - 1).setToolTip(str(entry.series.path))
        lines = [f"Score: {self.queue.score_meaning} ({self.queue.method}). Next case ({NEXT_CASE_KEY}) opens them in this order."]
        self._say(lines + self.queue.failed + self._skipped)
        self.ranked.emit(self.queue)

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat(f"{message} %v/%m" if total else message)

    def _say(self, lines: list[str]) -> None:
        self.status.setText("<br>".join(html.escape(line) for line in lines))

    def _set_running(self, running: bool) -> None:
        if not running:
            self.task = None
        self.progress.setVisible(running)
        self.rank_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.method_box.setEnabled(not running)

"""`RunMonitor`: the live view of a training-like run in a worker (progress bar with the time left, status, curves, log).

Shared by the fine-tune and pretrain panels. The engine's events arrive through :meth:`relay` on the worker
thread; step events are thinned to ten a second and cross to the GUI thread as a queued signal, where
they are folded into a :class:`TrainingProgress`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QProgressBar, QScrollArea, QVBoxLayout, QWidget

from medtl.progress import CancelToken, ProgressCallback
from medtl.training.events import StepProgress, TrainEvent
from medtl.workflow.request import InvalidRequest
from ui.models.training_progress import TrainingProgress
from ui.qt.curve_plot import Curve, CurvePlot
from ui.qt.tasks import EngineTask, start_task

R = TypeVar("R")

STEP_INTERVAL_S = 0.1
"""Step events are relayed to the GUI at most this often."""


def loss_curves(progress: TrainingProgress) -> list[Curve]:
    """The training loss per step (thin) and per epoch (bold), on the left axis."""
    return [
        Curve("loss (steps)", progress.step_loss, QColor(78, 121, 167, 140), width=1.0),
        Curve("loss (epochs)", progress.epoch_loss, QColor("#4e79a7"), width=2.0),
    ]


class RunMonitor(QWidget):
    """Runs one engine call at a time in an :class:`EngineTask` and shows it: progress bar, status line, curve
    plot and log. ``curves`` draws the plot from the progress."""

    event_received = Signal(object)  # TrainEvent, relayed from the worker thread
    running_changed = Signal(bool)
    problem = Signal(str)  # a start refused or a run failed: the reason, for the window to show

    def __init__(self, curves: Callable[[TrainingProgress], list[Curve]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._curves = curves
        self.task: EngineTask | None = None
        self.progress = TrainingProgress()
        self._started = 0.0
        self._last_step_relay = 0.0
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.status = QLabel("Not started", self)
        self.status.setWordWrap(True)
        self.plot = CurvePlot(self)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.bar, self.status, self.plot, self.log):
            layout.addWidget(widget)
        self.event_received.connect(self._on_event)

    @property
    def running(self) -> bool:
        return self.task is not None

    def request_to_start(self, build: Callable[[], R]) -> R | None:
        """The request ``build`` makes from a panel's form, or ``None`` when a run is going or the form cannot work
        (:class:`~medtl.workflow.request.InvalidRequest`: its reason goes to the log)."""
        if self.running:
            return None
        try:
            return build()
        except InvalidRequest as error:
            self.report_problem(f"cannot start: {error}")
            return None

    def report_problem(self, message: str) -> None:
        """Show ``message`` (a refused start, a failure) in the status line and the log, and tell the window."""
        self.add_log(message)
        self.status.setText(message)
        self._reveal_log()
        self.problem.emit(message)

    def _reveal_log(self) -> None:
        """Scroll the panel holding this monitor (when it is in a scroll area) so that the log's last line shows."""
        parent = self.parentWidget()
        while parent is not None and not isinstance(parent, QScrollArea):
            parent = parent.parentWidget()
        if parent is not None:
            parent.ensureWidgetVisible(self.log)

    def begin(self) -> None:
        """A new run: fresh progress, empty log, the clock started."""
        self.progress = TrainingProgress()
        self._started = time.monotonic()
        self.log.clear()
        self.status.setText(self.progress.status())

    def run(self, call: Callable[[ProgressCallback, CancelToken], Any], done: Callable[[Any], None], cancelled: Callable[[], None]) -> None:
        """Start ``call`` (which passes :meth:`relay` to the engine as ``on_event``) in a worker; ``done`` gets its
        result, ``cancelled`` runs after a cancel; a failure is reported (:meth:`report_problem`)."""
        self.bar.setRange(0, 0)  # busy until the engine estimates the time left
        self.task = start_task(
            call, self, done=done, failed=lambda message: self.report_problem(f"failed: {message}"), cancelled=cancelled, finished=self._ended
        )
        self.running_changed.emit(True)
        self.redraw()

    def cancel(self) -> None:
        """Ask the run to stop after its current step (it checkpoints)."""
        if self.task is not None:
            self.task.cancel()
            self.status.setText("cancelling: stopping after the current step…")

    def relay(self, event: TrainEvent) -> None:
        """``on_event`` for the engine (worker thread): every event, except step events beyond ten a second."""
        if isinstance(event, StepProgress):
            now = time.monotonic()
            if now - self._last_step_relay < STEP_INTERVAL_S:
                return
            self._last_step_relay = now
        self.event_received.emit(event)

    def finished(self, status: str) -> None:
        """The run ended as ``status`` says (done, stopped at its time limit...)."""
        self.bar.setRange(0, 1000)
        self.bar.setValue(1000)
        self.status.setText(status)

    def _ended(self) -> None:
        self.task = None
        self.bar.setRange(0, 1000)
        self.running_changed.emit(False)

    def add_log(self, *lines: str) -> None:
        for line in lines:
            self.log.appendPlainText(line)

    def redraw(self) -> None:
        self.plot.set_curves(self._curves(self.progress))

    def _on_event(self, event: TrainEvent) -> None:
        line = self.progress.add(event)
        if line:
            self.add_log(line)
        fraction = self.progress.fraction(time.monotonic() - self._started)
        if fraction is not None:
            self.bar.setRange(0, 1000)
            self.bar.setValue(round(fraction * 1000))
        self.status.setText(self.progress.status())
        if not isinstance(event, StepProgress) or len(self.progress.step_loss) % 10 == 0:
            self.redraw()


class RunPanel(QWidget):
    """A panel that runs one engine job at a time and shows it in its :class:`RunMonitor` (``self.monitor``)."""

    monitor: RunMonitor

    @property
    def running(self) -> bool:
        return self.monitor.running

    def cancel(self) -> None:
        self.monitor.cancel()

"""`EngineTask`: one engine call run off the GUI thread, reporting through Qt signals.

Engine functions take ``progress`` and ``cancel`` (see :mod:`medtl.progress`). A task runs one in
a superqt worker on the global thread pool; its progress callback, called on the worker thread,
is relayed as a queued signal (throttled), and :meth:`EngineTask.cancel` sets the token the engine
polls. Exactly one of ``done``, ``failed`` or ``cancelled`` is emitted, on the GUI thread, then
``finished``; the task deletes itself afterwards.

:func:`start_task` is the one way a widget runs an engine call: it makes the task, connects the
slots it is given and starts it. :class:`TaskGroup` keeps one running task per kind (a new scan
cancels the running scan) and the references to them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal
from superqt.utils import create_worker

from medtl.errors import MedtlError
from medtl.progress import Cancelled, CancelToken, ProgressCallback

log = logging.getLogger(__name__)

EngineCall = Callable[[ProgressCallback, CancelToken], Any]
_PROGRESS_INTERVAL_S = 0.05


class EngineTask(QObject):
    """Runs ``call(progress, cancel)`` in a worker thread once :meth:`start` is called."""

    progress = Signal(int, int, str)  # done, total (0: unknown), message
    done = Signal(object)  # the call's return value
    failed = Signal(str)  # a message a user can read
    cancelled = Signal()
    finished = Signal()  # after the outcome, whatever it was

    def __init__(self, call: EngineCall, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.token = CancelToken()
        self._last_report = 0.0
        connections = {"returned": self._returned, "errored": self._errored}  # handled here: superqt re-raises otherwise
        self._worker = create_worker(call, self._report, self.token, _start_thread=False, _connect=connections)
        self.finished.connect(self.deleteLater)

    def start(self) -> None:
        self._worker.start()

    def cancel(self) -> None:
        self.token.cancel()

    def _report(self, done: int, total: int, message: str = "") -> None:
        """The progress callback (worker thread): emit at most every 50 ms, and always the last step."""
        now = time.monotonic()
        if now - self._last_report >= _PROGRESS_INTERVAL_S or (total and done >= total):
            self._last_report = now
            self.progress.emit(done, total, message)

    def _returned(self, value: object) -> None:
        if self.token.cancelled:
            self.cancelled.emit()
        else:
            self.done.emit(value)
        self.finished.emit()

    def _errored(self, error: Exception) -> None:
        if isinstance(error, Cancelled) or self.token.cancelled:  # whatever a cancelled call ends with is not news
            self.cancelled.emit()
        elif isinstance(error, MedtlError):
            self.failed.emit(str(error))
        else:
            log.error("unexpected error in a background task", exc_info=error)
            self.failed.emit(f"unexpected error ({type(error).__name__}: {error}); details are in the log")
        self.finished.emit()


def start_task(call: EngineCall, parent: QObject, **slots: Callable[..., Any] | None) -> EngineTask:
    """Run ``call(progress, cancel)`` in a worker now, as an :class:`EngineTask` owned by ``parent``, its signals
    connected to the ``slots`` given by name (``done``, ``failed``, ``progress``, ``cancelled``, ``finished``). Keep the
    returned task to cancel it; it deletes itself once finished."""
    task = _connected_task(call, parent, slots)
    task.start()
    return task


def _connected_task(call: EngineCall, parent: QObject, slots: dict[str, Callable[..., Any] | None]) -> EngineTask:
    task = EngineTask(call, parent)
    for name, slot in slots.items():
        if slot is not None:
            getattr(task, name).connect(slot)
    return task


class TaskGroup:
    """The running tasks of a window, one per kind (``"scan"``, ``"load"``…): starting a task of a kind cancels the
    running one of that kind (its result is then ignored)."""

    def __init__(self, parent: QObject) -> None:
        self._parent = parent
        self.running: dict[str, EngineTask] = {}

    def start(self, kind: str, call: EngineCall, **slots: Any) -> EngineTask:
        """:func:`start_task` as the task of ``kind``; ``slots`` as there."""
        previous = self.running.get(kind)
        if previous is not None:
            previous.cancel()
        task = _connected_task(call, self._parent, slots)
        self.running[kind] = task
        task.finished.connect(lambda: self.running.pop(kind) if self.running.get(kind) is task else None)
        task.start()
        return task

    def cancel_all(self) -> None:
        for task in self.running.values():
            task.cancel()


def wait_for_tasks(timeout_ms: int = 10_000) -> bool:
    """Wait for every worker of the global pool to finish (call after cancelling them); False on timeout."""
    return QThreadPool.globalInstance().waitForDone(timeout_ms)

"""Progress reporting and cooperative cancellation for long engine calls.

Every long engine function takes ``progress: ProgressCallback | None`` and
``cancel: CancelToken | None``. The CLI turns progress into a bar; the app turns it into Qt
signals from a worker thread and calls :meth:`CancelToken.cancel` from the GUI thread.
"""

from __future__ import annotations

import threading
from typing import Protocol

from medtl.errors import MedtlError


class ProgressCallback(Protocol):
    def __call__(self, done: int, total: int, message: str = "") -> None:
        """``done`` of ``total`` units finished (``total`` 0 when unknown)."""


class Cancelled(MedtlError):
    """The user cancelled the operation."""

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message)


class CancelToken:
    """A thread-safe flag that long operations poll between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def report(progress: ProgressCallback | None, done: int, total: int, message: str = "") -> None:
    """Call ``progress`` if one was given."""
    if progress is not None:
        progress(done, total, message)

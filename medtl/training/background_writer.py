"""Write checkpoints in a background thread while the next epoch trains.

A checkpoint is a snapshot: its tensors are copied to CPU memory before the write starts, so the
training that goes on cannot change what is being written. At most one write is in flight; the
next one waits for it. A failed write (a full disk, a folder that went away) is raised on the
next ``submit`` or ``wait``, so it is never lost. The file itself is written atomically by the
caller's writer, so a crash during a write leaves the previous checkpoint in place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch


def snapshot(value: Any) -> Any:
    """A deep copy of nested dicts, lists and tuples in which every tensor is a detached CPU copy."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: snapshot(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(item) for item in value)
    return value


class BackgroundWriter:
    """Runs one write at a time off the calling thread; ``wait`` before the files are read or the run ends."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def submit(self, write: Callable[[Any], None], state: Any) -> None:
        """Wait for the previous write, then start ``write(state)`` in the background."""
        self.wait()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medtl-checkpoint")
        self._pending = self._executor.submit(write, state)

    def wait(self) -> None:
        """Block until the write in flight (if any) is done; raises what it raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the last write and stop the thread."""
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None


@contextlib.contextmanager
def background_writes() -> Iterator[BackgroundWriter]:
    """A :class:`BackgroundWriter` closed when the block ends, so its last write is on disk by then. If the
    block raises, that error is what propagates: a write that failed too does not hide it."""
    writer = BackgroundWriter()
    try:
        yield writer
    except BaseException:
        with contextlib.suppress(Exception):
            writer.close()
        raise
    writer.close()

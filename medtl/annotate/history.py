"""`History`: undo and redo of steps that each know their size, bounded in steps and in bytes."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar


class Step(Protocol):
    @property
    def nbytes(self) -> int: ...


S = TypeVar("S", bound=Step)

MAX_STEPS = 1000
MAX_BYTES = 512 * 2**20


class History(Generic[S]):
    """Undo and redo stacks. The oldest steps are forgotten once there are more than ``max_steps`` or they take more
    than ``max_bytes`` (the newest step is always kept): 100 steps fit whenever a step averages under
    ``max_bytes / 100`` (5 MiB by default; a diff of a whole 512 x 512 slice takes 0.5 MiB)."""

    def __init__(self, max_steps: int = MAX_STEPS, max_bytes: int = MAX_BYTES) -> None:
        self.max_steps, self.max_bytes = max_steps, max_bytes
        self._undo: list[S] = []
        self._redo: list[S] = []
        self._bytes = 0  # of the undo steps

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def newest(self) -> S | None:
        """The step :meth:`undo` would take back."""
        return self._undo[-1] if self._undo else None

    @property
    def nbytes(self) -> int:
        return self._bytes + sum(step.nbytes for step in self._redo)

    def __len__(self) -> int:
        return len(self._undo)

    def push(self, step: S) -> None:
        """``step`` (already done) becomes the newest; what was undone can no longer be redone."""
        self._undo.append(step)
        self._bytes += step.nbytes
        self._redo.clear()
        while len(self._undo) > 1 and (len(self._undo) > self.max_steps or self._bytes > self.max_bytes):
            self._bytes -= self._undo.pop(0).nbytes

    def pop(self) -> S | None:
        """Take the newest step off without keeping it for redo (it is being replaced)."""
        if not self._undo:
            return None
        step = self._undo.pop()
        self._bytes -= step.nbytes
        return step

    def undo(self) -> S | None:
        """The step to take back (the caller reverts it); it can be redone."""
        step = self.pop()
        if step is not None:
            self._redo.append(step)
        return step

    def redo(self) -> S | None:
        """The step to do again (the caller re-applies it)."""
        if not self._redo:
            return None
        step = self._redo.pop()
        self._undo.append(step)
        self._bytes += step.nbytes
        return step

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._bytes = 0

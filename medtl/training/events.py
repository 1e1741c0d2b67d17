"""Typed events the Trainer emits to its ``on_event`` callback.

The CLI turns them into a progress bar, the app into Qt signals. Events are plain frozen
dataclasses holding Python numbers and strings only, so they cross threads safely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medtl.training.run_summary import RunSummary

COMPLETED, TIME_LIMIT, EARLY_STOPPING, CANCELLED = "completed", "time_limit", "early_stopping", "cancelled"
"""Why a run stopped (a summary's ``stopped_because``)."""


@dataclass(frozen=True)
class StepProgress:
    """One optimiser step finished. ``epoch`` and ``step`` count from 1."""

    epoch: int
    step: int
    steps_per_epoch: int
    loss: float
    images_per_second: float
    eta_seconds: float | None


@dataclass(frozen=True)
class EpochEnd:
    """An epoch finished; ``metrics`` is empty when the epoch was not validated."""

    epoch: int
    train_loss: float
    metrics: dict[str, Any] = field(default_factory=dict)
    is_best: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class LogLine:
    """A line worth showing to the user (unfrozen layers, out-of-memory retries, ...)."""

    message: str


@dataclass(frozen=True)
class Finished:
    """Training ended; ``summary`` is what ``summary.json`` holds."""

    summary: RunSummary


TrainEvent = StepProgress | EpochEnd | LogLine | Finished
EventCallback = Callable[[TrainEvent], None]

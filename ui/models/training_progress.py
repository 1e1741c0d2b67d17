"""`TrainingProgress`: what a training panel has heard back from the engine, as curves and a status line.

Pure Python: the panel feeds it the engine's events (:mod:`medtl.training.events`); a finished run's
folder gives the same curves (:func:`progress_of_run`, through :meth:`RunFolder.read_curves`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from medtl.training.events import CANCELLED, EARLY_STOPPING, TIME_LIMIT, EpochEnd, Finished, LogLine, StepProgress, TrainEvent

if TYPE_CHECKING:
    from medtl.training.run_summary import RunSummary


@dataclass
class TrainingProgress:
    """Curves and status of one run, built from its events."""

    step_loss: list[tuple[float, float]] = field(default_factory=list)  # (epoch as a fraction, loss)
    epoch_loss: list[tuple[float, float]] = field(default_factory=list)  # (epoch, mean training loss)
    metrics: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # name -> (epoch, value)
    best: tuple[str, float, int] | None = None  # metric name, value, epoch
    last_step: StepProgress | None = None
    summary: RunSummary | None = None
    epochs: int | None = None  # the epochs the run plans, once known (its configuration)

    def add(self, event: TrainEvent) -> str | None:
        """Take in ``event``; returns a line for the log, if it deserves one."""
        if isinstance(event, StepProgress):
            self.last_step = event
            if math.isfinite(event.loss):
                self.step_loss.append((event.epoch - 1 + event.step / max(event.steps_per_epoch, 1), event.loss))
            return None
        if isinstance(event, EpochEnd):
            return self._epoch(event)
        if isinstance(event, LogLine):
            return event.message
        if isinstance(event, Finished):
            self.summary = event.summary
            return f"finished: {event.summary.stopped_because or 'done'}"
        return None

    def fraction(self, elapsed_seconds: float) -> float | None:
        """How much of the run is done, from the engine's time estimate (None before it has one)."""
        step = self.last_step
        if step is None or step.eta_seconds is None:
            return None
        return elapsed_seconds / max(elapsed_seconds + step.eta_seconds, 1e-9)

    def status(self) -> str:
        step = self.last_step
        if step is None:
            return "preparing data and model…"
        epoch = f"{step.epoch}/{self.epochs}" if self.epochs else str(step.epoch)
        text = f"epoch {epoch}, step {step.step}/{step.steps_per_epoch}, loss {step.loss:.4f}, {step.images_per_second:.1f} images/s"
        if step.eta_seconds is not None:
            text += f", {_duration(step.eta_seconds)} left"
        if self.best is not None:
            name, value, epoch = self.best
            text += f"; best {name} {value:.4f} (epoch {epoch})"
        return text

    def _epoch(self, event: EpochEnd) -> str:
        self.epoch_loss.append((float(event.epoch), event.train_loss))
        shown = []
        for name, value in event.metrics.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.metrics.setdefault(name, []).append((float(event.epoch), float(value)))
                shown.append(f"{name} {value:.4f}")
        if event.is_best and shown:
            name, value = next((n, float(v)) for n, v in event.metrics.items() if isinstance(v, (int, float)))
            self.best = (name, value, event.epoch)
        best = " (best so far)" if event.is_best else ""
        return (
            f"epoch {event.epoch}: loss {event.train_loss:.4f}" + "".join(f", {text}" for text in shown) + f"{best}, {event.seconds:.1f} s"
        )


def ended_status(summary: RunSummary) -> str:
    """The status line of a run that ended with ``summary``: why it stopped, its best metric, what can follow."""
    epochs = f"{summary.epochs} epoch{'s' if summary.epochs != 1 else ''}"
    best = f"; best {summary.best_metric_name or 'metric'} {summary.best_text()}" if summary.best_metric is not None else ""
    if summary.stopped_because == CANCELLED:
        return f"cancelled after {epochs}{best}: Resume goes on from its checkpoint"
    if summary.stopped_because == TIME_LIMIT:
        return f"done: time limit reached after {epochs}{best} (Resume goes on)"
    reason = " (early stopping)" if summary.stopped_because == EARLY_STOPPING else ""
    return f"done: {epochs} in {_duration(summary.seconds)}{reason}{best}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def progress_of_run(run_dir: Path) -> TrainingProgress:
    """The curves and summary a finished (or stopped) run left in its folder."""
    from medtl.training.run_folder import RunFolder

    folder = RunFolder(run_dir)
    curves = folder.read_curves()
    progress = TrainingProgress(epoch_loss=curves.train_loss, metrics=curves.metrics)
    if folder.summary_path.is_file():
        progress.summary = folder.read_summary()
    return progress

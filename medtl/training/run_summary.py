"""``RunSummary``: how one run ended, typed. The run folder writes it as ``summary.json`` and reads it back.

Every training job (fine-tuning, self-supervised pretraining, and later ones) ends in one: the
fields every run has are attributes; what only one kind of job reports (pretraining's final
losses and input counts, say) lives in ``details``. ``summary.json`` keeps its flat layout, so run
folders written before this class existed read back unchanged.

Provenance: a run that started from another run's model (``pretrained_source`` ``"run:PATH"``, as
``medtl train --init-from`` and ``--weights run:PATH`` make) names that run in ``parent_run``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtl.errors import MedtlError
from medtl.training.events import CANCELLED

PRETRAINING_TASK = "self-supervised pretraining"
RUN_PREFIX = "run:"
"""How a weight source names a previous run (see :func:`medtl.models.weights.parse_source`)."""


@dataclass(frozen=True)
class RunSummary:
    """How a run ended. ``best_*`` are ``None`` for a run that never validated (or has no metric to select on)."""

    task: str
    epochs: int
    seconds: float
    stopped_because: str | None
    device: str
    best_metric_name: str | None = None
    best_metric: float | None = None
    best_epoch: int | None = None
    pretrained_source: str | None = None
    parent_run: str | None = None
    """The run whose model this one started from (read off ``pretrained_source`` when not given)."""
    details: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    """Where the run lies; set when it is read back or returned by a job, never written to the file."""

    def __post_init__(self) -> None:
        if self.parent_run is None and self.pretrained_source is not None and self.pretrained_source.startswith(RUN_PREFIX):
            object.__setattr__(self, "parent_run", self.pretrained_source.removeprefix(RUN_PREFIX))

    @property
    def cancelled(self) -> bool:
        return self.stopped_because == CANCELLED

    def best_text(self) -> str:
        """``"0.9123 at epoch 7"``, or ``"none"`` when no validation scored."""
        return "none" if self.best_metric is None else f"{self.best_metric:.4f} at epoch {self.best_epoch}"

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON object ``summary.json`` holds (``details`` merged in, no ``run_dir``)."""
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("details", "run_dir")}
        return {**own, **self.details}

    @classmethod
    def from_dict(cls, data: dict[str, Any], run_dir: Path | None = None) -> RunSummary:
        """Read ``summary.json``'s object; unknown keys go to ``details``."""
        names = {f.name for f in dataclasses.fields(cls)} - {"details", "run_dir"}
        try:
            own = {name: data[name] for name in names if name in data}
            return cls(**own, details={k: v for k, v in data.items() if k not in names}, run_dir=run_dir)
        except TypeError as error:  # a required field is missing
            raise MedtlError(f"not a medtl run summary ({error})") from None

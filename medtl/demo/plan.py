"""How many epochs each training of the demo gets: planned from the budget at the pace a first, short run measured.

Every training of the curve gets the same number of epochs: within a pair (the same annotated slices, the same
seed) both networks see the same data, so they take the same optimizer steps, whatever else the computer is
doing meanwhile. The pace is measured here, not assumed: a short run of the pretrained network and one
prediction (:class:`Pace`) say what a training costs outside its epochs and per epoch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from medtl.errors import InvalidRequest

REPORT_SECONDS = 30.0
"""Kept for the overlays, the plot and the report after the last training (a few seconds on 2 CPU cores), with margin."""
STARTUP_SECONDS = 40.0
"""The sample study, the tissue volume and the pace run before any training of the curve, on a fast computer."""
MIN_TRAINING_SECONDS = 10.0
"""The least one training of one epoch and its prediction take, on a fast computer."""
EPOCH_MARGIN = 1.25
"""Epochs are planned this much slower than the pace run's: on 2 CPU cores shared with other work, the curve's epochs
took 2.35 s against the 1.87 s measured (a 7.5-minute demo took 503 s)."""


@dataclass(frozen=True)
class Pace:
    """What one training costs here: ``setup_seconds`` (data, network, per-case results: all but its epochs),
    ``epoch_seconds`` (an epoch's steps and validation), ``predict_seconds`` (the whole volume)."""

    setup_seconds: float
    epoch_seconds: float
    predict_seconds: float
    steps_per_epoch: int

    def training_seconds(self, epochs: int) -> float:
        """One training of ``epochs`` epochs and its prediction."""
        return self.setup_seconds + epochs * self.epoch_seconds + self.predict_seconds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _half_minutes(seconds: float) -> float:
    return math.ceil(seconds / 30.0) / 2.0


def check_budget(minutes: float, trainings: int) -> None:
    """Refuse, before anything runs, a budget that cannot hold ``trainings`` trainings on any computer."""
    if minutes <= 0:
        raise InvalidRequest("minutes", f"the budget must be a positive number of minutes, not {minutes:g}")
    needed = STARTUP_SECONDS + REPORT_SECONDS + trainings * MIN_TRAINING_SECONDS
    if minutes * 60.0 < needed:
        raise InvalidRequest("minutes", f"a budget of {minutes:g} minutes is too little for {trainings} trainings; give at least {_half_minutes(needed):g}")


def plan_epochs(minutes: float, spent_seconds: float, trainings: int, pace: Pace) -> int:
    """The most epochs per training that ``trainings`` trainings (each with its prediction) fit in what ``spent_seconds``
    left of ``minutes``, keeping :data:`REPORT_SECONDS` and epochs :data:`EPOCH_MARGIN` slower than measured; 0 when
    not even one epoch each does (see :func:`shortfall`)."""
    left = minutes * 60.0 - spent_seconds - REPORT_SECONDS - trainings * (pace.setup_seconds + pace.predict_seconds)
    return max(0, math.floor(left / (trainings * EPOCH_MARGIN * max(pace.epoch_seconds, 1e-6))))


def shortfall(minutes: float, spent_seconds: float, trainings: int, pace: Pace) -> str:
    """Why a budget holds less than one epoch per training here, and the budget that would."""
    needed = spent_seconds + REPORT_SECONDS + trainings * pace.training_seconds(1)
    return (
        f"at this computer's pace the {minutes:g}-minute budget holds less than one epoch for each of the {trainings} trainings "
        f"(one epoch and its prediction take about {pace.training_seconds(1):.0f} s), so each trained one epoch and the demo ran over its budget; "
        f"a budget of {_half_minutes(needed):g} minutes fits"
    )

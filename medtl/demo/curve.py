"""The learning curve's figures: each training's scores, and their means and spreads over seeds per count and arm.

A training (:class:`RunFigures`) is one arm (``pretrained`` or ``scratch``) at one number of annotated slices and
one seed. Its score is what a user wants from the model: the Dice of its prediction of the whole volume against
the whole tissue mask, on the slices nobody annotated, pooled over those slices (:func:`unannotated_dice`). Time to
quality is read off its ``metrics.jsonl``: the first validation whose mean Dice reached :data:`REACH_DICE`, in
optimizer steps and in seconds since the run started.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from medtl.demo.task import TISSUES

ARMS = ("pretrained", "scratch")
REACH_DICE = 0.75
"""The validation Dice (mean of grey and white matter) whose first reaching gives an arm's time to quality."""


def unannotated_dice(predicted: np.ndarray, reference: np.ndarray, annotated: Iterable[int]) -> dict[str, float | None]:
    """Dice per tissue and their ``"mean"`` on the axial slices (axis 0) not in ``annotated``, pooled over those slices;
    None for a tissue absent from both."""
    hidden = np.setdiff1d(np.arange(reference.shape[0]), list(annotated))
    predicted, reference = predicted[hidden], reference[hidden]
    scores: dict[str, float | None] = {}
    for value, name in TISSUES.items():
        total = int((predicted == value).sum()) + int((reference == value).sum())
        scores[name] = None if total == 0 else 2.0 * int(((predicted == value) & (reference == value)).sum()) / total
    found = [score for score in scores.values() if score is not None]
    return {**scores, "mean": float(np.mean(found)) if found else None}


@dataclass(frozen=True)
class Reach:
    """When a run's validation first reached :data:`REACH_DICE` (None: never)."""

    steps: int | None
    seconds: float | None


def time_to_quality(metrics: Sequence[dict[str, Any]], steps_per_epoch: int, target: float = REACH_DICE) -> Reach:
    """Steps and seconds at the first validation of ``metrics`` (a run's ``metrics.jsonl`` rows) with mean Dice ``>= target``."""
    row = next((r for r in metrics if r.get("mean_dice") is not None and r["mean_dice"] >= target), None)
    return Reach(None, None) if row is None else Reach(int(row["epoch"]) * steps_per_epoch, float(row["elapsed_seconds"]))


@dataclass(frozen=True)
class RunFigures:
    """One training of the curve. ``steps`` counts the optimizer steps it took; ``metric_steps`` is the same read off
    its ``metrics.jsonl`` (epochs recorded x steps an epoch): the two agree for a run that went as planned."""

    count: int
    seed: int
    arm: str
    dice: dict[str, float | None]
    best_validation_dice: float | None
    epochs: int
    steps: int
    metric_steps: int
    seconds: float
    reach: Reach
    training_slices: tuple[int, ...]
    validation_slices: tuple[int, ...]
    stopped_because: str | None
    run: str
    curve: tuple[tuple[int, float], ...]
    """``(steps, validation mean Dice)`` after each validated epoch."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunFigures:
        fields = {**data, "reach": Reach(**data["reach"]), "curve": tuple(tuple(point) for point in data["curve"])}
        return cls(**{**fields, "training_slices": tuple(data["training_slices"]), "validation_slices": tuple(data["validation_slices"])})


def validation_curve(metrics: Sequence[dict[str, Any]], steps_per_epoch: int) -> tuple[tuple[int, float], ...]:
    """``(steps, mean Dice)`` of each validated epoch in ``metrics``."""
    return tuple((int(r["epoch"]) * steps_per_epoch, float(r["mean_dice"])) for r in metrics if r.get("mean_dice") is not None)


@dataclass(frozen=True)
class CurvePoint:
    """One arm at one count, over its seeds: mean Dice per tissue and overall, the SD of the overall Dice, steps,
    seconds, and how many seeds reached :data:`REACH_DICE` on validation, after how many steps and seconds (medians)."""

    count: int
    arm: str
    seeds: int
    dice: dict[str, float | None]
    spread: float | None
    steps: tuple[int, ...]
    seconds: float
    reached: int
    reach_steps: float | None
    reach_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def spread(values: Sequence[float]) -> float | None:
    """The sample standard deviation of ``values``; None for fewer than two."""
    return statistics.stdev(values) if len(values) > 1 else None


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.median(known)) if known else None


def curve_points(runs: Sequence[RunFigures]) -> list[CurvePoint]:
    """One point per count and arm (counts ascending, pretrained first)."""
    points = []
    for count in sorted({r.count for r in runs}):
        for arm in ARMS:
            group = [r for r in runs if r.count == count and r.arm == arm]
            if not group:
                continue
            means = [r.dice["mean"] for r in group if r.dice["mean"] is not None]
            points.append(CurvePoint(
                count, arm, len(group),
                {name: _mean(r.dice[name] for r in group) for name in group[0].dice},
                spread(means),
                tuple(sorted({r.steps for r in group})),
                float(np.mean([r.seconds for r in group])),
                sum(r.reach.steps is not None for r in group),
                _median(r.reach.steps for r in group),
                _median(r.reach.seconds for r in group),
            ))  # fmt: skip
    return points


def paired_differences(runs: Sequence[RunFigures]) -> dict[int, list[float]]:
    """Per count, pretrained minus from-scratch mean Dice for each seed that has both."""
    by_key = {(r.count, r.seed, r.arm): r.dice["mean"] for r in runs}
    differences: dict[int, list[float]] = {}
    for count, seed in sorted({(r.count, r.seed) for r in runs}):
        pretrained, scratch = by_key.get((count, seed, "pretrained")), by_key.get((count, seed, "scratch"))
        if pretrained is not None and scratch is not None:
            differences.setdefault(count, []).append(pretrained - scratch)
    return differences


def mean_validation_curve(runs: Sequence[RunFigures]) -> list[tuple[float, float]]:
    """``(steps, validation Dice)`` averaged over ``runs`` at the steps all of them validated at."""
    shared = set.intersection(*(set(dict(r.curve)) for r in runs)) if runs else set()
    return [(float(step), float(np.mean([dict(r.curve)[step] for r in runs]))) for step in sorted(shared)]

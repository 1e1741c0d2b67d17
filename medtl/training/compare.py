"""Pretrained vs from scratch: a typed ``Comparison`` of two finished arms, and the folder that holds them.

A comparison folder (``--compare-scratch``, the demo) is laid out as::

    pretrained/        the run from the pretrained weights (an ordinary run folder)
    scratch/           the same architecture from random initialisation, same data, seed and budget
    comparison.json    Comparison.to_dict()
    comparison.md      a short table and a verdict in figures

:class:`ComparisonFolder` is the one place that names these; the arms are run by
:mod:`medtl.workflow.train`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medtl.atomic import write_text_atomic
from medtl.errors import MedtlError
from medtl.training.run_folder import RunFolder, jsonable, read_json

ARMS = ("pretrained", "scratch")
ARM_TITLES = {"pretrained": "pretrained", "scratch": "from scratch"}
"""What a user reads for each arm."""


@dataclass(frozen=True)
class ArmFigures:
    """One arm's figures; ``seconds_to_best`` is the elapsed time at its best validation."""

    best_metric: float | None
    epochs: int
    seconds: float
    seconds_to_best: float | None
    stopped_because: str | None


@dataclass(frozen=True)
class Comparison:
    """Whether the pretrained start helped, in figures. ``delta`` is pretrained minus scratch best metric."""

    metric: str
    pretrained: ArmFigures
    scratch: ArmFigures
    pretrained_seconds_to_scratch_best: float | None

    @property
    def delta(self) -> float | None:
        if self.pretrained.best_metric is None or self.scratch.best_metric is None:
            return None
        return self.pretrained.best_metric - self.scratch.best_metric

    @property
    def transfer_helped(self) -> bool | None:
        return None if self.delta is None else self.delta > 0

    def arm(self, name: str) -> ArmFigures:
        """The figures of arm ``name`` (one of :data:`ARMS`)."""
        return {"pretrained": self.pretrained, "scratch": self.scratch}[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric, "pretrained": asdict(self.pretrained), "scratch": asdict(self.scratch), "delta": self.delta,
            "pretrained_seconds_to_scratch_best": self.pretrained_seconds_to_scratch_best, "transfer_helped": self.transfer_helped,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comparison:
        try:
            return cls(data["metric"], ArmFigures(**data["pretrained"]), ArmFigures(**data["scratch"]), data["pretrained_seconds_to_scratch_best"])
        except (KeyError, TypeError) as error:
            raise MedtlError(f"not a medtl comparison (missing or invalid {error})") from None

    def markdown(self) -> str:
        """A short table, and one sentence saying whether the pretrained start helped."""
        name = self.metric
        rows = ["| | pretrained | from scratch |", "|---|---|---|"]
        rows.append(f"| best {name} | {_figure(self.pretrained.best_metric)} | {_figure(self.scratch.best_metric)} |")
        rows.append(f"| seconds to best | {_figure(self.pretrained.seconds_to_best, ' s')} | {_figure(self.scratch.seconds_to_best, ' s')} |")
        rows.append(f"| epochs | {self.pretrained.epochs} | {self.scratch.epochs} |")
        delta, reach = self.delta, self.pretrained_seconds_to_scratch_best
        if delta is None:
            verdict = "One of the runs never produced a valid metric; no verdict."
        else:
            verdict = f"Transfer {'helped' if delta > 0 else 'did not help'}: {name} {delta:+.4f} over training from scratch"
            verdict += f"; the pretrained model reached the scratch model's best after {reach:.1f} s." if reach is not None else "; the pretrained model never reached the scratch model's best."
        return "# Pretrained vs from scratch\n\n" + "\n".join(rows) + f"\n\n{verdict}\n"


def _figure(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:.1f}{unit}" if unit else f"{value:.4f}"


def _seconds_to_reach(metrics: list[dict[str, Any]], name: str, target: float | None) -> float | None:
    """Elapsed seconds at the first validation whose ``name`` reached ``target``."""
    if target is None:
        return None
    return next((r["elapsed_seconds"] for r in metrics if r.get(name) is not None and r[name] >= target), None)


def compare_runs(pretrained: RunFolder, scratch: RunFolder) -> Comparison:
    """The comparison of two finished runs of the same task (figures from their summaries and metrics)."""
    summaries = {"pretrained": pretrained.read_summary(), "scratch": scratch.read_summary()}
    metrics = {"pretrained": pretrained.read_metrics(), "scratch": scratch.read_metrics()}
    name = summaries["pretrained"].best_metric_name or "metric"
    figures = {
        arm: ArmFigures(s.best_metric, s.epochs, s.seconds, _seconds_to_reach(metrics[arm], name, s.best_metric), s.stopped_because)
        for arm, s in summaries.items()
    }
    reach = _seconds_to_reach(metrics["pretrained"], name, figures["scratch"].best_metric)
    return Comparison(name, figures["pretrained"], figures["scratch"], reach)


class ComparisonFolder:
    """A folder holding a pretrained arm, a from-scratch arm and their comparison (see the module docstring)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def arm(self, name: str) -> RunFolder:
        """The run folder of arm ``name`` (one of :data:`ARMS`)."""
        if name not in ARMS:
            raise ValueError(f"no arm {name!r}")
        return RunFolder(self.path / name)

    @property
    def json_path(self) -> Path:
        return self.path / "comparison.json"

    @property
    def markdown_path(self) -> Path:
        return self.path / "comparison.md"

    def is_comparison(self) -> bool:
        """True when the folder holds a started pretrained arm (its ``config.json``)."""
        return self.arm("pretrained").config_path.is_file()

    def write(self) -> Comparison:
        """Compare the finished arms; rank 0 writes ``comparison.json`` and ``comparison.md``."""
        from medtl.training import distributed

        ctx = distributed.current()
        ctx.barrier()  # rank 0 has written both summaries
        comparison = compare_runs(self.arm("pretrained"), self.arm("scratch"))
        if ctx.is_main:
            write_text_atomic(self.json_path, json.dumps(jsonable(comparison.to_dict()), indent=2, allow_nan=False))
            write_text_atomic(self.markdown_path, comparison.markdown())
        return comparison

    def read(self) -> Comparison:
        data = read_json(self.json_path, "has the comparison finished?")
        try:
            return Comparison.from_dict(data)
        except MedtlError as error:
            raise MedtlError(f"{self.json_path}: {error}") from None


def runs_in(folder: Path | str) -> list[tuple[str, Path]]:
    """The runs a folder holds, named for a user: a comparison's started arms (``"<folder> pretrained"``,
    ``"<folder> from scratch"``), else the folder itself as one run."""
    folder = Path(folder)
    comparison = ComparisonFolder(folder)
    if not comparison.is_comparison():
        return [(folder.name, folder)]
    started = [(name, comparison.arm(name)) for name in ARMS if comparison.arm(name).config_path.is_file()]
    return [(f"{folder.name} {ARM_TITLES[name]}", run.path) for name, run in started]

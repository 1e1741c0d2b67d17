"""The demo's report: ``report.json`` (every figure) and ``report.md`` (the curve table, the verdict, the pictures).

The verdict is computed from the figures (:func:`judge`, :func:`verdict`), never written by hand, by the rule in
:data:`RULE`: per count of annotated slices, the differences pretrained − from scratch of the mean Dice on the
unannotated slices, one per seed; transfer "helped" at that count only when their mean exceeds their standard
deviation over seeds and :data:`MIN_DIFFERENCE_POINTS`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medtl.atomic import write_text_atomic
from medtl.demo.curve import REACH_DICE, RunFigures, spread

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
MIN_DIFFERENCE_POINTS = 1.0
"""Dice points (hundredths of Dice) below which a difference is not called one, whatever the spread."""
HELPED, HURT, UNCLEAR, UNKNOWN = "helped", "hurt", "no clear difference", "no verdict"
RULE = (
    "Per number of annotated slices, d = (pretrained − from scratch) mean Dice on the slices nobody annotated, one d per seed. "
    f"Transfer **helped** there when the mean of d exceeds both its standard deviation over seeds and {MIN_DIFFERENCE_POINTS:g} Dice point; "
    f"it **hurt** when the mean is below minus both; otherwise **no clear difference**. One seed gives no spread, hence no verdict."
)
ARM_TITLES = {"pretrained": "pretrained", "scratch": "from scratch"}
FEW_STEPS = 20
"""Fewer optimizer steps than this per training get a caveat: the figures are early in training."""


@dataclass(frozen=True)
class Judgement:
    """The rule applied at one count: the per-seed differences (Dice), their mean and SD, and the call."""

    count: int
    differences: tuple[float, ...]
    mean: float
    spread: float | None
    call: str

    def text(self) -> str:
        """``"+4.1 ± 1.2"`` in Dice points (the SD left out with one seed)."""
        return f"{100 * self.mean:+.1f}" + ("" if self.spread is None else f" ± {100 * self.spread:.1f}")


def judge(count: int, differences: Sequence[float]) -> Judgement:
    """:data:`RULE` at one count."""
    mean, sd = float(np.mean(differences)), spread(differences)
    threshold = None if sd is None else max(sd, MIN_DIFFERENCE_POINTS / 100)
    call = UNKNOWN if threshold is None else HELPED if mean > threshold else HURT if mean < -threshold else UNCLEAR
    return Judgement(count, tuple(differences), mean, sd, call)


def listed(words: Sequence[str], last: str = "and") -> str:
    """``"a, b and c"``."""
    return ", ".join(words[:-1]) + (f" {last} " if len(words) > 1 else "") + words[-1]


def _counts(judgements: Sequence[Judgement]) -> str:
    """``"3 annotated slices (+4.1 ± 1.2 Dice points), 6 (+2.0 ± 0.5)"``."""
    parts = [f"{j.count} ({j.text()})" for j in judgements]
    parts[0] = f"{judgements[0].count} annotated slice{'s' * (judgements[0].count != 1)} ({judgements[0].text()} Dice points)"
    return listed(parts)


def verdict(judgements: Sequence[Judgement], runs: Sequence[RunFigures]) -> str:
    """The verdict in words, from :func:`judge`'s calls, plus each arm's time to quality over ``runs``."""
    if not judgements:
        return "No verdict: no count has figures for both networks."
    calls = {call: [j for j in judgements if j.call == call] for call in (HELPED, UNCLEAR, HURT, UNKNOWN)}
    if len(calls[UNKNOWN]) == len(judgements):
        head = f"No verdict: one seed gives no spread to judge a difference by (pretrained − from scratch: {_counts(judgements)})"
    else:
        if calls[HELPED]:
            head = ("Transfer helped at every count: " if len(calls[HELPED]) == len(judgements) else "Transfer helped with ") + _counts(calls[HELPED])
        else:
            head = "Transfer did not win here: at no count was the pretrained network ahead of training from scratch by more than the spread over seeds"
        for call in (UNCLEAR, HURT, UNKNOWN):
            if calls[call]:
                head += f"; {'transfer hurt' if call == HURT else call} with {_counts(calls[call])}"
    seeds = max(len(j.differences) for j in judgements)
    return f"{head} (mean Dice on the slices nobody annotated, pretrained − from scratch, ± SD over {seeds} seed{'s' * (seeds != 1)}). {time_to_quality_sentence(runs)}"


def time_to_quality_sentence(runs: Sequence[RunFigures]) -> str:
    """How many runs of each arm reached :data:`REACH_DICE` on validation, after how many steps and seconds (medians)."""
    parts = []
    for arm, title in ARM_TITLES.items():
        group = [r for r in runs if r.arm == arm]
        reached = [r.reach for r in group if r.reach.steps is not None]
        if reached:
            steps = float(np.median([r.steps for r in reached]))
            seconds = float(np.median([r.seconds for r in reached if r.seconds is not None]))
            parts.append(f"{title} in {len(reached)} of {len(group)} runs, after a median {steps:g} steps ({seconds:.0f} s)")
        else:
            parts.append(f"{title} in none of {len(group)} runs")
    return f"Validation Dice {REACH_DICE:g} was reached: " + "; ".join(parts) + "."


def caveats(runs: Sequence[RunFigures]) -> list[str]:
    """What a reader needs to know before trusting the verdict: pairs whose arms did not take the same steps, runs
    that stopped early, step counts the metrics do not confirm, trainings too short to say much."""
    notes = []
    pairs: dict[tuple[int, int], dict[str, RunFigures]] = {}
    for run in runs:
        pairs.setdefault((run.count, run.seed), {})[run.arm] = run
    for (count, seed), arms in sorted(pairs.items()):
        steps = {arm: run.steps for arm, run in arms.items()}
        if len(set(steps.values())) > 1:
            notes.append(f"With {count} annotated slices, seed {seed}, the two networks took different numbers of optimizer steps ({steps}).")
    for run in runs:
        if run.steps != run.metric_steps:
            notes.append(f"{run.run}: {run.steps} steps counted while training, but its metrics.jsonl records {run.metric_steps}.")
        if run.stopped_because not in (None, "completed"):
            notes.append(f"{run.run} stopped early ({run.stopped_because}).")
    fewest = min((run.steps for run in runs), default=0)
    if runs and fewest < FEW_STEPS:
        notes.append(
            f"Only {fewest} optimizer steps per training: the budget held no more at this computer's pace (other work running?). "
            "The figures are early in training; give the demo more minutes for a fuller picture."
        )
    return notes


def _figure(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _reach(point: dict[str, Any]) -> str:
    if not point["reached"]:
        return f"never (0 of {point['seeds']})"
    return f"{point['reach_steps']:g} steps, {point['reach_seconds']:.0f} s ({point['reached']} of {point['seeds']})"


def curve_table(report: dict[str, Any]) -> list[str]:
    """The learning-curve table: a row per count and arm."""
    judgements = {j["count"]: j for j in report["judgements"]}
    rows = [
        f"| annotated slices | start | Dice grey matter | Dice white matter | mean Dice ± SD | pretrained − scratch (points) | verdict | steps | training s | to validation Dice {REACH_DICE:g} |",
        "|---:|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for point in report["curve"]:
        mean = _figure(point["dice"]["mean"]) + ("" if point["spread"] is None else f" ± {point['spread']:.3f}")
        judged = judgements.get(point["count"]) if point["arm"] == "pretrained" else None
        difference = "" if judged is None else Judgement(**{**judged, "differences": tuple(judged["differences"])}).text()
        rows.append(
            f"| {point['count']} | {ARM_TITLES[point['arm']]} | {_figure(point['dice']['grey matter'])} | {_figure(point['dice']['white matter'])} | {mean} | "
            f"{difference} | {'' if judged is None else judged['call']} | {'/'.join(map(str, point['steps']))} | {point['seconds']:.0f} | {_reach(point)} |"
        )
    return rows


def runs_table(report: dict[str, Any]) -> list[str]:
    """A row per training: which slices trained and validated, its scores and steps."""
    rows = [
        "| annotated | seed | start | training / validation slices | Dice grey / white / mean | best validation Dice | steps | s | run |",
        "|---:|---:|---|---|---|---:|---:|---:|---|",
    ]
    for run in report["runs"]:
        dice = " / ".join(_figure(run["dice"][name]) for name in ("grey matter", "white matter", "mean"))
        slices = f"{','.join(map(str, run['training_slices']))} / {','.join(map(str, run['validation_slices']))}"
        rows.append(
            f"| {run['count']} | {run['seed']} | {ARM_TITLES[run['arm']]} | {slices} | {dice} | {_figure(run['best_validation_dice'])} | {run['steps']} | "
            f"{run['seconds']:.0f} | `{run['run']}` |"
        )
    return rows


def report_markdown(report: dict[str, Any]) -> str:
    """``report.md`` from the report's dictionary (the pictures by their paths relative to the report)."""
    task, network, plan = report["task"], report["network"], report["plan"]
    load = report.get("load_average")
    lines = [
        "# medtl demo: what transfer learning buys with a few annotated slices",
        "",
        f"**{report['verdict']}**",
        "",
        *[f"> Caveat: {note}\n" for note in report.get("caveats", [])],
        (
            f"Task: grey and white matter (and background) on one series of the bundled sample study ({task['source']}), "
            f"{task['voxel_mm']} mm voxels ({task['downsampling']}), {task['shape'][0]} axial slices. As a user who paints a few slices in the app, "
            f"only **{listed([str(c) for c in task['counts']], 'or')} axial slices** are annotated, the rest of the mask is `ignore`; seeds "
            f"{', '.join(map(str, task['seeds']))} move the annotated slices and the networks' initialisation. Training holds out a slab of the "
            "annotated slices for validation (within the patient). "
            f"Network: `{network['architecture']}`, once from `{network['pretrained_source']}` (licence: {network.get('licence') or 'not recorded'}), "
            f"once from random weights, both trained with `train(TrainRequest(...))` for **the same {plan['epochs']} epoch(s)** "
            f"(the same optimizer steps within each pair; {plan['why']}). Score: Dice of each network's whole-volume prediction against the whole "
            "tissue mask on the slices nobody annotated, per tissue and their mean. All slices come from one averaged head (the MNI152 template): the "
            "figures say how well each start learns this anatomy from a few slices, not how it generalises to new subjects."
        ),
        "",
        f"Rule: {RULE}",
        "",
        *curve_table(report),
        "",
        "## Learning curve",
        "",
        f"![Dice on the unannotated slices against the number of annotated slices, both networks; validation Dice against steps]({report['figures']['curve']})",
        "",
        f"## Predictions on slices nobody annotated ({report['figures']['overlay_task']})",
        "",
        "Filled: the tissue each picture shows (blue grey matter, orange white matter); lines: the reference's tissue boundaries. Radiological display.",
        "",
        *[f"![Unannotated slice {z}]({path})\n" for z, path in zip(report["figures"]["overlay_slices"], report["figures"]["overlays"])],
        "## Every training",
        "",
        *runs_table(report),
        "",
        (
            "Files: `runs/` (one folder per count and seed holding both networks' run folders, with metrics, model cards and best models), "
            "`predictions/` (each network's whole-volume mask, NIfTI), `task/` (the volume, its masks and datalists), `report.json` (every figure above)."
        ),
        "",
        f"Whole demo: {report['total_seconds']:.0f} s on {report['device']}"
        + ("" if load is None else f"; load average {load['start']:.1f} at the start, {load['end']:.1f} at the end ({load['cores']} cores)")
        + f". medtl {report['medtl_version']}. Research software; not a medical device.",
        "",
    ]
    return "\n".join(lines)


def write_report(out_dir: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir`` (atomic); returns their paths."""
    from medtl.training.run_folder import jsonable

    json_path, md_path = out_dir / REPORT_JSON, out_dir / REPORT_MD
    write_text_atomic(json_path, json.dumps(jsonable(report), indent=1, allow_nan=False))
    write_text_atomic(md_path, report_markdown(report))
    return json_path, md_path

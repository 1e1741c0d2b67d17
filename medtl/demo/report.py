"""The demo's report: ``report.json`` (every figure) and ``report.md`` (a table, the verdict, the pictures).

The verdict is computed from the figures (:func:`verdict`), never written by hand: transfer
"helped" when the pretrained arm's best validation Dice beats the scratch arm's by at least
:data:`CLEAR_DIFFERENCE_POINTS` Dice points, "did not help" when it is that much worse, and "made no
clear difference" in between (a dozen validation slices cannot resolve less).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medtl.atomic import write_text_atomic

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CLEAR_DIFFERENCE_POINTS = 1.0
"""Dice points (hundredths of Dice) below which the two arms are called equal."""
ARMS = ("pretrained", "scratch")
ARM_TITLES = {"pretrained": "pretrained", "scratch": "from scratch"}


def dice_points(pretrained: float | None, scratch: float | None) -> float | None:
    """How many Dice points (Dice x 100) the pretrained arm is ahead; None when a figure is missing."""
    if pretrained is None or scratch is None:
        return None
    return 100.0 * (pretrained - scratch)


FASTER_RATIO = 0.5
"""The sentence says the pretrained network got there faster when it matched the scratch network's best
Dice in at most this fraction of the time the scratch network took to reach it."""


def verdict(
    pretrained: float | None,
    scratch: float | None,
    labelled: int,
    minutes: float | None,
    held_out: dict[str, Any] | None = None,
    seconds_to_match: float | None = None,
    scratch_seconds_to_best: float | None = None,
) -> str:
    """One sentence saying whether the pretrained start helped, from the best validation Dice of each arm.

    ``labelled`` is the number of labelled training slices, ``minutes`` each arm's budget (None: a
    fixed number of epochs); ``held_out`` optionally adds the figures on slices used for neither
    training nor model selection (``{"slices": n, "pretrained": d, "scratch": d}``).
    ``seconds_to_match`` (the pretrained run's time to reach the scratch run's best Dice) and
    ``scratch_seconds_to_best`` add how much sooner the pretrained network got there, when it was
    at least twice as fast (:data:`FASTER_RATIO`).
    """
    points = dice_points(pretrained, scratch)
    if points is None or pretrained is None or scratch is None:
        return "No verdict: one of the two networks never produced a validation Dice."
    budget = f"the same {minutes:g}-minute budget" if minutes is not None else "the same number of epochs"
    figures = f"validation Dice {pretrained:.3f} pretrained vs {scratch:.3f} from scratch"
    if points >= CLEAR_DIFFERENCE_POINTS:
        head = f"Transfer helped by {points:.1f} Dice points"
    elif points <= -CLEAR_DIFFERENCE_POINTS:
        head = f"Transfer did not help: the pretrained network was {-points:.1f} Dice points worse"
    else:
        head = f"Transfer made no clear difference ({points:+.1f} Dice points, under {CLEAR_DIFFERENCE_POINTS:g})"
    sentence = f"{head}: {figures}, with {labelled} labelled slices and {budget}"
    if seconds_to_match is not None and scratch_seconds_to_best and seconds_to_match <= FASTER_RATIO * scratch_seconds_to_best:
        sentence += f"; the pretrained network matched the from-scratch network's best after {seconds_to_match:.0f} s of training, training from scratch took {scratch_seconds_to_best:.0f} s"
    if held_out and held_out.get("pretrained") is not None and held_out.get("scratch") is not None:
        sentence += f" (on the {held_out['slices']} slices used for neither training nor validation: {held_out['pretrained']:.3f} vs {held_out['scratch']:.3f})"
    return sentence + "."


UNEVEN_FRACTION = 0.25
"""Arms whose training times or epoch counts differ by more than this fraction (of the larger) get a caveat."""


def caveats(arms: dict[str, dict[str, Any]]) -> list[str]:
    """Warnings a reader needs before trusting the verdict: the arms did not get the same training."""
    pretrained, scratch = arms["pretrained"], arms["scratch"]
    notes = []
    seconds = [pretrained.get("seconds") or 0.0, scratch.get("seconds") or 0.0]
    epochs = [pretrained.get("epochs") or 0, scratch.get("epochs") or 0]
    if any(max(pair) > 0 and abs(pair[0] - pair[1]) > UNEVEN_FRACTION * max(pair) for pair in (seconds, epochs)):
        notes.append(
            f"The two networks did not train alike: {pretrained.get('epochs')} epochs in {seconds[0]:.0f} s (pretrained) vs "
            f"{scratch.get('epochs')} epochs in {seconds[1]:.0f} s (from scratch). Each run fits its epochs to the budget at the pace "
            "it measures, so other work on this computer during one of them gives it fewer; compare the learning curves, "
            "or run the demo again on an otherwise idle machine."
        )
    for arm, figures in arms.items():
        if figures.get("stopped_because") not in (None, "completed", "time_limit"):
            notes.append(f"The {ARM_TITLES.get(arm, arm)} run stopped early ({figures['stopped_because']}).")
    return notes


def _figure(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} s"


def report_markdown(report: dict[str, Any]) -> str:
    """``report.md`` from the report's dictionary (the pictures by their paths relative to the report)."""
    arms, task, network = report["arms"], report["task"], report["network"]
    held = report.get("held_out") or {}
    rows = [
        "| | pretrained | from scratch |",
        "|---|---|---|",
        f"| best validation Dice ({task['validation_slices']} slices) | {_figure(arms['pretrained']['best_dice'])} | {_figure(arms['scratch']['best_dice'])} |",
    ]
    if held:
        rows.append(f"| Dice on the {held['slices']} slices used for neither training nor validation | {_figure(held.get('pretrained'))} | {_figure(held.get('scratch'))} |")
    rows += [
        f"| best epoch / epochs | {arms['pretrained']['best_epoch']} / {arms['pretrained']['epochs']} | {arms['scratch']['best_epoch']} / {arms['scratch']['epochs']} |",
        f"| training time | {_seconds(arms['pretrained']['seconds'])} | {_seconds(arms['scratch']['seconds'])} |",
        f"| seconds to its best | {_seconds(arms['pretrained']['seconds_to_best'])} | {_seconds(arms['scratch']['seconds_to_best'])} |",
        f"| seconds to validation Dice ≥ {report.get('reach_dice', 0.95):g} | {_seconds(arms['pretrained'].get('seconds_to_reach_dice'))} | {_seconds(arms['scratch'].get('seconds_to_reach_dice'))} |",
        f"| seconds to the from-scratch best | {_seconds(report.get('pretrained_seconds_to_scratch_best'))} | {_seconds(arms['scratch']['seconds_to_best'])} |",
        f"| starting weights | {arms['pretrained']['weights'] or 'random'} | {arms['scratch']['weights'] or 'random'} |",
    ]
    licence = network.get("licence") or "not recorded"
    budget = report.get("budget_minutes_per_arm")
    lines = [
        "# medtl demo: what transfer learning buys",
        "",
        f"**{report['verdict']}**",
        "",
        *[f"> Caveat: {note}\n" for note in report.get("caveats", [])],
        (f"Task: segment the brain on axial slices of the bundled sample study ({task['source']}), "
        f"learning from **{task['labelled_training_slices']} labelled slices** (one per {task['slab_mm_slices']} mm slab) "
        f"and validating on {task['validation_slices']} slices from other slabs. "
        f"Network: `{network['architecture']}`, once starting from `{network['pretrained_source']}` (licence: {licence}) and once "
        f"from random weights, on the same data, seed and "
        + (f"budget ({budget:g} min each, on {report['device']})." if budget is not None else f"number of epochs (on {report['device']}).")
        + " All slices come from one averaged head (the MNI152 template): the figures say how well each start learns "
        "this anatomy from a handful of labels, not how it generalises to new subjects."),
        "",
        *rows,
        "",
        "## Learning curves",
        "",
        f"![Validation Dice and training loss against training time, both arms]({report['figures']['learning_curves']})",
        "",
        "## Predictions on validation slices",
        "",
        "Green: the reference brain mask; filled: each network's prediction. Radiological display (the patient's right on the left).",
        "",
        *[f"![Validation slice z={z}]({path})\n" for z, path in zip(report["figures"]["overlay_slices"], report["figures"]["overlays"])],
        (
            f"Files: `{report['files']['pretrained_run']}` and `{report['files']['scratch_run']}` (run folders with metrics, model cards and best models), "
            f"`{report['files']['predictions']}` (both networks' masks of one slice in {report.get('predicted_one_slice_in', 1)} of the series, NIfTI), "
            "`report.json` (every figure above)."
        ),
        "",
        f"Whole demo: {report['total_seconds']:.0f} s. medtl {report['medtl_version']}. Research software; not a medical device.",
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

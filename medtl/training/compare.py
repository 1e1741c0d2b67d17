"""``--compare-scratch``: compare a pretrained run with the same architecture trained from scratch on
the same budget (the two arms are run by `medtl.workflow.train`), and say in figures whether transfer helped.

Writes ``comparison.json`` and ``comparison.md`` beside the two run folders ``pretrained/`` and ``scratch/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medtl.atomic import write_text_atomic
from medtl.training.run_folder import RunFolder, jsonable

ARMS = ("pretrained", "scratch")


def _seconds_to_reach(metrics: list[dict[str, Any]], name: str, target: float | None) -> float | None:
    """Elapsed seconds at the first validation whose ``name`` reached ``target``."""
    if target is None:
        return None
    return next((r["elapsed_seconds"] for r in metrics if r.get(name) is not None and r[name] >= target), None)


def compare_runs(pretrained: RunFolder, scratch: RunFolder) -> dict[str, Any]:
    """The comparison of two finished runs of the same task (figures from their summaries and metrics)."""
    summaries = {"pretrained": pretrained.read_summary(), "scratch": scratch.read_summary()}
    metrics = {"pretrained": pretrained.read_metrics(), "scratch": scratch.read_metrics()}
    name = summaries["pretrained"]["best_metric_name"]
    best = {arm: summaries[arm]["best_metric"] for arm in ARMS}
    delta = None if None in best.values() else best["pretrained"] - best["scratch"]
    arms = {
        arm: {
            "best_metric": best[arm],
            "epochs": summaries[arm]["epochs"],
            "seconds": summaries[arm]["seconds"],
            "seconds_to_best": _seconds_to_reach(metrics[arm], name, best[arm]),
            "stopped_because": summaries[arm]["stopped_because"],
        }
        for arm in ARMS
    }
    return {
        "metric": name,
        **arms,
        "delta": delta,
        "pretrained_seconds_to_scratch_best": _seconds_to_reach(metrics["pretrained"], name, best["scratch"]),
        "transfer_helped": None if delta is None else delta > 0,
    }


def _figure(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:.1f}{unit}" if unit else f"{value:.4f}"


def comparison_markdown(comparison: dict[str, Any]) -> str:
    """A short table, and one sentence saying whether the pretrained start helped."""
    name = comparison["metric"]
    rows = ["| | pretrained | from scratch |", "|---|---|---|"]
    rows.append(f"| best {name} | {_figure(comparison['pretrained']['best_metric'])} | {_figure(comparison['scratch']['best_metric'])} |")
    rows.append(f"| seconds to best | {_figure(comparison['pretrained']['seconds_to_best'], ' s')} | {_figure(comparison['scratch']['seconds_to_best'], ' s')} |")
    rows.append(f"| epochs | {comparison['pretrained']['epochs']} | {comparison['scratch']['epochs']} |")
    delta, reach = comparison["delta"], comparison["pretrained_seconds_to_scratch_best"]
    if delta is None:
        verdict = "One of the runs never produced a valid metric; no verdict."
    else:
        verdict = f"Transfer {'helped' if delta > 0 else 'did not help'}: {name} {delta:+.4f} over training from scratch"
        verdict += f"; the pretrained model reached the scratch model's best after {reach:.1f} s." if reach is not None else "; the pretrained model never reached the scratch model's best."
    return "# Pretrained vs from scratch\n\n" + "\n".join(rows) + f"\n\n{verdict}\n"


def write_comparison(run_dir: Path | str) -> dict[str, Any]:
    """Compare the finished arms ``run_dir/pretrained`` and ``run_dir/scratch``; rank 0 writes ``comparison.json`` and ``.md``."""
    from medtl.training import distributed

    run_dir = Path(run_dir)
    ctx = distributed.current()
    ctx.barrier()  # rank 0 has written both summaries
    comparison = compare_runs(RunFolder(run_dir / "pretrained"), RunFolder(run_dir / "scratch"))
    if ctx.is_main:
        write_text_atomic(run_dir / "comparison.json", json.dumps(jsonable(comparison), indent=2, allow_nan=False))
        write_text_atomic(run_dir / "comparison.md", comparison_markdown(comparison))
    return comparison

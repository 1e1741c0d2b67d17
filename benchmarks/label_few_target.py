"""Issue 12's first target: 4 annotated slices of one series, the default pretrained start against scratch and the ceiling.

Usage: python benchmarks/label_few_target.py [--epochs 15] [--seeds 0 2 4] [--annotated 4] [--out DIR]

The task is ``mni_tissue`` (:func:`medtl.data.tasks.write_mni_tissue`): the MNI152 T1 head at 2 mm, grey and white
matter annotated on ``--annotated`` axial slices (the seed shifts them by up to two slices) and ``ignore``
elsewhere. Three arms, each ``medtl train`` for the same number of epochs, hence optimiser steps (one volume is
one case repeated to 32 items, 4 steps of 8 slices an epoch, whatever is annotated):

- ``pretrained``: nothing chosen (the slice-wise default, ``lite0-unet`` on ImageNet EfficientNet-Lite0);
- ``scratch``: the same network with ``weights="none"``;
- ``ceiling``: the default again with every axial slice annotated (a fifth of them still goes to the validation slab).

Each is scored on the seed's unannotated slices (:func:`benchmarks.sparse_tissue.unannotated_dice`). The
figures: pretrained / ceiling (target ≥ 0.85) and pretrained - scratch (target > 0, beyond the spread over seeds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.sparse_tissue import annotate, annotated_slices, depth, spread, train_steps, unannotated_dice  # noqa: E402

WORK = REPO / "benchmarks" / "_work" / "label_few_target"
ARMS = {"pretrained": None, "scratch": "none", "ceiling": None}
"""Arm → the weights it asks for (None: the default)."""
TARGET_RATIO = 0.85


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="epochs of every arm (4 optimiser steps each)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 2, 4], help="each moves the initialisation; 0, 2, 4 also move the annotated slices (by 0, +2, +1)")
    parser.add_argument("--annotated", type=int, default=4)
    parser.add_argument("--out", type=Path, default=WORK)
    args = parser.parse_args()
    from medtl.data.tasks import write_mni_tissue

    print(f"load before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", flush=True)
    rows = []
    for seed in args.seeds:
        sparse = write_mni_tissue(args.out / f"seed{seed}" / "task", annotated=args.annotated, seed=seed)
        hidden_from = annotated_slices(sparse)
        full = annotate(sparse, range(depth(sparse)), args.out / f"seed{seed}" / "every-slice")
        for arm, weights in ARMS.items():
            run = train_steps(full if arm == "ceiling" else sparse, args.out / f"seed{seed}" / arm, args.epochs, seed, weights=weights)
            rows.append({"seed": seed, "arm": arm, "annotated": hidden_from, "steps": run.steps, "seconds": run.seconds,
                         "validation_dice": run.summary.best_metric, **unannotated_dice(run.run_dir, full, hidden_from)})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}\n")
    print(table(rows))


def table(rows: list[dict]) -> str:
    """Per run, then per arm over seeds, then the two target figures (paired by seed)."""
    lines = ["| seed | arm | annotated slices | steps | wall s | Dice grey / white (unannotated slices) | mean |", "|---:|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['seed']} | {r['arm']} | {r['annotated']} | {r['steps']} | {r['seconds']:.0f} | {r['grey matter']:.3f} / {r['white matter']:.3f} | {r['mean']:.3f} |" for r in rows]
    lines += ["", "| arm | grey matter | white matter | mean Dice, mean ± sd (min-max) over seeds |", "|---|---:|---:|---|"]
    by_arm = {arm: [r for r in rows if r["arm"] == arm] for arm in ARMS}
    for arm, runs in by_arm.items():
        if runs:
            lines.append(f"| {arm} | {statistics.fmean(r['grey matter'] for r in runs):.3f} | {statistics.fmean(r['white matter'] for r in runs):.3f} | {spread([r['mean'] for r in runs])} |")
    seeds = sorted({r["seed"] for r in rows})
    mean = {arm: {r["seed"]: r["mean"] for r in runs} for arm, runs in by_arm.items()}
    if all(len(mean[arm]) == len(seeds) for arm in ARMS):
        ratios = [mean["pretrained"][s] / mean["ceiling"][s] for s in seeds]
        gains = [mean["pretrained"][s] - mean["scratch"][s] for s in seeds]
        lines += ["", "| figure (per seed, then over seeds) | per seed | mean ± sd (min-max) | target | met |", "|---|---|---|---:|---|"]
        lines.append(f"| pretrained / ceiling | {', '.join(f'{v:.3f}' for v in ratios)} | {spread(ratios)} | ≥ {TARGET_RATIO} | {'yes' if statistics.fmean(ratios) >= TARGET_RATIO else 'no'} |")
        beyond = min(gains) > 0 and statistics.fmean(gains) > (statistics.stdev(gains) if len(gains) > 1 else 0.0)
        lines.append(f"| pretrained - scratch | {', '.join(f'{v:+.3f}' for v in gains)} | {spread(gains)} | > 0 beyond the spread | {'yes' if beyond else 'no'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

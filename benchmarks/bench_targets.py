"""The issue's quality targets: `medtl train` with defaults and a time budget vs a plain MONAI loop from scratch.

Usage: python benchmarks/bench_targets.py [--minutes 3] [--task ct_bone|orientation]...

Builds the offline real tasks of :mod:`medtl.data.tasks` under benchmarks/_work/targets/ and, for each:
  medtl  `medtl train --datalist DL --task T --out RUN --time-limit MIN` (nothing else: the defaults),
         in a fresh process; the figure is summary.json's best validation metric.
  plain  a hand-written loop after the MONAI tutorials, from scratch, on the same training and
         validation cases (the datalist's validation list, else medtl's patient-level split, seed 0) and the same budget of training time
         (the clock starts after the data are cached, as medtl's does):
         - ct_bone (segmentation): the spleen tutorial in 2D: UNet (16-256 channels, 2 residual units,
           batch norm), DiceLoss, Adam 1e-4, HU [-1000, 2000] -> [0, 1], 4 random 96x96 patches per image
           (half on bone), batch 2, sliding-window validation (160x160); best mean Dice over the budget.
         - orientation (classification): the MedNIST tutorial: DenseNet121, 64x64, ScaleIntensity,
           random rotation (15 degrees) and zoom (flips left out: they change the label), Adam 1e-4 (the
           tutorial's 1e-5 barely moves in minutes), batch 8; best balanced accuracy over the budget.
Prints the two figures and their ratio per task, and the load average before and after (the machine
may be shared: a busy one gives both contenders less time's worth of work, alike).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORK = REPO / "benchmarks" / "_work" / "targets"
TASKS = {"ct_bone": ("segmentation", 0.97), "orientation": ("classification", 0.97)}
SEED = 0


def run_medtl(datalist: Path, task: str, out: Path, minutes: float) -> dict[str, Any]:
    """`medtl train` with defaults and a time budget, in a fresh process; its summary.json."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "medtl", "train", "--datalist", str(datalist), "--task", task, "--out", str(out), "--time-limit", f"{minutes:g}"]
    with open(out.with_suffix(".log"), "w", encoding="utf-8") as log:
        subprocess.run(command, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
    return json.loads((out / "summary.json").read_text())


def split(datalist: Path, task: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """medtl's split of the datalist as plain MONAI items (class labels as indices)."""
    from medtl.data.datalist import load_datalist
    from medtl.data.split import split_cases

    parsed = load_datalist(datalist, task)
    train, val = (parsed.training, parsed.validation) if parsed.validation else split_cases(parsed.training, task, 0.2, SEED)

    def item(case: Any) -> dict[str, Any]:
        label = parsed.classes.index(str(case.label)) if task == "classification" else str(case.label)
        return {"image": str(case.image), "label": label}

    return [item(c) for c in train], [item(c) for c in val], parsed.classes


def budgeted_loop(seconds: float, epoch: Callable[[], None], validate: Callable[[], float], every: int) -> tuple[float, int]:
    """Train epochs until the budget is spent, validating every ``every`` epochs and at the end; (best, epochs)."""
    best, epochs, started = 0.0, 0, time.monotonic()
    while time.monotonic() - started < seconds:
        epoch()
        epochs += 1
        if epochs % every == 0 or time.monotonic() - started >= seconds:
            best = max(best, validate())
    return best, epochs


def plain_epoch(model: Any, loader: Any, loss_function: Callable[..., Any], optimizer: Any) -> None:
    """One epoch of the plain MONAI tutorial loop: forward, loss, backward, step."""
    model.train()
    for batch in loader:
        optimizer.zero_grad()
        loss_function(model(batch["image"]), batch["label"]).backward()
        optimizer.step()


def plain_segmentation(datalist: Path, seconds: float) -> tuple[float, int]:
    import torch
    from monai.data import CacheDataset, DataLoader
    from monai.inferers import sliding_window_inference
    from monai.losses import DiceLoss
    from monai.metrics import DiceMetric
    from monai.networks.layers import Norm
    from monai.networks.nets import UNet
    from monai.transforms import (
        AsDiscrete,
        Compose,
        EnsureChannelFirstd,
        LoadImaged,
        RandCropByPosNegLabeld,
        ScaleIntensityRanged,
        SqueezeDimd,
    )

    torch.manual_seed(SEED)
    train_items, val_items, _ = split(datalist, "segmentation")
    keys = ["image", "label"]
    base = [LoadImaged(keys), EnsureChannelFirstd(keys), SqueezeDimd(keys, dim=-1), ScaleIntensityRanged("image", -1000, 2000, 0.0, 1.0, clip=True)]
    crop = RandCropByPosNegLabeld(keys, "label", spatial_size=(96, 96), pos=1, neg=1, num_samples=4)
    train_loader = DataLoader(CacheDataset(train_items, Compose([*base, crop]), progress=False), batch_size=2, shuffle=True)
    val_loader = DataLoader(CacheDataset(val_items, Compose(base), progress=False), batch_size=1)
    model = UNet(2, 1, 2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2, norm=Norm.BATCH)
    loss_function = DiceLoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    dice = DiceMetric(include_background=False, reduction="mean")
    to_pred, to_label = AsDiscrete(argmax=True, to_onehot=2), AsDiscrete(to_onehot=2)

    def epoch() -> None:
        plain_epoch(model, train_loader, loss_function, optimizer)

    def validate() -> float:
        model.eval()
        with torch.no_grad():
            for batch in val_loader:
                outputs = sliding_window_inference(batch["image"], (160, 160), 4, model)
                dice(y_pred=[to_pred(o) for o in outputs], y=[to_label(label) for label in batch["label"]])
        value = float(dice.aggregate().item())
        dice.reset()
        return value

    return budgeted_loop(seconds, epoch, validate, every=4)


def plain_classification(datalist: Path, seconds: float) -> tuple[float, int]:
    import numpy as np
    import torch
    from monai.data import CacheDataset, DataLoader
    from monai.networks.nets import DenseNet121
    from monai.transforms import (
        Compose,
        EnsureChannelFirstd,
        LoadImaged,
        RandRotated,
        RandZoomd,
        Resized,
        ScaleIntensityd,
    )

    torch.manual_seed(SEED)
    train_items, val_items, classes = split(datalist, "classification")
    base = [LoadImaged("image"), EnsureChannelFirstd("image"), ScaleIntensityd("image"), Resized("image", (64, 64))]
    augment = [RandRotated("image", range_x=np.pi / 12, prob=0.5, keep_size=True), RandZoomd("image", min_zoom=0.9, max_zoom=1.1, prob=0.5)]
    train_loader = DataLoader(CacheDataset(train_items, Compose([*base, *augment]), progress=False), batch_size=8, shuffle=True)
    val_loader = DataLoader(CacheDataset(val_items, Compose(base), progress=False), batch_size=8)
    model = DenseNet121(spatial_dims=2, in_channels=1, out_channels=len(classes))
    loss_function = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)

    def epoch() -> None:
        plain_epoch(model, train_loader, loss_function, optimizer)

    def validate() -> float:
        model.eval()
        predicted, truth = [], []
        with torch.no_grad():
            for batch in val_loader:
                predicted.append(model(batch["image"]).argmax(dim=1))
                truth.append(batch["label"])
        p, t = torch.cat(predicted), torch.cat(truth)
        return float(np.mean([(p[t == c] == c).float().mean().item() for c in t.unique()]))

    return budgeted_loop(seconds, epoch, validate, every=1)


PLAIN = {"ct_bone": plain_segmentation, "orientation": plain_classification}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--task", action="append", choices=tuple(TASKS), help="the tasks to run (default: both)")
    args = parser.parse_args()
    from medtl.data.tasks import build_task

    load_before = os.getloadavg()
    rows = []
    for name in args.task or list(TASKS):
        task, target = TASKS[name]
        datalist = build_task(name, WORK / name)
        medtl = run_medtl(datalist, task, WORK / f"{name}-run", args.minutes)
        plain, plain_epochs = PLAIN[name](datalist, args.minutes * 60)
        rows.append({"task": name, "metric": medtl["best_metric_name"], "medtl": medtl["best_metric"], "medtl_epochs": medtl["epochs"], "plain": plain, "plain_epochs": plain_epochs, "target": target})
    load_after = os.getloadavg()
    print(f"budget {args.minutes:g} min per contender; load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)")
    print("| task | metric | medtl defaults | plain MONAI loop from scratch | medtl / plain | target | met |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        ratio = r["medtl"] / r["plain"] if r["plain"] else float("inf")
        met = "yes" if r["medtl"] >= r["target"] else "no"
        print(f"| {r['task']} | {r['metric']} | {r['medtl']:.4f} ({r['medtl_epochs']} epochs) | {r['plain']:.4f} ({r['plain_epochs']} epochs) | {ratio:.3f} | {r['target']} | {met} |")
    (WORK / "results.json").write_text(json.dumps({"load_before": load_before, "load_after": load_after, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

"""medtl's training epoch vs a plain hand-written MONAI loop: same model, data, batch, loss and optimiser.

Usage: python benchmarks/bench_train_overhead.py [--epochs 6] [--repeat 2]

For each of medtl's two 2D defaults on an offline real task (segmentation: ct_bone with the default
BasicUNet; classification: orientation with the default pretrained EfficientNet-Lite0), the same
loader (medtl's, cached in RAM, small sets repeated to 32 items an epoch as `medtl train` does) feeds
  plain  `for batch in loader: zero_grad; loss(model(x), y).backward(); step` (AdamW, same groups)
  medtl  the Trainer (events, cancel polling, LR schedule, loss bookkeeping, a checkpoint after every
         epoch), validating only after the last epoch.
An epoch's time is the wall time between the ends of epochs 1 and N-1, divided by N-2 (the first
epoch warms up; the last one validates). Contenders alternate, --repeat times; the best epoch time
of each is kept. Target: medtl / plain <= 1.05.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORK = REPO / "benchmarks" / "_work" / "overhead"
TASKS = {"ct_bone": "segmentation", "orientation": "classification"}


def setup(name: str) -> tuple[Any, Any, Any, Any]:
    """(spec, config, train loader, val loader) as `medtl train` chooses them for the task, on the CPU."""
    from medtl.data.datalist import load_datalist
    from medtl.data.dataset import build_loaders
    from medtl.data.tasks import build_task
    from medtl.workflow import defaults
    from medtl.workflow.train import repeat_to

    task = TASKS[name]
    datalist = load_datalist(build_task(name, WORK / name), task)
    profile = defaults.profile_data(datalist)
    outputs = len(datalist.classes) if task == "classification" else len(datalist.labels)
    spec = defaults.choose_spec(task, profile, outputs)
    preprocessing = defaults.choose_preprocessing(task, profile, spec, on_gpu=False)
    config = defaults.choose_train_config(task, preprocessing, epochs=None, time_limit_minutes=None, device="cpu", seed=0)
    train_loader, val_loader, _ = build_loaders(datalist, task, preprocessing, config.batch_size, cache="memory")
    return spec, config, repeat_to(train_loader, defaults.MIN_TRAIN_ITEMS_PER_EPOCH), val_loader


def fresh_model(spec: Any) -> Any:
    from medtl.models.spec import build_model
    from medtl.training.reproducibility import seed_everything
    from medtl.workflow import defaults

    seed_everything(0)
    model, _ = build_model(spec)
    defaults.follow_new_statistics(model)
    return model


def loss_for(task: str) -> Callable[[Any, Any], Any]:
    from medtl.training.losses import default_loss
    from medtl.workflow import defaults

    return defaults.segmentation_loss() if task == "segmentation" else default_loss(task)


def epoch_seconds(epoch_ends: list[float]) -> float:
    """Mean time of the epochs between the first and the last."""
    return (epoch_ends[-2] - epoch_ends[0]) / (len(epoch_ends) - 2)


def plain(spec: Any, config: Any, loader: Any, epochs: int) -> float:
    import torch

    from medtl.models.strategy import param_groups
    from medtl.training.device import wants_channels_last

    model = fresh_model(spec)
    memory_format = torch.channels_last if wants_channels_last(model, torch.device("cpu")) else torch.contiguous_format
    model.to(memory_format=memory_format)
    optimizer = torch.optim.AdamW(param_groups(model, spec, config.lr), lr=config.lr, weight_decay=config.weight_decay)
    loss_function = loss_for(config.task)
    model.train()
    ends = []
    for _ in range(epochs):
        for batch in loader:
            optimizer.zero_grad(set_to_none=True)
            images = batch["image"].as_subclass(torch.Tensor).contiguous(memory_format=memory_format)
            loss_function(model(images), batch["label"].as_subclass(torch.Tensor)).backward()
            optimizer.step()
        ends.append(time.perf_counter())
    return epoch_seconds(ends)


def medtl(spec: Any, config: Any, train_loader: Any, val_loader: Any, epochs: int) -> float:
    import dataclasses

    from medtl.models.strategy import epoch_hook, param_groups
    from medtl.training.events import EpochEnd, TrainEvent
    from medtl.training.run_folder import RunConfig
    from medtl.training.supervised import SupervisedObjective
    from medtl.training.trainer import Trainer

    model = fresh_model(spec)
    config = dataclasses.replace(config, epochs=epochs, validate_every=epochs, early_stopping_patience=None)
    ends: list[float] = []

    def on_event(event: TrainEvent) -> None:
        if isinstance(event, EpochEnd):
            ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as run_dir:
        objective = SupervisedObjective(
            config, model, train_loader, val_loader,
            loss_fn=loss_for(config.task) if config.task == "segmentation" else None,
            param_groups=param_groups(model, spec, config.lr), epoch_hook=lambda epoch: epoch_hook(model, spec, epoch),
        )  # fmt: skip
        Trainer(objective, RunConfig(config, spec.to_dict()), run_dir, on_event=on_event).fit()
    return epoch_seconds(ends)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if args.epochs < 3:
        parser.error("--epochs must be at least 3")
    import torch

    load_before = os.getloadavg()
    rows = []
    for name in TASKS:
        spec, config, train_loader, val_loader = setup(name)
        times: dict[str, list[float]] = {"plain": [], "medtl": []}
        for _ in range(args.repeat):
            times["plain"].append(plain(spec, config, train_loader, args.epochs))
            times["medtl"].append(medtl(spec, config, train_loader, val_loader, args.epochs))
        rows.append((name, spec.architecture, config.batch_size, len(train_loader), min(times["plain"]), min(times["medtl"])))
    load_after = os.getloadavg()
    print(f"CPU, {torch.get_num_threads()} threads; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; {args.epochs} epochs, best of {args.repeat}")
    print("| task | model | batch | steps/epoch | plain s/epoch | medtl s/epoch | medtl / plain |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, architecture, batch, steps, plain_s, medtl_s in rows:
        print(f"| {name} | {architecture} | {batch} | {steps} | {plain_s:.2f} | {medtl_s:.2f} | {medtl_s / plain_s:.3f} |")


if __name__ == "__main__":
    main()

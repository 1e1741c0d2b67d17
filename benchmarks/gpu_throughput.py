"""Mixed-precision training throughput on a GPU: medtl's Trainer vs a plain AMP loop, same model and data.

Usage: python benchmarks/gpu_throughput.py [--device cuda] [--seconds 40] [--smoke]

For a 3D SegResNet (patches 1x96x96x96, batch 2, Dice + cross-entropy) and a 2D DenseNet121
(1x224x224, batch 32, cross-entropy), both built from medtl's registry, on random tensors held on
the GPU (the figures are the training step, not the data pipeline):
  plain  `with autocast: loss = loss_fn(model(x), y)`, GradScaler when fp16, AdamW step;
         channels-last for the 2D net, as medtl does.
  medtl  the Trainer (device setup, AMP, micro-batch probe, events, LR schedule, checkpoint each
         epoch), validating once at the end.
Each contender trains for --seconds after a warm-up of 3 steps; images/s is counted from the
synchronised wall time, and peak memory is torch.cuda.max_memory_allocated for the contender alone.
Prints a Markdown table with the medtl / plain ratios. Needs CUDA (about 4 minutes in all on a
current GPU); --smoke runs tiny shapes on the CPU to check the script itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    task: str
    architecture: str
    spatial_dims: int
    shape: tuple[int, ...]
    batch: int
    outputs: int
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


CASES = (
    Case("3D SegResNet", "segmentation", "segresnet", 3, (96, 96, 96), 2, 2, {"init_filters": 16}),
    Case("2D DenseNet121", "classification", "densenet121", 2, (224, 224), 32, 2),
)
SMOKE = {"3D SegResNet": ((32, 32, 32), 1), "2D DenseNet121": ((64, 64), 2)}


def on_device_batches(case: Case, device: Any, steps: int) -> Any:
    """A DataLoader of ``steps`` identical random batches already on the device."""
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator(device="cpu").manual_seed(0)
    image = torch.randn((case.batch, 1, *case.shape), generator=generator).to(device)
    if case.task == "segmentation":
        label = (image > 0.5).long()
    else:
        label = torch.randint(0, case.outputs, (case.batch,), generator=generator).to(device)
    return DataLoader([{"image": image, "label": label}] * steps, batch_size=None)


def build(case: Case) -> Any:
    from medtl.models.spec import ModelSpec, build_model

    model, _ = build_model(ModelSpec(case.task, case.architecture, case.spatial_dims, 1, case.outputs, None, arch_params=case.params))
    return model


def loss_for(case: Case) -> Callable[..., Any]:
    from medtl.training.losses import default_loss
    from medtl.workflow.defaults import segmentation_loss

    return segmentation_loss() if case.task == "segmentation" else default_loss(case.task)


def synchronise(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain(case: Case, device: Any, seconds: float) -> tuple[float, float]:
    """(images/s, peak GiB) of a hand-written AMP loop."""
    import torch

    from medtl.training.device import select_amp, wants_channels_last

    model = build(case).to(device)
    if wants_channels_last(model, device):
        model = model.to(memory_format=torch.channels_last)
    amp = select_amp(device, "auto")
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = loss_for(case)
    if isinstance(loss_fn, torch.nn.Module):
        loss_fn = loss_fn.to(device)
    batch = next(iter(on_device_batches(case, device, 1)))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = loss_fn(model(batch["image"]), batch["label"])
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(3):
        step()
    synchronise(device)
    reset_peak(device)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        steps += 1
        if steps % 5 == 0:
            synchronise(device)
    synchronise(device)
    return steps * case.batch / (time.perf_counter() - started), peak_gib(device)


def medtl(case: Case, device: Any, seconds: float, steps_per_second: float) -> tuple[float, float]:
    """(images/s, peak GiB) of the Trainer over about ``seconds`` (epochs sized from the plain loop's pace)."""
    from medtl.training.config import TrainConfig
    from medtl.training.events import StepProgress, TrainEvent
    from medtl.training.run_folder import RunConfig
    from medtl.training.supervised import SupervisedObjective
    from medtl.training.trainer import Trainer

    steps_per_epoch = max(5, round(steps_per_second * seconds / 4))
    loader = on_device_batches(case, device, steps_per_epoch)
    marks: dict[str, float] = {}
    images = [0]

    def on_event(event: TrainEvent) -> None:
        """Time from the end of step 3 to the last training step (the epochs' checkpoints included)."""
        if not isinstance(event, StepProgress):
            return
        if (event.epoch, event.step) == (1, 3):
            synchronise(device)
            reset_peak(device)
            marks["start"] = time.perf_counter()
        elif "start" in marks:
            images[0] += case.batch
            if (event.epoch, event.step) == (4, steps_per_epoch):
                synchronise(device)
                marks["end"] = time.perf_counter()

    config = TrainConfig(
        task=case.task, epochs=4, lr=1e-4, batch_size=case.batch, device=device.type, validate_every=4,
        early_stopping_patience=None, val_roi_size=case.shape if case.spatial_dims == 3 else None,
    )
    val = on_device_batches(case, device, 1)
    with tempfile.TemporaryDirectory() as run_dir:
        loss = loss_for(case) if case.task == "segmentation" else None
        Trainer(SupervisedObjective(config, build(case), loader, val, loss_fn=loss), RunConfig(config), run_dir, on_event=on_event).fit()
    return images[0] / (marks["end"] - marks["start"]), peak_gib(device)


def reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: Any) -> float:
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=40.0, help="training time per contender and model")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU: checks the script, measures nothing")
    args = parser.parse_args()
    import torch

    if args.smoke:
        args.device, args.seconds = "cpu", min(args.seconds, 2.0)
    elif not torch.cuda.is_available():
        sys.exit("gpu_throughput: no CUDA GPU here; nothing measured (use --smoke to check the script on the CPU)")
    device = torch.device(args.device)
    from medtl.training.device import device_name, select_amp

    amp = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "off"}[select_amp(device, "auto")]
    print(f"{device_name(device)}, torch {torch.__version__}, AMP {amp}, {args.seconds:g} s per contender")
    print("| model | input | batch | plain img/s | medtl img/s | medtl / plain | plain peak GiB | medtl peak GiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for case in CASES:
        if args.smoke:
            shape, batch = SMOKE[case.name]
            case = dataclasses.replace(case, shape=shape, batch=batch)
        plain_rate, plain_peak = plain(case, device, args.seconds)
        medtl_rate, medtl_peak = medtl(case, device, args.seconds, plain_rate / case.batch)
        shape = "x".join(str(side) for side in case.shape)
        print(
            f"| {case.name} | {shape} | {case.batch} | {plain_rate:.1f} | {medtl_rate:.1f} | {medtl_rate / plain_rate:.3f} "
            f"| {plain_peak:.2f} | {medtl_peak:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

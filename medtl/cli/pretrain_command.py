"""`medtl pretrain`: learn a backbone from unlabelled images (self-supervised) into a run folder; Ctrl-C checkpoints."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from medtl.cli.train_command import INTERRUPTED, TrainConsole, _duration, interrupt_cancels
from medtl.training.config import DEVICES

if TYPE_CHECKING:
    from medtl.training.events import TrainEvent
    from medtl.training.run_summary import RunSummary

FLAGS = {
    "paths": "PATH", "out_dir": "--out", "model": "--model", "epochs": "--epochs", "time_limit_minutes": "--time-limit", "device": "--device",
    "resume": "--resume", "batch_size": "--batch-size", "catalog": "--catalog",
}  # fmt: skip
"""The flag that sets each :class:`~medtl.workflow.pretrain.PretrainRequest` field, named in front of its errors."""
HELP = "learn a backbone from unlabelled images (self-supervised) into a run folder that `train --weights run:RUN` starts from"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medtl.models.registry import ARCHITECTURES

    two_d = [name for name, architecture in ARCHITECTURES.items() if 2 in architecture.dims]
    parser.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="DICOM folders (every image series under them), NIfTI or picture files")
    parser.add_argument("--out", type=Path, required=True, metavar="RUN", help="the run folder to write (config, backbone weights, metrics, model card)")
    parser.add_argument("--model", choices=two_d, metavar="NAME", help="2D architecture whose backbone to learn (default basicunet, the 2D segmentation default; see `medtl models`)")
    parser.add_argument("--epochs", type=int, metavar="N", help="number of epochs (with --time-limit: at most N; default 50 without a time limit)")
    parser.add_argument("--time-limit", type=float, metavar="MIN", dest="time_limit", help="budget in minutes; the schedule is planned to fill it")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where to train (default: CUDA, then Apple MPS, then CPU)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in RUN with its stored settings (give the same PATHs)")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="slice pairs per step (default 32)")
    parser.add_argument("--crop-size", type=int, default=96, metavar="PX", help="side of the augmented views in pixels (default 96)")
    parser.add_argument("--slices-per-series", type=int, default=32, metavar="N", help="slices taken from each series or volume (default 32)")
    parser.add_argument("--max-slices", type=int, default=4000, metavar="N", help="at most this many slices in all, taken from the patients in turn (default 4000)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the initialisation, the order and the views (default 0)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--catalog", type=Path, metavar="DB", help="catalog file that remembers scanned DICOM files (default: $MEDTL_CATALOG or the user cache)")
    where.add_argument("--no-catalog", action="store_true", help="read every DICOM header and remember nothing")


class PretrainConsole(TrainConsole):
    """:class:`TrainConsole` with a pretraining run's final line (it has a loss, not a best validation metric)."""

    def __call__(self, event: TrainEvent) -> None:
        from medtl.training.events import Finished

        if isinstance(event, Finished):
            s = event.summary
            final_loss = s.details.get("final_loss")
            loss = "none" if final_loss is None else f"{final_loss:.4f}"
            self.line(f"finished ({s.stopped_because}): {s.epochs} epoch(s) in {_duration(s.seconds)}, final loss {loss}")
            return
        super().__call__(event)


def run(args: argparse.Namespace) -> int:
    from medtl.dicom.catalog import Catalog
    from medtl.errors import MedtlError
    from medtl.pretrain.pretrainer import PretrainSettings
    from medtl.pretrain.views import ViewSettings
    from medtl.progress import Cancelled, CancelToken
    from medtl.workflow.pretrain import PretrainRequest, pretrain

    if args.slices_per_series < 1:
        raise MedtlError("--slices-per-series must be at least 1")
    settings = PretrainSettings(views=ViewSettings(crop_size=args.crop_size), slices_per_series=args.slices_per_series, max_slices=args.max_slices)
    request = PretrainRequest(
        tuple(args.paths), args.out, model=args.model, epochs=args.epochs, time_limit_minutes=args.time_limit, device=args.device,
        resume=args.resume, seed=args.seed, batch_size=args.batch_size, settings=settings,
    )  # fmt: skip
    console = PretrainConsole(sys.stderr)
    cancel = CancelToken()
    catalog = None if args.no_catalog else Catalog(args.catalog)
    try:
        with interrupt_cancels(cancel, console, "pretrain"):
            summary = pretrain(request, console, cancel, catalog=catalog)
    except Cancelled:
        console.line("medtl pretrain: interrupted before training started; nothing to resume")
        return INTERRUPTED
    finally:
        if catalog is not None:
            catalog.close()
    if summary.cancelled:
        console.line(f"medtl pretrain: interrupted; the run is checkpointed in {args.out}. Continue it with:\n  {resume_command(args)}")
        return INTERRUPTED
    print(final_summary(summary))
    return 0


def resume_command(args: argparse.Namespace) -> str:
    words = ["medtl", "pretrain", *map(str, args.paths), "--out", str(args.out), "--resume"]
    return " ".join(shlex.quote(word) for word in words)


def final_summary(summary: RunSummary) -> str:
    """The lines printed on stdout: where the run is, what it learned from, and how to fine-tune from it."""
    from medtl.models.spec import ModelSpec
    from medtl.pretrain.pretrainer import fine_tune_command
    from medtl.training.run_folder import RunFolder

    details = summary.details
    data = details["data"]
    lines = [
        f"run folder: {summary.run_dir}",
        (
            f"self-supervised {details['architecture']} backbone from {data['slices']} slices of {data['volumes']} volume(s), {data['patients']} patient(s); "
            f"{summary.epochs} epoch(s) in {_duration(summary.seconds)} on {summary.device} (stopped: {summary.stopped_because})"
        ),
    ]
    if data["skipped_inputs"]:
        lines.append(f"{data['skipped_inputs']} input(s) skipped (listed above)")
    if details["weights"] is not None and summary.run_dir is not None:
        spec = ModelSpec.from_dict(RunFolder(summary.run_dir).read_config().model)
        lines.append(f"fine-tune from it: {fine_tune_command(spec, details['weights'])}")
    return "\n".join(lines)

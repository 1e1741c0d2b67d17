"""`medtl train`: fine-tune a network on a datalist into a run folder, with a progress bar; Ctrl-C checkpoints.

``medtl train --project DIR --out RUN`` trains on a project's labels (written into ``RUN/project-data``).
``medtl train --resume RUN`` continues an interrupted run with its stored settings and datalist (the
older ``--out RUN --resume`` works too); ``medtl train --init-from RUN --out NEW`` trains again from a
finished run's best model, on its datalist unless ``--datalist`` names another.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from medtl.learning_task import TASKS
from medtl.models.strategy import STRATEGIES
from medtl.training.config import DEVICES

if TYPE_CHECKING:
    from medtl.progress import CancelToken
    from medtl.training.events import StepProgress, TrainEvent
    from medtl.workflow.train import TrainResult

HELP = "fine-tune a pretrained network on a datalist or a project's labels (classification or segmentation) into a run folder"
INTERRUPTED = 130
PLAIN_STEP_INTERVAL_S = 10.0
_BAR_WIDTH = 20
FLAGS = {
    "datalist": "--datalist", "task": "--task", "out_dir": "--out", "model": "--model", "weights": "--weights", "strategy": "--strategy",
    "epochs": "--epochs", "time_limit_minutes": "--time-limit", "device": "--device", "resume": "--resume", "init_from": "--init-from",
    "project": "--project",
}  # fmt: skip
"""The flag that sets each :class:`~medtl.workflow.train.TrainRequest` field, named in front of its errors."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--datalist", type=Path, metavar="DL.json", help="MSD-style datalist JSON (training, optional validation); resuming or with --init-from: the run's")
    parser.add_argument("--project", type=Path, metavar="DIR", help="train on an annotation project's labels instead of a datalist (written into RUN/project-data)")
    parser.add_argument("--task", choices=TASKS, help="what the labels are: class names or mask files; resuming or with --init-from: the run's")
    parser.add_argument("--out", type=Path, metavar="RUN", help="the run folder to write (config, metrics, best model, model card, per-case results)")
    parser.add_argument("--model", metavar="NAME", help="architecture (see `medtl models`), or medsam: adapt the prompt model to the datalist's one labelled image; default: chosen for the data")
    parser.add_argument("--weights", metavar="SOURCE", help="pretrained weights: FILE, BUNDLE, a packaged name, run:RUN, URL#sha256=HEX, or none")
    parser.add_argument("--strategy", choices=tuple(STRATEGIES), help="what trains: linear_probe, last_k, full (default) or gradual")
    parser.add_argument("--epochs", type=int, metavar="N", help="number of epochs (with --time-limit: at most N)")
    parser.add_argument("--time-limit", type=float, metavar="MIN", dest="time_limit", help="training budget in minutes; the schedule is planned to fill it")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where to train (default: CUDA, then Apple MPS, then CPU)")
    parser.add_argument("--compare-scratch", action="store_true", help="also train the same architecture from scratch on the same budget and compare")
    parser.add_argument("--resume", nargs="?", const=True, type=Path, metavar="RUN", help="continue the interrupted run in RUN (or in --out) with its stored settings")
    parser.add_argument("--init-from", type=Path, metavar="RUN", dest="init_from", help="train again from the best model of the finished run RUN (its network and settings) into --out")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the split, the initialisation and the augmentation (default 0)")


def run(args: argparse.Namespace) -> int:
    from medtl.progress import Cancelled, CancelToken
    from medtl.training import distributed
    from medtl.workflow.train import TrainRequest, train

    out = run_folder(args)
    request = TrainRequest(
        args.datalist, args.task, out, model=args.model, weights=args.weights, strategy=args.strategy, epochs=args.epochs,
        time_limit_minutes=args.time_limit, device=args.device, compare_scratch=args.compare_scratch, resume=args.resume is not None,
        seed=args.seed, init_from=args.init_from, project=args.project,
    )  # fmt: skip
    is_main = distributed.init_from_env().is_main
    console = TrainConsole(sys.stderr if is_main else None)
    cancel = CancelToken()
    try:
        with interrupt_cancels(cancel, console):
            result = train(request, console, cancel)
    except Cancelled:
        console.line("medtl train: interrupted before training started; nothing to resume")
        return INTERRUPTED
    if result.cancelled:
        console.line(f"medtl train: interrupted; the run is checkpointed in {out}. Continue it with:\n  {resume_command(out)}")
        return INTERRUPTED
    if is_main:
        print(final_summary(result))
    return 0


def run_folder(args: argparse.Namespace) -> Path:
    """The run folder: ``--resume RUN``'s, else ``--out``'s (empty when neither names one: the request says so)."""
    from medtl.errors import InvalidRequest

    if isinstance(args.resume, Path):
        if args.out is not None and args.out != args.resume:
            raise InvalidRequest("resume", f"two run folders given ({args.resume} and {args.out}); name the run to resume once")
        return args.resume
    return args.out if args.out is not None else Path("")


def resume_command(run: Path) -> str:
    """The command that continues the run in ``run`` (a comparison folder included): its settings and datalist are stored there."""
    return " ".join(shlex.quote(word) for word in ("medtl", "train", "--resume", str(run)))


@contextlib.contextmanager
def interrupt_cancels(cancel: CancelToken, console: TrainConsole, command: str = "train", stopping: str = "stopping after this step and saving a checkpoint") -> Iterator[None]:
    """Ctrl-C cancels (the job stops after the current step; ``stopping`` says what happens then); a second Ctrl-C quits at once."""

    def on_interrupt(signum: int, frame: Any) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        console.line(f"medtl {command}: {stopping} (Ctrl-C again to quit at once)")

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _metrics_text(metrics: dict[str, Any]) -> str:
    return "  ".join(f"{name} {value:.4f}" for name, value in metrics.items() if isinstance(value, float))


class TrainConsole:
    """Turns training events into terminal output: a redrawn progress bar on a TTY, a plain line every
    :data:`PLAIN_STEP_INTERVAL_S` seconds otherwise; log lines, one line per epoch and one per finished run."""

    def __init__(self, stream: TextIO | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and stream.isatty())
        self.clock = clock
        self._bar_shown = False
        self._last_plain: float | None = None

    def __call__(self, event: TrainEvent) -> None:
        from medtl.training.events import EpochEnd, Finished, LogLine, StepProgress

        if isinstance(event, StepProgress):
            self._step(event)
        elif isinstance(event, EpochEnd):
            best = "  (best)" if event.is_best else ""
            self.line(f"epoch {event.epoch}: train loss {event.train_loss:.4f}  {_metrics_text(event.metrics)}{best}  [{event.seconds:.1f} s]")
        elif isinstance(event, LogLine):
            self.line(event.message)
        elif isinstance(event, Finished):
            s = event.summary
            self.line(f"finished ({s.stopped_because}): {s.epochs} epoch(s) in {_duration(s.seconds)}, best {s.best_metric_name} {s.best_text()}")

    def line(self, text: str) -> None:
        if self.stream is None:
            return
        if self._bar_shown:
            self.stream.write("\r\033[K")
            self._bar_shown = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def _step(self, event: StepProgress) -> None:
        if self.stream is None:
            return
        eta = "--:--" if event.eta_seconds is None else _duration(event.eta_seconds)
        text = f"epoch {event.epoch} step {event.step}/{event.steps_per_epoch}  loss {event.loss:.4f}  {event.images_per_second:.1f} img/s  ETA {eta}"
        if self.tty:
            filled = round(_BAR_WIDTH * event.step / max(1, event.steps_per_epoch))
            self.stream.write(f"\r\033[K[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {text}")
            self.stream.flush()
            self._bar_shown = True
            return
        now = self.clock()
        if self._last_plain is None or now - self._last_plain >= PLAIN_STEP_INTERVAL_S:
            self._last_plain = now
            self.line(text)


def final_summary(result: TrainResult) -> str:
    """The lines printed on stdout when training ends: where, how good, and (with a comparison) whether transfer helped."""
    summary = result.summary
    name, best = summary.best_metric_name, summary.best_metric
    when = f"epoch {summary.best_epoch} of {summary.epochs}, {_duration(summary.seconds)} on {summary.device}"
    lines = [
        f"run folder: {result.out_dir}",
        f"best {name}: {'none' if best is None else f'{best:.4f}'} ({when}, stopped: {summary.stopped_because})",
        f"pretrained weights: {summary.pretrained_source or 'none (trained from scratch)'}",
    ]
    zero_shot, adapted = summary.details.get("zero_shot_dice"), summary.details.get("adapted_dice")
    if zero_shot is not None and adapted is not None:
        lines.append(f"held-out slices, box-prompted Dice: zero-shot {zero_shot:.4f}, adapted {adapted:.4f}; prompt with --model run:{result.out_dir}")
    comparison = result.comparison
    if comparison is not None:
        scratch = comparison.scratch.best_metric
        delta = comparison.delta
        verdict = "no verdict" if delta is None else f"transfer {'helped' if delta > 0 else 'did not help'} ({name} {delta:+.4f})"
        lines.append(f"from scratch: best {name} {'none' if scratch is None else f'{scratch:.4f}'}; {verdict}; see comparison.md")
    return "\n".join(lines)

"""`medtl demo`: the whole product, headless, on the bundled sample study: fine-tune a pretrained network and
the same network from scratch on a few labelled slices, predict, and write overlays and a report."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medtl.training.config import DEVICES

if TYPE_CHECKING:
    from medtl.cli.train_command import TrainConsole
    from medtl.progress import CancelToken

HELP = "fine-tune a bundled pretrained network and the same from scratch on the sample study; overlays and a report"
INTERRUPTED = 130
DEFAULT_OUT = Path("medtl-demo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medtl.demo.runner import DEFAULT_MINUTES  # light: the runner imports torch only inside its functions

    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help=f"folder for the report, overlays and runs (default ./{DEFAULT_OUT}); new, empty or an earlier demo's")
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, metavar="M", help=f"budget of the whole demo in minutes; the two trainings share what the other steps leave (default {DEFAULT_MINUTES:g})")
    parser.add_argument("--epochs", type=int, metavar="N", help="at most N epochs per training (default: as many as the budget holds)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where to train and predict (default: CUDA, then Apple MPS, then CPU)")


def run(args: argparse.Namespace) -> int:
    from medtl.cli.train_command import TrainConsole
    from medtl.demo.runner import run_demo
    from medtl.progress import Cancelled, CancelToken

    console = TrainConsole(sys.stderr)
    cancel = CancelToken()
    started = time.monotonic()

    def stage(done: int, total: int, message: str = "") -> None:
        prefix = f"[{done + 1}/{total}]" if done < total else "[done]"
        console.line(f"{prefix} {message}  ({time.monotonic() - started:.0f} s)")

    try:
        with _interrupt_cancels(cancel, console):
            result = run_demo(args.out, minutes=args.minutes, epochs=args.epochs, device=args.device, progress=stage, on_event=console, cancel=cancel)
    except Cancelled:
        console.line(f"medtl demo: interrupted; what was written so far is in {args.out} (run the demo again to start over)")
        return INTERRUPTED
    print(f"report: {result.report_md}")
    print(result.verdict)
    for note in result.caveats:
        print(f"caveat: {note}")
    return 0


@contextlib.contextmanager
def _interrupt_cancels(cancel: CancelToken, console: TrainConsole) -> Iterator[None]:
    """Ctrl-C cancels (the demo stops after the current training step or stage); a second Ctrl-C quits at once."""

    def on_interrupt(signum: int, frame: Any) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        console.line("medtl demo: stopping after this step (Ctrl-C again to quit at once)")

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

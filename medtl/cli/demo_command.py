"""`medtl demo`: the whole product, headless, on the bundled sample study: fine-tune a pretrained network and
the same network from scratch on a few labelled slices, predict, and write overlays and a report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from medtl.training.config import DEVICES

FLAGS = {"out_dir": "--out", "minutes": "--minutes"}
"""The flag that sets each setting of the demo, named in front of its errors."""
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
    from medtl.cli.train_command import TrainConsole, interrupt_cancels
    from medtl.demo.runner import run_demo
    from medtl.progress import Cancelled, CancelToken

    console = TrainConsole(sys.stderr)
    cancel = CancelToken()
    started = time.monotonic()

    def stage(done: int, total: int, message: str = "") -> None:
        prefix = f"[{done + 1}/{total}]" if done < total else "[done]"
        console.line(f"{prefix} {message}  ({time.monotonic() - started:.0f} s)")

    try:
        with interrupt_cancels(cancel, console, "demo", "stopping after this step"):
            result = run_demo(args.out, minutes=args.minutes, epochs=args.epochs, device=args.device, progress=stage, on_event=console, cancel=cancel)
    except Cancelled:
        console.line(f"medtl demo: interrupted; what was written so far is in {args.out} (run the demo again to start over)")
        return INTERRUPTED
    print(f"report: {result.report_md}")
    print(result.verdict)
    for note in result.caveats:
        print(f"caveat: {note}")
    return 0


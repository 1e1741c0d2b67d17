"""`medtl demo`: the whole product, headless, on the bundled sample study: a learning curve over a few annotated slices,
a pretrained network against the same from scratch, with overlays and a report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from medtl.training.config import DEVICES

FLAGS = {"out_dir": "--out", "minutes": "--minutes", "epochs": "--epochs", "counts": "--slices", "seeds": "--seeds"}
"""The flag that sets each setting of the demo, named in front of its errors."""
HELP = "grey/white matter from a few annotated slices of the sample study: pretrained vs from scratch, a learning curve and a report"
INTERRUPTED = 130
DEFAULT_OUT = Path("medtl-demo")
def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medtl.demo.runner import DEFAULT_COUNTS, DEFAULT_MINUTES, DEFAULT_SEEDS  # light: the runner imports torch only inside its functions

    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help=f"folder for the report, overlays and runs (default ./{DEFAULT_OUT}); new, empty or an earlier demo's")
    parser.add_argument(
        "--minutes", type=float, metavar="M",
        help=f"budget of the whole demo in minutes, from which every training's epochs are planned (default {DEFAULT_MINUTES:g}; none with --epochs alone)",
    )  # fmt: skip
    parser.add_argument("--epochs", type=int, metavar="N", help="epochs per training: at most N within --minutes, exactly N without it")
    parser.add_argument(
        "--slices", type=int, nargs="+", metavar="K", default=list(DEFAULT_COUNTS),
        help=f"numbers of annotated axial slices on the learning curve (default {' '.join(map(str, DEFAULT_COUNTS))})",
    )  # fmt: skip
    parser.add_argument("--seeds", type=int, default=len(DEFAULT_SEEDS), metavar="S", help=f"seeds per number of slices; the spread over them judges the difference (default {len(DEFAULT_SEEDS)})")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where to train and predict (default: CUDA, then Apple MPS, then CPU)")


def run(args: argparse.Namespace) -> int:
    from medtl.cli.train_command import TrainConsole, interrupt_cancels
    from medtl.demo.runner import DEFAULT_MINUTES, run_demo
    from medtl.errors import InvalidRequest
    from medtl.progress import Cancelled, CancelToken

    console = TrainConsole(sys.stderr)
    cancel = CancelToken()
    started = time.monotonic()
    minutes = args.minutes if args.minutes is not None or args.epochs is not None else DEFAULT_MINUTES
    if args.seeds < 1:
        raise InvalidRequest("seeds", f"give at least one seed, not {args.seeds}")

    def stage(done: int, total: int, message: str = "") -> None:
        prefix = f"[{done + 1}/{total}]" if done < total else "[done]"
        console.line(f"{prefix} {message}  ({time.monotonic() - started:.0f} s)")

    try:
        with interrupt_cancels(cancel, console, "demo", "stopping after this step"):
            result = run_demo(
                args.out, minutes=minutes, epochs=args.epochs, counts=args.slices, seeds=tuple(range(args.seeds)),
                device=args.device, progress=stage, on_event=console, cancel=cancel,
            )  # fmt: skip
    except Cancelled:
        console.line(f"medtl demo: interrupted; what was written so far is in {args.out} (run the demo again to start over)")
        return INTERRUPTED
    print(f"report: {result.report_md}")
    print(result.verdict)
    for note in result.caveats:
        print(f"caveat: {note}")
    return 0

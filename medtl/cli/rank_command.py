"""`medtl rank --run RUN INPUT...`: which images to label next, most useful first, with the score that ranks them.

One line per input on stdout (``rank  score  input``, and for segmentation the most uncertain slice),
or with ``--json`` the whole ranking as one JSON object (:meth:`medtl.inference.rank.Ranking.to_dict`).
An input that cannot be read or predicted on is reported on stderr in one line (and in the JSON's
``failed``); the others are ranked, and the exit status is then 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medtl.training.config import DEVICES

RANDOM, UNCERTAINTY = "random", "uncertainty"
HELP = "rank images by how much labelling them would help a trained run (model uncertainty, or random as the baseline)"
FLAGS = {"run_dir": "--run", "method": "--method", "seed": "--seed", "device": "--device", "batch_size": "--batch-size"}
"""The flag that sets each :class:`~medtl.inference.rank.RankRequest` field, named in front of its errors."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="unlabelled DICOM series folders or files, NIfTI, PNG/JPEG/TIFF images")
    parser.add_argument("--run", type=Path, required=True, metavar="RUN", help="the run folder of a finished training")
    parser.add_argument(
        "--method", choices=(RANDOM, UNCERTAINTY, "tta", "mc"), default=RANDOM,
        help="a seeded shuffle (random, the default: it beat the model's uncertainty when measured, see benchmarks/RESULTS.md), "
        "the model's uncertainty (uncertainty: tta when it was trained with flips, else mc), test-time flips (tta) or MC dropout (mc)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the random order (default 0)")
    parser.add_argument("--json", action="store_true", help="print the ranking as one JSON object")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where the network runs (default: auto)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="slices or windows per forward pass (default: 8)")


def run(args: argparse.Namespace) -> int:
    from medtl.cli.scan_command import TerminalProgress
    from medtl.inference.rank import RankRequest, rank

    method = None if args.method == UNCERTAINTY else args.method
    request = RankRequest(args.run, tuple(args.inputs), method, args.seed, args.device, args.batch_size)
    progress = TerminalProgress() if sys.stderr.isatty() else None
    ranking = rank(request, progress)
    if progress is not None:
        progress.clear()
    for failure in ranking.failed:
        print(f"medtl rank: error: {failure.reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(ranking.to_dict(), indent=1))
    else:
        print(f"# {ranking.method}: {ranking.score}")
        for row in ranking.ranked:
            where = "" if row.most_uncertain_slice is None else f"  (most uncertain slice: {row.most_uncertain_slice})"
            print(f"{row.rank:>4}  {row.score:.4f}  {row.input}{where}")
    return 2 if ranking.failed else 0

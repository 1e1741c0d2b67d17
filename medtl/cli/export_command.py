"""`medtl export --run RUN --format bundle|torchscript --out PATH`: a run's model for other tools."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export a run's model as a MONAI bundle folder or a TorchScript file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, metavar="RUN", help="the run folder of a finished training")
    parser.add_argument("--format", choices=("bundle", "torchscript"), required=True, help="bundle: a MONAI bundle folder; torchscript: one .ts/.pt file")
    parser.add_argument("--out", type=Path, required=True, metavar="PATH", help="the bundle folder (new or empty) or the TorchScript file to write")


def run(args: argparse.Namespace) -> int:
    if args.format == "bundle":
        from medtl.export.bundle import export_bundle

        print(f"{export_bundle(args.run, args.out)}: MONAI bundle (configs/, models/model.pt)")
        return 0
    from medtl.export.torchscript import export_torchscript

    result = export_torchscript(args.run, args.out)
    print(f"{result.path}: TorchScript ({result.method}), max difference from the original {result.max_abs_difference:.2g}")
    return 0

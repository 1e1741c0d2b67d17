"""`medtl app [PATH] [--screenshot FILE]`: the desktop app (Qt is imported only here, inside `run`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "open the desktop viewer on a DICOM folder or series (default: the sample study)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, nargs="?", metavar="PATH", help="a DICOM folder or series (default: the sample study)")
    parser.add_argument(
        "--screenshot", type=Path, metavar="FILE", help="save a PNG of the window once the first image series is shown, then exit"
    )


def run(args: argparse.Namespace) -> int:
    from medtl.errors import MedtlError

    if not args.verbose:  # pydicom logs the deviations it repairs, quoting values; the Problems panel shows real ones
        logging.getLogger("pydicom").setLevel(logging.ERROR)
        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)  # the PACS dialogs say what failed, naming the node

    if args.path is not None and not args.path.exists():
        raise MedtlError(f"{args.path}: no such file or folder")
    from ui.app import run_app

    return run_app(args.path, args.screenshot)

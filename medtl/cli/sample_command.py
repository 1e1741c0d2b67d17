"""`medtl sample`: where the bundled sample DICOM lies."""

from __future__ import annotations

import argparse

HELP = "print the location of the bundled sample DICOM folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", action="store_true", help="print only the path (for scripts)")


def run(args: argparse.Namespace) -> int:
    from medtl.sample import sample_dicom_dir

    path = sample_dicom_dir()
    print(path if args.path else f"Sample DICOM folder (several patients, CT/MR/CR series): {path}")
    return 0

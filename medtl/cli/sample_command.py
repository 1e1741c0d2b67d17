"""`medtl sample`: where the bundled sample DICOM lies (`--study`: the real-anatomy sample study, built on first use)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

HELP = "print the location of the bundled sample DICOM folder, or (--study) of the real-anatomy sample study"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", action="store_true", help="print only the path (for scripts)")
    parser.add_argument(
        "--study",
        action="store_true",
        help="the real-anatomy sample study instead (MNI152 brain MR series with a brain mask), built on first use",
    )


def run(args: argparse.Namespace) -> int:
    if args.study:
        from medtl.sample_study import sample_study_dir

        path = sample_study_dir(progress=_stderr_progress())
        print(path if args.path else f"Sample study (MNI152 brain MR series, label labels/brain.nii.gz): {path}")
        return 0
    from medtl.sample import sample_dicom_dir

    path = sample_dicom_dir()
    print(path if args.path else f"Sample DICOM folder (several patients, CT/MR/CR series): {path}")
    return 0


def _stderr_progress() -> Callable[[int, int, str], None]:
    """A progress callback that prints one line when a build starts (nothing when the study is already built)."""
    started = False

    def progress(done: int, total: int, message: str = "") -> None:
        nonlocal started
        if not started:
            started = True
            print("building the sample study (once, a few seconds)…", file=sys.stderr, flush=True)

    return progress

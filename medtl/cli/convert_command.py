"""`medtl convert`: one DICOM series -> NIfTI, in modality units on its true world grid."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from medtl.dicom.volume import Volume

HELP = "convert a DICOM series (file or folder) to NIfTI in modality units on its world grid"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, metavar="PATH", help="a DICOM file, or a folder holding the series")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="the NIfTI file to write (.nii or .nii.gz)")
    parser.add_argument("--series", metavar="SERIES_UID", help="the series to convert when PATH holds several")


def run(args: argparse.Namespace) -> int:
    import nibabel

    from medtl.atomic import atomic_path
    from medtl.dicom.series import load_path
    from medtl.errors import MedtlError

    if not args.output.name.endswith((".nii", ".nii.gz")):
        raise MedtlError(f"{args.output}: the output must end in .nii or .nii.gz")
    volume = load_path(args.path, series_uid=args.series)
    with atomic_path(args.output) as tmp:
        nibabel.save(volume.to_nifti(), tmp)
    for warning in volume.warnings:
        print(f"medtl convert: warning: {warning}", file=sys.stderr)
    print(summary(args.output, volume))
    return 0


def summary(output: Path, volume: Volume) -> str:
    """One line: where, size (x, y, z), spacing, orientation (axis codes, nearest ones if oblique), dtype, warnings."""
    import nibabel
    import numpy as np

    z, y, x = volume.shape
    codes = "".join(nibabel.aff2axcodes(volume.affine_ras()))
    oblique = " (oblique)" if np.abs(volume.direction).max(axis=0).min() < 1 - 1e-6 else ""
    spacing = " x ".join(f"{s:.4g}" for s in volume.spacing)
    channels = " RGB" if volume.is_rgb else ""
    units = f" {volume.metadata['units']}" if volume.metadata.get("units") else ""
    warnings = f": {'; '.join(volume.warnings)}" if volume.warnings else ""
    return (
        f"{output}: {x} x {y} x {z}{channels} voxels, spacing {spacing} mm, orientation {codes}{oblique}, "
        f"{volume.array.dtype}{units}, {len(volume.warnings)} warning(s){warnings}"
    )

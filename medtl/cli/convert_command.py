"""`medtl convert`: one DICOM series -> NIfTI, in modality units on its true world grid."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from medtl.dicom.volume import Volume

# pydicom imports these at start-up (about 120 ms) only to download its example files (requests, urllib, tqdm's
# progress bars), to list its example files (pydicom.examples), for its deprecated pixel data handlers (the one for
# pylibjpeg looks up its plugins again; medtl decodes through pydicom.pixels) or to convert colour spaces with
# Pillow's colour management; converting a series never uses them.
PYDICOM_UNUSED_MODULES = (
    "requests", "urllib.request", "tqdm", "pydicom.examples", "pydicom.pixel_data_handlers.pylibjpeg_handler", "PIL.ImageCms",
)  # fmt: skip

PLUGIN_PACKAGES = ("pylibjpeg", "PIL", "jpeg_ls", "gdcm")
"""What pydicom's pixel-data plugins import to probe themselves as pydicom is imported (pylibjpeg looks its own plugins up
among the entry points of every installed package): 30-60 ms, of use only to decode compressed pixel data. A `medtl convert`
that ends its process, given uncompressed files only, imports pydicom with them hidden: for the rest of the process
pydicom counts those plugins as missing, and nothing there decodes compressed pixel data."""
UNCOMPRESSED_SYNTAXES = frozenset(("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"))
"""Implicit and explicit VR little endian, explicit VR big endian, deflated: decoded by pydicom itself."""
DICOMDIR = "1.2.840.10008.1.3.10"

SINGLE_THREADED_BLAS = {"OPENBLAS_NUM_THREADS": "1"}
"""Set (unless the user set it) while numpy loads, when OpenBLAS reads it: converting multiplies 3 x 3 matrices at most,
and the thread pool OpenBLAS otherwise starts spins waiting for work (30-90 ms of CPU on 2 cores, taken from the reading)."""

FLAGS = {"series_uid": "--series"}
"""The flag that sets each request field, named in front of its errors."""
HELP = "convert a DICOM series (file or folder) to NIfTI in modality units on its world grid"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, metavar="PATH", help="a DICOM file, or a folder holding the series")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="the NIfTI file to write (.nii or .nii.gz)")
    parser.add_argument("--series", metavar="SERIES_UID", help="the series to convert when PATH holds several")


def run(args: argparse.Namespace) -> int:
    from medtl.cli.startup_imports import environment_defaults, imported_on_first_use, not_found
    from medtl.gc_pause import gc_paused
    from medtl.errors import MedtlError

    if not args.output.name.endswith((".nii", ".nii.gz")):
        raise MedtlError(f"{args.output}: the output must end in .nii or .nii.gz")
    hidden = PLUGIN_PACKAGES if args.ends_process and "pydicom" not in sys.modules and only_uncompressed(args.path) else ()
    with gc_paused():  # importing numpy and pydicom makes ~10^5 objects, reading the series no cycles
        with environment_defaults(SINGLE_THREADED_BLAS), imported_on_first_use(PYDICOM_UNUSED_MODULES), not_found(hidden):
            import numpy  # noqa: F401
            import pydicom  # noqa: F401
        from medtl.dicom.series import load_path
        from medtl.export.nifti import write_nifti

        volume = load_path(args.path, series_uid=args.series)
        write_nifti(volume, args.output)
    for warning in volume.warnings:
        print(f"medtl convert: warning: {warning}", file=sys.stderr)
    print(summary(args.output, volume))
    return 0


def only_uncompressed(path: Path) -> bool:
    """Whether every file under ``path`` is a DICOM file whose file meta names an uncompressed transfer syntax (no DICOMDIR,
    which may name files elsewhere); False when a file or folder cannot be read."""
    from medtl.dicom.raw_header import MEDIA_STORAGE_SOP_CLASS, TRANSFER_SYNTAX, file_meta
    from medtl.dicom.walk import list_files

    try:
        files, problems = list_files(path)
    except OSError:
        return False
    for name in files:
        meta = file_meta(Path(name))
        if meta.get(TRANSFER_SYNTAX) not in UNCOMPRESSED_SYNTAXES or meta.get(MEDIA_STORAGE_SOP_CLASS) == DICOMDIR:
            return False
    return bool(files) and not problems


def summary(output: Path, volume: Volume) -> str:
    """One line: where, size (x, y, z), spacing, orientation (axis codes, nearest ones if oblique), dtype, warnings."""
    import numpy as np

    z, y, x = volume.shape
    oblique = " (oblique)" if np.abs(volume.direction).max(axis=0).min() < 1 - 1e-6 else ""
    spacing = " x ".join(f"{s:.4g}" for s in volume.spacing)
    channels = " RGB" if volume.is_rgb else ""
    units = f" {volume.metadata['units']}" if volume.metadata.get("units") else ""
    warnings = f": {'; '.join(volume.warnings)}" if volume.warnings else ""
    return (
        f"{output}: {x} x {y} x {z}{channels} voxels, spacing {spacing} mm, orientation {axis_codes(volume.affine_ras())}{oblique}, "
        f"{volume.array.dtype}{units}, {len(volume.warnings)} warning(s){warnings}"
    )


def axis_codes(affine: np.ndarray) -> str:
    """The RAS axis codes of an affine's x, y, z index axes ("LPS", ...), as ``nibabel.aff2axcodes`` names them.

    Each index axis gets the world axis nearest to it, the most clearly aligned index axis choosing first
    (``nibabel.orientations.io_orientation`` for a full-rank affine), so an oblique grid gets three distinct codes.
    """
    import numpy as np

    rzs = affine[:3, :3]
    p, _, qs = np.linalg.svd(rzs / np.sqrt(np.sum(rzs * rzs, axis=0)))
    rotation = p @ qs  # the nearest rotation (polar decomposition): shears dropped
    codes = ["", "", ""]
    for index_axis in np.argsort(np.min(-(rotation**2), axis=0), kind="stable"):
        column = rotation[:, index_axis]
        world_axis = int(np.argmax(np.abs(column)))
        codes[index_axis] = ("LR", "PA", "IS")[world_axis][int(column[world_axis] > 0)]
        rotation[world_axis, :] = 0  # each world axis names one index axis
    return "".join(codes)

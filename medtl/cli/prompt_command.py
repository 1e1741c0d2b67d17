"""`medtl prompt INPUT --slice K --box X0 Y0 X1 Y1 --out MASK.nii.gz`: a box (and clicks) on one slice → a mask, with LiteMedSAM.

K is the slice index along the plane's axis of the volume as ``medtl convert`` writes it (stored
``[z, y, x]``: axial cuts z, coronal y, sagittal x); the box and clicks are that slice's column and row
indices (:mod:`medtl.prompt.slicing`). The mask (0/1, uint8) is written on the input's own grid; with
``--propagate`` it is carried through the neighbouring slices until the structure ends (``--max-slices N``:
at most N on each side).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "segment a structure from a box (and clicks) on one slice with LiteMedSAM; optionally through the neighbouring slices"
FLAGS = {"box": "--box", "points": "--point", "slice": "--slice", "plane": "--plane", "model": "--model", "max_slices": "--max-slices"}


class _AddPoint(argparse.Action):
    """``--point X Y``: a click that includes; a ``--negative`` right after it makes it one that excludes."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object, option: str | None = None) -> None:
        points = list(getattr(namespace, self.dest) or [])
        if option == "--negative":
            if not points:
                parser.error("--negative follows a --point X Y, which it makes a click that excludes")
            points[-1] = (*points[-1][:2], False)
        else:
            x, y = values  # type: ignore[misc]
            points.append((x, y, True))
        setattr(namespace, self.dest, points)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medtl.prompt.slicing import PLANES

    parser.add_argument("input", type=Path, metavar="INPUT", help="a DICOM series (folder or file) or a NIfTI file")
    parser.add_argument("--slice", type=int, required=True, metavar="K", help="the slice index along the plane's axis (0-based)")
    parser.add_argument("--box", type=float, nargs=4, required=True, metavar=("X0", "Y0", "X1", "Y1"), help="the box: columns X0-X1, rows Y0-Y1 of the slice")
    parser.add_argument("--plane", choices=PLANES, default="axial", help="the plane the slice is cut in (default: axial, the stored z axis)")
    parser.add_argument("--point", dest="points", type=float, nargs=2, action=_AddPoint, metavar=("X", "Y"), help="a click that includes (repeatable)")
    parser.add_argument("--negative", dest="points", nargs=0, action=_AddPoint, help="makes the --point before it a click that excludes")
    parser.add_argument("--propagate", action="store_true", help="carry the mask through the neighbouring slices until the structure ends")
    parser.add_argument("--max-slices", type=int, metavar="N", help="with --propagate: at most N slices on each side of K (default: until the structure ends)")
    parser.add_argument("--model", default="medsam", metavar="MODEL", help="medsam (the bundled LiteMedSAM) or run:RUN (one adapted by medtl train)")
    parser.add_argument("--window", type=float, nargs=2, metavar=("CENTRE", "WIDTH"), help="a CT window in HU (default: soft tissue 40/400 for CT, percentiles otherwise)")
    parser.add_argument("--series", metavar="SERIES_UID", help="the series to use when a DICOM INPUT folder holds several")
    parser.add_argument("--out", type=Path, required=True, metavar="MASK", help="the mask to write (.nii or .nii.gz)")


def run(args: argparse.Namespace) -> int:
    from medtl.data.images import read_image
    from medtl.dicom.volume import Volume
    from medtl.errors import InvalidRequest, MedtlError
    from medtl.export.nifti import write_nifti
    from medtl.prompt.engine import PromptModel
    from medtl.prompt.propagation import PropagationSettings
    from medtl.prompt.request import Point
    from medtl.prompt.slicing import plane_axis
    from medtl.prompt.volume_prompt import prompt_volume, slice_prompt

    if not args.out.name.endswith((".nii", ".nii.gz")):
        raise MedtlError(f"{args.out}: the mask must end in .nii or .nii.gz")
    if args.max_slices is not None and not args.propagate:
        raise InvalidRequest("max_slices", "it limits --propagate, which was not given")
    settings = PropagationSettings(max_slices=args.max_slices)
    volume = read_image(args.input, series_uid=args.series)
    points = tuple(Point(x, y, positive) for x, y, positive in args.points or ())
    request = slice_prompt(volume, args.plane, args.slice, args.box, points)
    model = PromptModel.load(args.model)
    mask = prompt_volume(model, volume, args.plane, args.slice, request, args.propagate, args.window, series=str(args.input), settings=settings)
    write_nifti(Volume(mask, volume.spacing, volume.origin, volume.direction), args.out)
    axis = plane_axis(args.plane)
    slices = [int(i) for i in mask.any(axis=tuple(a for a in range(3) if a != axis)).nonzero()[0]]
    where = f"{args.plane} slices {slices[0]}-{slices[-1]}" if len(slices) > 1 else f"{args.plane} slice {args.slice}"
    print(f"{args.out}: {int(mask.sum())} voxels on {len(slices)} slice(s) ({where})" if slices else f"{args.out}: empty mask")
    return 0

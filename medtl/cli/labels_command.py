"""`medtl labels import|list|export DIR`: a project's masks from files, listed, and out as DICOM SEG, NIfTI or MSD."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from medtl.cli.project_command import add_take_over, open_for_writing
from medtl.project.label_files import FORMATS

if TYPE_CHECKING:  # pragma: no cover
    from medtl.data.sparse import Annotated
    from medtl.project import Project

HELP = "import masks into a project, list its labels and their history, compare readers, export (DICOM SEG, NIfTI, MSD)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    imports = actions.add_parser("import", help="import a NIfTI or DICOM SEG mask as labels of a series", description="import a NIfTI or DICOM SEG mask as labels of a series of the project")
    imports.add_argument("dir", type=Path, metavar="DIR")
    imports.add_argument("mask", type=Path, metavar="MASK", help="a NIfTI file, or a DICOM SEG file or folder, on the series' grid")
    imports.add_argument("--series", required=True, metavar="UID", help="the SeriesInstanceUID of the series the mask labels")
    imports.add_argument("--name", metavar="LABEL", help="the name of the mask's label (a mask of one label)")
    imports.add_argument("--reader", metavar="NAME", help="whose labels these are (default: the OS user)")
    add_take_over(imports)
    listing = actions.add_parser("list", help="list the labels and every series' masks with their volumes", description="list the labels and every series' masks")
    listing.add_argument("dir", type=Path, metavar="DIR")
    history = actions.add_parser("history", help="list who changed which label when, with which tool", description="list the audit log, oldest first")
    history.add_argument("dir", type=Path, metavar="DIR")
    history.add_argument("--series", metavar="UID", help="only this series' changes")
    history.add_argument("--label", type=int, metavar="VALUE", help="only this label's changes")
    history.add_argument("--reader", metavar="NAME", help="only changes to this reader's labels")
    agreement = actions.add_parser("agreement", help="Dice per label between two readers' masks of a series", description="Dice per label between two readers' newest masks of a series, over the slices both annotated")
    agreement.add_argument("dir", type=Path, metavar="DIR")
    agreement.add_argument("--series", required=True, metavar="UID")
    agreement.add_argument("readers", nargs=2, metavar="READER")
    exports = actions.add_parser("export", help="export every series' newest mask", description="export every series' newest mask into a new folder")
    exports.add_argument("dir", type=Path, metavar="DIR")
    exports.add_argument("--format", choices=FORMATS, required=True, help="seg: one DICOM SEG per series; nifti: one NIfTI per series; msd: a Medical Segmentation Decathlon dataset")
    exports.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="the folder to write (new or empty)")
    exports.add_argument("--deidentify", action="store_true", help="DICOM PS3.15 basic profile on every header, pseudonymous IDs and UIDs, no patient data in any file")
    exports.add_argument("--reader", metavar="NAME", help="export this reader's masks (default: each series' newest, whoever saved it)")


def run(args: argparse.Namespace) -> int:
    from medtl.project import Project
    from medtl.project.label_files import export_labels, import_mask

    if args.action == "import":
        with open_for_writing(args.dir, args.take_over) as project:
            imported = import_mask(project, args.series, args.mask, name=args.name, reader=args.reader)
            names = {label.value: label.name for label in project.labels()}
            went = ", ".join(f"{value} -> {target} {names[target]!r}" for value, target in imported.values.items()) or "nothing (the mask is empty)"
            print(f"{args.mask}: imported as version {imported.version.version} of {imported.version.reader}'s mask of series {args.series}: {went}")
        return 0
    if args.action == "list":
        with Project.open(args.dir, read_only=True) as project:
            print(list_text(project))
        return 0
    if args.action in ("history", "agreement"):
        with Project.open(args.dir, read_only=True) as project:
            print(history_text(project, args.series, args.label, args.reader) if args.action == "history" else agreement_text(project, args.series, *args.readers))
        return 0
    with Project.open(args.dir, read_only=True) as project:
        exported = export_labels(project, args.format, args.out, deidentify=args.deidentify, reader=args.reader)
    for path in exported.paths:
        print(path)
    for note in exported.notes:
        print(f"note: {note}")
    return 0


def list_text(project: Project) -> str:
    """The labels (value, name, colour, state), then each series' newest masks per reader with each label's volume in mL."""
    import numpy as np

    labels = project.labels()
    names = {label.value: label.name for label in labels}
    lines = [f"{len(labels)} label(s):"]
    for label in labels:
        state = "".join(f" [{flag}]" for flag, on in (("hidden", label.hidden), ("locked", label.locked)) if on)
        lines.append(f"  {label.value:3d}  {label.name}  #{'{:02x}{:02x}{:02x}'.format(*label.colour)}{state}")
    for version in project.current_masks():
        mask = project.load_mask(version)
        values, counts = np.unique(mask.array, return_counts=True)
        voxel_ml = float(np.prod(mask.spacing)) / 1000.0
        volumes = ", ".join(f"{names.get(int(v), f'label {v} (deleted)')} {c * voxel_ml:.2f} mL" for v, c in zip(values, counts) if v != 0) or "empty"
        extent = "complete" if version.annotated.complete else f"{version.annotated.count()} annotated slice(s)"
        lines.append(f"series {version.series_uid}  reader {version.reader}  version {version.version} ({extent}): {volumes}")
    return "\n".join(lines)


def history_text(project: Project, series_uid: str | None, value: int | None, reader: str | None) -> str:
    """One line per change: when, who, tool, on what (series, reader, label, slices, version), detail."""
    import datetime

    lines = []
    for entry in project.history(series_uid, value, reader):
        when = datetime.datetime.fromtimestamp(entry.at).strftime("%Y-%m-%d %H:%M:%S")
        what = [
            f"series {entry.series_uid}" if entry.series_uid else "", f"reader {entry.reader}" if entry.reader else "",
            f"label {entry.value}" if entry.value is not None else "", _slices(entry.slices) if entry.slices else "",
            f"version {entry.mask_version}" if entry.mask_version else "", entry.detail,
        ]  # fmt: skip
        lines.append(f"{when}  {entry.who}  {entry.tool}: {', '.join(part for part in what if part)}")
    return "\n".join(lines) or "no changes recorded"


def agreement_text(project: Project, series_uid: str, reader_a: str, reader_b: str) -> str:
    from medtl.project.agreement import reader_agreement

    names = {label.value: label.name for label in project.labels()}
    dice = reader_agreement(project, series_uid, reader_a, reader_b)
    lines = [f"{reader_a} and {reader_b} on series {series_uid}, over the slices both annotated:"]
    lines.extend(f"  {value:3d} {names.get(value, f'label {value}')}: Dice {'-' if d is None else f'{d:.4f}'}" for value, d in dice.items())
    return "\n".join(lines)


def _slices(annotated: Annotated) -> str:
    """The slices an edit touched, in words (``axial 3-5, 9``)."""
    from medtl.data.sparse import AXES

    if annotated.complete:
        return "all slices"
    return "; ".join(f"{axis} {_ranges(sorted(indices))}" for axis, indices in zip(AXES, annotated.slices) if indices)


def _ranges(numbers: list[int]) -> str:
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)

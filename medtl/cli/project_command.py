"""`medtl project init|add|info DIR`: an annotation project (a folder with its database and masks)."""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from medtl.project import Project

HELP = "create an annotation project, add DICOM series to it, or show what it holds"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="create a project in DIR", description="create a project in DIR (made if needed)")
    init.add_argument("dir", type=Path, metavar="DIR")
    init.add_argument("--name", help="the project's name (default: the folder's)")
    init.add_argument("--from-label-store", action="store_true", dest="label_store", help="bring in the labels of the user's label store ($MEDTL_LABELS if set); the store is kept")
    add = actions.add_parser("add", help="scan DICOM_PATH and add its image series to the project", description="scan DICOM_PATH and add its image series to the project")
    add.add_argument("dir", type=Path, metavar="DIR")
    add.add_argument("dicom_path", type=Path, metavar="DICOM_PATH", help="a folder (searched recursively) or one file")
    add_take_over(add)
    info = actions.add_parser("info", help="show the project's series, labels, readers, runs and lock", description="show what the project holds")
    info.add_argument("dir", type=Path, metavar="DIR")


def add_take_over(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--take-over", action="store_true", help="take over the project's lock when the program that held it is gone")


def open_for_writing(folder: Path, take_over: bool) -> Project:
    """The project in ``folder`` for writing; MedtlError (saying who holds it) when another program does."""
    from medtl.errors import MedtlError
    from medtl.project import Project

    project = Project.open(folder, take_over=take_over)
    if project.read_only:
        notice = project.notice
        project.close()
        raise MedtlError(f"{notice}; close it there first")
    return project


def run(args: argparse.Namespace) -> int:
    from medtl.project import Project

    if args.action == "init":
        project = Project.create(args.dir, name=args.name)
        with project:
            print(f"{project.folder}: new project {project.name!r}")
            if args.label_store:
                from medtl.labels.store import LabelStore
                from medtl.project.from_label_store import import_label_store

                store = LabelStore()
                result = import_label_store(project, store)
                print(f"from the label store {store.root}: {result.series} series, {result.versions} mask version(s) (the store is kept)")
                for note in result.notes:
                    print(f"note: {note}")
        return 0
    if args.action == "add":
        from medtl.dicom.catalog import Catalog

        with open_for_writing(args.dir, args.take_over) as project:
            recorded, skipped = project.add_dicom(args.dicom_path, catalog=Catalog())
            for record in recorded:
                print(f"series {record.series_uid}  {record.modality or '?'}  {record.description or '(no description)'!r}  {len(record.files)} file(s)")
            for reason in skipped:
                print(f"skipped: {reason}")
            print(f"{len(recorded)} series recorded in {project.folder}")
        return 0
    with Project.open(args.dir, read_only=True) as project:
        print(info_text(project))
    return 0


def info_text(project: Project) -> str:
    """What ``medtl project info`` prints: name, lock, series with their masks, labels, classes, readers, runs, activity."""
    from medtl.project.lock import ProjectLock

    holder = ProjectLock(project.folder).holder()
    lock = "free" if holder is None else f"held by {holder.describe()}" + (f" (stale: {holder.stale_because})" if holder.stale_because else "")
    lines = [f"project {project.name!r} in {project.folder} (schema version {project.schema_version()})", f"lock: {lock}"]
    masks: dict[str, list[str]] = {}
    for version in project.current_masks():
        annotated = version.annotated
        extent = "complete" if annotated.complete else f"{annotated.count()} annotated slice(s)"
        masks.setdefault(version.series_uid, []).append(f"{version.reader} v{version.version} ({extent})")
    series = project.series()
    lines.append(f"{len(series)} series:")
    for record in series:
        grid = record.grid
        size = f"{grid['columns']} x {grid['rows']} x {grid['slices']}" if grid.get("rows") else "NIfTI image"
        lines.append(f"  {record.series_uid}  {record.modality or '?'}  {size}  masks: {', '.join(masks.get(record.series_uid, [])) or 'none'}")
    lines.append(f"labels: {', '.join(f'{label.value} {label.name}' for label in project.labels()) or 'none'}")
    lines.append(f"classes: {', '.join(project.classes()) or 'none'}")
    lines.append(f"readers: {', '.join(project.readers()) or 'none'}")
    lines.extend([f"runs: {len(project.runs())}", *(f"  {run.path}" for run in project.runs())])
    history = project.history()
    if history:
        last = history[-1]
        when = datetime.datetime.fromtimestamp(last.at).strftime("%Y-%m-%d %H:%M")
        lines.append(f"audit log: {len(history)} change(s), the last {when} by {last.who} ({last.tool})")
    problems = project.check()
    lines.extend(f"problem: {problem}" for problem in problems)
    return "\n".join(lines)

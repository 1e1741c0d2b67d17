"""`medtl scan PATH`: the patients, studies and series in a folder, and the files that could not be used."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from medtl.dicom.records import ScanProblem, ScanResult, SeriesInfo
    from medtl.dicom.segmentations import SegSeries

_PROBLEMS_LISTED_PER_FOLDER = 3

FLAGS = {"catalog": "--catalog"}
"""The flag that sets each setting, named in front of its errors."""
HELP = "list the DICOM patients, studies and series in a folder (and the files that could not be used)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, metavar="PATH", help="a folder (searched recursively) or one file")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of a tree")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--catalog", type=Path, metavar="DB", help="catalog file that remembers scanned files (default: $MEDTL_CATALOG or the user cache)")
    where.add_argument("--no-catalog", action="store_true", help="read every file and remember nothing")
    parser.add_argument("--workers", type=int, metavar="N", help="processes reading headers (default: one per CPU for large folders)")


def run(args: argparse.Namespace) -> int:
    from medtl.dicom.catalog import Catalog
    from medtl.dicom.scan import scan

    if not args.verbose:  # pydicom logs the deviations it repairs, quoting values; the scan reports real problems
        logging.getLogger("pydicom").setLevel(logging.ERROR)
    catalog = None if args.no_catalog else Catalog(args.catalog)
    progress = TerminalProgress() if sys.stderr.isatty() else None
    started = time.perf_counter()
    try:
        result = scan(args.path, catalog=catalog, progress=progress, workers=args.workers)
    finally:
        if progress is not None:
            progress.clear()
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps(as_json(result, seconds)))  # ASCII: safe on any console encoding
    else:
        print(as_text(result, seconds))
    return 0


class TerminalProgress:
    """One self-rewriting line on stderr, redrawn at most every 0.1 s."""

    def __init__(self) -> None:
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and done != total:
            return
        self._last = now
        count = f"{done}/{total}" if total else str(done)
        sys.stderr.write(f"\r\033[K{message} {count}")
        sys.stderr.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def as_json(result: ScanResult, seconds: float) -> dict[str, Any]:
    """The documented JSON shape (keys may be added, never removed). A DICOM SEG series has a ``segmentation`` key:
    the series it references and its segments' labels."""
    from medtl.dicom.segmentations import seg_series

    segs = {seg.series.series_uid: seg for seg in seg_series(result)}
    return {
        "patients": [
            {
                "patient_id": patient.patient_id,
                "patient_name": patient.patient_name,
                "studies": [
                    {
                        "study_uid": study.study_uid,
                        "study_date": study.study_date,
                        "description": study.description,
                        "series": [_series_json(series, segs.get(series.series_uid)) for series in study.series],
                    }
                    for study in patient.studies
                ],
            }
            for patient in result.patients
        ],
        "errors": [{"path": str(problem.path), "reason": problem.reason} for problem in result.errors],
        "files_seen": result.files_seen,
        "files_read": result.files_read,
        "skipped_non_dicom": result.skipped_non_dicom,
        "duplicates": result.duplicates,
        "seconds": round(seconds, 3),
    }


def _series_json(series: SeriesInfo, seg: SegSeries | None) -> dict[str, Any]:
    document = {
        "series_uid": series.series_uid,
        "series_number": series.series_number,
        "modality": series.modality,
        "description": series.description,
        "instances": len(series.instances),
        "rows": series.rows,
        "columns": series.columns,
        "image": series.rows is not None,
        "warnings": list(series.warnings),
    }
    if seg is not None:
        document["segmentation"] = {"referenced_series": list(seg.referenced), "segments": [s.label for f in seg.files for s in f.segments]}
    return document


def as_text(result: ScanResult, seconds: float) -> str:
    """A readable tree: patients, studies, series with counts and warnings; then problems and a summary.

    A DICOM SEG series is listed under the series it labels; one whose series is not in the folder stays in its study.
    """
    from medtl.dicom.segmentations import by_referenced_series, seg_series

    segs = seg_series(result)
    labelling = by_referenced_series(segs)
    shown = {series.series_uid: series for series in result.all_series()}
    placed = {seg.series.series_uid for seg in segs if any(uid in shown for uid in seg.referenced)}
    orphans = {seg.series.series_uid: seg for seg in segs if seg.series.series_uid not in placed}
    lines = []
    for patient in result.patients:
        lines.append(f"Patient {patient.patient_id or '(no ID)'}  {patient.patient_name}")
        for study in patient.studies:
            lines.append(f"  Study {_date(study.study_date)}  {study.description or '(no description)'}")
            for series in study.series:
                if series.series_uid in placed:
                    continue
                orphan = orphans.get(series.series_uid)
                if orphan is not None:
                    lines.append(f"    {_series_line(series)}  {orphan.summary(None)}")
                else:
                    size = f"{series.rows}x{series.columns}" if series.rows is not None else "non-image"
                    lines.append(f"    {_series_line(series)}  {len(series.instances)} instance(s)  {size}")
                lines.extend(f"      warning: {warning}" for warning in series.warnings)
                for seg in labelling.get(series.series_uid, []):
                    lines.append(f"      {_series_line(seg.series)}  {seg.summary(series)}")
                    misfit = seg.misfit(series)
                    lines.extend(f"        warning: {warning}" for warning in [*seg.series.warnings, *([misfit] if misfit else [])])
    if not result.patients:
        lines.append("No DICOM series found.")
    if result.errors:
        lines.append(f"Problems ({len(result.errors)} files):")
        lines.extend(_problem_lines(result.errors))
    lines.append(
        f"{result.files_seen} files seen, {result.files_read} read, {result.skipped_non_dicom} skipped (not DICOM instances), "
        f"{len(result.errors)} errors, {result.duplicates} duplicates, {seconds:.2f} s"
    )
    return "\n".join(lines)


def _series_line(series: SeriesInfo) -> str:
    number = "-" if series.series_number is None else series.series_number
    return f"Series {number}  {series.modality or '?'}  {series.description or '(no description)'}"


def _problem_lines(problems: list[ScanProblem]) -> list[str]:
    """One line per problem file; many files of one folder with the same reason share one line."""
    groups: dict[tuple[Path, str], list[Path]] = {}
    for problem in problems:
        groups.setdefault((problem.path.parent, problem.reason), []).append(problem.path)
    lines = []
    for (folder, reason), paths in groups.items():
        if len(paths) > _PROBLEMS_LISTED_PER_FOLDER:
            lines.append(f"  {folder}{os.sep} ({len(paths)} files, {paths[0].name} to {paths[-1].name}): {reason}")
        else:
            lines.extend(f"  {path}: {reason}" for path in paths)
    return lines


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value or "(no date)"

"""DICOMDIR: the index file of DICOM media (CD/DVD/USB exports).

The scan walks the folder anyway (files a DICOMDIR does not reference must be found too), so
the DICOMDIR serves as a cross-check: the files it references are read even where a folder
cannot be listed, and referenced files that are missing are reported (an incomplete copy).
File IDs are matched case-insensitively, as media written on ISO 9660 are often copied with
changed case. A broken DICOMDIR is reported and otherwise ignored.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pydicom

from medtl.dicom.messages import describe
from medtl.dicom.records import ScanProblem
from medtl.errors import DicomReadError

DICOMDIR_NAME = "DICOMDIR"
_MISSING_SHOWN = 3
_ROOT_OFFSETS = ("OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity", "OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity")
_RECORD_OFFSETS = ("OffsetOfTheNextDirectoryRecord", "OffsetOfReferencedLowerLevelDirectoryEntity")


def is_dicomdir(path: str | Path) -> bool:
    return os.path.basename(path).upper() == DICOMDIR_NAME


def referenced_files(dicomdir: Path) -> tuple[list[Path], list[str]]:
    """The files ``dicomdir`` references that exist, and the file IDs of those that do not.

    Raises :class:`DicomReadError` when the DICOMDIR cannot be read.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            size = dicomdir.stat().st_size
            dataset = pydicom.dcmread(dicomdir)
            records = list(dataset.get("DirectoryRecordSequence", []))
            offsets = [dataset.get(keyword) or 0 for keyword in _ROOT_OFFSETS]
            offsets += [record.get(keyword) or 0 for record in records for keyword in _RECORD_OFFSETS]
            file_ids = [record.get("ReferencedFileID") for record in records]
    except Exception as error:  # pydicom raises many kinds on corrupt input; any of them means "broken"
        raise DicomReadError(dicomdir, f"unreadable DICOMDIR ({describe(error)})") from error
    if "DirectoryRecordSequence" not in dataset:
        raise DicomReadError(dicomdir, "unreadable DICOMDIR (no directory records)")
    if max(offsets, default=0) >= size:  # pydicom reads a cut file without complaint
        raise DicomReadError(dicomdir, "truncated DICOMDIR (its records point past the end of the file)")
    listings: dict[Path, dict[str, str]] = {}
    found, missing = [], []
    for file_id in file_ids:
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else list(file_id)
        path = _resolve(dicomdir.parent, parts, listings)
        if path is None:
            missing.append("/".join(parts))
        else:
            found.append(path)
    return found, missing


def check(dicomdir: Path) -> tuple[list[Path], ScanProblem | None]:
    """The files ``dicomdir`` references, and a problem when it is unreadable or references missing files."""
    try:
        found, missing = referenced_files(dicomdir)
    except DicomReadError as error:
        return [], ScanProblem(dicomdir, f"{error.reason}; the folder was scanned file by file")
    if not missing:
        return found, None
    shown = ", ".join(missing[:_MISSING_SHOWN]) + (", ..." if len(missing) > _MISSING_SHOWN else "")
    return found, ScanProblem(dicomdir, f"references {len(missing)} file(s) that are missing (incomplete copy?): {shown}")


def _resolve(base: Path, parts: list[str], listings: dict[Path, dict[str, str]]) -> Path | None:
    """``base/parts...``, matching each component case-insensitively; None when it does not exist."""
    path = base
    for part in parts:
        if part in (".", "..") or os.sep in part:
            return None  # a File ID never leaves the DICOMDIR's folder
        exact = path / part
        if exact.exists():
            path = exact
            continue
        if path not in listings:
            try:
                listings[path] = {name.upper(): name for name in os.listdir(path)}
            except OSError:
                listings[path] = {}
        name = listings[path].get(part.upper())
        if name is None:
            return None
        path = path / name
    return path if path.is_file() else None

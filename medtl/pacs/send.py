"""Send files (medtl's DICOM SEG, a de-identified copy, any instance) to a node: C-STORE or STOW-RS.

Folders are searched recursively; a file that is not DICOM gets a failed result of its own
instead of stopping the others. Each file gets one :class:`~medtl.pacs.dimse.SendResult`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medtl.errors import MedtlError
from medtl.pacs import dimse, web
from medtl.pacs.dimse import SendResult
from medtl.pacs.nodes import LocalAE, Node
from medtl.progress import CancelToken, ProgressCallback, report


def files_in(paths: Iterable[Path]) -> list[Path]:
    """The files named, and those under the folders named, in order; :class:`MedtlError` for a path that is not there."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            files.append(path)
        else:
            raise MedtlError(f"{path}: no such file or folder")
    return files


def _read(path: Path) -> tuple[Any, str]:
    """(dataset, "") or (None, why it cannot be sent)."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        dataset = dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as error:
        return None, f"not a DICOM file ({error})"
    if "SOPInstanceUID" not in dataset or "SOPClassUID" not in dataset or "TransferSyntaxUID" not in dataset.file_meta:
        return None, "not a DICOM instance (no SOP class, SOP instance or transfer syntax UID)"
    return dataset, ""


def send(
    node: Node, local: LocalAE, paths: Iterable[Path], progress: ProgressCallback | None = None, cancel: CancelToken | None = None
) -> list[SendResult]:
    """Send every DICOM file in ``paths`` to ``node``; one result per file, in order."""
    files = files_in(paths)
    results: list[SendResult] = []

    def record(result: SendResult) -> None:
        results.append(result)
        report(progress, len(results), len(files), f"sent {len(results)} of {len(files)}")

    readable = []
    for path in files:
        dataset, problem = _read(path)
        if dataset is None:
            record(SendResult(path, "", False, problem))
        else:
            readable.append((path, dataset))
    if readable:
        if node.is_web:
            web.store(node, readable, record, cancel)
        else:
            dimse.c_store(node, local, readable, record, cancel)
    order = {path: index for index, path in enumerate(files)}
    return sorted(results, key=lambda result: order[result.path])

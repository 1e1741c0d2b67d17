"""The files under a folder, as a scan sees them."""

from __future__ import annotations

import os
from pathlib import Path

from medtl.dicom.records import ScanProblem
from medtl.progress import CancelToken


def list_files(root: Path, cancel: CancelToken | None = None) -> tuple[dict[str, tuple[int, int]], list[ScanProblem]]:
    """Every file under ``root`` with its (size, mtime_ns), and the folders or files that could not be listed.

    Symbolic links to files are followed; links to folders are not (no loops).
    """
    if root.is_file():
        stat = root.stat()
        return {str(root): (stat.st_size, stat.st_mtime_ns)}, []
    files: dict[str, tuple[int, int]] = {}
    problems: list[ScanProblem] = []
    folders = [str(root)]
    while folders:
        if cancel is not None:
            cancel.raise_if_cancelled()
        folder = folders.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            folders.append(entry.path)
                        elif entry.is_file():
                            stat = entry.stat()
                            files[entry.path] = (stat.st_size, stat.st_mtime_ns)
                    except OSError as error:
                        problems.append(ScanProblem(Path(entry.path), f"cannot read it ({error.strerror or error})"))
        except OSError as error:
            problems.append(ScanProblem(Path(folder), f"cannot list this folder ({error.strerror or error})"))
    return files, problems

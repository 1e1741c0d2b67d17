"""Atomic file writes: a crash or a full disk never leaves a half-written file in place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_NEW_FILE_MODE = 0o666 & ~_umask()
"""What ``open(path, "w")`` would give a new file under the process's umask (read once, at import)."""


@contextlib.contextmanager
def atomic_path(destination: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; on success fsync it and rename it into place.

    On any exception the temporary file is removed and ``destination`` is left as it was.
    The temporary name keeps the destination's suffixes so writers that dispatch on them
    (``.nii.gz``) behave the same.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(destination.suffixes)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.stem}.", suffix=f".tmp{suffix}", dir=destination.parent)
    os.close(fd)
    os.chmod(tmp_name, _NEW_FILE_MODE)  # mkstemp makes it owner-only; a written file gets the usual permissions
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(destination: Path | str, data: bytes) -> None:
    with atomic_path(destination) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(destination: Path | str, text: str) -> None:
    write_bytes_atomic(destination, text.encode("utf-8"))

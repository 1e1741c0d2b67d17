"""Atomic file writes: a crash or a full disk never leaves a half-written file in place.

A write that fails for want of room or permission raises :class:`WriteError`: it names the file the
caller asked for (never the hidden temporary file beside it), says why in words ("no space left on
the device", "the folder is read-only") and that the previous file, if any, is intact.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from medtl.errors import MedtlError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_NEW_FILE_MODE = 0o666 & ~_umask()
"""What ``open(path, "w")`` would give a new file under the process's umask (read once, at import)."""


class WriteError(MedtlError, OSError):
    """A file could not be written. A :class:`MedtlError` (shown as it is) and an ``OSError`` (errno kept)."""

    def __init__(self, destination: Path, error: OSError, existed: bool) -> None:
        super().__init__(error.errno, error.strerror or str(error), str(destination))
        kept = "the previous file is kept" if existed else "nothing was written"
        self.message = f"{destination}: cannot write it: {in_words(error, destination.parent)}; {kept}"

    def __str__(self) -> str:
        return self.message


def in_words(error: OSError, folder: Path) -> str:
    """Why ``error`` stopped a write into ``folder``, in a user's words."""
    if error.errno == errno.ENOSPC:
        return "no space left on the device"
    if error.errno == errno.EDQUOT:
        return "the disk quota is used up"
    if error.errno == errno.EROFS:
        return "the device is read-only"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "the folder is read-only" if folder.is_dir() and not os.access(folder, os.W_OK) else "permission denied"
    return (error.strerror or str(error)).lower()


@contextlib.contextmanager
def atomic_path(destination: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; on success fsync it and rename it into place.

    On any exception the temporary file is removed and ``destination`` is left as it was. An
    ``OSError`` about the temporary file (or about no file: most writers report a full disk so)
    becomes a :class:`WriteError` naming ``destination``. The temporary name keeps the
    destination's suffixes so writers that dispatch on them (``.nii.gz``) behave the same.
    """
    with _beside(Path(destination)) as (_, tmp):
        yield tmp


def write_bytes_atomic(destination: Path | str, *chunks: bytes | bytearray) -> None:
    """Write the concatenation of ``chunks`` to ``destination`` atomically (as :func:`atomic_path`), without joining them."""
    with _beside(Path(destination)) as (fd, _), open(fd, "wb", closefd=False) as handle:
        for chunk in chunks:
            handle.write(chunk)


@contextlib.contextmanager
def _beside(destination: Path) -> Iterator[tuple[int, Path]]:
    """A new temporary file beside ``destination``, open: (descriptor, path). When the block succeeds the
    file is fsynced (through the descriptor: the file, whoever wrote it by its path), closed and renamed
    into place; otherwise it is removed. A write into an existing folder costs five system calls besides
    the writes: create, chmod, fsync, close, rename (a retrieve writes hundreds of files a second)."""
    try:
        fd, tmp_name = _create_beside(destination)
    except OSError as error:
        raise WriteError(destination, error, destination.exists()) from error
    tmp = Path(tmp_name)
    try:
        try:
            os.chmod(tmp, _NEW_FILE_MODE)  # mkstemp makes it owner-only; a written file gets the usual permissions
            yield fd, tmp
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, destination)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if not isinstance(error, OSError) or isinstance(error, WriteError):
            raise
        if error.filename is not None and str(error.filename) not in (tmp_name, str(destination), str(destination.parent)):
            raise  # about another file (an input the writer read): not this write's to explain
        raise WriteError(destination, error, destination.exists()) from error


def _create_beside(destination: Path) -> tuple[int, str]:
    """``mkstemp`` in the destination's folder, made (with its parents) when it is missing."""
    suffix = "".join(destination.suffixes)

    def create() -> tuple[int, str]:
        return tempfile.mkstemp(prefix=f".{destination.stem}.", suffix=f".tmp{suffix}", dir=destination.parent)

    try:
        return create()
    except FileNotFoundError:
        destination.parent.mkdir(parents=True, exist_ok=True)
        return create()


def write_text_atomic(destination: Path | str, text: str) -> None:
    write_bytes_atomic(destination, text.encode("utf-8"))

"""Where retrieved instances are kept: ``<root>/<study>/<series>/<instance>.dcm``, each written atomically.

Folder and file names are the study, series and SOP Instance UIDs (digits and dots: no PHI), or
a SHA-256 digest of a UID that is not safe as a file name. A file is written to a hidden
temporary name beside its place and renamed into it once complete (:mod:`medtl.atomic`), so a
crash, a cancel or a lost connection never leaves a half-written instance where a scan would see
it, and the instances present are known from the file names alone (that is how a retrieve resumes).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from medtl.atomic import write_bytes_atomic
from medtl.dicom.raw_header import walk

SUFFIX = ".dcm"
_SAFE = re.compile(r"^[0-9][0-9.]{0,63}$")


def default_root() -> Path:
    """``pacs`` in the per-user data folder."""
    import platformdirs

    return Path(platformdirs.user_data_dir("medtl")) / "pacs"


def safe_name(uid: str) -> str:
    """``uid`` itself when it is a plain UID, else a digest of it (never a character a path could misread)."""
    return uid if _SAFE.match(uid) and ".." not in uid else "x" + hashlib.sha256(uid.encode("utf-8", "replace")).hexdigest()[:40]


_UID_TAGS = (0x0020000D, 0x0020000E, 0x00080018)  # Study, Series, SOP Instance UID
_IMPLICIT_LITTLE = "1.2.840.10008.1.2"
_NOT_WALKED = ("1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99")  # big endian, deflated: pydicom reads those


def instance_uids(data: bytes | bytearray, dataset: bytes | bytearray | None = None) -> tuple[str, str, str]:
    """The study, series and SOP Instance UIDs of a DICOM file's bytes, read from its header only.

    ``dataset``: the data set, when ``data`` holds only the preamble and file meta (an instance
    received over the network, whose parts are written one after the other, never joined).

    Raises ``ValueError`` saying why when ``data`` is not a DICOM file (no preamble and DICM
    prefix, an unreadable header) or lacks one of the three UIDs. The header's elements are walked
    up to the pixel data without decoding them (~0.05 ms a CT slice); anything unusual there (or a
    big-endian or deflated file) is left to pydicom, which says what is wrong.
    """
    if len(data) < 132 or data[128:132] != b"DICM":
        raise ValueError("not a DICOM file (no DICM prefix)")
    try:
        uids = _walk_header(data, dataset)
    except (struct.error, ValueError, UnicodeDecodeError):
        uids = None
    return uids if uids is not None else _read_uids(data if dataset is None else bytes(data) + dataset)


def _walk_header(data: bytes | bytearray, dataset: bytes | bytearray | None) -> tuple[str, str, str] | None:
    """The three UIDs found by walking the file meta and the data set up to its pixel data; None: ask pydicom."""
    found: dict[int, str] = {}
    position = walk(data, 132, True, found, _KEPT, last_group=2)
    syntax = found.pop(0x00020010, "")
    if not syntax or syntax in _NOT_WALKED:
        return None
    if dataset is None:
        walk(data, position, syntax != _IMPLICIT_LITTLE, found, _KEPT)
    else:
        walk(dataset, 0, syntax != _IMPLICIT_LITTLE, found, _KEPT)
    uids = tuple(found.get(tag, "") for tag in _UID_TAGS)
    return uids if all(uids) else None  # type: ignore[return-value]


_KEPT = frozenset((0x00020010, *_UID_TAGS))


def _read_uids(data: bytes | bytearray) -> tuple[str, str, str]:
    """The three UIDs as pydicom reads them, or ``ValueError`` saying why it cannot."""
    import pydicom

    try:
        header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=list(_UID_TAGS))
        uids = tuple(str(header.get(tag).value).strip("\x00 ") if tag in header else "" for tag in _UID_TAGS)
    except Exception as error:  # noqa: BLE001 - pydicom raises many kinds on malformed bytes
        raise ValueError(f"its header cannot be read ({type(error).__name__}: {str(error)[:120]})") from error
    if not all(uids):
        raise ValueError("it lacks its study, series or SOP Instance UID")
    return uids  # type: ignore[return-value]


class InstanceStore:
    """The retrieved instances under ``root``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def study_folder(self, study_uid: str) -> Path:
        return self.root / safe_name(study_uid)

    def series_folder(self, study_uid: str, series_uid: str) -> Path:
        return self.study_folder(study_uid) / safe_name(series_uid)

    def path(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        return self.series_folder(study_uid, series_uid) / (safe_name(sop_uid) + SUFFIX)

    def present(self, study_uid: str, series_uid: str) -> set[str]:
        """File names (without suffix) of the complete instances of a series: what need not be fetched again."""
        try:
            with os.scandir(self.series_folder(study_uid, series_uid)) as entries:
                return {entry.name[: -len(SUFFIX)] for entry in entries if entry.name.endswith(SUFFIX) and not entry.name.startswith(".")}
        except FileNotFoundError:
            return set()

    def missing(self, study_uid: str, series_uid: str, sop_uids: list[str]) -> list[str]:
        """Those of ``sop_uids`` not stored yet, in the given order."""
        here = self.present(study_uid, series_uid)
        return [uid for uid in sop_uids if safe_name(uid) not in here]

    def write_encoded(self, study_uid: str, series_uid: str, sop_uid: str, *chunks: bytes | bytearray) -> Path:
        """Store one instance already encoded as a DICOM file (preamble, meta, dataset), whole or in parts."""
        destination = self.path(study_uid, series_uid, sop_uid)
        write_bytes_atomic(destination, *chunks)
        return destination

    def remove_leftovers(self, study_uid: str) -> int:
        """Delete temporary files a killed process left in a study's folders; how many there were."""
        removed = 0
        for leftover in self.study_folder(study_uid).glob("*/.*.tmp*"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed


class BackgroundWriter:
    """Writes instances into a store on a few threads, so the fsync of one overlaps the arrival of the next.

    ``on_stored(path)`` is called (on a writer thread) once each file is in place. At most
    ``pending`` instances wait in memory; :meth:`close` waits for every write and raises the first
    error, if any. Use as a context manager: whatever happens, no write is left half-done.
    """

    def __init__(self, store: InstanceStore, on_stored: Callable[[Path], None], threads: int = 4, pending: int = 8) -> None:
        self.store = store
        self._on_stored = on_stored
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="medtl-pacs-write")
        self._room = threading.BoundedSemaphore(pending)
        self._lock = threading.Lock()
        self._error: BaseException | None = None

    def submit(self, write: Callable[[], Path]) -> None:
        """Run ``write`` (which returns the path it wrote) on a writer thread; raises an earlier write's error."""
        self.raise_error()
        self._room.acquire()
        self._pool.submit(write).add_done_callback(self._done)

    def encoded(self, study_uid: str, series_uid: str, sop_uid: str, *chunks: bytes | bytearray) -> None:
        self.submit(lambda: self.store.write_encoded(study_uid, series_uid, sop_uid, *chunks))

    def _done(self, future: Future) -> None:
        self._room.release()
        error = future.exception()
        if error is not None:
            with self._lock:
                self._error = self._error or error
            return
        self._on_stored(future.result())

    def raise_error(self) -> None:
        with self._lock:
            if self._error is not None:
                raise self._error

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.raise_error()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        self._pool.shutdown(wait=True)
        if kind is None:
            self.raise_error()

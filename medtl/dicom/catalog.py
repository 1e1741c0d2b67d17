"""`Catalog`: a persistent SQLite index of scanned files, so a re-scan reads only what changed.

Each file is keyed by its absolute path and remembered with the (size, mtime_ns) it had when it
was read, and what reading it gave: an :class:`InstanceHeader`, a :class:`ScanProblem` (broken
DICOM), or nothing (not DICOM). A file whose size and mtime are unchanged is not read again.

The database is in WAL mode and every thread gets its own connection, so the GUI thread can read
while a worker thread scans. A catalog written by another schema version is rebuilt; one that is
not a database at all (corrupt, truncated) is replaced: it is only a cache.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

from medtl.dicom.records import InstanceHeader, ScanProblem
from medtl.errors import MedtlError

SCHEMA_VERSION = 1
ENV_VARIABLE = "MEDTL_CATALOG"

log = logging.getLogger(__name__)

Outcome = InstanceHeader | ScanProblem | None  # None: the file is not a DICOM instance

_TUPLE_WIDTHS = {"image_position": 3, "image_orientation": 6, "pixel_spacing": 2}  # one column per number
_ALL_FIELDS = [f.name for f in fields(InstanceHeader)]
_FIELDS = _ALL_FIELDS[3:]  # stored as columns after path, size, mtime_ns (which the table has anyway)


def _columns(name: str) -> list[str]:
    width = _TUPLE_WIDTHS.get(name)
    return [name] if width is None else [f"{name}_{i}" for i in range(width)]


_HEADER_COLUMNS = [column for name in _FIELDS for column in _columns(name)]
_FIRST_HEADER_COLUMN = 5  # after path, size, mtime_ns, kind, reason


def _decoding_plan() -> list[tuple[int, int, bool]]:
    """(start, stop, is_tuple) column ranges of a row, in field order; runs of scalar fields merged."""
    plan: list[tuple[int, int, bool]] = []
    column = _FIRST_HEADER_COLUMN
    for name in _FIELDS:
        width = _TUPLE_WIDTHS.get(name, 1)
        if name not in _TUPLE_WIDTHS and plan and not plan[-1][2]:
            plan[-1] = (plan[-1][0], column + 1, False)
        else:
            plan.append((column, column + width, name in _TUPLE_WIDTHS))
        column += width
    return plan


_PLAN = _decoding_plan()
_HAS_PIXELS = _ALL_FIELDS.index("has_pixels")
_KIND_INSTANCE, _KIND_PROBLEM, _KIND_OTHER = 0, 1, 2


class CatalogEntry(NamedTuple):
    size: int
    mtime_ns: int
    outcome: Outcome


def default_catalog_path() -> Path:
    """``$MEDTL_CATALOG`` if set, else ``catalog.sqlite`` in the per-user cache folder."""
    override = os.environ.get(ENV_VARIABLE)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("medtl")) / "catalog.sqlite"


@dataclass
class _Memo:
    """The last ``entries_under`` answer of one thread's connection, valid at that ``data_version``."""

    root: Path
    version: int
    entries: dict[str, CatalogEntry]


class Catalog:
    """The persistent index; cheap to create, safe to share between threads."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_catalog_path()
        self._local = threading.local()
        self._connection()  # create or migrate now, so that errors surface here

    def entries_under(self, root: Path) -> dict[str, CatalogEntry]:
        """Everything remembered about files under ``root`` (a folder or a single file), by path.

        The last answer is kept in memory (per thread) while the database is unchanged by any other
        connection, so that re-scanning a folder in the same process does not reload it.
        """
        connection = self._connection()
        version = connection.execute("PRAGMA data_version").fetchone()[0]
        memo: _Memo | None = getattr(self._local, "memo", None)
        if memo is None or memo.root != root or memo.version != version:
            memo = self._local.memo = _Memo(root, version, self._load(connection, root))
        return dict(memo.entries)

    def update(self, entries: Iterable[tuple[str, CatalogEntry]], forget: Iterable[str] = ()) -> None:
        """Remember ``entries`` (path, entry) and forget the files at ``forget`` (deleted ones)."""
        entries, forget = list(entries), list(forget)
        placeholders = ", ".join("?" * (5 + len(_HEADER_COLUMNS)))
        try:
            with self._connection() as connection:
                connection.executemany(f"INSERT OR REPLACE INTO files VALUES ({placeholders})", (_row(path, entry) for path, entry in entries))
                connection.executemany("DELETE FROM files WHERE path = ?", ((path,) for path in forget))
        except sqlite3.OperationalError as error:  # locked by another scan too long, disk full: the scan itself is fine
            log.warning("catalog %s not updated (%s); the files will be read again next time", self.path, error)
            self._local.memo = None
            return
        memo: _Memo | None = getattr(self._local, "memo", None)
        if memo is not None:  # this connection's own commits leave data_version as it was: keep the memo in step
            low, high = _path_range(memo.root)
            memo.entries.update((path, entry) for path, entry in entries if low <= path < high or path == str(memo.root))
            for path in forget:
                memo.entries.pop(path, None)

    @staticmethod
    def _load(connection: sqlite3.Connection, root: Path) -> dict[str, CatalogEntry]:
        select = f"SELECT path, size, mtime_ns, kind, reason, {', '.join(_HEADER_COLUMNS)} FROM files WHERE "
        if root.is_dir():  # a key range on the primary key (an OR with "path = root" would defeat the index)
            rows = connection.execute(select + "path >= ? AND path < ?", _path_range(root))
        else:
            rows = connection.execute(select + "path = ?", (str(root),))
        folders: dict[str, Path] = {}
        return {row[0]: CatalogEntry(row[1], row[2], _outcome(row, folders)) for row in rows}

    def own_files(self) -> set[str]:
        """The paths of the database and its WAL files, which a scan of a folder holding them must skip."""
        database = str(self.path.resolve())
        return {database + suffix for suffix in ("", "-wal", "-shm", "-journal")}

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = self._local.memo = None

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._open()
            self._local.connection = connection
        return connection

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return _prepare(sqlite3.connect(self.path, timeout=30))
        except sqlite3.OperationalError as error:  # cannot open, read-only, locked: the user must act
            raise _unusable(self.path, error) from error
        except sqlite3.DatabaseError as error:  # not a database (corrupt, truncated): it is only a cache
            log.warning("catalog %s is unusable (%s); starting a new one", self.path, error)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        try:
            return _prepare(sqlite3.connect(self.path, timeout=30))
        except sqlite3.Error as error:
            raise _unusable(self.path, error) from error


def _unusable(path: Path, error: sqlite3.Error) -> MedtlError:
    return MedtlError(f"cannot open the scan catalog {path} ({error}); choose another with --catalog or use --no-catalog")


def _prepare(connection: sqlite3.Connection) -> sqlite3.Connection:
    """WAL mode, and the table of this schema version (a catalog of another version is rebuilt)."""
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        if connection.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            columns = ", ".join(_HEADER_COLUMNS)
            with connection:
                connection.execute("DROP TABLE IF EXISTS files")
                connection.execute(
                    f"CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, kind INTEGER, reason TEXT, {columns})"
                    " WITHOUT ROWID"
                )
                connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except sqlite3.DatabaseError:
        connection.close()
        raise
    return connection


def _path_range(root: Path) -> tuple[str, str]:
    """The key range of paths strictly under ``root``: ``root/`` up to (not including) ``root0``."""
    prefix = str(root).rstrip(os.sep) + os.sep
    return prefix, prefix[:-1] + chr(ord(os.sep) + 1)


def _row(path: str, entry: CatalogEntry) -> tuple:
    outcome = entry.outcome
    if isinstance(outcome, InstanceHeader):
        values = []
        for name in _FIELDS:
            value = getattr(outcome, name)
            if name in _TUPLE_WIDTHS:
                values.extend(value if value is not None else (None,) * _TUPLE_WIDTHS[name])
            else:
                values.append(value)
        return (path, entry.size, entry.mtime_ns, _KIND_INSTANCE, None, *values)
    empty = (None,) * len(_HEADER_COLUMNS)
    if isinstance(outcome, ScanProblem):
        return (path, entry.size, entry.mtime_ns, _KIND_PROBLEM, outcome.reason, *empty)
    return (path, entry.size, entry.mtime_ns, _KIND_OTHER, None, *empty)


def _outcome(row: tuple, folders: dict[str, Path]) -> Outcome:
    """What a catalog row says; ``folders`` caches Path objects of parent folders (much cheaper than Path(str))."""
    path_text, size, mtime_ns, kind, reason = row[:_FIRST_HEADER_COLUMN]
    folder, name = os.path.split(path_text)
    parent = folders.get(folder)
    if parent is None:
        parent = folders[folder] = Path(folder)
    path = parent / name
    if kind == _KIND_PROBLEM:
        return ScanProblem(path, reason)
    if kind != _KIND_INSTANCE:
        return None
    values: list = [path, size, mtime_ns]
    for start, stop, is_tuple in _PLAN:
        if is_tuple:
            values.append(None if row[start] is None else row[start:stop])
        else:
            values.extend(row[start:stop])
    values[_HAS_PIXELS] = bool(values[_HAS_PIXELS])
    return _restore_header(values)


def _restore_header(values: list) -> InstanceHeader:
    """An InstanceHeader from stored values, without the frozen dataclass ``__init__`` (4 µs per call).

    The values were checked when the header was first made, and a warm scan restores thousands.
    Valid while InstanceHeader is a plain frozen dataclass (no ``__post_init__``, no slots).
    """
    header = object.__new__(InstanceHeader)
    header.__dict__.update(zip(_ALL_FIELDS, values))
    return header

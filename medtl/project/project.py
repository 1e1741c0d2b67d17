"""`Project`: an annotation project in a folder, the place where labels, who made them, and runs live.

Layout::

    <folder>/project.sqlite           sources, series, label definitions, class labels, mask versions and their
                                      annotated slices, readers, runs, the audit log (schema: medtl.project.schema)
            /project.lock             who writes the project now (medtl.project.lock)
            /masks/<key>/r<N>/v0001.nii.gz   every saved mask, on its series' own grid (<key>: a hash of the
                                      series UID, N: the reader's number; no patient data in any file name)
            /images/<key>/image.nii.gz  images that came without DICOM files (from the old label store)

Nothing is lost to a crash: a mask is written to a new file (temporary file, fsync, rename) and only
then recorded in the database, in one transaction with its annotated slices and its audit entry, so
the database never names a missing or partial file and a save is there whole or not at all. A mask
file is never overwritten: every save is a new version (the oldest beyond :attr:`Project.keep_versions`
per series and reader are removed), so a destructive edit can be undone by restoring a version.
The database runs in WAL mode with full synchronisation; files no row names (a save cut short) are
removed when the project is next opened for writing.

One program at a time writes (:class:`~medtl.project.lock.ProjectLock`); others get a read-only
project whose :attr:`Project.notice` names the holder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medtl.data.sparse import IGNORE_NAME, Annotated
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.progress import CancelToken, ProgressCallback
from medtl.project import schema
from medtl.project.lock import ProjectLock, os_user
from medtl.project.records import CLASS_LABEL, LABEL_TABLE, RESTORE, AuditEntry, LabelDefinition, MaskVersion, RunRecord, SeriesRecord
from medtl.render.colours import label_colour

DATABASE_NAME = "project.sqlite"
MASKS_FOLDER, IMAGES_FOLDER = "masks", "images"
KEEP_VERSIONS = 200
"""Mask versions kept per series and reader by default (the oldest beyond are removed)."""
_SERIES_LEVEL = -1
"""``class_labels.slice`` of a class label of a whole series."""


def series_key(series_uid: str) -> str:
    """The folder name of a series' files: 16 hex digits of a hash of its UID (no UID, no patient data)."""
    return hashlib.sha256(series_uid.encode("utf-8")).hexdigest()[:16]


class Project:
    """An open project. Use :meth:`create` or :meth:`open`; close it (or use ``with``) to release its lock.

    ``user`` names whoever makes the changes in the audit log (the OS user unless the app sets a name);
    it is also the reader whose masks :meth:`save_mask` and :meth:`mask` use by default.
    Methods are safe to call from several threads (one runs at a time).
    """

    def __init__(self, folder: Path, connection: sqlite3.Connection, lock: ProjectLock, notice: str | None, user: str) -> None:
        self.folder = folder
        self.user = user
        self.notice = notice
        """Why the project is read-only (who holds it, since when), or None when this process may write it."""
        self.keep_versions = KEEP_VERSIONS
        self._connection = connection
        self._lock = lock
        self._guard = threading.RLock()
        self._saving = threading.Lock()

    # ---- opening and closing ------------------------------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path | str, *, name: str | None = None, user: str | None = None) -> Project:
        """A new, empty project in ``folder`` (created if needed); refuses a folder that holds a project already."""
        folder = Path(folder).expanduser().absolute()
        if (folder / DATABASE_NAME).exists():
            raise MedtlError(f"{folder}: already holds a project; open it instead")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise MedtlError(f"{folder}: cannot create the project folder ({error.strerror or error})") from None
        project = cls._open(folder, read_only=False, take_over=False, user=user, create=True)
        with project._write():
            project._connection.executemany(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", [("name", name or folder.name), ("created_at", repr(time.time()))]
            )
        return project

    @classmethod
    def open(cls, folder: Path | str, *, read_only: bool = False, take_over: bool = False, user: str | None = None) -> Project:
        """The project in ``folder``, for writing unless ``read_only`` or another program holds it (then read-only, and
        :attr:`notice` says who holds it). ``take_over``: take a stale lock (its process gone, or idle for long)."""
        folder = Path(folder).expanduser().absolute()
        if not (folder / DATABASE_NAME).is_file():
            raise MedtlError(f"{folder}: not a medtl project (no {DATABASE_NAME}); create one with `medtl project init {folder}`")
        return cls._open(folder, read_only=read_only, take_over=take_over, user=user, create=False)

    @classmethod
    def _open(cls, folder: Path, *, read_only: bool, take_over: bool, user: str | None, create: bool) -> Project:
        user = user or os_user()
        lock = ProjectLock(folder)
        notice = "opened read-only" if read_only else None
        if not read_only:
            try:
                holder = lock.acquire(user, take_over=take_over)
            except OSError as error:
                holder, notice = None, f"{folder}: cannot write there ({error.strerror or error}); opened read-only"
            if holder is not None:
                stale = f"; the lock looks stale ({holder.stale_because}): open it again with take-over to write" if holder.stale_because else ""
                notice = f"{folder} is being edited by {holder.describe()}; opened read-only{stale}"
        database = folder / DATABASE_NAME
        address, uri = (database, False) if notice is None else (f"{database.as_uri()}?mode=ro", True)
        connection = None
        try:
            connection = sqlite3.connect(address, uri=uri, isolation_level=None, check_same_thread=False, timeout=30)
            if notice is None:
                _prepare_for_writing(connection, database)
            else:
                _check_version(connection, database, writable=False)
        except (sqlite3.DatabaseError, MedtlError) as error:
            if connection is not None:
                connection.close()
            lock.release()
            if isinstance(error, MedtlError):
                raise
            raise MedtlError(f"{database}: cannot open the project database ({error})") from None
        project = cls(folder, connection, lock, notice, user)
        if notice is None and not create:
            project._remove_unrecorded_files()
        return project

    @property
    def read_only(self) -> bool:
        return self.notice is not None

    @property
    def name(self) -> str:
        row = self._read_one("SELECT value FROM meta WHERE key = 'name'")
        return str(row[0]) if row else self.folder.name

    def close(self) -> None:
        """Close the database and release the lock."""
        with self._guard:
            self._connection.close()
            self._lock.release()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def refresh_lock(self) -> None:
        """Show that the holder is still here (writes do it too): an idle lock goes stale after a while."""
        self._lock.refresh()

    def schema_version(self) -> int:
        return schema.version_of(self._connection)

    def check(self) -> list[str]:
        """Problems found (empty: none): the database's integrity check, and mask files it names that are missing."""
        with self._guard:
            problems = [row[0] for row in self._connection.execute("PRAGMA integrity_check") if row[0] != "ok"]
            for (path,) in self._connection.execute("SELECT path FROM masks"):
                if not (self.folder / path).is_file():
                    problems.append(f"{self.folder / path}: the mask file is missing")
        return problems

    # ---- series ---------------------------------------------------------------------------------------------------

    def add_dicom(
        self, path: Path | str, *, catalog: Any = None, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> tuple[list[SeriesRecord], list[str]]:
        """Scan ``path`` (a folder or file) and record its image series (again: their files are updated).

        Returns the series recorded and, in words, what was left out (segmentations, other non-image series).
        """
        from medtl.dicom.scan import scan
        from medtl.dicom.series import NON_IMAGE_MODALITIES

        path = Path(path).expanduser().absolute()
        self._check_writable()
        result = scan(path, catalog=catalog, progress=progress, cancel=cancel)
        recorded, skipped = [], []
        for patient in result.patients:
            for study in patient.studies:
                for info in study.series:
                    if info.rows is None or info.modality in NON_IMAGE_MODALITIES:
                        hint = ": import it as a label with `medtl labels import`" if info.modality == "SEG" else ""
                        skipped.append(f"series {info.series_number or '-'} ({info.modality or 'no modality'}, {len(info.instances)} file(s)) is not an image{hint}")
                        continue
                    first = info.instances[0]
                    grid = {
                        "rows": info.rows, "columns": info.columns, "slices": max(len(info.instances), first.number_of_frames),
                        "pixel_spacing": list(first.pixel_spacing) if first.pixel_spacing else None,
                    }  # fmt: skip
                    files = tuple(sorted(info.files))
                    folder = os.path.commonpath([str(f.parent) for f in files])
                    recorded.append(SeriesRecord(info.series_uid, study.study_uid, patient.patient_id or None, Path(folder), files, info.modality, info.description, grid))
        if not recorded and not skipped:
            raise MedtlError(f"{path}: no DICOM series found" + (f" ({result.errors[0].path.name}: {result.errors[0].reason})" if result.errors else ""))
        with self._write():
            self._connection.execute("INSERT OR IGNORE INTO sources (path, added_at) VALUES (?, ?)", (str(path), time.time()))
            source = self._connection.execute("SELECT id FROM sources WHERE path = ?", (str(path),)).fetchone()[0]
            for record in recorded:
                self._upsert_series(record, source)
        return recorded, skipped

    def add_image(self, record: SeriesRecord) -> SeriesRecord:
        """Record a series whose image is one file (``record.path``, NIfTI) rather than DICOM files."""
        with self._write():
            self._upsert_series(record, None)
        return record

    def _upsert_series(self, record: SeriesRecord, source: int | None) -> None:
        self._connection.execute(
            "INSERT INTO series (series_uid, study_uid, patient_id, source_id, path, files, modality, description, grid, added_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (series_uid) DO UPDATE SET study_uid = excluded.study_uid,"
            " patient_id = excluded.patient_id, source_id = excluded.source_id, path = excluded.path, files = excluded.files,"
            " modality = excluded.modality, description = excluded.description, grid = excluded.grid",
            (
                record.series_uid, record.study_uid, record.patient_id, source, str(record.path), json.dumps([str(f) for f in record.files]),
                record.modality, record.description, json.dumps(record.grid), time.time(),
            ),
        )  # fmt: skip

    def series(self) -> list[SeriesRecord]:
        """Every series of the project, in the order they were added."""
        return [_series(row) for row in self._read(f"SELECT {_SERIES_COLUMNS} FROM series ORDER BY id")]

    def series_record(self, series_uid: str) -> SeriesRecord:
        """The series ``series_uid``; MedtlError when the project does not hold it."""
        row = self._read_one(f"SELECT {_SERIES_COLUMNS} FROM series WHERE series_uid = ?", (series_uid,))
        if row is None:
            raise MedtlError(f"{self.folder}: the project has no series {series_uid}; add its DICOM folder with `medtl project add`")
        return _series(row)

    def load_volume(self, series_uid: str, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Volume:
        """The image of series ``series_uid`` (from its DICOM files, or its NIfTI image)."""
        record = self.series_record(series_uid)
        missing = [f for f in record.files or (record.path,) if not f.exists()]
        if missing:
            raise MedtlError(f"{missing[0]}: a file of series {series_uid} is gone ({len(missing)} missing); add its folder again with `medtl project add`")
        if record.files:
            from medtl.dicom.series import load_series

            return load_series(record.files, progress, cancel)
        from medtl.data.images import read_image

        return read_image(record.path)

    # ---- label definitions -----------------------------------------------------------------------------------------

    def labels(self) -> list[LabelDefinition]:
        """The segmentation labels, by value."""
        rows = self._read("SELECT value, name, colour, hidden, locked FROM labels ORDER BY value")
        return [LabelDefinition(value, name, _rgb(colour), bool(hidden), bool(locked)) for value, name, colour, hidden, locked in rows]

    def label(self, value: int) -> LabelDefinition:
        found = next((label for label in self.labels() if label.value == value), None)
        if found is None:
            raise MedtlError(f"{self.folder}: the project has no label {value}")
        return found

    def define_label(self, name: str, colour: tuple[int, int, int] | None = None, value: int | None = None) -> LabelDefinition:
        """A new label (``value``: the lowest free one unless given; ``colour``: the palette's for the value unless given)."""
        name = self._checked_name(name)
        with self._write():
            taken = {row[0] for row in self._connection.execute("SELECT value FROM labels")}
            if value is None:
                value = next((v for v in range(1, 256) if v not in taken), None)
                if value is None:
                    raise MedtlError("every label value 1-255 is taken; delete a label first")
            if not 1 <= value <= 255:
                raise MedtlError(f"a label value is 1-255, not {value}")
            if value in taken:
                raise MedtlError(f"label {value} exists already ({self._label_name(value)})")
            colour = _checked_colour(colour if colour is not None else label_colour(value))
            self._connection.execute("INSERT INTO labels (value, name, colour) VALUES (?, ?, ?)", (value, name, _hex(colour)))
            self._audit(LABEL_TABLE, value=value, detail=f"defined {name!r}")
        return LabelDefinition(value, name, colour)

    def rename_label(self, value: int, name: str) -> None:
        name = self._checked_name(name, value)
        with self._write():
            old = self._label_name(value)
            self._connection.execute("UPDATE labels SET name = ? WHERE value = ?", (name, value))
            self._audit(LABEL_TABLE, value=value, detail=f"renamed {old!r} to {name!r}")

    def set_label_colour(self, value: int, colour: tuple[int, int, int]) -> None:
        colour = _checked_colour(colour)
        with self._write():
            self._label_name(value)
            self._connection.execute("UPDATE labels SET colour = ? WHERE value = ?", (_hex(colour), value))
            self._audit(LABEL_TABLE, value=value, detail=f"colour {_hex(colour)}")

    def set_label_hidden(self, value: int, hidden: bool) -> None:
        self._set_flag(value, "hidden", hidden)

    def set_label_locked(self, value: int, locked: bool) -> None:
        self._set_flag(value, "locked", locked)

    def delete_label(self, value: int) -> LabelDefinition:
        """Remove label ``value`` 's definition and return it (give it to :meth:`define_label` to undo). Its voxels stay
        in the saved masks until a save clears them (an earlier mask version keeps them either way)."""
        removed = self.label(value)
        with self._write():
            self._connection.execute("DELETE FROM labels WHERE value = ?", (value,))
            self._audit(LABEL_TABLE, value=value, detail=f"deleted {removed.name!r}")
        return removed

    def _set_flag(self, value: int, column: str, on: bool) -> None:
        with self._write():
            self._label_name(value)
            self._connection.execute(f"UPDATE labels SET {column} = ? WHERE value = ?", (int(on), value))
            self._audit(LABEL_TABLE, value=value, detail=f"{'' if on else 'not '}{column}")

    def _label_name(self, value: int) -> str:
        row = self._connection.execute("SELECT name FROM labels WHERE value = ?", (value,)).fetchone()
        if row is None:
            raise MedtlError(f"{self.folder}: the project has no label {value}")
        return str(row[0])

    def _checked_name(self, name: str, value: int | None = None) -> str:
        name = name.strip()
        if not name:
            raise MedtlError("a label needs a name")
        if name.lower() == IGNORE_NAME or name.lower() == "background":
            raise MedtlError(f"{name!r} is reserved (background is 0, {IGNORE_NAME} marks voxels nobody annotated); choose another name")
        for other, other_name in self._read("SELECT value, name FROM labels"):
            if other != value and other_name.lower() == name.lower():
                raise MedtlError(f"label {other} is called {other_name!r} already; choose another name")
        return name

    # ---- masks ----------------------------------------------------------------------------------------------------

    def save_mask(
        self, series_uid: str, mask: np.ndarray, grid: Volume, *, tool: str, reader: str | None = None, value: int | Sequence[int] | None = None,
        touched: Annotated | None = None, annotated: Annotated | None = None, detail: str = "",
    ) -> MaskVersion:  # fmt: skip
        """Save ``mask`` (``[z, y, x]`` integers 0-255 on ``grid``, the series' image) as the next version of ``reader`` 's
        mask of the series (default: :attr:`user`), and record the change: ``tool`` (a name from
        :mod:`medtl.project.records` or the tool's own), the label ``value`` it changed (several: an entry for each), the slices it ``touched``,
        ``detail`` (e.g. the run whose prediction was accepted).

        ``annotated``: the slices annotated in this version; None: those of the previous version plus ``touched``
        (everything when there is no previous version and nothing was touched, as for an imported mask).
        """
        mask = np.asarray(mask)
        if mask.shape != grid.shape or mask.ndim != 3:
            raise MedtlError(f"the mask has shape {mask.shape}, but the series' grid {grid.shape}")
        if not np.issubdtype(mask.dtype, np.integer) and mask.dtype != bool:
            raise MedtlError(f"a mask holds integer label values, not {mask.dtype}")
        if mask.size and (int(mask.min()) < 0 or int(mask.max()) > 255):
            raise MedtlError(f"mask values must be 0-255, found {int(mask.min())}..{int(mask.max())}")
        if not tool.strip():
            raise MedtlError("say which tool made the change")
        from medtl.export.nifti import write_nifti

        with self._saving:  # one save at a time; reads (and other writes) go on while its file is written
            with self._guard:
                self._check_writable()
                _check_grid(self.series_record(series_uid), grid)
                reader_name, reader_id = self._reader(reader)
                row = self._connection.execute(
                    "SELECT id, version FROM masks WHERE series_id = (SELECT id FROM series WHERE series_uid = ?) AND reader_id = ?"
                    " ORDER BY version DESC LIMIT 1",
                    (series_uid, reader_id),
                ).fetchone()
                if annotated is None:
                    annotated = _annotated_after(self._annotated(row[0]) if row else None, touched)
            version = (row[1] if row else 0) + 1
            relative = Path(MASKS_FOLDER, series_key(series_uid), f"r{reader_id}", f"v{version:04d}.nii.gz")
            target = self.folder / relative
            write_nifti(Volume(np.ascontiguousarray(mask, dtype=np.uint8), grid.spacing, grid.origin, grid.direction), target)
            _sync_folder(target.parent)
            saved_at = time.time()
            with self._write():
                mask_id = self._connection.execute(
                    "INSERT INTO masks (series_id, reader_id, version, path, saved_at, complete) VALUES"
                    " ((SELECT id FROM series WHERE series_uid = ?), ?, ?, ?, ?, ?)",
                    (series_uid, reader_id, version, relative.as_posix(), saved_at, int(annotated.complete)),
                ).lastrowid
                self._connection.executemany(
                    "INSERT INTO annotated_slices (mask_id, axis, slice) VALUES (?, ?, ?)",
                    [(mask_id, axis, index) for axis, indices in enumerate(annotated.slices) for index in sorted(indices)],
                )
                for changed in [value] if value is None or isinstance(value, int) else sorted(set(value)) or [None]:
                    self._audit(tool, series_uid=series_uid, reader_id=reader_id, value=changed, slices=touched, detail=detail, mask_version=version)
            self._prune(series_uid, reader_id)
        return MaskVersion(series_uid, reader_name, version, target, saved_at, annotated)

    def mask(self, series_uid: str, reader: str | None = None, version: int | None = None) -> MaskVersion | None:
        """``reader`` 's (default :attr:`user`) newest mask of the series, or its ``version``; None when there is none."""
        condition, parameters = "s.series_uid = ? AND r.name = ?", [series_uid, reader or self.user]
        if version is not None:
            condition, parameters = f"{condition} AND m.version = ?", [*parameters, version]
        found = self._masks(condition, parameters)
        return found[-1] if found else None

    def mask_versions(self, series_uid: str, reader: str | None = None) -> list[MaskVersion]:
        """The saved versions of ``reader`` 's (default :attr:`user`) mask of the series, oldest first."""
        return self._masks("s.series_uid = ? AND r.name = ?", (series_uid, reader or self.user))

    def current_masks(self, reader: str | None = None) -> list[MaskVersion]:
        """The newest mask of every series and reader (of ``reader`` only, when given), by series then reader."""
        condition = "m.version = (SELECT MAX(version) FROM masks WHERE series_id = m.series_id AND reader_id = m.reader_id)"
        return self._masks(condition + (" AND r.name = ?" if reader else ""), (reader,) if reader else ())

    def latest_masks(self, reader: str | None = None) -> dict[str, MaskVersion]:
        """Series UID -> its newest mask: ``reader`` 's, or (None) whoever saved last. Series without a mask are left out."""
        newest: dict[str, MaskVersion] = {}
        for version in self.current_masks(reader):
            if version.series_uid not in newest or version.saved_at > newest[version.series_uid].saved_at:
                newest[version.series_uid] = version
        return newest

    def load_mask(self, version: MaskVersion) -> Volume:
        """The voxels of a saved mask (uint8 ``[z, y, x]``) on its grid."""
        from medtl.data.images import read_image

        mask = read_image(version.path)
        mask.array = np.asarray(mask.array, dtype=np.uint8)
        return mask

    def restore_mask(self, series_uid: str, version: int, reader: str | None = None) -> MaskVersion:
        """Make ``version`` the newest again (saved as a new version; nothing is removed)."""
        old = self.mask(series_uid, reader, version)
        if old is None:
            raise MedtlError(f"{self.folder}: {reader or self.user} has no version {version} of series {series_uid}")
        mask = self.load_mask(old)
        return self.save_mask(series_uid, mask.array, mask, tool=RESTORE, reader=old.reader, annotated=old.annotated, detail=f"version {version}")

    def readers(self) -> list[str]:
        """Everyone who saved a mask or a class label, in the order they first did."""
        return [row[0] for row in self._read("SELECT name FROM readers ORDER BY id")]

    def _masks(self, condition: str, parameters: Sequence[Any]) -> list[MaskVersion]:
        with self._guard:
            rows = self._connection.execute(
                "SELECT m.id, s.series_uid, r.name, m.version, m.path, m.saved_at FROM masks m JOIN series s ON s.id = m.series_id"
                f" JOIN readers r ON r.id = m.reader_id WHERE {condition} ORDER BY s.id, r.id, m.version",
                tuple(parameters),
            ).fetchall()
            return [MaskVersion(uid, reader, version, self.folder / path, saved_at, self._annotated(mask_id)) for mask_id, uid, reader, version, path, saved_at in rows]

    def _annotated(self, mask_id: int) -> Annotated:
        complete = self._connection.execute("SELECT complete FROM masks WHERE id = ?", (mask_id,)).fetchone()[0]
        slices: tuple[set[int], set[int], set[int]] = (set(), set(), set())
        for axis, index in self._connection.execute("SELECT axis, slice FROM annotated_slices WHERE mask_id = ?", (mask_id,)):
            slices[axis].add(index)
        return Annotated((frozenset(slices[0]), frozenset(slices[1]), frozenset(slices[2])), bool(complete))

    def _reader(self, name: str | None) -> tuple[str, int]:
        """The reader called ``name`` (default :attr:`user`) and its number, recorded on first use."""
        name = (name or self.user).strip()
        if not name:
            raise MedtlError("a reader needs a name")
        row = self._connection.execute("SELECT id FROM readers WHERE name = ?", (name,)).fetchone()
        if row is None:
            with self._write():
                row = (self._connection.execute("INSERT INTO readers (name, added_at) VALUES (?, ?)", (name, time.time())).lastrowid,)
        return name, int(row[0])

    def _prune(self, series_uid: str, reader_id: int) -> None:
        """Remove the versions beyond :attr:`keep_versions`: their rows first, then their files."""
        with self._write():
            old = self._connection.execute(
                "SELECT id, path FROM masks WHERE series_id = (SELECT id FROM series WHERE series_uid = ?) AND reader_id = ?"
                " ORDER BY version DESC LIMIT -1 OFFSET ?",
                (series_uid, reader_id, max(1, self.keep_versions)),
            ).fetchall()
            self._connection.executemany("DELETE FROM masks WHERE id = ?", [(mask_id,) for mask_id, _ in old])
        for _, path in old:
            (self.folder / path).unlink(missing_ok=True)

    def _remove_unrecorded_files(self) -> None:
        """Mask files no row names: a save cut short before it was recorded, or a removal cut short."""
        recorded = {row[0] for row in self._connection.execute("SELECT path FROM masks")}
        masks = self.folder / MASKS_FOLDER
        for path in masks.rglob("*") if masks.is_dir() else ():
            if path.is_file() and path.relative_to(self.folder).as_posix() not in recorded:
                with contextlib.suppress(OSError):
                    path.unlink()

    def write_datalist(self, destination: Path | str, task: str = "segmentation", reader: str | None = None) -> Path:
        """The project as training data: ``destination/datalist.json`` and the files it names
        (:func:`medtl.project.training.write_training_data`)."""
        from medtl.project.training import write_training_data

        return write_training_data(self, Path(destination), task, reader)

    # ---- class labels ---------------------------------------------------------------------------------------------

    def classes(self) -> list[str]:
        """The class names for classification, in the order they were defined (their index)."""
        return [row[0] for row in self._read("SELECT name FROM classes ORDER BY id")]

    def define_class(self, name: str) -> None:
        name = name.strip()
        if not name:
            raise MedtlError("a class needs a name")
        if name.lower() in (c.lower() for c in self.classes()):
            raise MedtlError(f"the class {name!r} exists already")
        with self._write():
            self._connection.execute("INSERT INTO classes (name) VALUES (?)", (name,))
            self._audit(CLASS_LABEL, detail=f"defined class {name!r}")

    def rename_class(self, name: str, new_name: str) -> None:
        """Call class ``name`` ``new_name`` (its class labels keep it: they name it by its index)."""
        new_name = new_name.strip()
        if name not in self.classes():
            raise MedtlError(f"no class {name!r}; the classes are {', '.join(self.classes()) or 'none yet'}")
        if not new_name or new_name.lower() in (c.lower() for c in self.classes() if c != name):
            raise MedtlError(f"a class needs a name no other class has, not {new_name!r}")
        with self._write():
            self._connection.execute("UPDATE classes SET name = ? WHERE name = ?", (new_name, name))
            self._audit(CLASS_LABEL, detail=f"renamed class {name!r} to {new_name!r}")

    def set_class(self, series_uid: str, name: str | None, *, slice_index: int | None = None, reader: str | None = None) -> None:
        """Give the series (or its slice ``slice_index`` along z) the class ``name``; None removes its class label."""
        self.series_record(series_uid)
        with self._guard:
            class_id = None
            if name is not None:
                row = self._read_one("SELECT id FROM classes WHERE name = ?", (name,))
                if row is None:
                    raise MedtlError(f"no class {name!r}; the classes are {', '.join(self.classes()) or 'none yet'}")
                class_id = row[0]
            if slice_index is not None and slice_index < 0:
                raise MedtlError(f"a slice number is 0 or more, not {slice_index}")
            _, reader_id = self._reader(reader)
            where = "(SELECT id FROM series WHERE series_uid = ?), ?, ?"
            place = (series_uid, reader_id, _SERIES_LEVEL if slice_index is None else slice_index)
            with self._write():
                if class_id is None:
                    self._connection.execute(f"DELETE FROM class_labels WHERE (series_id, reader_id, slice) = ({where})", place)
                else:
                    self._connection.execute(f"INSERT OR REPLACE INTO class_labels (series_id, reader_id, slice, class_id, at) VALUES ({where}, ?, ?)", (*place, class_id, time.time()))
                slices = Annotated().add(0, [slice_index]) if slice_index is not None else None
                self._audit(CLASS_LABEL, series_uid=series_uid, reader_id=reader_id, slices=slices, detail=f"class {name!r}" if name else "class removed")

    def class_labels(self, series_uid: str, reader: str | None = None) -> dict[int | None, str]:
        """``reader`` 's (default :attr:`user`) class labels of the series: slice number (None: the whole series) -> class."""
        rows = self._read(
            "SELECT cl.slice, c.name FROM class_labels cl JOIN classes c ON c.id = cl.class_id JOIN readers r ON r.id = cl.reader_id"
            " WHERE cl.series_id = (SELECT id FROM series WHERE series_uid = ?) AND r.name = ? ORDER BY cl.slice",
            (series_uid, reader or self.user),
        )
        return {(None if index == _SERIES_LEVEL else index): name for index, name in rows}

    def series_classes(self, reader: str | None = None) -> dict[str, str]:
        """Series UID -> class of every series with a whole-series class label (of ``reader``, else the newest of anyone's)."""
        rows = self._read(
            "SELECT s.series_uid, c.name FROM class_labels cl JOIN classes c ON c.id = cl.class_id JOIN series s ON s.id = cl.series_id"
            " JOIN readers r ON r.id = cl.reader_id WHERE cl.slice = ? AND (? IS NULL OR r.name = ?) ORDER BY s.id, cl.at",
            (_SERIES_LEVEL, reader, reader),
        )
        return dict(rows)

    # ---- runs and audit -------------------------------------------------------------------------------------------

    def link_run(self, run_dir: Path | str, note: str = "") -> None:
        """Record a training run folder as made from this project (again: nothing changes)."""
        path = str(Path(run_dir).expanduser().absolute())
        with self._write():
            if self._connection.execute("INSERT OR IGNORE INTO runs (path, added_at, note) VALUES (?, ?, ?)", (path, time.time(), note)).rowcount:
                self._audit("training", detail=f"run {path}")

    def runs(self) -> list[RunRecord]:
        return [RunRecord(Path(path), at, note) for path, at, note in self._read("SELECT path, added_at, note FROM runs ORDER BY id")]

    def history(self, series_uid: str | None = None, value: int | None = None, reader: str | None = None) -> list[AuditEntry]:
        """The audit log, oldest first: of a series, a label value, a reader, or any mix (None: all)."""
        rows = self._read(
            "SELECT a.at, a.who, a.tool, s.series_uid, r.name, a.value, a.slices, a.detail, a.mask_version FROM audit a"
            " LEFT JOIN series s ON s.id = a.series_id LEFT JOIN readers r ON r.id = a.reader_id"
            " WHERE (? IS NULL OR s.series_uid = ?) AND (? IS NULL OR a.value = ?) AND (? IS NULL OR r.name = ?) ORDER BY a.id",
            (series_uid, series_uid, value, value, reader, reader),
        )
        return [
            AuditEntry(at, who, tool, uid, name, value, Annotated.from_dict(json.loads(slices)) if slices else None, detail, version)
            for at, who, tool, uid, name, value, slices, detail, version in rows
        ]

    def _audit(
        self, tool: str, *, series_uid: str | None = None, reader_id: int | None = None, value: int | None = None,
        slices: Annotated | None = None, detail: str = "", mask_version: int | None = None,
    ) -> None:  # fmt: skip
        """One audit entry, inside the caller's transaction."""
        self._connection.execute(
            "INSERT INTO audit (at, who, tool, series_id, reader_id, value, slices, detail, mask_version)"
            " VALUES (?, ?, ?, (SELECT id FROM series WHERE series_uid = ?), ?, ?, ?, ?, ?)",
            (time.time(), self.user, tool, series_uid, reader_id, value, json.dumps(slices.to_dict()) if slices else None, detail, mask_version),
        )

    # ---- plumbing -------------------------------------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        with self._write():
            self._connection.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        row = self._read_one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def _check_writable(self) -> None:
        if self.notice is not None:
            raise MedtlError(f"cannot change the project: {self.notice}")
        if not self._lock.held():
            holder = self._lock.holder()
            self.notice = f"{self.folder} was taken over by {holder.describe() if holder else 'another program'}; opened read-only"
            raise MedtlError(f"cannot change the project: {self.notice}")

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction (nested ones join it); refused when the project is read-only."""
        with self._guard:
            if self._connection.in_transaction:
                yield
                return
            self._check_writable()
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._connection.execute("COMMIT")
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._lock.refresh()

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        """A query's rows, fetched while no other thread uses the connection."""
        with self._guard:
            return self._connection.execute(sql, tuple(parameters)).fetchall()

    def _read_one(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        rows = self._read(sql, parameters)
        return rows[0] if rows else None


_SERIES_COLUMNS = "series_uid, study_uid, patient_id, path, files, modality, description, grid"


def _series(row: Sequence[Any]) -> SeriesRecord:
    uid, study, patient, path, files, modality, description, grid = row
    return SeriesRecord(uid, study, patient, Path(path), tuple(Path(f) for f in json.loads(files)), modality, description, json.loads(grid))


def _prepare_for_writing(connection: sqlite3.Connection, database: Path) -> None:
    """WAL mode, full synchronisation (a committed save survives a power cut), foreign keys, the current schema."""
    _check_version(connection, database, writable=True)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    schema.migrate(connection)
    connection.execute("PRAGMA foreign_keys=ON")


def _check_version(connection: sqlite3.Connection, database: Path, writable: bool) -> None:
    found = schema.version_of(connection)
    if found > schema.SCHEMA_VERSION:
        raise MedtlError(f"{database}: made by a newer medtl (project version {found}, this medtl reads up to {schema.SCHEMA_VERSION}); update medtl")
    if not writable and found < schema.SCHEMA_VERSION:
        raise MedtlError(f"{database}: made by an older medtl (project version {found}); open it for writing once to upgrade it")


def _annotated_after(previous: Annotated | None, touched: Annotated | None) -> Annotated:
    """The slices annotated after an edit that ``touched`` some, when ``previous`` were (None: the first save, which
    annotates everything unless it touched only some slices)."""
    if previous is None:
        return touched if touched is not None and not touched.complete and touched.count() else Annotated.everything()
    if touched is None or previous.complete:
        return previous
    return Annotated((previous.slices[0] | touched.slices[0], previous.slices[1] | touched.slices[1], previous.slices[2] | touched.slices[2]), touched.complete)


def _check_grid(record: SeriesRecord, grid: Volume) -> None:
    """The mask's grid has the series' rows and columns (as its headers say)."""
    rows, columns = record.grid.get("rows"), record.grid.get("columns")
    if rows is not None and columns is not None and (rows, columns) != grid.shape[1:]:
        raise MedtlError(f"the mask's grid is {grid.shape[1]} x {grid.shape[2]}, but series {record.series_uid} has {rows} x {columns} pixels per slice")


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; elsewhere the rename is durable once the file system says so)."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _checked_colour(colour: Sequence[int]) -> tuple[int, int, int]:
    values = tuple(int(c) for c in colour)
    if len(values) != 3 or not all(0 <= c <= 255 for c in values):
        raise MedtlError(f"a colour is three values 0-255 (red, green, blue), not {tuple(colour)}")
    return values  # type: ignore[return-value]


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _rgb(text: str) -> tuple[int, int, int]:
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)

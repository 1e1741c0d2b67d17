"""The project database's schema: a chain of migrations, each taking the schema one version up.

``PRAGMA user_version`` holds the version. A new database runs the whole chain; an older one runs
the steps it lacks, all in one transaction (a crash during an upgrade leaves the old version
intact). Steps are never edited once released: a change is a new step at the end.

- v1: sources, series, label definitions, mask versions and their annotated slices, runs, audit log.
- v2: readers (annotators). Masks and audit entries belong to a reader, so two readers can label
  one series as separate versions; masks saved before belong to the reader ``default``.
- v3: class labels for classification (a class table, labels per series and per slice), and a
  label definition's display state (hidden, locked).
"""

from __future__ import annotations

import sqlite3
import time

LEGACY_READER = "default"
"""The reader that v1 masks (saved before readers existed) are given by the v2 migration."""

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, added_at REAL NOT NULL);
CREATE TABLE series (
    id INTEGER PRIMARY KEY, series_uid TEXT NOT NULL UNIQUE, study_uid TEXT NOT NULL DEFAULT '', patient_id TEXT,
    source_id INTEGER REFERENCES sources(id), path TEXT NOT NULL, files TEXT NOT NULL DEFAULT '[]',
    modality TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '', grid TEXT NOT NULL DEFAULT '{}', added_at REAL NOT NULL
);
CREATE TABLE labels (value INTEGER PRIMARY KEY CHECK (value BETWEEN 1 AND 255), name TEXT NOT NULL, colour TEXT NOT NULL);
CREATE TABLE masks (
    id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL REFERENCES series(id), version INTEGER NOT NULL, path TEXT NOT NULL,
    saved_at REAL NOT NULL, complete INTEGER NOT NULL, UNIQUE (series_id, version)
);
CREATE TABLE annotated_slices (
    mask_id INTEGER NOT NULL REFERENCES masks(id) ON DELETE CASCADE, axis INTEGER NOT NULL CHECK (axis IN (0, 1, 2)),
    slice INTEGER NOT NULL, PRIMARY KEY (mask_id, axis, slice)
) WITHOUT ROWID;
CREATE TABLE runs (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, added_at REAL NOT NULL, note TEXT NOT NULL DEFAULT '');
CREATE TABLE audit (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, who TEXT NOT NULL, tool TEXT NOT NULL, series_id INTEGER REFERENCES series(id),
    value INTEGER, slices TEXT, detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_label ON audit (series_id, value);
"""

_V2 = f"""
CREATE TABLE readers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, added_at REAL NOT NULL);
INSERT INTO readers (id, name, added_at) SELECT 1, '{LEGACY_READER}', :now WHERE EXISTS (SELECT 1 FROM masks);
CREATE TABLE masks_v2 (
    id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL REFERENCES series(id), reader_id INTEGER NOT NULL REFERENCES readers(id),
    version INTEGER NOT NULL, path TEXT NOT NULL, saved_at REAL NOT NULL, complete INTEGER NOT NULL,
    UNIQUE (series_id, reader_id, version)
);
INSERT INTO masks_v2 (id, series_id, reader_id, version, path, saved_at, complete)
    SELECT id, series_id, 1, version, path, saved_at, complete FROM masks;
DROP TABLE masks;
ALTER TABLE masks_v2 RENAME TO masks;
ALTER TABLE audit ADD COLUMN reader_id INTEGER REFERENCES readers(id);
ALTER TABLE audit ADD COLUMN mask_version INTEGER;
UPDATE audit SET reader_id = 1 WHERE series_id IS NOT NULL AND EXISTS (SELECT 1 FROM readers WHERE id = 1);
"""

_V3 = """
ALTER TABLE labels ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
ALTER TABLE labels ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
CREATE TABLE classes (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE class_labels (
    series_id INTEGER NOT NULL REFERENCES series(id), reader_id INTEGER NOT NULL REFERENCES readers(id),
    slice INTEGER NOT NULL, class_id INTEGER NOT NULL REFERENCES classes(id), at REAL NOT NULL,
    PRIMARY KEY (series_id, reader_id, slice)
);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
"""Step ``i`` takes the schema from version ``i`` to ``i + 1`` (0: an empty database)."""
SCHEMA_VERSION = len(MIGRATIONS)


def version_of(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


def migrate(connection: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring ``connection`` 's schema up to ``target`` in one transaction; returns the version it had.

    ``connection`` must be in autocommit mode (``isolation_level=None``) and outside a transaction.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        found = version_of(connection)
        for step in range(found, target):
            for statement in _statements(MIGRATIONS[step]):
                connection.execute(statement, {"now": time.time()} if ":now" in statement else ())
        if found < target:
            connection.execute(f"PRAGMA user_version={int(target)}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return found


def _statements(script: str) -> list[str]:
    """The SQL statements of ``script`` (they hold no semicolons of their own)."""
    return [statement.strip() for statement in script.split(";") if statement.strip()]

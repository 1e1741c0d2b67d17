"""The persistent catalog: re-scans read only what changed, and the database survives misuse."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pydicom
import pytest

from medtl.dicom import catalog as catalog_module
from medtl.dicom import header as header_module
from medtl.dicom.catalog import Catalog, default_catalog_path
from medtl.dicom.records import ScanResult
from medtl.dicom.scan import scan
from medtl.errors import MedtlError
from medtl.progress import CancelToken, Cancelled
from tests.dicomgen import SeriesSpec, phantom, write_series
from tests.test_scan import messy_folder, series_named


def summary(result: ScanResult) -> tuple:
    """What a user sees of a scan, to compare a warm scan with a cold one."""
    series = [(s.series_uid, s.modality, s.description, s.rows, s.columns, s.files, s.warnings, s.instances) for s in result.all_series()]
    return series, result.errors, result.files_seen, result.skipped_non_dicom, result.duplicates


def bump(path: Path, data: bytes | None = None) -> None:
    """Change a file's content (or only its mtime) the way an editor or a re-export does."""
    if data is not None:
        path.write_bytes(data)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_unchanged_rescan_reads_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    messy_folder(folder)
    catalog = Catalog(tmp_path / "catalog.sqlite")
    cold = scan(folder, catalog=catalog)
    assert cold.files_read == cold.files_seen > 0
    warm = scan(folder, catalog=Catalog(tmp_path / "catalog.sqlite"))  # as after an application restart
    assert warm.files_read == 0
    assert summary(warm) == summary(cold)
    assert {problem.path.name for problem in warm.errors} == {"empty.dcm", "truncated.dcm", "nopixels.dcm"}


def folder_with_everything(root: Path, sample_dir: Path) -> None:
    """The messy folder, a DICOMDIR export, and a series whose orientations differ only by the sign of a zero."""
    messy_folder(root / "messy")
    shutil.copytree(sample_dir, root / "export")
    paths = write_series(root / "zeros", phantom((3, 8, 8)), SeriesSpec(series_description="signed zeros"))
    ds = pydicom.dcmread(paths[1])
    ds.ImageOrientationPatient = ["1", "-0", "0", "0", "1", "-0.0"]
    ds.save_as(paths[1])


def test_warm_rescan_in_a_new_catalog_equals_the_cold_scan(tmp_path: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As after a restart: a new Catalog object reads no file, and gives back exactly what the cold scan gave."""
    folder = tmp_path / "data"
    folder_with_everything(folder, sample_dir)
    cold = scan(folder, catalog=Catalog(tmp_path / "catalog.sqlite"))
    assert cold.files_read == cold.files_seen > 100
    monkeypatch.setattr(Catalog, "entries_under", lambda self, root: pytest.fail("the remembered result was rebuilt file by file"))
    warm = scan(folder, catalog=Catalog(tmp_path / "catalog.sqlite"))
    assert warm.files_read == 0
    assert dataclasses.replace(warm, files_read=cold.files_read) == cold
    assert repr(warm) == repr(cold).replace(f"files_read={cold.files_read}", "files_read=0")  # -0.0 stays -0.0, tuples tuples
    zeros = [instance.image_orientation for instance in series_named(warm, "signed zeros").instances]
    assert sorted(str(orientation[1]) for orientation in zeros) == ["-0.0", "0.0", "0.0"]


def test_touching_one_file_rereads_only_that_file(tmp_path: Path, sample_dir: Path) -> None:
    folder = tmp_path / "data"
    folder_with_everything(folder, sample_dir)
    cold = scan(folder, catalog=Catalog(tmp_path / "catalog.sqlite"))
    touched = series_named(cold, "nested ct").instances[2].path
    bump(touched)  # mtime only: the same content
    again = scan(folder, catalog=Catalog(tmp_path / "catalog.sqlite"))
    assert again.files_read == 1
    before, after = series_named(cold, "nested ct").instances[2].mtime_ns, touched.stat().st_mtime_ns
    assert series_named(again, "nested ct").instances[2].mtime_ns == after
    expected = repr(cold).replace(f"mtime_ns={before}", f"mtime_ns={after}").replace(f"files_read={cold.files_read}", "files_read=1")
    assert repr(again) == expected
    assert scan(folder, catalog=Catalog(tmp_path / "catalog.sqlite")).files_read == 0


def test_added_and_deleted_files_are_seen_by_a_new_catalog(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    paths = write_series(folder / "ct", phantom((4, 8, 8)))
    scan(folder, catalog=Catalog(tmp_path / "catalog.sqlite"))
    paths[0].unlink()
    added = write_series(folder / "mr", phantom((2, 8, 8)), SeriesSpec(modality="MR"))
    result = scan(folder, catalog=Catalog(tmp_path / "catalog.sqlite"))
    assert result.files_read == 2 and result.files_seen == 5
    assert sorted(len(series.instances) for series in result.all_series()) == [2, 3]
    assert {path.resolve() for path in added} | {path.resolve() for path in paths[1:]} == {
        path for series in result.all_series() for path in series.files
    }


def test_damaged_remembered_result_is_rebuilt_from_the_files(tmp_path: Path) -> None:
    """The results table is a cache inside a cache: an edited or cut document is not trusted, nor fatal."""
    folder = tmp_path / "data"
    messy_folder(folder)
    cold = scan(folder, catalog=Catalog(tmp_path / "catalog.sqlite"))
    with sqlite3.connect(tmp_path / "catalog.sqlite") as connection:
        document = json.loads(connection.execute("SELECT result FROM results").fetchone()[0])
    columns = next(series[6] for patient in document["patients"] for study in patient[2] for series in study[3] if len(series[6]["name"]) > 1)
    last = columns["name"].pop()  # one instance fewer in one column
    unequal_columns = json.dumps(document)
    columns["name"] = [5, *columns["name"][1:], last]  # all there, but one file name is not text
    for damage in ("not json", '{"patients": [[1]]}', '{"patients": 3}', unequal_columns, json.dumps(document)):
        with sqlite3.connect(tmp_path / "catalog.sqlite") as connection:
            assert connection.execute("UPDATE results SET result = ?", (damage,)).rowcount == 1
        warm = scan(folder, catalog=Catalog(tmp_path / "catalog.sqlite"))
        assert warm.files_read == 0 and summary(warm) == summary(cold)


def test_warm_rescan_makes_each_series_instances_when_first_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restored result makes no header until a series' instances are used, then keeps them."""
    folder = tmp_path / "data"
    write_series(folder / "ct", phantom((3, 8, 8)))
    write_series(folder / "mr", phantom((2, 8, 8)), SeriesSpec(modality="MR"))
    cold = scan(folder, catalog=Catalog(tmp_path / "catalog.sqlite"))
    made: list[int] = []

    def counted(*parts):
        made.append(len(headers := make_headers(*parts)))
        return headers

    make_headers = catalog_module._make_headers
    monkeypatch.setattr(catalog_module, "_make_headers", counted)
    warm = scan(folder, catalog=Catalog(tmp_path / "catalog.sqlite"))
    assert warm.files_read == 0 and made == []
    ct, cold_ct = (next(series for series in result.all_series() if series.modality == "CT") for result in (warm, cold))
    assert (ct.files, ct.rows, ct.columns) == (cold_ct.files, 8, 8) and made == [3]
    assert ct.instances is ct.instances and made == [3]
    assert warm == dataclasses.replace(cold, files_read=0) and made == [3, 2]


def test_warm_rescan_does_not_import_pydicom(tmp_path: Path) -> None:
    """`medtl scan` of an unchanged folder needs neither pydicom (0.3-0.5 s to import) nor any header reading."""
    folder = tmp_path / "data"
    write_series(folder, phantom((3, 8, 8)))
    scan(folder, catalog=Catalog(tmp_path / "catalog.sqlite"))
    code = (
        "import sys\n"
        "from medtl.dicom.catalog import Catalog\n"
        "from medtl.dicom.scan import scan\n"
        f"result = scan({str(folder)!r}, catalog=Catalog({str(tmp_path / 'catalog.sqlite')!r}))\n"
        "print(result.files_read, len(result.all_series()[0].instances), 'pydicom' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "3", "False"]


def test_changed_added_and_deleted_files_are_read_again(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    paths = write_series(folder / "ct", phantom((6, 8, 8)), SeriesSpec(order="sorted"))
    (folder / "notes.txt").write_text("first")
    catalog = Catalog(tmp_path / "catalog.sqlite")
    scan(folder, catalog=catalog)
    bump(paths[0])  # touched
    bump(folder / "notes.txt", b"second version")  # edited
    paths[1].unlink()
    added = write_series(folder / "mr", phantom((2, 8, 8)), SeriesSpec(modality="MR"))
    result = scan(folder, catalog=catalog)
    assert result.files_read == 4
    assert sorted(len(series.instances) for series in result.all_series()) == [2, 5]
    assert paths[1].resolve() not in {path for series in result.all_series() for path in series.files}
    remembered = catalog.entries_under(folder.resolve())
    assert str(paths[1].resolve()) not in remembered
    assert set(remembered) >= {str(path.resolve()) for path in added}
    assert scan(folder, catalog=catalog).files_read == 0


def test_two_catalog_objects_see_each_others_writes(tmp_path: Path) -> None:
    """The app and a CLI run (or two threads) share one database; neither re-reads what the other read."""
    folder = tmp_path / "data"
    paths = write_series(folder, phantom((4, 8, 8)))
    app, cli = Catalog(tmp_path / "catalog.sqlite"), Catalog(tmp_path / "catalog.sqlite")
    assert scan(folder, catalog=app).files_read == 4
    bump(paths[0])
    assert scan(folder, catalog=cli).files_read == 1
    assert scan(folder, catalog=app).files_read == 0  # its in-memory copy was refreshed from the database
    paths[1].unlink()
    assert scan(folder, catalog=app).files_read == 0
    assert len(cli.entries_under(folder.resolve())) == 3


def test_unreadable_files_are_not_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "data"
    paths = write_series(folder, phantom((3, 8, 8)))
    catalog = Catalog(tmp_path / "catalog.sqlite")
    real_open = open

    def denied(file, *args, **kwargs):
        if Path(file) == paths[0]:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(header_module, "open", denied, raising=False)
    result = scan(folder, catalog=catalog, workers=1)
    assert [(p.path.name, p.reason) for p in result.errors] == [(paths[0].name, "cannot read the file (Permission denied)")]
    monkeypatch.undo()
    again = scan(folder, catalog=catalog, workers=1)  # permissions fixed: read now, without the file changing
    assert (again.files_read, again.errors, len(again.all_series()[0].instances)) == (1, [], 3)


def test_cancelled_scan_keeps_what_it_read(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    write_series(folder, phantom((40, 8, 8)))
    catalog = Catalog(tmp_path / "catalog.sqlite")
    token = CancelToken()

    def cancel_after_first_batch(done: int, total: int, message: str = "") -> None:
        if done:
            token.cancel()

    with pytest.raises(Cancelled):
        scan(folder, catalog=catalog, progress=cancel_after_first_batch, cancel=token, workers=1)
    assert 0 < len(catalog.entries_under(folder.resolve())) < 40
    result = scan(folder, catalog=catalog)
    assert 0 < result.files_read < 40 and len(result.all_series()[0].instances) == 40


def test_other_schema_version_is_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    write_series(folder, phantom((3, 8, 8)))
    catalog_path = tmp_path / "catalog.sqlite"
    scan(folder, catalog=Catalog(catalog_path))
    with sqlite3.connect(catalog_path) as connection:
        connection.execute("PRAGMA user_version=99")
    assert scan(folder, catalog=Catalog(catalog_path)).files_read == 3
    assert scan(folder, catalog=Catalog(catalog_path)).files_read == 0


def test_corrupt_catalog_is_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    write_series(folder, phantom((2, 8, 8)))
    catalog_path = tmp_path / "catalog.sqlite"
    catalog_path.write_bytes(b"this is not a database" * 100)
    assert scan(folder, catalog=Catalog(catalog_path)).files_read == 2
    assert scan(folder, catalog=Catalog(catalog_path)).files_read == 0


def test_catalog_keys_are_exact_paths(tmp_path: Path) -> None:
    """A folder's entries do not include a sibling whose name merely starts the same."""
    write_series(tmp_path / "scan", phantom((2, 8, 8)))
    write_series(tmp_path / "scan2", phantom((3, 8, 8)))
    catalog = Catalog(tmp_path / "catalog.sqlite")
    scan(tmp_path, catalog=catalog)
    assert len(catalog.entries_under((tmp_path / "scan").resolve())) == 2
    assert scan(tmp_path / "scan", catalog=catalog).files_read == 0
    assert len(catalog.entries_under(tmp_path.resolve())) == 5  # scanning the sub-folder forgot nothing else


def test_reader_thread_while_scanning(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    for index in range(20):  # some non-DICOM too
        (folder / "text" / f"note{index}.txt").parent.mkdir(parents=True, exist_ok=True)
        (folder / "text" / f"note{index}.txt").write_text(f"note {index}")
    write_series(folder / "ct", phantom((30, 8, 8)))
    catalog = Catalog(tmp_path / "catalog.sqlite")
    seen: list[int] = []
    errors: list[BaseException] = []

    def read_while_scanning() -> None:
        try:
            for _ in range(20):
                seen.append(len(catalog.entries_under(folder.resolve())))
        except BaseException as error:  # reported to the test thread
            errors.append(error)

    reader = threading.Thread(target=read_while_scanning)
    reader.start()
    result = scan(folder, catalog=catalog, workers=1)
    reader.join()
    assert not errors and len(seen) == 20
    assert len(catalog.entries_under(folder.resolve())) == result.files_seen


def test_default_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDTL_CATALOG", str(tmp_path / "mine.sqlite"))
    assert default_catalog_path() == tmp_path / "mine.sqlite"
    monkeypatch.delenv("MEDTL_CATALOG")
    import platformdirs

    assert default_catalog_path().parent == Path(platformdirs.user_cache_dir("medtl"))


def test_names_that_are_not_utf8_are_scanned_with_a_catalog(tmp_path: Path) -> None:
    """A folder or file name in another encoding (copied from an old CD) must not break a catalogued scan."""
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/\xe9tude"))
    paths = write_series(folder, phantom((3, 8, 8)))
    os.rename(paths[0], Path(os.fsdecode(bytes(folder) + b"/\xffslice.dcm")))
    catalog = Catalog(tmp_path / "catalog.sqlite")
    for _ in range(2):
        result = scan(folder, catalog=catalog)
        assert not result.errors
        assert [len(series.instances) for series in result.all_series()] == [3]


def _first_scan(catalog_path: str, folder: str, start: Any, outcomes: Any) -> None:
    start.wait()  # both processes open the new catalog at the same moment
    try:
        scan(Path(folder), catalog=Catalog(Path(catalog_path)), workers=1)
        outcomes.put("ok")
    except Exception as error:  # noqa: BLE001 - what the test looks for
        outcomes.put(f"{type(error).__name__}: {error}")


@pytest.mark.skipif(sys.platform != "linux", reason="forks two scans at once")
def test_two_first_scans_at_once_on_a_new_catalog_both_succeed(tmp_path: Path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("fork")
    write_series(tmp_path / "data", phantom((3, 8, 8)))
    outcomes = context.Queue()
    for pair in range(10):
        start = context.Barrier(2)
        catalog_path = tmp_path / f"catalog{pair}" / "catalog.sqlite"
        scans = [context.Process(target=_first_scan, args=(str(catalog_path), str(tmp_path / "data"), start, outcomes)) for _ in range(2)]
        for process in scans:
            process.start()
        for process in scans:
            process.join(60)
    results = [outcomes.get(timeout=10) for _ in range(20)]
    assert results == ["ok"] * 20
    assert scan(tmp_path / "data", catalog=Catalog(tmp_path / "catalog0" / "catalog.sqlite")).files_read == 0


def test_the_catalog_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new folder" / "catalog.sqlite"
    scan(write_series(tmp_path / "data", phantom((2, 8, 8)))[0].parent, catalog=Catalog(path))
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for file in path.parent.iterdir():  # the database and its WAL files
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
    old = tmp_path / "old.sqlite"  # a catalog an earlier medtl left readable by everyone
    Catalog(old).close()
    old.chmod(0o644)
    Catalog(old)
    assert stat.S_IMODE(old.stat().st_mode) == 0o600


def test_a_scanned_folder_that_is_gone_is_forgotten_on_the_next_scan(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.sqlite")
    write_series(tmp_path / "a", phantom((2, 8, 8)), SeriesSpec(patient_name="Gone^Patient"))
    write_series(tmp_path / "b", phantom((2, 8, 8)))
    scan(tmp_path / "a", catalog=catalog)
    scan(tmp_path / "b", catalog=catalog)
    shutil.rmtree(tmp_path / "a")
    scan(tmp_path / "b", catalog=catalog)
    assert catalog.entries_under((tmp_path / "a").resolve()) == {}
    assert b"Gone^Patient" not in _database_text(tmp_path / "catalog.sqlite")
    with pytest.raises(MedtlError, match="no such file or folder"):  # scanning it by name forgets it too
        scan(tmp_path / "b" / "gone", catalog=catalog)


def test_catalog_forget_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from medtl.cli import main

    path = tmp_path / "catalog.sqlite"
    folder = write_series(tmp_path / "study", phantom((3, 8, 8)), SeriesSpec(patient_name="Forget^Me"))[0].parent
    scan(tmp_path, catalog=Catalog(path))  # the parent's remembered scan lists the study too
    assert main(["catalog", "forget", str(folder), "--catalog", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: forgot 3 file(s) at or under {folder.resolve()}\n"
    assert Catalog(path).entries_under(folder.resolve()) == {} and b"Forget^Me" not in _database_text(path)
    assert scan(tmp_path, catalog=Catalog(path)).files_read == 3  # read again: nothing of it was remembered


def _database_text(path: Path) -> bytes:
    """Everything the catalog holds, WAL included, as SQLite would show it after a checkpoint."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("VACUUM")
    return path.read_bytes()

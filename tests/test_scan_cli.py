"""`medtl scan`: tree and JSON output, exit codes, catalog options, and no heavy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medtl.cli import main
from tests.test_scan import messy_folder

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def private_catalog(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Never touch the user's real catalog."""
    path = tmp_path / "env-catalog.sqlite"
    monkeypatch.setenv("MEDTL_CATALOG", str(path))
    return path


def test_json_output(sample_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(sample_dir), "--json"]) == 0
    out = capsys.readouterr().out
    document = json.loads(out)  # exactly one JSON object: json.loads rejects trailing text
    assert [patient["patient_id"] for patient in document["patients"]] == ["77654033", "98890234"]
    study = document["patients"][0]["studies"][0]
    assert {"study_uid", "study_date", "description", "series"} <= study.keys()
    series = study["series"][0]
    assert {"series_uid", "modality", "description", "instances", "rows", "columns", "warnings"} <= series.keys()
    assert (series["modality"], series["instances"], series["rows"], series["columns"]) == ("CT", 4, 16, 16)
    assert len(document["errors"]) == 50 and {"path", "reason"} == document["errors"][0].keys()


def test_tree_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messy_folder(tmp_path / "data")
    assert main(["scan", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "Series 3  CT  nested ct  5 instance(s)  16x16" in out
    assert "warning: 1 duplicate instance(s)" in out
    assert "RTPLAN" in out and "non-image" in out
    assert "Problems (3 files):" in out and "empty.dcm: empty file (0 bytes)" in out
    assert out.rstrip().splitlines()[-1].startswith("19 files seen, 19 read, 3 skipped")


def test_tree_groups_many_problems_of_one_folder(sample_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(sample_dir)]) == 0
    out = capsys.readouterr().out
    assert "Patient 77654033  Doe^Archibald" in out and "Study 1995-09-03  CT, HEAD/BRAIN WO CONTRAST" in out
    assert "SE000000/ (50 files, IM000000 to IM00001D): no pixel data" in out
    assert "91 files seen, 91 read, 10 skipped (not DICOM instances), 50 errors" in out


def test_missing_path_fails_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path / "absent")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [f"medtl scan: error: {tmp_path / 'absent'}: no such file or folder"]


def test_unusable_catalog_fails_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a_file").write_text("")
    (tmp_path / "garbage.sqlite").write_bytes(b"garbage" * 1000)
    assert main(["scan", str(tmp_path), "--catalog", str(tmp_path / "a_file" / "catalog.sqlite")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["scan", str(tmp_path), "--catalog", str(tmp_path / "garbage.sqlite"), "--json"]) == 0  # a cache: rebuilt
    (tmp_path / "a_folder.sqlite").mkdir()
    assert main(["scan", str(tmp_path), "--catalog", str(tmp_path / "a_folder.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medtl scan: error: --catalog: cannot open the scan catalog") and err.endswith("choose another catalog file, or scan without one")


def test_catalog_options(tmp_path: Path, private_catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messy_folder(tmp_path / "data")
    main(["scan", str(tmp_path / "data"), "--no-catalog", "--json"])
    assert not private_catalog.exists()
    main(["scan", str(tmp_path / "data"), "--json"])
    assert private_catalog.exists()
    chosen = tmp_path / "chosen.sqlite"
    capsys.readouterr()
    main(["scan", str(tmp_path / "data"), "--catalog", str(chosen), "--json"])
    main(["scan", str(tmp_path / "data"), "--catalog", str(chosen), "--json"])
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["files_read"] == 19 and second["files_read"] == 0


def test_scan_imports_nothing_heavy(sample_dir: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from medtl.cli import main\n"
        f"code = main(['scan', {str(sample_dir)!r}, '--json', '--catalog', {str(tmp_path / 'c.sqlite')!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'monai', 'PySide6', 'shiboken6'))\n"
        "print(repr(heavy), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
    assert json.loads(done.stdout)["patients"]

"""`medtl pacs` against a real Orthanc: node add/list, echo, find, get (C-GET, C-MOVE, WADO-RS), send.

Runs only inside the private network namespace that ``test_pacs_network.py`` makes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import keyring
import pydicom
import pytest

from medtl.cli import main
from tests import pacs_servers
from tests.dicomgen import SeriesSpec, phantom, write_series

if not pacs_servers.in_private_network():
    pytest.skip("needs Orthanc in a private network namespace: run by test_pacs_network.py", allow_module_level=True)
pacs_servers.loopback_up()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_series(tmp_path_factory.mktemp("ct"), phantom((4, 32, 32)), SeriesSpec(patient_id="CLI001", patient_name="Cli^Patient"))


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory, generated: list[Path]) -> pacs_servers.Orthanc:
    server = pacs_servers.Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    server.store_with_storescu(generated)
    yield server
    server.stop(kill=True)


@pytest.fixture(autouse=True)
def saved_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MEDTL_PACS_NODES", str(tmp_path / "nodes.json"))
    previous = keyring.get_keyring()
    keyring.set_keyring(pacs_servers.MemoryKeyring())
    yield tmp_path / "nodes.json"
    keyring.set_keyring(previous)


def medtl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["pacs", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_dimse_node_echo_find_get_and_move(capsys: pytest.CaptureFixture[str], orthanc: pacs_servers.Orthanc, generated: list[Path], tmp_path: Path) -> None:
    port = str(orthanc.dicom_port)
    assert medtl(capsys, "node", "add", "pacs", "--aet", orthanc.aet, "--host", "127.0.0.1", "--port", port)[0] == 0
    assert medtl(capsys, "node", "add", "wrong", "--aet", "NOBODY", "--host", "127.0.0.1", "--port", port)[0] == 0
    code, out, _ = medtl(capsys, "node", "list")
    assert f"pacs  DIMSE  ORTHANC@127.0.0.1:{port}" in out and "AE title MEDTL" in out
    code, out, _ = medtl(capsys, "echo", "pacs")
    assert code == 0 and out.startswith("pacs: reachable")
    code, out, _ = medtl(capsys, "echo", "wrong")
    assert code == 1 and "association rejected" in out and "NOBODY" in out
    code, out, _ = medtl(capsys, "find", "pacs", "--level", "series", "--patient-name", "Cli*", "--date", "20240101-20240131", "--json")
    [row] = json.loads(out)
    header = pydicom.dcmread(generated[0], stop_before_pixels=True)
    assert (row["series_uid"], row["count"], row["modality"]) == (header.SeriesInstanceUID, len(generated), "CT")
    code, out, err = medtl(capsys, "get", "pacs", "--series", row["series_uid"], "-o", str(tmp_path / "got"))
    folder = Path(out.strip())
    assert code == 0 and folder.parent == tmp_path / "got" and f"{len(generated)} instance(s) retrieved" in err
    assert len(list(folder.rglob("*.dcm"))) == len(generated)
    code, out, err = medtl(capsys, "get", "pacs", "--study", row["study_uid"], "-o", str(tmp_path / "got"), "--move")
    assert code == 0 and Path(out.strip()) == folder and f"0 instance(s) retrieved, {len(generated)} already here" in err
    assert main(["scan", str(folder), "--json"]) == 0
    scanned = json.loads(capsys.readouterr().out)
    assert [s["instances"] for p in scanned["patients"] for st in p["studies"] for s in st["series"]] == [len(generated)]


def test_dicomweb_node_keeps_its_password_out_of_the_file_and_sends(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, saved_nodes: Path, orthanc: pacs_servers.Orthanc, tmp_path: Path
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(pacs_servers.PASSWORD + "\n"))
    assert medtl(capsys, "node", "add", "web", "--url", orthanc.dicomweb_url, "--user", pacs_servers.USER, "--password-stdin")[0] == 0
    assert pacs_servers.PASSWORD not in saved_nodes.read_text()
    assert medtl(capsys, "echo", "web")[0] == 0
    write_series(tmp_path / "out", phantom((2, 16, 16)), SeriesSpec(patient_id="SENT01"))
    (tmp_path / "out" / "readme.txt").write_text("not DICOM")
    code, out, err = medtl(capsys, "send", "web", str(tmp_path / "out"))
    assert code == 1 and out.count(": stored") == 2 and "readme.txt: not a DICOM file" in out and "2 of 3 file(s) stored" in err
    code, out, _ = medtl(capsys, "find", "web", "--patient-id", "SENT01")
    assert code == 0 and len(out.strip().splitlines()) == 1 and "SENT01" in out
    code, _, err = medtl(capsys, "get", "nowhere", "--study", "1.2.3")
    assert code == 2 and "no PACS node named 'nowhere'" in err

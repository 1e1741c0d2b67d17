"""Saved PACS nodes, queries and the instance store, and `medtl pacs` argument errors: no network needed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import keyring
import pytest

from medtl.cli import main
from medtl.errors import InvalidRequest, MedtlError
from medtl.pacs.nodes import KEYRING_SERVICE, LocalAE, Node, NodeBook
from medtl.pacs.query import Query
from medtl.pacs.retrieve import RetrieveRequest
from medtl.pacs.storage import InstanceStore, safe_name
from tests.pacs_servers import MemoryKeyring


@pytest.fixture(autouse=True)
def memory_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    monkeypatch.setenv("MEDTL_PACS_NODES", str(tmp_path / "nodes.json"))
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"aet": "A\\B", "host": "h", "port": 104}, "not an AE title"),
        ({"aet": "THIS_TITLE_IS_TOO_LONG", "host": "h", "port": 104}, "not an AE title"),
        ({"aet": "PACS", "host": "h", "port": 70000}, "not a TCP port"),
        ({}, "needs either a URL"),
        ({"aet": "PACS", "host": "h"}, "the port is missing"),
        ({"url": "https://a/dicom-web", "aet": "PACS"}, "not both"),
        ({"url": "https://user:pw@a/dicom-web"}, "no credentials in the URL"),
        ({"url": "ftp://a"}, "not an http"),
        ({"url": "https://a", "auth": "basic"}, "needs a user name"),
    ],
)
def test_a_node_that_cannot_work_is_refused_on_creation(fields: dict, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        Node("pacs", **fields)


def test_nodes_round_trip_and_secrets_stay_in_the_keyring(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    book = NodeBook(path=tmp_path / "nodes.json", local=LocalAE("WORKSTATION", 4006))
    book.add(Node("pacs", aet="PACS", host="pacs.example", port=104))
    book.add(Node("web", url="https://archive.example/dicom-web", auth="bearer", timeout=3), "secret-token")
    book.save()
    assert "secret-token" not in book.path.read_text()
    loaded = NodeBook.load(book.path)
    assert loaded.nodes == book.nodes and loaded.local == LocalAE("WORKSTATION", 4006)
    assert loaded.accepted_calling_titles() == ("PACS",)
    assert memory_keyring.secrets == {(KEYRING_SERVICE, "web"): "secret-token"}
    loaded.remove("web")
    assert memory_keyring.secrets == {}
    with pytest.raises(MedtlError, match="no PACS node named 'web' .*known: pacs"):
        loaded.get("web")
    with pytest.raises(InvalidRequest, match="needs a token"):
        loaded.add(Node("web", url="https://archive.example/dicom-web", auth="bearer"))
    book.path.write_text("{not json")
    with pytest.raises(MedtlError, match="nodes.json: cannot read the saved PACS nodes"):
        NodeBook.load(book.path)


def test_query_dates_and_retrieve_requests_are_checked() -> None:
    assert Query(date_from="20240101", date_to="20240131").date_range == "20240101-20240131"
    assert Query.dates("20240101-") == ("20240101", "") and Query.dates("20240105") == ("20240105", "20240105")
    assert Query(date_to="20240131").date_range == "-20240131"
    with pytest.raises(InvalidRequest, match="ends .* before it starts"):
        Query(date_from="20240201", date_to="20240101")
    with pytest.raises(InvalidRequest, match="not a date"):
        Query(date_from="2024-01")
    with pytest.raises(InvalidRequest, match="level must be one of"):
        Query(level="image")
    web = Node("web", url="https://archive.example/dicom-web")
    with pytest.raises(InvalidRequest, match="C-MOVE is for DIMSE nodes"):
        RetrieveRequest(web, study_uid="1.2.3", move=True)
    with pytest.raises(InvalidRequest, match="not a DICOM UID"):
        RetrieveRequest(web, series_uid="../../etc")


def test_store_names_are_uids_or_digests_and_tell_what_is_missing(tmp_path: Path) -> None:
    assert safe_name("1.2.840.113619.2.55") == "1.2.840.113619.2.55"
    for unsafe in ("../escape", "1..2", "Doe^John", ""):
        name = safe_name(unsafe)
        assert name.startswith("x") and len(name) == 41 and "/" not in name
    store = InstanceStore(tmp_path)
    store.write_encoded("1.2", "1.2.3", "1.2.3.1", b"DICM")
    (store.series_folder("1.2", "1.2.3") / ".1.2.3.2.abc.tmp.dcm").write_bytes(b"half")
    assert store.missing("1.2", "1.2.3", ["1.2.3.1", "1.2.3.2"]) == ["1.2.3.2"]
    assert store.remove_leftovers("1.2") == 1 and sorted(p.name for p in store.series_folder("1.2", "1.2.3").iterdir()) == ["1.2.3.1.dcm"]


def test_cli_saves_nodes_and_explains_bad_arguments(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("tok\n"))
    assert main(["pacs", "node", "add", "web", "--url", "https://a.example/dicom-web", "--token-stdin", "--insecure"]) == 0
    assert main(["pacs", "node", "add", "pacs", "--aet", "PACS", "--host", "h", "--port", "104"]) == 0
    capsys.readouterr()
    assert main(["pacs", "node", "list"]) == 0
    listed = capsys.readouterr().out
    assert "web  DICOMweb  https://a.example/dicom-web  bearer authentication  TLS not verified" in listed
    assert "pacs  DIMSE  PACS@h:104" in listed
    saved = json.loads((tmp_path / "nodes.json").read_text())
    assert "tok" not in json.dumps(saved) and {n["name"] for n in saved["nodes"]} == {"web", "pacs"}
    assert main(["pacs", "node", "add", "x", "--aet", "X", "--host", "h", "--port", "70000"]) == 2
    assert "--port: 70000 is not a TCP port" in capsys.readouterr().err
    assert main(["pacs", "find", "pacs", "--date", "20240201-20240101"]) == 2
    assert "--date: the date range ends" in capsys.readouterr().err
    assert main(["pacs", "get", "web", "--study", "1.2.3", "--move"]) == 2
    assert "--move: web is a DICOMweb node" in capsys.readouterr().err


def test_an_association_closed_without_an_answer_is_asked_once_more_and_the_rejection_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from medtl.pacs import dimse
    from medtl.pacs.connection import Outcome, PacsError

    answers = [
        SimpleNamespace(is_established=False, is_rejected=False),  # the node closed; pynetdicom kept no answer
        SimpleNamespace(is_established=False, is_rejected=True, acceptor=SimpleNamespace(primitive=SimpleNamespace(reason_str="Called AE title not recognised", source_str="Service User"))),
    ]
    asked: list[str] = []

    class FakeAE:
        def add_requested_context(self, *_: object) -> None:
            pass

        def associate(self, host: str, port: int, ae_title: str) -> object:
            asked.append(ae_title)
            return answers.pop(0)

    monkeypatch.setattr(dimse, "_ae", lambda local, node: FakeAE())
    node = Node("wrong-aet", aet="NOT_THERE", host="127.0.0.1", port=104, timeout=5)
    with pytest.raises(PacsError) as raised, dimse.association(node, LocalAE("MEDTL", 11113), [("1.2.840.10008.1.1", ("1.2.840.10008.1.2",))], "C-ECHO"):
        pass
    assert asked == ["NOT_THERE", "NOT_THERE"] and raised.value.outcome is Outcome.REJECTED and "Called AE title not recognised" in str(raised.value)

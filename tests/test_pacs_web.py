"""DICOMweb against a real Orthanc with its DICOMweb plugin: QIDO-RS, WADO-RS, STOW-RS, authentication, timeouts.

Runs only inside the private network namespace that ``test_pacs_network.py`` makes.
"""

from __future__ import annotations


import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from medtl.dicom.catalog import Catalog
from medtl.pacs import find, check_connection
from medtl.pacs.connection import Outcome, PacsError
from medtl.pacs.nodes import KEYRING_SERVICE, Node, NodeBook
from medtl.pacs.query import Query
from medtl.pacs.retrieve import RetrieveRequest, retrieve
from medtl.pacs.send import send
from medtl.pacs.storage import InstanceStore
from tests import pacs_servers
from tests.dicomgen import SeriesSpec, phantom, write_series

if not pacs_servers.in_private_network():
    pytest.skip("needs Orthanc in a private network namespace: run by test_pacs_network.py", allow_module_level=True)
pacs_servers.loopback_up()


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[pacs_servers.MemoryKeyring]:
    with pacs_servers.memory_keyring() as ring:
        yield ring


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_series(tmp_path_factory.mktemp("ct"), phantom((5, 32, 32)), SeriesSpec(patient_id="WEB001", patient_name="Web^Patient"))


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory, generated: list[Path]) -> pacs_servers.Orthanc:
    server = pacs_servers.Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    server.store_with_storescu([*generated, Path(get_testdata_file("MR_small.dcm", download=False))])
    yield server
    server.stop(kill=True)


def web_book(tmp_path: Path, url: str, password: str = pacs_servers.PASSWORD, **changes: object) -> NodeBook:
    book = NodeBook(path=tmp_path / "nodes.json")
    book.add(Node(**{"name": "archive", "url": url, "auth": "basic", "username": pacs_servers.USER, "timeout": 5.0, **changes}), password)
    return book


def test_the_password_lives_in_the_keyring_and_a_wrong_one_is_reported(tmp_path: Path, orthanc: pacs_servers.Orthanc, memory_keyring: pacs_servers.MemoryKeyring) -> None:
    book = web_book(tmp_path, orthanc.dicomweb_url)
    book.save()
    assert pacs_servers.PASSWORD not in book.path.read_text()
    assert memory_keyring.secrets == {(KEYRING_SERVICE, "archive"): pacs_servers.PASSWORD}
    assert check_connection(NodeBook.load(book.path).get("archive"), book.local).ok
    wrong = web_book(tmp_path, orthanc.dicomweb_url, password="wrong-password")
    result = check_connection(wrong.get("archive"), wrong.local)
    assert result.outcome is Outcome.UNAUTHORIZED and "401" in result.detail
    with pytest.raises(PacsError, match="archive .*authentication failed"):
        find(wrong.get("archive"), wrong.local, Query())


def test_qido_finds_patients_studies_and_series(tmp_path: Path, orthanc: pacs_servers.Orthanc, generated: list[Path]) -> None:
    book = web_book(tmp_path, orthanc.dicomweb_url)
    node = book.get("archive")
    first = pydicom.dcmread(generated[0], stop_before_pixels=True)
    assert sorted((p.patient_id, p.count) for p in find(node, book.local, Query(level="patient"))) == [("4MR1", 1), ("WEB001", 1)]
    studies = find(node, book.local, Query(patient_name="Web*"))
    assert [(s.study_uid, s.study_date, s.accession) for s in studies] == [(first.StudyInstanceUID, "20240102", "ACC1")]
    assert find(node, book.local, Query(date_from="20250101")) == []
    series = find(node, book.local, Query(level="series", modality="CT"))
    assert [(s.series_uid, s.count, s.patient_id) for s in series] == [(first.SeriesInstanceUID, len(generated), "WEB001")]


def test_wado_retrieves_in_explicit_little_endian_and_resumes(tmp_path: Path, orthanc: pacs_servers.Orthanc, generated: list[Path]) -> None:
    book = web_book(tmp_path, orthanc.dicomweb_url)
    study = str(pydicom.dcmread(generated[0], stop_before_pixels=True).StudyInstanceUID)
    store, catalog = InstanceStore(tmp_path / "pacs"), Catalog(tmp_path / "catalog.sqlite")
    first = retrieve(RetrieveRequest(book.get("archive"), study_uid=study), book, store, catalog)
    assert (first.fetched, first.already_here) == (len(generated), 0)
    stored = sorted(first.series_folders[0].iterdir())
    assert {str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID) for p in stored} == {"1.2.840.10008.1.2.1"}
    for path in stored[:2]:
        path.unlink()
    again = retrieve(RetrieveRequest(book.get("archive"), study_uid=study), book, store, catalog)
    assert (again.fetched, again.already_here) == (2, len(generated) - 2)
    assert sorted(p.name for p in first.series_folders[0].iterdir()) == [p.name for p in stored]


def test_stow_stores_and_answers_per_instance(tmp_path: Path, orthanc: pacs_servers.Orthanc) -> None:
    book = web_book(tmp_path, orthanc.dicomweb_url)
    files = write_series(tmp_path / "new", phantom((3, 16, 16)), SeriesSpec(patient_id="STOW01"))
    results = send(book.get("archive"), book.local, files)
    assert [(r.ok, r.detail) for r in results] == [(True, "stored")] * 3
    assert {r.sop_uid for r in results} == {str(pydicom.dcmread(f).SOPInstanceUID) for f in files}
    assert [s.patient_id for s in find(book.get("archive"), book.local, Query(patient_id="STOW01"))] == ["STOW01"]


def test_refused_and_silent_servers_are_reported_without_hanging(tmp_path: Path) -> None:
    closed = pacs_servers.free_port()
    refused = check_connection(Node("gone", url=f"http://127.0.0.1:{closed}/dicom-web", timeout=2), web_book(tmp_path, "http://x").local)
    assert refused.outcome is Outcome.REFUSED
    with socket.socket() as silent:  # completes the TCP handshake, then never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        accepted: list[socket.socket] = []
        threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
        started = time.monotonic()
        book = web_book(tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}/dicom-web", timeout=0.5, name="sleepy")
        with pytest.raises(PacsError, match=r"sleepy .*timed out") as failure:
            find(book.get("sleepy"), book.local, Query())
        assert failure.value.outcome is Outcome.TIMED_OUT
        assert time.monotonic() - started < 10

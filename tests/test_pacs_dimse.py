"""DIMSE against a real Orthanc and dcmtk's tools: echo, find, get, move, resume, cancel, send, and the faults.

Runs only inside the private network namespace that ``test_pacs_network.py`` makes.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medtl.dicom.catalog import Catalog
from medtl.dicom.scan import scan
from medtl.errors import MedtlError
from medtl.pacs import find, check_connection
from medtl.pacs.connection import Outcome, PacsError
from medtl.pacs.nodes import LocalAE, Node, NodeBook
from medtl.pacs.query import Query
from medtl.pacs.retrieve import RetrieveRequest, retrieve
from medtl.pacs.send import send
from medtl.pacs.storage import InstanceStore
from medtl.progress import Cancelled, CancelToken
from tests import pacs_servers
from tests.dicomgen import SeriesSpec, phantom, write_series

if not pacs_servers.in_private_network():
    pytest.skip("needs Orthanc in a private network namespace: run by test_pacs_network.py", allow_module_level=True)
pacs_servers.loopback_up()

SMALL = [Path(get_testdata_file(name, download=False)) for name in ("CT_small.dcm", "MR_small.dcm")]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_series(tmp_path_factory.mktemp("ct"), phantom((12, 32, 32)), SeriesSpec())


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory, generated: list[Path]) -> pacs_servers.Orthanc:
    server = pacs_servers.Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    server.store_with_storescu([*generated, *SMALL])
    yield server
    server.stop(kill=True)  # throwaway storage: no need to wait for a clean shutdown


def node_of(server: pacs_servers.Orthanc, **changes: object) -> Node:
    return Node(**{"name": "orthanc", "aet": server.aet, "host": "127.0.0.1", "port": server.dicom_port, "timeout": 5.0, **changes})


@pytest.fixture
def book(tmp_path: Path, orthanc: pacs_servers.Orthanc) -> NodeBook:
    book = NodeBook(path=tmp_path / "nodes.json", local=LocalAE(pacs_servers.MEDTL_AET, pacs_servers.MEDTL_PORT))
    book.add(node_of(orthanc))
    return book


def series_uid(files: list[Path]) -> tuple[str, str]:
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    return str(first.StudyInstanceUID), str(first.SeriesInstanceUID)


def test_echo_says_reachable_rejected_refused_or_timed_out(book: NodeBook, orthanc: pacs_servers.Orthanc) -> None:
    assert check_connection(book.get("orthanc"), book.local).ok
    rejected = check_connection(node_of(orthanc, name="wrong-aet", aet="NOT_ORTHANC"), book.local)
    assert rejected.outcome is Outcome.REJECTED
    assert "AE title" in rejected.detail and "NOT_ORTHANC" in rejected.detail
    refused = check_connection(node_of(orthanc, name="nothing-there", port=pacs_servers.free_port()), book.local)
    assert refused.outcome is Outcome.REFUSED
    with socket.socket() as silent:  # accepts connections (the kernel does) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        slow = check_connection(node_of(orthanc, name="slow-pacs", port=silent.getsockname()[1], timeout=0.5), book.local)
    assert slow.outcome is Outcome.TIMED_OUT and "slow-pacs" in str(slow)
    assert time.monotonic() - started < 10


def _findscu_study_uids(server: pacs_servers.Orthanc, *keys: str) -> set[str]:
    done = subprocess.run(
        ["findscu", "-S", "-aet", "FINDSCU", "-aec", server.aet, "127.0.0.1", str(server.dicom_port),
         "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", *[arg for key in keys for arg in ("-k", key)]],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return set(re.findall(r"\(0020,000d\) UI \[([0-9.]+)", done.stdout + done.stderr))


def test_find_matches_findscu_at_each_level(book: NodeBook, orthanc: pacs_servers.Orthanc, generated: list[Path]) -> None:
    node = book.get("orthanc")
    study, series = series_uid(generated)
    everything = {m.study_uid for m in find(node, book.local, Query())}
    assert everything == _findscu_study_uids(orthanc) and len(everything) == 3
    wildcard = find(node, book.local, Query(patient_name="Compressed*"))
    assert {m.study_uid for m in wildcard} == _findscu_study_uids(orthanc, "PatientName=Compressed*") and len(wildcard) == 2
    dated = find(node, book.local, Query(date_from="20040101", date_to="20040630"))
    assert [m.patient_id for m in dated] == ["1CT1"]
    assert [m.study_uid for m in find(node, book.local, Query(accession="ACC1"))] == [study]
    patients = find(node, book.local, Query(level="patient", patient_id="GEN*"))
    assert [(p.patient_id, p.count) for p in patients] == [("GEN001", 1)]
    mr_series = find(node, book.local, Query(level="series", modality="MR"))
    assert [(m.modality, m.patient_id) for m in mr_series] == [("MR", "4MR1")]
    ct_series = find(node, book.local, Query(level="series", study_uid=study))
    assert [(m.series_uid, m.count) for m in ct_series] == [(series, len(generated))]


def test_get_stores_every_instance_and_catalogues_the_study(book: NodeBook, generated: list[Path], tmp_path: Path) -> None:
    study, series = series_uid(generated)
    catalog = Catalog(tmp_path / "catalog.sqlite")
    seen: list[tuple[int, int]] = []
    result = retrieve(RetrieveRequest(book.get("orthanc"), study_uid=study), book, InstanceStore(tmp_path / "pacs"), catalog,
                      progress=lambda done, total, message="": seen.append((done, total)))  # fmt: skip
    assert (result.fetched, result.already_here, result.not_received) == (len(generated), 0, 0)
    assert seen[-1] == (len(generated), len(generated)) and len(seen) == len(generated) + 1
    stored = sorted(result.series_folders[0].iterdir())
    assert len(stored) == len(generated) and all(path.name.endswith(".dcm") and "Test" not in str(path) for path in stored)
    originals = {str(ds.SOPInstanceUID): ds for ds in map(pydicom.dcmread, generated)}
    for path in stored:
        copy = pydicom.dcmread(path)
        assert np.array_equal(copy.pixel_array, originals[str(copy.SOPInstanceUID)].pixel_array)
    known = scan(result.folder, catalog=catalog)
    assert known.files_read == 0  # the retrieve already put every file into the catalog
    assert [len(s.instances) for p in known.patients for st in p.studies for s in st.series] == [len(generated)]


def test_move_goes_through_medtls_storage_scp_only_from_configured_titles(book: NodeBook, tmp_path: Path) -> None:
    series = str(pydicom.dcmread(SMALL[0]).SeriesInstanceUID)
    request = RetrieveRequest(book.get("orthanc"), series_uid=series, move=True)
    result = retrieve(request, book, InstanceStore(tmp_path / "moved"), Catalog(tmp_path / "c.sqlite"))
    assert result.fetched == 1 and (result.series_folders[0] / f"{pydicom.dcmread(SMALL[0]).SOPInstanceUID}.dcm").exists()
    strict = NodeBook(dict(book.nodes), LocalAE(book.local.aet, book.local.port, accept_from=("SOMEONE_ELSE",)), book.path)
    with pytest.raises(PacsError, match="C-MOVE"):
        retrieve(request, strict, InstanceStore(tmp_path / "refused"), Catalog(tmp_path / "c.sqlite"))
    assert not list((tmp_path / "refused").rglob("*.dcm"))
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the SCP just closed leaves TIME_WAIT
        squatter.bind(("", book.local.port))
        squatter.listen()
        with pytest.raises(MedtlError, match=f"cannot listen on port {book.local.port}"):
            retrieve(request, book, InstanceStore(tmp_path / "busy"), Catalog(tmp_path / "c.sqlite"))


def test_a_killed_server_leaves_complete_files_and_the_retrieve_resumes(tmp_path: Path) -> None:
    files = write_series(tmp_path / "ct", phantom((16, 32, 32)), SeriesSpec())
    study, series = series_uid(files)
    server = pacs_servers.Orthanc(tmp_path / "orthanc").start()
    try:
        server.store_with_storescu(files)
        book = NodeBook(path=tmp_path / "nodes.json")
        book.add(node_of(server, timeout=3.0))
        store, catalog = InstanceStore(tmp_path / "pacs"), Catalog(tmp_path / "catalog.sqlite")

        def crash_after_five(done: int, total: int, message: str = "") -> None:
            if done == 5:
                server.stop(kill=True)

        with pytest.raises(PacsError, match="orthanc") as failure:
            retrieve(RetrieveRequest(book.get("orthanc"), series_uid=series), book, store, catalog, progress=crash_after_five)
        assert failure.value.outcome is Outcome.FAILED and "connection was lost" in str(failure.value)
        kept = sorted(store.series_folder(study, series).iterdir())
        assert 5 <= len(kept) < len(files) and not [p for p in kept if p.name.startswith(".")]
        catalogued = scan(store.study_folder(study), catalog=catalog)
        assert catalogued.files_read == 0 and not catalogued.errors
        assert sum(len(s.instances) for p in catalogued.patients for st in p.studies for s in st.series) == len(kept)
        before = {path.name: path.stat().st_mtime_ns for path in kept}

        server.start()
        result = retrieve(RetrieveRequest(book.get("orthanc"), series_uid=series), book, store, catalog)
        assert (result.fetched, result.already_here) == (len(files) - len(kept), len(kept))
        assert {path.name: path.stat().st_mtime_ns for path in kept} == before  # not fetched again
        assert len(store.present(study, series)) == len(files)
    finally:
        server.stop(kill=True)


def test_cancel_stops_between_instances(book: NodeBook, generated: list[Path], tmp_path: Path) -> None:
    study, series = series_uid(generated)
    cancel = CancelToken()

    def cancel_after_two(done: int, total: int, message: str = "") -> None:
        if done == 2:
            cancel.cancel()

    store = InstanceStore(tmp_path / "pacs")
    with pytest.raises(Cancelled):
        retrieve(RetrieveRequest(book.get("orthanc"), series_uid=series), book, store, Catalog(tmp_path / "c.sqlite"), cancel_after_two, cancel)
    assert 2 <= len(store.present(study, series)) <= 10 < len(generated)  # 8 writes at most were under way


def test_send_reports_each_file_and_storescp_receives_them(tmp_path: Path, generated: list[Path]) -> None:
    port = pacs_servers.free_port()
    received = tmp_path / "received"
    received.mkdir()
    storescp = subprocess.Popen(["storescp", "-aet", "STORESCP", "-od", str(received), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_port(port)
        (tmp_path / "outbox").mkdir()
        notes = tmp_path / "outbox" / "notes.txt"
        notes.write_text("not DICOM")
        node = Node("storescp", aet="STORESCP", host="127.0.0.1", port=port, timeout=5)
        results = send(node, LocalAE(), [*generated[:3], tmp_path / "outbox"])
        assert [r.ok for r in results] == [True, True, True, False]
        assert results[3].path == notes and "not a DICOM file" in results[3].detail
        assert sorted(pydicom.dcmread(p).SOPInstanceUID for p in received.iterdir()) == sorted(r.sop_uid for r in results[:3])
    finally:
        storescp.terminate()
        storescp.wait(timeout=10)


def _wait_for_port(port: int) -> None:
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def test_a_dicom_seg_made_from_a_retrieved_series_goes_back(book: NodeBook, orthanc: pacs_servers.Orthanc, generated: list[Path], tmp_path: Path) -> None:
    from medtl.dicom.series import load_series
    from medtl.dicom.volume import Volume
    from medtl.export.dicom_seg import write_dicom_seg

    study, series = series_uid(generated)
    result = retrieve(RetrieveRequest(book.get("orthanc"), series_uid=series), book, InstanceStore(tmp_path / "pacs"), Catalog(tmp_path / "c.sqlite"))
    image = load_series(sorted(result.series_folders[0].iterdir()))
    mask = Volume((image.array > 0).astype(np.uint8), image.spacing, image.origin, image.direction, metadata=image.metadata)
    write_dicom_seg(mask, {0: "background", 1: "tissue"}, image, tmp_path / "mask.seg.dcm")
    [sent] = send(book.get("orthanc"), book.local, [tmp_path / "mask.seg.dcm"])
    assert sent.ok and sent.detail == "stored"
    segs = find(book.get("orthanc"), book.local, Query(level="series", study_uid=study, modality="SEG"))
    assert [m.modality for m in segs] == ["SEG"]

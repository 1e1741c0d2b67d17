"""WADO-RS replies read part by part and stored byte for byte: a corrupt or cut-off reply is refused
with the node's name and leaves only complete instances. A small HTTP server on loopback plays the node."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest

from medtl.dicom.catalog import Catalog
from medtl.pacs.connection import PacsError
from medtl.pacs.multipart import MultipartError, boundary_of, parts
from medtl.pacs.nodes import Node, NodeBook
from medtl.pacs.retrieve import RetrieveRequest, retrieve
from medtl.pacs.storage import InstanceStore, instance_uids, safe_name
from tests.dicomgen import SeriesSpec, phantom, write_series

BOUNDARY = "medtl-test-boundary"
MULTIPART = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def message(bodies: list[bytes]) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1\r\n\r\n".encode()
    return b"".join(head + body + b"\r\n" for body in bodies) + f"--{BOUNDARY}--\r\n".encode()


def test_parts_come_out_as_sent_however_the_body_is_chunked() -> None:
    bodies = [bytes(range(256)) * 9, b"", b"x--" + BOUNDARY.encode(), b"\r\n--" + BOUNDARY.encode()[:-1], b"\r\n\r\n"]
    whole = b"preamble to ignore\r\n" + message(bodies)
    for size in (1, 2, 5, 17, 4096, len(whole)):
        assert list(parts((whole[i : i + size] for i in range(0, len(whole), size)), BOUNDARY.encode())) == bodies
    with pytest.raises(MultipartError, match="cut off"):
        list(parts([whole[: len(whole) // 2]], BOUNDARY.encode()))
    assert boundary_of(f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"') == BOUNDARY.encode()
    assert boundary_of("multipart/related; type=application/dicom") is None


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    files = write_series(tmp_path_factory.mktemp("ct"), phantom((3, 16, 16)), SeriesSpec(patient_id="MP001"))
    return [path.read_bytes() for path in files]


class FakeNode:
    """Answers the QIDO-RS instance search with ``series`` and WADO-RS with ``reply()``'s body."""

    def __init__(self, series: list[bytes]) -> None:
        self.uids = [instance_uids(data) for data in series]
        self.reply: Callable[[], bytes] = lambda: message(series)
        self.count: int | None = len(series)
        self.asked: list[str] = []
        node = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends where the connection closes: a cut-off reply is possible

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                node.asked.append(self.path.split("?")[0].rsplit("/", 1)[-1])
                if "/series?" in self.path:  # how many instances the series holds, when the node says
                    count = {"00201209": {"vr": "IS", "Value": [node.count]}} if node.count else {}
                    answer = [{"0020000D": {"vr": "UI", "Value": [node.uids[0][0]]}, "0020000E": {"vr": "UI", "Value": [node.uids[0][1]]}, **count}]
                    body, kind = json.dumps(answer).encode(), "application/dicom+json"
                elif "/instances?" in self.path:
                    answer = [{"0020000D": {"vr": "UI", "Value": [s]}, "00080018": {"vr": "UI", "Value": [i]}} for s, _, i in node.uids]
                    body, kind = json.dumps(answer).encode(), "application/dicom+json"
                elif "/instances/" in self.path:  # one instance, as a retrieve that resumes asks for them
                    wanted = self.path.rsplit("/", 1)[1]
                    body, kind = message([data for data in series if instance_uids(data)[2] == wanted]), MULTIPART
                else:
                    body, kind = node.reply(), MULTIPART
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/dicom-web"


@pytest.fixture
def fake(series: list[bytes]) -> Iterator[FakeNode]:
    node = FakeNode(series)
    yield node
    node.server.shutdown()
    node.server.server_close()


def fetch(fake: FakeNode, tmp_path: Path) -> tuple[Callable[[], object], Path]:
    book = NodeBook(path=tmp_path / "nodes.json")
    book.add(Node("fakeweb", url=fake.url, timeout=5))
    study, series_uid, _ = fake.uids[0]
    store = InstanceStore(tmp_path / "pacs")
    request = RetrieveRequest(book.get("fakeweb"), study_uid=study, series_uid=series_uid)
    return (lambda: retrieve(request, book, store, Catalog(tmp_path / "catalog.sqlite"))), store.series_folder(study, series_uid)


@pytest.mark.parametrize("count", [3, None], ids=["node says how many", "node does not say"])
def test_instances_are_stored_byte_for_byte(fake: FakeNode, series: list[bytes], tmp_path: Path, count: int | None) -> None:
    fake.count = count
    run, folder = fetch(fake, tmp_path)
    result = run()
    assert (result.fetched, result.already_here, result.not_received) == (3, 0, 0)
    assert sorted(path.read_bytes() for path in folder.iterdir()) == sorted(series)
    # one series-level search, then the series in one request; the instance listing only where the count is missing
    assert fake.asked == ["series", *([] if count else ["instances"]), fake.uids[0][1]]


@pytest.mark.parametrize(
    ("broken", "message_part"),
    [
        (lambda series: message([series[0], b"\0" * 128 + b"NOPE" + series[1][132:], series[2]]), "part 2 of the reply is not a DICOM instance"),
        (lambda series: message([series[0], series[1][:200] + b"\xff" * 64, series[2]]), "part 2 of the reply is not a DICOM instance"),
        (lambda series: message(series)[: len(series[0]) + len(series[1]) // 2], "cut off"),
    ],
    ids=["no DICM prefix", "unreadable header", "reply cut off"],
)
def test_a_broken_reply_is_refused_naming_the_node_and_the_retrieve_resumes(
    fake: FakeNode, series: list[bytes], tmp_path: Path, broken: Callable[[list[bytes]], bytes], message_part: str
) -> None:
    fake.reply = lambda: broken(series)
    run, folder = fetch(fake, tmp_path)
    with pytest.raises(PacsError, match=rf"fakeweb .*{message_part}"):
        run()
    assert [path.name for path in folder.iterdir()] == [safe_name(fake.uids[0][2]) + ".dcm"]  # the first, whole; no temporary file
    assert folder.joinpath(safe_name(fake.uids[0][2]) + ".dcm").read_bytes() == series[0]
    again = run()
    assert (again.fetched, again.already_here) == (2, 1)
    assert sorted(pydicom.dcmread(path).SOPInstanceUID for path in folder.iterdir()) == sorted(uid for *_, uid in fake.uids)

"""medtl's own C-GET upper layer speaks what pynetdicom and pydicom read, and the quick header walk reads what pydicom reads.

The C-GET against a real node (Orthanc) is in test_pacs_dimse.py (run by test_pacs_network.py).
"""

from __future__ import annotations

import io
import random
import socket
import struct
import threading
from pathlib import Path

import numpy as np

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.dsutils import encode, encode_file_meta
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ

from medtl.errors import MedtlError
from medtl.pacs import cget, dimse
from medtl.pacs.dimse import TRANSFER_SYNTAXES
from medtl.pacs.nodes import LocalAE, Node
from medtl.pacs.storage import BackgroundWriter, InstanceStore, instance_uids
from tests.dicomgen import SeriesSpec, phantom, write_series


def test_the_association_request_is_one_pynetdicom_reads_and_the_answer_is_read_back() -> None:
    contexts = [("1.2.840.10008.5.1.4.1.2.2.3", TRANSFER_SYNTAXES[:2]), ("1.2.840.10008.5.1.4.1.1.2", TRANSFER_SYNTAXES)]
    data = cget.associate_rq("ORTHANC", "MEDTL", contexts, ["1.2.840.10008.5.1.4.1.1.2"], 4 * 1024 * 1024)
    request = A_ASSOCIATE_RQ()
    request.decode(data)
    primitive = request.to_primitive()
    assert (primitive.called_ae_title, primitive.calling_ae_title) == ("ORTHANC", "MEDTL")
    proposed = [(c.context_id, c.abstract_syntax, tuple(c.transfer_syntax)) for c in primitive.presentation_context_definition_list]
    assert proposed == [(1, contexts[0][0], contexts[0][1]), (3, contexts[1][0], contexts[1][1])]
    roles = [item for item in primitive.user_information if type(item).__name__ == "SCP_SCU_RoleSelectionNegotiation"]
    assert [(str(r.sop_class_uid), r.scu_role, r.scp_role) for r in roles] == [(contexts[1][0], False, True)]

    answer = A_ASSOCIATE_AC()
    answer.decode(data.replace(b"\x01", b"\x02", 1))  # the same items read as an acceptance
    accepted = cget.parse_associate_ac(answer.encode()[6:])
    assert accepted.maximum_pdu == 4 * 1024 * 1024


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.4.50"])
def test_the_file_meta_before_a_received_data_set_is_what_pynetdicom_wrote_and_pydicom_reads(syntax: str) -> None:
    sop_class, sop_uid = "1.2.840.10008.5.1.4.1.1.2", "1.2.3.45"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID = sop_class, sop_uid, syntax
    meta.ImplementationClassUID, meta.ImplementationVersionName = PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
    written = cget.file_meta(sop_class, sop_uid, syntax)
    assert written == bytes(128) + b"DICM" + encode_file_meta(meta)  # what event.encoded_dataset() put before the data set
    read = pydicom.dcmread(io.BytesIO(written), force=True).file_meta
    assert (str(read.MediaStorageSOPInstanceUID), str(read.TransferSyntaxUID)) == (sop_uid, syntax)


def test_a_command_set_round_trips() -> None:
    elements = [(0x0002, b"1.2.840.10008.5.1.4.1.1.2\x00"), (0x0100, b"\x01\x80"), (0x0900, b"\x00\x00")]
    decoded = cget.decode_command(cget.encode_command(elements))
    assert decoded == {0x0000: (sum(8 + len(value) for _, value in elements)).to_bytes(4, "little"), **dict(elements)}


@pytest.mark.filterwarnings("ignore")
def test_the_header_walk_finds_the_uids_pydicom_finds() -> None:
    checked = split = 0
    for name in sorted((Path(pydicom.__file__).parent / "data" / "test_files").rglob("*.dcm")):
        data = name.read_bytes()
        try:
            header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            expected = (str(header.StudyInstanceUID), str(header.SeriesInstanceUID), str(header.SOPInstanceUID))
        except Exception:  # noqa: BLE001 - pydicom's test files include broken ones: instance_uids must refuse those
            expected = None
        if data[128:132] != b"DICM" or expected is None or not all(expected):
            continue
        assert instance_uids(data) == tuple(uid.strip("\x00 ") for uid in expected), name
        if data[132:138] == b"\x02\x00\x00\x00UL":  # a received instance: its file meta and data set apart
            meta_end = 144 + int.from_bytes(data[140:144], "little")
            assert instance_uids(data[:meta_end], bytearray(data[meta_end:])) == instance_uids(data), name
            split += 1
        checked += 1
    assert checked > 50 and split > 40
    with pytest.raises(ValueError, match="no DICM prefix"):
        instance_uids(b"\x00" * 200)
    with pytest.raises(ValueError, match="header cannot be read|lacks"):
        instance_uids(bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI\xff\x7f" + b"1.2")


def _read_pdu(conn: socket.socket) -> tuple[int, bytes]:
    head = conn.recv(6, socket.MSG_WAITALL)
    kind, length = struct.unpack(">BxL", head)
    return kind, conn.recv(length, socket.MSG_WAITALL) if length else b""


def _pdv(control: int, value: bytes, context: int) -> bytes:
    return struct.pack(">LBB", len(value) + 2, context, control) + value


def _pdu(*pdvs: bytes) -> bytes:
    body = b"".join(pdvs)
    return struct.pack(">BxL", 4, len(body)) + body


def _fake_node(listener: socket.socket, datasets: list[tuple[str, bytes]]) -> None:
    """A C-GET SCP that splits each data set into 1000-byte PDVs, one PDU each, and packs each pending C-GET
    response with the next C-STORE request and its first fragment into one PDU."""
    conn, _ = listener.accept()
    with conn:
        _read_pdu(conn)  # A-ASSOCIATE-RQ: C-GET is context 1, CT Image Storage context 3
        explicit = _item_(0x40, b"1.2.840.10008.1.2.1")
        items = _item_(0x10, b"1.2.840.10008.3.1.1.1") + _item_(0x21, b"\x01\x00\x00\x00" + explicit) + _item_(0x21, b"\x03\x00\x00\x00" + explicit)
        items += _item_(0x50, _item_(0x51, struct.pack(">L", 16384)))
        body = struct.pack(">H2x", 1) + b"MEDTL".ljust(16) + b"NODE".ljust(16) + bytes(32) + items
        conn.sendall(struct.pack(">BxL", 2, len(body)) + body)
        _read_pdu(conn), _read_pdu(conn)  # the C-GET request: command, identifier
        ct = "1.2.840.10008.5.1.4.1.1.2"
        for number, (sop_uid, data) in enumerate(datasets):
            store = cget.encode_command([(0x0002, ct.encode() + b"\x00"), (0x0100, b"\x01\x00"), (0x0110, struct.pack("<H", number + 2)),
                                         (0x0700, b"\x00\x00"), (0x0800, b"\x00\x00"), (0x1000, sop_uid.encode().ljust(len(sop_uid) + len(sop_uid) % 2, b"\x00"))])  # fmt: skip
            fragments = [data[i : i + 1000] for i in range(0, len(data), 1000)]
            pending = cget.encode_command([(0x0002, b"1.2.840.10008.5.1.4.1.2.2.3\x00"), (0x0100, b"\x10\x80"), (0x0120, b"\x01\x00"),
                                           (0x0800, b"\x01\x01"), (0x0900, b"\x00\xff")])  # fmt: skip
            first = [_pdv(0x03, pending, 1)] if number else []
            conn.sendall(_pdu(*first, _pdv(0x03, store, 3), _pdv(0x00, fragments[0], 3)))
            for index, fragment in enumerate(fragments[1:], 1):
                conn.sendall(_pdu(_pdv(0x02 if index == len(fragments) - 1 else 0x00, fragment, 3)))
            answer = cget.decode_command(_read_pdu(conn)[1][6:])
            assert answer[0x0900] == b"\x00\x00" and answer[0x1000].rstrip(b"\x00").decode() == sop_uid
        final = cget.encode_command([(0x0002, b"1.2.840.10008.5.1.4.1.2.2.3\x00"), (0x0100, b"\x10\x80"), (0x0120, b"\x01\x00"),
                                     (0x0800, b"\x01\x01"), (0x0900, b"\x00\x00")])  # fmt: skip
        conn.sendall(_pdu(_pdv(0x03, final, 1)))
        assert _read_pdu(conn)[0] == 5  # A-RELEASE-RQ
        conn.sendall(struct.pack(">BxL4x", 6, 4))


def _item_(kind: int, value: bytes) -> bytes:
    return struct.pack(">BxH", kind, len(value)) + value


def test_every_instance_arrives_whole_however_the_node_cuts_and_packs_its_pdus(tmp_path: Path) -> None:
    files = write_series(tmp_path / "ct", phantom((3, 40, 48)), SeriesSpec())
    sources = [pydicom.dcmread(path) for path in files]
    datasets = [(str(ds.SOPInstanceUID), encode(ds, False, True)) for ds in sources]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        node = threading.Thread(target=_fake_node, args=(listener, datasets), daemon=True)
        node.start()
        stored: list[Path] = []
        with BackgroundWriter(InstanceStore(tmp_path / "pacs"), stored.append) as writer:
            dimse.c_get(Node("fake", aet="NODE", host="127.0.0.1", port=listener.getsockname()[1], timeout=10), LocalAE(),
                        str(sources[0].StudyInstanceUID), str(sources[0].SeriesInstanceUID), None, dimse.Receiver(writer))  # fmt: skip
        node.join(10)
    assert len(stored) == len(sources)
    for source in sources:
        copy = pydicom.dcmread(InstanceStore(tmp_path / "pacs").path(str(source.StudyInstanceUID), str(source.SeriesInstanceUID), str(source.SOPInstanceUID)))
        assert np.array_equal(copy.pixel_array, source.pixel_array)


def _garbage_node(listener: socket.socket, seed: int) -> None:
    """A node that answers the association request with something broken (chosen by ``seed``), then hangs up."""
    rng = random.Random(seed)
    conn, _ = listener.accept()
    with conn:
        _read_pdu(conn)
        explicit = _item_(0x40, b"1.2.840.10008.1.2.1")
        accept = _item_(0x10, b"1.2.840.10008.3.1.1.1") + _item_(0x21, b"\x01\x00\x00\x00" + explicit) + _item_(0x50, _item_(0x51, struct.pack(">L", 16384)))
        good_ac = struct.pack(">BxL", 2, 68 + len(accept)) + struct.pack(">H2x", 1) + b"MEDTL".ljust(16) + b"NODE".ljust(16) + bytes(32) + accept
        kind = seed % 5
        if kind == 0:  # random bytes instead of an answer
            conn.sendall(rng.randbytes(rng.randrange(1, 400)))
        elif kind == 1:  # the answer with bytes flipped or cut short
            broken = bytearray(good_ac)
            for _ in range(rng.randrange(1, 6)):
                broken[rng.randrange(len(broken))] = rng.randrange(256)
            conn.sendall(bytes(broken[: rng.randrange(1, len(broken) + 1)]))
        else:  # a proper answer, then a broken reply to the C-GET (random PDVs, a PDU that claims gigabytes, a PDV that claims more than its PDU)
            conn.sendall(good_ac)
            _read_pdu(conn), _read_pdu(conn)
            if kind == 2:
                conn.sendall(_pdu(*(_pdv(rng.randrange(4), rng.randbytes(rng.randrange(0, 300)), 1) for _ in range(rng.randrange(1, 4)))))
            elif kind == 3:
                conn.sendall(struct.pack(">BxL", 4, 0xFFFFFFF0) + rng.randbytes(100))
            else:
                pdv = bytearray(_pdv(0x03, rng.randbytes(rng.randrange(0, 300)), 1))
                pdv[:4] = struct.pack(">L", len(pdv) - 4 + rng.randrange(1, 10_000))
                conn.sendall(_pdu(bytes(pdv)) + _pdu(_pdv(0x02, rng.randbytes(20_000), 1)))  # what it claims would run into the next PDU


@pytest.mark.parametrize("seed", range(150))
def test_a_broken_node_ends_the_retrieve_with_an_error_naming_it(seed: int, tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        node = threading.Thread(target=_garbage_node, args=(listener, seed), daemon=True)
        node.start()
        with BackgroundWriter(InstanceStore(tmp_path / "pacs"), lambda _path: None) as writer:
            expected = {3: "fake.*more than the 4194304 it may send", 4: "fake.*malformed"}.get(seed % 5, "fake")  # never buffers 4 GB on a node's word
            with pytest.raises(MedtlError, match=expected):  # a PacsError names the node; nothing else escapes
                dimse.c_get(Node("fake", aet="NODE", host="127.0.0.1", port=listener.getsockname()[1], timeout=5), LocalAE(), "1.2.3", "1.2.3.4", None, dimse.Receiver(writer))
        node.join(5)
    assert not list((tmp_path / "pacs").rglob("*.dcm"))  # nothing half-received was kept

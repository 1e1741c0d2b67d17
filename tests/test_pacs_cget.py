"""medtl's own C-GET upper layer speaks what pynetdicom and pydicom read, and the quick header walk reads what pydicom reads.

The C-GET against a real node (Orthanc) is in test_pacs_dimse.py (run by test_pacs_network.py).
"""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.dsutils import encode_file_meta
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ

from medtl.pacs import cget
from medtl.pacs.dimse import TRANSFER_SYNTAXES
from medtl.pacs.storage import instance_uids


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
    checked = 0
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
        checked += 1
    assert checked > 50
    with pytest.raises(ValueError, match="no DICM prefix"):
        instance_uids(b"\x00" * 200)
    with pytest.raises(ValueError, match="header cannot be read|lacks"):
        instance_uids(bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI\xff\x7f" + b"1.2")

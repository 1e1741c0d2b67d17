"""DIMSE with pynetdicom: C-ECHO, C-FIND, C-GET, C-MOVE (into medtl's own storage SCP) and C-STORE.

Every association uses the node's timeout for connecting, for association negotiation and for
each reply, so a silent or slow peer gives a :class:`PacsError` ("timed out") instead of a hang.
A failed association is explained: rejected (with the reason the peer gave), refused, timed out.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medtl.errors import MedtlError
from medtl.pacs import cget
from medtl.pacs.connection import ConnectionResult, Outcome, PacsError, Stopwatch, ack_at_once, probe_tcp
from medtl.pacs.nodes import LocalAE, Node
from medtl.pacs.query import Match, Query, count_from, match_from
from medtl.pacs.storage import BackgroundWriter, instance_uids
from medtl.progress import CancelToken

log = logging.getLogger(__name__)

# The storage SOP classes medtl can use (images it reads, and the segmentations it writes): the only ones
# its storage SCP accepts and the only ones a C-GET offers to take.
STORAGE_SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image
    "1.2.840.10008.5.1.4.1.1.128",  # Positron Emission Tomography Image
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET Image
    "1.2.840.10008.5.1.4.1.1.20",  # Nuclear Medicine Image
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray Image - For Presentation
    "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic Image
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
)
# Transfer syntaxes medtl decodes (pydicom with the pylibjpeg plugins): uncompressed first.
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
)
MAXIMUM_PDU = 4 * 1024 * 1024  # bytes; the PDUs medtl receives
# pynetdicom's network thread sleeps 1 ms whenever its socket has nothing to read, which it does before
# each instance of a C-MOVE: ~2 ms an instance, as long as pynetdicom's own work on a 512 x 512 CT slice.
# While instances arrive at medtl's storage SCP, medtl shortens that sleep to this (seconds): measured on
# loopback, a pynetdicom C-GET of 150 such slices took 0.65-1.0 s instead of 1.0-1.3 s, with no more CPU time.
_POLL_DELAY = 0.0001
_VERIFICATION = "1.2.840.10008.1.1"
_FIND = {"patient": "1.2.840.10008.5.1.4.1.2.1.1", "study": "1.2.840.10008.5.1.4.1.2.2.1"}  # patient root, study root
_GET = "1.2.840.10008.5.1.4.1.2.2.3"  # study root
_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"  # study root
_PENDING = (0xFF00, 0xFF01)
_WARNINGS = (0x0001, 0xB000, 0xB006, 0xB007)
_OUT_OF_RESOURCES = 0xA700


def _ae(local: LocalAE, node: Node) -> Any:
    from pynetdicom import AE

    ae = AE(ae_title=local.aet)
    ae.maximum_pdu_size = MAXIMUM_PDU  # a peer that may send larger PDUs sends fewer (pynetdicom parses each in Python)
    for name in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
        setattr(ae, name, node.timeout)
    return ae


@contextlib.contextmanager
def association(node: Node, local: LocalAE, contexts: list[tuple[str, tuple[str, ...]]], doing: str = "") -> Iterator[Any]:
    """An established pynetdicom association with ``node`` proposing ``contexts`` (SOP class, transfer syntaxes), released after."""
    ae = _ae(local, node)
    for sop_class, syntaxes in contexts:
        ae.add_requested_context(sop_class, list(syntaxes))
    watch = Stopwatch()
    assoc = ae.associate(node.host, node.port, ae_title=node.aet)
    if not (assoc.is_established or assoc.is_rejected) and watch.seconds < node.timeout / 2:
        # closed at once without an answer pynetdicom kept: under load it can miss the rejection a node sends just
        # before closing; asked once more, the node says why (or closes again, which is then the answer)
        assoc = ae.associate(node.host, node.port, ae_title=node.aet)
    if not assoc.is_established:
        raise _why_not_established(assoc, node, local, watch.seconds, doing)
    no_delay(assoc)
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def no_delay(assoc: Any) -> None:
    """Send ``assoc``'s small writes at once (``TCP_NODELAY``).

    pynetdicom writes a request's command and its identifier separately; with Nagle's algorithm the second
    waited for the node's delayed ACK: a series-level C-FIND to Orthanc took ~90 ms on loopback, ~45 ms so.
    Left alone where pynetdicom has no TCP socket there (:func:`_tcp_transport`).
    """
    found = _tcp_transport(assoc)
    if found is not None:
        found[1].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _tcp_transport(assoc: Any) -> tuple[Any, socket.socket] | None:
    """``Association.dul.socket`` (pynetdicom's ``AssociationSocket``, documented) and its TCP socket; None where
    pynetdicom has none there or it is not TCP."""
    transport = getattr(getattr(assoc, "dul", None), "socket", None)
    sock = getattr(transport, "socket", None)
    return (transport, sock) if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6) else None


def poll_faster(assoc: Any) -> None:
    """Shorten the idle sleep of ``assoc``'s network thread to :data:`_POLL_DELAY` while it receives instances.

    ``DULServiceProvider._run_loop_delay`` is private to pynetdicom (3.0): it is set only where it
    exists as a float, so a pynetdicom without it keeps its own delay (slower, still correct).
    """
    dul = getattr(assoc, "dul", None)
    if isinstance(getattr(dul, "_run_loop_delay", None), float):
        dul._run_loop_delay = _POLL_DELAY


def ack_each_read(assoc: Any) -> None:
    """ACK at once after each read of ``assoc``'s socket (:func:`~medtl.pacs.connection.ack_at_once`).

    For the associations a node opens to medtl's storage SCP to deliver a C-MOVE: a 300-instance series from
    Orthanc took 2.73 s without it, 2.15 s with it (medians of 5). The ``recv`` of :func:`_tcp_transport`'s
    transport is wrapped, on this association only.
    """
    found = _tcp_transport(assoc)
    if found is None or not hasattr(found[0], "recv"):
        return
    transport, sock = found
    read = transport.recv

    def recv(nr_bytes: int) -> Any:
        data = read(nr_bytes)
        with contextlib.suppress(OSError):  # the peer may have gone: the next read says so
            ack_at_once(sock)
        return data

    transport.recv = recv


def _why_not_established(assoc: Any, node: Node, local: LocalAE, seconds: float, doing: str) -> PacsError:
    if assoc.is_rejected:
        answer = getattr(assoc.acceptor, "primitive", None)
        reason = getattr(answer, "reason_str", "") or "no reason given"
        source = getattr(answer, "source_str", "")
        detail = f"{reason}{f' ({source})' if source else ''}; called AE title {node.aet!r}, calling AE title {local.aet!r}"
        return PacsError(node, Outcome.REJECTED, detail, doing)
    unreachable = probe_tcp(node, node.host, node.port)
    if unreachable is not None:
        return PacsError(node, unreachable.outcome, unreachable.detail, doing)
    if seconds >= node.timeout * 0.9:
        return PacsError(node, Outcome.TIMED_OUT, f"no answer to the association request in {node.timeout:g} s", doing)
    return PacsError(node, Outcome.FAILED, "the peer closed the connection during association (no common presentation context?)", doing)


def echo(node: Node, local: LocalAE) -> ConnectionResult:
    """C-ECHO: reachable, or why not (never raises for network trouble)."""
    watch = Stopwatch()
    try:
        with association(node, local, [(_VERIFICATION, TRANSFER_SYNTAXES[:2])], doing="C-ECHO") as assoc:
            asked = Stopwatch()
            status = assoc.send_c_echo()
            if not status:
                raise _lost(node, "C-ECHO", asked.seconds)
            if status.Status != 0:
                return ConnectionResult(node.name, Outcome.FAILED, f"C-ECHO status 0x{status.Status:04X}", watch.seconds)
    except PacsError as error:
        return error.as_result(watch.seconds)
    return ConnectionResult(node.name, Outcome.REACHABLE, f"C-ECHO in {watch.seconds * 1000:.0f} ms", watch.seconds)


def _lost(node: Node, doing: str, waited: float) -> PacsError:
    """Why a reply did not come: the node's timeout ran out, or the connection was lost before."""
    if waited >= node.timeout * 0.9:
        return PacsError(node, Outcome.TIMED_OUT, f"no reply in {node.timeout:g} s", doing)
    return PacsError(node, Outcome.FAILED, "the connection was lost (the node stopped or aborted)", doing)


def _replies(responses: Iterator[tuple[Any, Any]]) -> Iterator[tuple[Any, Any, float]]:
    """Each (status, identifier) of a DIMSE exchange with the seconds waited for it."""
    watch = Stopwatch()
    for status, identifier in responses:
        yield status, identifier, watch.seconds
        watch = Stopwatch()


def _identifier(keys: dict[str, Any]) -> Any:
    from pydicom.dataset import Dataset

    identifier = Dataset()
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    return identifier


def _find_keys(query: Query, level: str, study_uid: str = "") -> dict[str, str]:
    if level == "patient":
        return {"QueryRetrieveLevel": "PATIENT", "PatientName": query.patient_name, "PatientID": query.patient_id, "NumberOfPatientRelatedStudies": ""}
    if level == "study":
        return {
            "QueryRetrieveLevel": "STUDY", "PatientName": query.patient_name, "PatientID": query.patient_id,
            "StudyInstanceUID": study_uid or query.study_uid, "StudyDate": query.date_range, "StudyDescription": query.description,
            "AccessionNumber": query.accession, "ModalitiesInStudy": query.modality, "NumberOfStudyRelatedSeries": "",
        }  # fmt: skip
    return {
        "QueryRetrieveLevel": "SERIES", "StudyInstanceUID": study_uid, "SeriesInstanceUID": "", "Modality": query.modality,
        "SeriesNumber": "", "SeriesDescription": query.description if query.level == "series" else "",
        "NumberOfSeriesRelatedInstances": "",
    }  # fmt: skip


def c_find(node: Node, local: LocalAE, keys: dict[str, str], model: str = "study") -> list[Any]:
    """The datasets a C-FIND with ``keys`` answers."""
    with association(node, local, [(_FIND[model], TRANSFER_SYNTAXES[:2])], doing="C-FIND") as assoc:
        answers = []
        for status, identifier, waited in _replies(assoc.send_c_find(_identifier(keys), _FIND[model])):
            if not status:
                raise _lost(node, "C-FIND", waited)
            if status.Status in _PENDING:
                answers.append(identifier)
            elif status.Status != 0:
                raise PacsError(node, Outcome.FAILED, f"C-FIND status 0x{status.Status:04X}", "C-FIND")
        return answers


def find(node: Node, local: LocalAE, query: Query) -> list[Match]:
    """The patients, studies or series (``query.level``) matching ``query``."""
    if query.level == "patient":
        return [match_from(answer, "patient") for answer in c_find(node, local, _find_keys(query, "patient"), "patient")]
    studies = [match_from(answer, "study") for answer in c_find(node, local, _find_keys(query, "study"))]
    if query.level == "study":
        return studies
    series = []
    for study in studies:
        for answer in c_find(node, local, _find_keys(query, "series", study.study_uid)):
            row = match_from(answer, "series")
            series.append(Match(**{**row.as_json(), **{k: getattr(study, k) for k in ("patient_id", "patient_name", "study_date", "study_description", "accession")}, "study_uid": study.study_uid}))
    return series


def series_of(node: Node, local: LocalAE, study_uid: str) -> list[str]:
    """The series UIDs of a study."""
    answers = c_find(node, local, {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": study_uid, "SeriesInstanceUID": ""})
    return [str(answer.SeriesInstanceUID) for answer in answers if answer.get("SeriesInstanceUID")]


def count_of(node: Node, local: LocalAE, study_uid: str, series_uid: str) -> tuple[str, int | None]:
    """The study UID (found when ``study_uid`` is "") and how many instances a series holds (None: not said)."""
    keys = {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid, "NumberOfSeriesRelatedInstances": ""}
    answers = [answer for answer in c_find(node, local, keys) if answer.get("StudyInstanceUID")]
    if not answers:
        raise PacsError(node, Outcome.FAILED, f"no series {series_uid} there", "C-FIND")
    return study_uid or str(answers[0].StudyInstanceUID), count_from(answers[0].get("NumberOfSeriesRelatedInstances"))


def instances_of(node: Node, local: LocalAE, study_uid: str, series_uid: str) -> tuple[str, list[str]]:
    """The study UID (found when ``study_uid`` is "") and the SOP Instance UIDs of a series: one instance-level C-FIND."""
    keys = {"QueryRetrieveLevel": "IMAGE", "StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid, "SOPInstanceUID": ""}
    answers = [answer for answer in c_find(node, local, keys) if answer.get("SOPInstanceUID")]
    if not answers:
        raise PacsError(node, Outcome.FAILED, f"no instances of the series {series_uid} there", "C-FIND")
    return study_uid or str(answers[0].StudyInstanceUID), [str(answer.SOPInstanceUID) for answer in answers]


@dataclass
class Receiver:
    """Hands each instance that arrives (C-GET or C-MOVE sub-operation) to a background writer.

    Once ``cancel`` is set, arriving instances are refused (not written); a failure (a write error,
    an instance without its UIDs) is kept, refused to the peer, and raised by the retrieve.
    """

    writer: BackgroundWriter
    cancel: CancelToken | None = None
    error: Exception | None = None

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.cancelled

    def __call__(self, event: Any) -> int:
        """Handle a C-STORE that pynetdicom received (medtl's storage SCP, for a C-MOVE)."""
        request = event.request
        return self.store(str(request.AffectedSOPClassUID), str(request.AffectedSOPInstanceUID), str(event.context.transfer_syntax), request.DataSet.getvalue())

    def store(self, sop_class: str, sop_uid: str, syntax: str, dataset: bytes | bytearray) -> int:
        """Check one received data set and hand it to the writer as a file: its file meta, then the data set as sent; the C-STORE status."""
        if self.cancelled():
            return _OUT_OF_RESOURCES
        try:
            if not syntax:
                raise ValueError(f"instance {sop_uid} came on a presentation context that was not accepted")
            meta = cget.file_meta(sop_class, sop_uid, syntax)
            self.writer.encoded(*instance_uids(meta, dataset), meta, dataset)
        except Exception as error:  # noqa: BLE001 - any failure is reported to the peer and to the caller
            self.error = self.error or error
            return _OUT_OF_RESOURCES
        return 0x0000


def _storage_contexts() -> list[tuple[str, tuple[str, ...]]]:
    return [(sop, TRANSFER_SYNTAXES) for sop in STORAGE_SOP_CLASSES]


_UIDS_PER_REQUEST = 100


def _retrieve_identifiers(study_uid: str, series_uid: str, sop_uids: list[str] | None) -> list[Any]:
    """One series-level identifier, or instance-level ones listing the SOP Instance UIDs (list matching), 100 a request."""
    if sop_uids is None:
        return [_identifier({"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid})]
    keys = {"QueryRetrieveLevel": "IMAGE", "StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid}
    return [_identifier({**keys, "SOPInstanceUID": sop_uids[i : i + _UIDS_PER_REQUEST]}) for i in range(0, len(sop_uids), _UIDS_PER_REQUEST)]


def _follow(node: Node, assoc: Any, responses: Iterator[tuple[Any, Any]], receiver: Receiver, doing: str) -> None:
    """Read a C-GET/C-MOVE's responses; abort the association when the user cancels."""
    for status, _, waited in _replies(responses):
        if receiver.cancel is not None and receiver.cancel.cancelled:
            assoc.abort()
            receiver.cancel.raise_if_cancelled()
        if not status:
            raise _lost(node, doing, waited)
        if status.Status in _PENDING:
            continue
        if receiver.error is not None:
            raise receiver.error
        if status.Status not in (0x0000, 0xB000):  # 0xB000: some sub-operations failed; the retrieve counts what is missing
            failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
            raise PacsError(node, Outcome.FAILED, f"{doing} status 0x{status.Status:04X}, {failed} instance(s) failed", doing)


def c_get(node: Node, local: LocalAE, study_uid: str, series_uid: str, sop_uids: list[str] | None, receiver: Receiver) -> None:
    """C-GET a whole series (``sop_uids`` None) or the listed instances of it, on one association (:mod:`medtl.pacs.cget`)."""
    from pydicom.uid import UID
    from pynetdicom.dsutils import encode

    assoc = cget.Association(node, local, _GET, TRANSFER_SYNTAXES[:2], _storage_contexts(), MAXIMUM_PDU)
    try:
        syntax = UID(assoc.get_syntax)
        for identifier in _retrieve_identifiers(study_uid, series_uid, sop_uids):
            if receiver.cancel is not None:
                receiver.cancel.raise_if_cancelled()
            encoded = encode(identifier, syntax.is_implicit_VR, syntax.is_little_endian) or b""
            final = assoc.get(encoded, receiver.store, receiver.cancelled)
            if receiver.cancel is not None:
                receiver.cancel.raise_if_cancelled()
            if receiver.error is not None:
                raise receiver.error
            status, failed = cget.status_of(final)
            if status not in (0x0000, 0xB000):  # 0xB000: some sub-operations failed; the retrieve counts what is missing
                raise PacsError(node, Outcome.FAILED, f"C-GET status 0x{status:04X}, {failed} instance(s) failed", "C-GET")
    except BaseException:
        assoc.abort()
        raise
    assoc.release()


class StorageSCP:
    """medtl's storage SCP: accepts associations only from ``calling_titles``, addressed to its own AE
    title, and only for :data:`STORAGE_SOP_CLASSES`; each instance goes to the current receiver."""

    def __init__(self, local: LocalAE, calling_titles: tuple[str, ...], timeout: float, bind: str = "") -> None:
        from pynetdicom import AE, evt

        if not calling_titles:
            raise MedtlError("medtl's storage SCP would accept no calling AE title: save the sending node first")
        ae = AE(ae_title=local.aet)
        ae.maximum_pdu_size = MAXIMUM_PDU
        ae.require_called_aet = True
        ae.require_calling_aet = list(calling_titles)
        for name in ("acse_timeout", "dimse_timeout", "network_timeout"):
            setattr(ae, name, timeout)
        for sop_class, syntaxes in _storage_contexts():
            ae.add_supported_context(sop_class, list(syntaxes))
        self.receiver: Receiver | None = None
        try:
            handlers = [(evt.EVT_C_STORE, self._handle), (evt.EVT_ESTABLISHED, self._established)]
            self._server = ae.start_server((bind, local.port), block=False, evt_handlers=handlers)
        except OSError as error:
            raise MedtlError(
                f"medtl's storage SCP cannot listen on port {local.port} ({error.strerror or error}); "
                "choose another with `medtl pacs node local --port`"
            ) from error

    @staticmethod
    def _established(event: Any) -> None:
        poll_faster(event.assoc)
        ack_each_read(event.assoc)

    def _handle(self, event: Any) -> int:
        receiver = self.receiver
        return receiver(event) if receiver is not None else _OUT_OF_RESOURCES

    def close(self) -> None:
        self._server.shutdown()

    def __enter__(self) -> StorageSCP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def c_move(node: Node, local: LocalAE, scp: StorageSCP, study_uid: str, series_uid: str, sop_uids: list[str] | None, receiver: Receiver) -> None:
    """C-MOVE a series (or the listed instances) to medtl's own AE title, received by ``scp``."""
    scp.receiver = receiver
    try:
        with association(node, local, [(_MOVE, TRANSFER_SYNTAXES[:2])], doing="C-MOVE") as assoc:
            for identifier in _retrieve_identifiers(study_uid, series_uid, sop_uids):
                if receiver.cancel is not None:
                    receiver.cancel.raise_if_cancelled()
                _follow(node, assoc, assoc.send_c_move(identifier, local.aet, _MOVE), receiver, "C-MOVE")
    finally:
        scp.receiver = None
    if receiver.error is not None:
        raise receiver.error


@dataclass(frozen=True)
class SendResult:
    """What the node said about one sent file."""

    path: Path
    sop_uid: str
    ok: bool
    detail: str  # "stored", "stored with a warning (0xB000)", or why not

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


def c_store(node: Node, local: LocalAE, datasets: list[tuple[Path, Any]], on_result: Callable[[SendResult], None], cancel: CancelToken | None = None) -> None:
    """C-STORE each (path, dataset) in its own transfer syntax; ``on_result`` gets one result per file."""
    pairs = sorted({(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for _, ds in datasets})
    syntaxes: dict[str, set[str]] = {}
    for sop, syntax in pairs:
        syntaxes.setdefault(sop, set()).add(syntax)
    contexts = [(sop, tuple(sorted(found))) for sop, found in syntaxes.items()]
    for start in range(0, len(contexts), 100):  # an association proposes at most 128 contexts
        chunk = dict(contexts[start : start + 100])
        with association(node, local, list(chunk.items()), doing="C-STORE") as assoc:
            for path, dataset in datasets:
                if str(dataset.SOPClassUID) not in chunk:
                    continue
                if cancel is not None:
                    cancel.raise_if_cancelled()
                on_result(_store_one(node, assoc, path, dataset))


def _store_one(node: Node, assoc: Any, path: Path, dataset: Any) -> SendResult:
    uid = str(dataset.SOPInstanceUID)
    asked = Stopwatch()
    try:
        status = assoc.send_c_store(dataset)
    except ValueError as error:  # no accepted context for its class or transfer syntax
        return SendResult(path, uid, False, f"not accepted by {node.name}: {error}")
    if not status:
        raise _lost(node, "C-STORE", asked.seconds)
    code = int(status.Status)
    if code == 0:
        return SendResult(path, uid, True, "stored")
    if code in _WARNINGS:
        return SendResult(path, uid, True, f"stored with a warning (0x{code:04X})")
    comment = str(status.get("ErrorComment", "") or "")
    return SendResult(path, uid, False, f"refused (status 0x{code:04X}{': ' + comment if comment else ''})")

"""C-GET over a plain socket: the association, the C-GET request and the C-STORE sub-operations it brings.

pynetdicom reads every PDU on a thread of its own and hands it on through queues, which costs
~80 us of Python a PDU; a node with 16 kB PDUs (Orthanc's default) sends ~35 PDUs for each
512 x 512 CT slice, and the C-GET waits for that work before the node sends the next instance.
Here one loop in the caller's thread reads the PDUs (DICOM upper layer, PS3.8) from a buffer,
joins each instance's fragments and answers each C-STORE (DIMSE, PS3.7); the instances go to
``on_store`` as they arrive. Every wait for the node is bounded by its timeout.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

from medtl.pacs.connection import Outcome, PacsError, ack_at_once, probe_tcp
from medtl.pacs.nodes import LocalAE, Node

_APPLICATION_CONTEXT = b"1.2.840.10008.3.1.1.1"
_ASSOCIATE_RQ, _ASSOCIATE_AC, _ASSOCIATE_RJ, _P_DATA, _RELEASE_RQ, _RELEASE_RP, _ABORT = range(1, 8)
_C_STORE_RQ, _C_GET_RSP = 0x0001, 0x8010
_NO_DATA_SET = 0x0101
_REJECT_REASONS = {
    (1, 1): "no reason given", (1, 2): "application context name not supported", (1, 3): "calling AE title not recognised",
    (1, 7): "called AE title not recognised", (2, 1): "no reason given", (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion", (3, 2): "local limit exceeded",
}  # fmt: skip
_SOURCES = {1: "service user", 2: "service provider (ACSE)", 3: "service provider (presentation)"}
_LARGEST_OTHER_PDU = 1 << 20  # bytes: an association answer, release or abort is far smaller
_READ = 1 << 20  # bytes a read may take at most (it takes what has arrived)
_BUFFER = 2 * _READ  # the receive buffer's first size (it grows for a PDU of more than a megabyte)


@cache
def _implementation() -> tuple[bytes, bytes]:
    """The implementation class UID and version name medtl gives: pynetdicom's, as its other associations and files do."""
    from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

    return str(PYNETDICOM_IMPLEMENTATION_UID).encode(), PYNETDICOM_IMPLEMENTATION_VERSION.encode()


def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BxH", kind, len(body)) + body


def _ae_title(title: str) -> bytes:
    return title.encode("ascii", "replace")[:16].ljust(16)


def associate_rq(called: str, calling: str, contexts: list[tuple[str, tuple[str, ...]]], scp_roles: list[str], maximum_pdu: int) -> bytes:
    """An A-ASSOCIATE-RQ PDU proposing ``contexts`` (ids 1, 3, 5, ...) and the SCP role for ``scp_roles``."""
    items = [_item(0x10, _APPLICATION_CONTEXT)]
    for number, (sop_class, syntaxes) in enumerate(contexts):
        subitems = _item(0x30, sop_class.encode()) + b"".join(_item(0x40, syntax.encode()) for syntax in syntaxes)
        items.append(_item(0x20, struct.pack(">B3x", 2 * number + 1) + subitems))
    uid, version = _implementation()
    user = [_item(0x51, struct.pack(">L", maximum_pdu)), _item(0x52, uid)]
    user += [_item(0x54, struct.pack(">H", len(sop)) + sop.encode() + b"\x00\x01") for sop in scp_roles]  # SCU role no, SCP role yes
    user.append(_item(0x55, version))
    items.append(_item(0x50, b"".join(user)))
    body = struct.pack(">H2x", 1) + _ae_title(called) + _ae_title(calling) + bytes(32) + b"".join(items)
    return struct.pack(">BxL", _ASSOCIATE_RQ, len(body)) + body


@dataclass(frozen=True)
class Accepted:
    """What the node accepted: transfer syntax by presentation context id, and the largest PDU it takes (0: any)."""

    syntaxes: dict[int, str]
    maximum_pdu: int


def parse_associate_ac(body: bytes) -> Accepted:
    """The accepted presentation contexts and the peer's maximum PDU length from an A-ASSOCIATE-AC's body."""
    syntaxes: dict[int, str] = {}
    maximum = 0
    for kind, value in _items(body, 68):
        if kind == 0x21 and value[2] == 0:  # presentation context, result 0: acceptance
            syntaxes[value[0]] = next((uid.decode().rstrip("\x00 ") for sub, uid in _items(value, 4) if sub == 0x40), "")
        elif kind == 0x50:
            maximum = next((struct.unpack(">L", sub_value)[0] for sub, sub_value in _items(value, 0) if sub == 0x51), 0)
    return Accepted(syntaxes, maximum)


def _items(data: bytes, start: int) -> Iterator[tuple[int, bytes]]:
    while start + 4 <= len(data):
        kind, length = struct.unpack_from(">BxH", data, start)
        yield kind, data[start + 4 : start + 4 + length]
        start += 4 + length


def encode_command(elements: list[tuple[int, bytes]]) -> bytes:
    """A DIMSE command set (implicit VR little endian, group 0000) of (element, value) in element order."""
    body = b"".join(struct.pack("<HHL", 0, element, len(value)) + value for element, value in elements)
    return struct.pack("<HHLL", 0, 0, 4, len(body)) + body


def _uid(text: str) -> bytes:
    value = text.encode("ascii")
    return value + b"\x00" if len(value) % 2 else value


def _us(number: int) -> bytes:
    return struct.pack("<H", number)


def decode_command(data: bytes) -> dict[int, bytes]:
    """The elements of a DIMSE command set by element number (its group is 0000)."""
    elements, start = {}, 0
    while start + 8 <= len(data):
        _, element, length = struct.unpack_from("<HHL", data, start)
        elements[element] = data[start + 8 : start + 8 + length]
        start += 8 + length
    return elements


def _number(elements: dict[int, bytes], element: int) -> int:
    value = elements.get(element, b"")
    return int.from_bytes(value, "little") if value else 0


def _text(elements: dict[int, bytes], element: int) -> str:
    return elements.get(element, b"").decode("ascii", "replace").rstrip("\x00 ")


def file_meta(sop_class: str, sop_uid: str, syntax: str) -> bytes:
    """Preamble, DICM prefix and File Meta Information (explicit VR little endian) for a received data set."""

    def short(element: int, vr: bytes, value: bytes) -> bytes:
        return struct.pack("<HH", 2, element) + vr + struct.pack("<H", len(value)) + value

    uid, version = _implementation()
    body = (
        struct.pack("<HH", 2, 1) + b"OB\x00\x00" + struct.pack("<L", 2) + b"\x00\x01"
        + short(2, b"UI", _uid(sop_class)) + short(3, b"UI", _uid(sop_uid)) + short(0x10, b"UI", _uid(syntax))
        + short(0x12, b"UI", _uid(uid.decode())) + short(0x13, b"SH", version + b" " * (len(version) % 2))
    )  # fmt: skip
    return bytes(128) + b"DICM" + struct.pack("<HH", 2, 0) + b"UL" + struct.pack("<HL", 4, len(body)) + body


StoreHandler = Callable[[str, str, str, bytearray], int]
"""Called with (SOP class, SOP instance UID, transfer syntax ("": not accepted), data set) for each instance; returns the C-STORE status."""


class Association:
    """One association with a node for a C-GET, taking the SCP role for its storage classes."""

    def __init__(self, node: Node, local: LocalAE, get_class: str, get_syntaxes: tuple[str, ...], storage: list[tuple[str, tuple[str, ...]]], maximum_pdu: int) -> None:
        self.node = node
        self._buffer = bytearray(_BUFFER)  # what was received: bytes [_start, _end) not read yet
        self._start = self._end = 0
        self._rest: tuple[int, int] | None = None  # where the PDVs of a P-DATA PDU not read yet start and end in the buffer
        self._offered = maximum_pdu  # the largest P-DATA PDU the node may send (what the request said)
        self._message_id = 0
        try:
            self._socket = socket.create_connection((node.host, node.port), timeout=node.timeout)
        except OSError as error:
            reason = probe_tcp(node, node.host, node.port)
            raise PacsError(node, Outcome.FAILED, str(error), "C-GET") if reason is None else PacsError(node, reason.outcome, reason.detail, "C-GET") from error
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each request is a few small writes
        try:
            contexts = [(get_class, get_syntaxes), *storage]
            self._socket.sendall(associate_rq(node.aet, local.aet, contexts, [sop for sop, _ in storage], maximum_pdu))
            try:
                kind, body = self._read_pdu()
            except PacsError as error:
                if error.outcome is Outcome.TIMED_OUT:
                    raise PacsError(node, Outcome.TIMED_OUT, f"no answer to the association request in {node.timeout:g} s", "C-GET") from None
                raise PacsError(node, Outcome.FAILED, "the peer closed the connection during association", "C-GET") from None
            if kind == _ASSOCIATE_RJ:
                result, source, reason = body[1], body[2], body[3]
                why = _REJECT_REASONS.get((source, reason), f"reason {reason}")
                detail = f"{why} ({'permanent' if result == 1 else 'transient'}, {_SOURCES.get(source, f'source {source}')}); called AE title {node.aet!r}, calling AE title {local.aet!r}"
                raise PacsError(node, Outcome.REJECTED, detail, "C-GET")
            if kind != _ASSOCIATE_AC:
                raise self._lost()
            try:
                accepted = parse_associate_ac(body)
            except (IndexError, struct.error, UnicodeDecodeError) as error:
                raise PacsError(node, Outcome.FAILED, "the node's answer to the association request cannot be read", "C-GET") from error
            self._maximum_pdu = accepted.maximum_pdu
            self._syntaxes = accepted.syntaxes  # by presentation context id: 1 is the C-GET's
            self._get_class = get_class
            if 1 not in self._syntaxes:
                raise PacsError(node, Outcome.FAILED, "the node accepted no presentation context for C-GET", "C-GET")
        except BaseException:
            self._socket.close()
            raise

    def _lost(self) -> PacsError:
        return PacsError(self.node, Outcome.FAILED, "the connection was lost (the node stopped or aborted)", "C-GET")

    def _fill(self, needed: int) -> None:
        """Read until ``needed`` bytes past the read position are buffered, straight into the buffer.

        When they would not fit after the read position, what is left unread moves to the front first
        (at most a PDU's worth, about once a megabyte), and the buffer grows if they still would not fit.
        """
        if self._end - self._start >= needed:
            return
        if len(self._buffer) - self._end < _READ or self._start + needed > len(self._buffer):
            unread = self._end - self._start
            self._buffer[:unread] = self._buffer[self._start : self._end]
            self._start, self._end = 0, unread
            if needed + _READ > len(self._buffer):
                self._buffer.extend(bytes(needed + _READ - len(self._buffer)))
        with memoryview(self._buffer) as view:
            while self._end - self._start < needed:
                try:
                    received = self._socket.recv_into(view[self._end :])
                except TimeoutError:
                    raise PacsError(self.node, Outcome.TIMED_OUT, f"no reply in {self.node.timeout:g} s", "C-GET") from None
                except OSError as error:
                    raise self._lost() from error
                if not received:
                    raise self._lost()
                self._end += received
                ack_at_once(self._socket)

    def _next_pdu(self) -> tuple[int, int, int]:
        """The next PDU's type and where its body starts and ends in the buffer (valid until the next PDU is read).

        An A-ABORT, an A-RELEASE-RQ or an unknown PDU ends the association.
        """
        self._fill(6)
        kind, length = struct.unpack_from(">BxL", self._buffer, self._start)
        limit = self._offered if kind == _P_DATA else _LARGEST_OTHER_PDU
        if length > limit:  # a broken or hostile node: never buffer gigabytes on its word
            raise PacsError(self.node, Outcome.FAILED, f"the node sent a PDU of {length} bytes, more than the {limit} it may send", "C-GET")
        self._fill(6 + length)
        begin = self._start + 6
        self._start = begin + length
        if kind in (_ABORT, _RELEASE_RQ) or kind > _ABORT:
            raise self._lost()
        return kind, begin, self._start

    def _read_pdu(self) -> tuple[int, bytes]:
        """The next PDU's type and body (a copy)."""
        kind, begin, end = self._next_pdu()
        return kind, bytes(self._buffer[begin:end])

    def _message(self) -> tuple[int, dict[int, bytes], bytearray | None]:
        """The next DIMSE message: presentation context id, command elements, data set (None when it has none).

        Fragments are copied once, from the receive buffer into the message. A P-DATA PDU may hold PDVs
        of the next message after the last of this one: those are kept for the next call.
        """
        command, data = bytearray(), bytearray()
        elements: dict[int, bytes] | None = None
        buffer = self._buffer
        while True:
            if self._rest is not None:
                start, end = self._rest
                self._rest = None
            else:
                kind, start, end = self._next_pdu()
                if kind != _P_DATA:
                    raise self._lost()
            with memoryview(buffer) as view:
                while start + 6 <= end:
                    (length,) = struct.unpack_from(">L", buffer, start)
                    if length < 2 or start + 4 + length > end:
                        raise PacsError(self.node, Outcome.FAILED, "the node sent a malformed message (a PDV longer than its PDU)", "C-GET")
                    context, control = buffer[start + 4], buffer[start + 5]
                    fragment = view[start + 6 : start + 4 + length]
                    start += 4 + length
                    done = None
                    if control & 1:
                        command += fragment
                        if control & 2:
                            elements = decode_command(bytes(command))
                            if _number(elements, 0x0800) == _NO_DATA_SET:
                                done = (context, elements, None)
                    elif elements is not None:
                        data += fragment
                        if control & 2:
                            done = (context, elements, data)
                    fragment.release()
                    if done is not None:
                        self._rest = (start, end) if start + 6 <= end else None
                        return done

    def _send_command(self, context: int, elements: list[tuple[int, bytes]], data: bytes = b"") -> None:
        """One command (and its data set, in PDUs the node takes) to the node."""
        pdus = [_p_data(context, 0x03, encode_command(elements))]
        size = self._maximum_pdu - 6 if self._maximum_pdu > 6 else max(len(data), 1)
        for start in range(0, len(data), size):
            pdus.append(_p_data(context, 0x02 if start + size >= len(data) else 0x00, data[start : start + size]))
        try:
            self._socket.sendall(b"".join(pdus))
        except OSError as error:
            raise self._lost() from error

    @property
    def get_syntax(self) -> str:
        """The transfer syntax the node accepted for the C-GET request (its identifier is encoded in it)."""
        return self._syntaxes[1]

    def get(self, identifier: bytes, on_store: StoreHandler, cancelled: Callable[[], bool]) -> dict[int, bytes]:
        """Send a C-GET with ``identifier`` (encoded in the C-GET context's syntax); store what comes; the final response.

        ``cancelled`` is asked before each instance is answered: when it says so, the association is aborted.
        """
        self._message_id += 1
        self._send_command(1, [
            (0x0002, _uid(self._get_class)), (0x0100, _us(0x0010)), (0x0110, _us(self._message_id)), (0x0700, _us(0)), (0x0800, _us(0)),
        ], identifier)  # fmt: skip
        while True:
            try:
                context, elements, data = self._message()
            except struct.error as error:
                raise PacsError(self.node, Outcome.FAILED, "the node sent a malformed message", "C-GET") from error
            field = _number(elements, 0x0100)
            if field == _C_STORE_RQ and data is not None:
                if cancelled():
                    self.abort()
                    return {}
                sop_class, sop_uid = _text(elements, 0x0002), _text(elements, 0x1000)
                status = on_store(sop_class, sop_uid, self._syntaxes.get(context, ""), data)
                self._send_command(context, [
                    (0x0002, _uid(sop_class)), (0x0100, _us(0x8001)), (0x0120, elements.get(0x0110, _us(0))), (0x0800, _us(_NO_DATA_SET)),
                    (0x0900, _us(status)), (0x1000, _uid(sop_uid)),
                ])  # fmt: skip
            elif field == _C_GET_RSP:
                if _number(elements, 0x0900) not in (0xFF00, 0xFF01):
                    return elements
            else:
                raise PacsError(self.node, Outcome.FAILED, f"unexpected DIMSE message 0x{field:04X} from the node", "C-GET")

    def release(self) -> None:
        """Ask the node to release the association and close the connection (whatever it answers)."""
        try:
            self._socket.sendall(struct.pack(">BxL4x", _RELEASE_RQ, 4))
            self._read_pdu()
        except (OSError, PacsError):
            pass
        finally:
            self._socket.close()

    def abort(self) -> None:
        try:
            self._socket.sendall(struct.pack(">BxL4x", _ABORT, 4))
        except OSError:
            pass
        finally:
            self._socket.close()

    def close(self) -> None:
        self._socket.close()


def _p_data(context: int, control: int, value: bytes) -> bytes:
    return struct.pack(">BxLLBB", _P_DATA, len(value) + 6, len(value) + 2, context, control) + value


def status_of(elements: dict[int, bytes]) -> tuple[int, int]:
    """A C-GET response's status and number of failed sub-operations."""
    return _number(elements, 0x0900), _number(elements, 0x1022)

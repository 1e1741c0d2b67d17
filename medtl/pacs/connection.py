"""What talking to a node gave: :class:`ConnectionResult` for "Test connection", :class:`PacsError` for failures.

Both say which node, and what kind of trouble in the user's words: refused (nothing listens
there), timed out (no answer in the node's timeout), unreachable (no route or unknown host),
association rejected (and the reason the peer gave), authentication failed, or another failure.
"""

from __future__ import annotations

import errno
import socket
import time
from dataclasses import dataclass
from enum import Enum

from medtl.errors import MedtlError
from medtl.pacs.nodes import Node


class Outcome(str, Enum):
    REACHABLE = "reachable"
    REFUSED = "refused"
    TIMED_OUT = "timed out"
    UNREACHABLE = "unreachable"
    REJECTED = "association rejected"
    UNAUTHORIZED = "authentication failed"
    FAILED = "failed"


@dataclass(frozen=True)
class ConnectionResult:
    """The answer to "Test connection": the node, the outcome, details (the reason, a timing) and seconds spent."""

    node: str
    outcome: Outcome
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.REACHABLE

    def __str__(self) -> str:
        return f"{self.node}: {self.outcome.value}" + (f" ({self.detail})" if self.detail else "")


class PacsError(MedtlError):
    """A network operation with a node failed; ``outcome`` says how (refused, timed out, rejected, ...)."""

    def __init__(self, node: Node, outcome: Outcome, detail: str, doing: str = "") -> None:
        self.node_name = node.name
        self.outcome = outcome
        self.detail = detail
        where = f"{node.name} ({node.describe()})"
        super().__init__(f"{where}: {doing + ': ' if doing else ''}{outcome.value}" + (f": {detail}" if detail else ""))

    def as_result(self, seconds: float = 0.0) -> ConnectionResult:
        return ConnectionResult(self.node_name, self.outcome, self.detail, seconds)


def probe_tcp(node: Node, host: str, port: int) -> PacsError | None:
    """None if a TCP connection to ``host:port`` opens within the node's timeout, else why it does not."""
    try:
        with socket.create_connection((host, port), timeout=node.timeout):
            return None
    except TimeoutError:
        return PacsError(node, Outcome.TIMED_OUT, f"no answer from {host}:{port} in {node.timeout:g} s")
    except ConnectionRefusedError:
        return PacsError(node, Outcome.REFUSED, f"nothing listens on {host}:{port}")
    except socket.gaierror as error:
        return PacsError(node, Outcome.UNREACHABLE, f"unknown host {host!r} ({error.strerror})")
    except OSError as error:
        if error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
            return PacsError(node, Outcome.UNREACHABLE, f"{host}:{port}: {error.strerror}")
        return PacsError(node, Outcome.FAILED, f"{host}:{port}: {error.strerror or error}")


class Stopwatch:
    """Seconds since creation."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._start


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def ack_at_once(sock: socket.socket) -> None:
    """Have the kernel ACK what ``sock`` has received at once (Linux ``TCP_QUICKACK``); call it after every read.

    Linux may hold an ACK up to 40 ms hoping to send it with a reply, while a node with Nagle's algorithm on holds the
    end of an instance until what it sent before is ACKed; the reply (the C-STORE response) comes only once the instance
    is whole, so both wait. Measured against Orthanc: 2 to 40 such waits a 300-instance C-GET. The kernel drops the
    option again after a while, so each read sets it; elsewhere this does nothing.
    """
    if _QUICKACK is not None:
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)

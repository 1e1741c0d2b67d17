"""Real DICOM peers for the PACS tests: Orthanc (with its DICOMweb plugin) and dcmtk's tools.

Orthanc listens on every address, so the tests that run it run inside a private network
namespace that the test run creates (``unshare --net``, loopback only): ``test_pacs_network.py``
runs the modules that need it again in such a namespace, with ``MEDTL_PACS_NETNS=1`` set; those
modules skip themselves anywhere else. Ports are fixed there: nothing else listens in a fresh namespace.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import keyring.backend

MARKER = "MEDTL_PACS_NETNS"
ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN_PLACES = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so", "/usr/lib/orthanc/libOrthancDicomWeb.so")
USER, PASSWORD = "medtl", "right-password"
MEDTL_AET, MEDTL_PORT = "MEDTL", 11112
TOOLS = ("storescp", "findscu", "getscu", "storescu")


def missing_tools() -> str:
    """Why the real peers cannot run here ("" when they can)."""
    missing = [tool for tool in (ORTHANC, *TOOLS) if shutil.which(tool) is None]
    if dicomweb_plugin() is None:
        missing.append("the Orthanc DICOMweb plugin")
    return f"missing {', '.join(missing)} (apt-get install orthanc orthanc-dicomweb dcmtk)" if missing else ""


def dicomweb_plugin() -> str | None:
    return next((place for place in DICOMWEB_PLUGIN_PLACES if Path(place).exists()), None)


def in_private_network() -> bool:
    return os.environ.get(MARKER) == "1"


def loopback_up() -> None:
    """Bring ``lo`` up in this (new) network namespace, as ``ip link set lo up`` does."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, siocgifflags, request))[1]
        if not flags & iff_up:
            fcntl.ioctl(sock, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


def private_network_command(command: list[str]) -> list[str]:
    """``command`` run in a new network namespace (a new user namespace too when not root)."""
    unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--net", "--map-root-user"]
    return [*unshare, *command]


def private_network_refusal() -> str:
    """Why a private network namespace cannot be made here ("" when it can)."""
    if shutil.which("unshare") is None:
        return "no `unshare` (util-linux)"
    probe = subprocess.run(private_network_command([sys.executable, "-c", "pass"]), capture_output=True, text=True, timeout=30)
    return "" if probe.returncode == 0 else f"unshare --net is not permitted here: {probe.stderr.strip()[:200]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Orthanc:
    """One Orthanc server with its configuration, storage and log in ``folder``."""

    folder: Path
    aet: str = "ORTHANC"
    dicom_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    medtl_port: int = MEDTL_PORT
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def configuration(self) -> dict:
        modalities = {name.lower(): [name, "127.0.0.1", port] for name, port in (
            (MEDTL_AET, self.medtl_port), ("FINDSCU", 104), ("GETSCU", 104), ("STORESCU", 104))}  # fmt: skip
        return {
            "Name": "medtl-tests",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "storage"),
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": True,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "DicomCheckCalledAet": True,
            "DicomModalities": modalities,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomScuTimeout": 5,
            "Plugins": [dicomweb_plugin()],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "StudiesMetadata": "Full"},
            "StorageCompression": False,
            "SaveJobs": False,
            "HttpCompressionEnabled": False,
        }

    def start(self, timeout: float = 20.0) -> Orthanc:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "orthanc.json"
        config.write_text(json.dumps(self.configuration(), indent=1))
        log = open(self.folder / "orthanc.log", "ab")  # noqa: SIM115 - kept open for the server's life
        self.process = subprocess.Popen([ORTHANC, str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited ({self.process.returncode}): {self.log_tail()}")
            if self._answers():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"Orthanc did not start in {timeout} s: {self.log_tail()}")

    def _answers(self) -> bool:
        import requests

        try:
            return requests.get(f"{self.url}/dicom-web/studies", auth=(USER, PASSWORD), timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, kill: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(timeout=20)
        self.process = None

    def log_tail(self) -> str:
        path = self.folder / "orthanc.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def store_with_storescu(self, files: list[Path]) -> None:
        """Load files with dcmtk's storescu (an independent C-STORE SCU)."""
        done = subprocess.run(
            ["storescu", "-aet", "STORESCU", "-aec", self.aet, "127.0.0.1", str(self.dicom_port), *map(str, files)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"storescu failed: {done.stderr[-1000:]}")

    def rest(self, path: str) -> object:
        import requests

        answer = requests.get(f"{self.url}{path}", auth=(USER, PASSWORD), timeout=10)
        answer.raise_for_status()
        return answer.json()


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring in a dict, so tests never touch the user's OS keyring."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.secrets.pop((service, username), None) is None:
            import keyring.errors

            raise keyring.errors.PasswordDeleteError(username)


@contextlib.contextmanager
def memory_keyring() -> Iterator[MemoryKeyring]:
    """While inside, the keyring is a fresh :class:`MemoryKeyring` (the one before comes back after)."""
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    try:
        yield ring
    finally:
        keyring.set_keyring(previous)

"""Saved remote DICOM nodes and medtl's own network identity.

A :class:`Node` is either a DIMSE peer (AE title, host, port) or a DICOMweb service (base URL,
optional basic or bearer authentication, TLS verified unless the user turns it off). Nodes and
:class:`LocalAE` are kept in ``pacs-nodes.json`` in the per-user configuration folder; a password
or token never is: it lives in the OS keyring (the ``keyring`` package), under the service
``medtl-pacs`` and the node's name.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlparse

from medtl.atomic import write_text_atomic
from medtl.errors import InvalidRequest, MedtlError

KEYRING_SERVICE = "medtl-pacs"
ENV_VARIABLE = "MEDTL_PACS_NODES"
AUTH_KINDS = ("none", "basic", "bearer")
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # printable ASCII but the backslash, 16 characters at most
_NAME = re.compile(r"^[\w.-]{1,64}$")
DEFAULT_TIMEOUT = 10.0


def check_ae_title(value: str, field_name: str = "aet") -> str:
    """``value`` stripped, or :class:`InvalidRequest` if it cannot be an AE title."""
    title = value.strip()
    if not _AE_TITLE.match(title):
        raise InvalidRequest(field_name, f"{value!r} is not an AE title (1 to 16 printable ASCII characters, no backslash)")
    return title


def check_port(value: int, field_name: str = "port") -> int:
    if not 1 <= value <= 65535:
        raise InvalidRequest(field_name, f"{value} is not a TCP port (1 to 65535)")
    return value


@dataclass(frozen=True)
class Node:
    """A remote node. DIMSE when ``url`` is empty (``aet``, ``host``, ``port`` set), DICOMweb otherwise."""

    name: str
    aet: str = ""
    host: str = ""
    port: int = 0
    url: str = ""
    auth: str = "none"  # "none", "basic" (username + password in the keyring) or "bearer" (token in the keyring)
    username: str = ""
    verify_tls: bool = True
    timeout: float = DEFAULT_TIMEOUT  # seconds for connecting and for each network reply

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidRequest("name", f"{self.name!r} is not a node name (letters, digits, '.', '-', '_'; 64 at most)")
        if self.timeout <= 0:
            raise InvalidRequest("timeout", "the timeout must be more than 0 seconds")
        if self.auth not in AUTH_KINDS:
            raise InvalidRequest("auth", f"authentication must be one of {', '.join(AUTH_KINDS)}")
        if self.url:
            parsed = urlparse(self.url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise InvalidRequest("url", f"{self.url!r} is not an http(s) URL")
            if parsed.username or parsed.password:
                raise InvalidRequest("url", "put no credentials in the URL: use --user with --password-stdin, or --token")
            if self.aet or self.host or self.port:
                raise InvalidRequest("url", "a node is either DICOMweb (a URL) or DIMSE (AE title, host and port), not both")
            if self.auth == "basic" and not self.username:
                raise InvalidRequest("username", "basic authentication needs a user name")
            return
        if self.auth != "none":
            raise InvalidRequest("auth", "authentication is for DICOMweb nodes; a DIMSE node is identified by its AE title")
        missing = [name for name in ("aet", "host", "port") if not getattr(self, name)]
        if len(missing) == 3:
            raise InvalidRequest("url", "a node needs either a URL (DICOMweb) or an AE title, a host and a port (DIMSE)")
        if missing:
            words = {"aet": "AE title", "host": "host", "port": "port"}
            raise InvalidRequest(missing[0], f"a DIMSE node needs an AE title, a host and a port: the {words[missing[0]]} is missing")
        object.__setattr__(self, "aet", check_ae_title(self.aet))
        check_port(self.port)

    @property
    def is_web(self) -> bool:
        return bool(self.url)

    def describe(self) -> str:
        """Where the node is, without secrets: ``ORTHANC@127.0.0.1:4242`` or the URL."""
        return self.url if self.is_web else f"{self.aet}@{self.host}:{self.port}"


@dataclass(frozen=True)
class LocalAE:
    """medtl's own AE title, the port of its storage SCP (for C-MOVE) and the calling titles that SCP accepts.

    ``accept_from`` empty: the AE titles of the saved DIMSE nodes.
    """

    aet: str = "MEDTL"
    port: int = 11112
    accept_from: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "aet", check_ae_title(self.aet, "local_aet"))
        check_port(self.port, "local_port")
        object.__setattr__(self, "accept_from", tuple(check_ae_title(title, "accept_from") for title in self.accept_from))


@dataclass
class NodeBook:
    """The saved nodes and the local AE; :meth:`load` and :meth:`save` read and write the JSON file."""

    nodes: dict[str, Node] = field(default_factory=dict)
    local: LocalAE = field(default_factory=LocalAE)
    path: Path | None = None

    @staticmethod
    def default_path() -> Path:
        """``$MEDTL_PACS_NODES`` if set, else ``pacs-nodes.json`` in the per-user configuration folder."""
        override = os.environ.get(ENV_VARIABLE)
        if override:
            return Path(override).expanduser()
        import platformdirs

        return Path(platformdirs.user_config_dir("medtl")) / "pacs-nodes.json"

    @classmethod
    def load(cls, path: Path | None = None) -> NodeBook:
        path = path or cls.default_path()
        if not path.exists():
            return cls(path=path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            known = {f.name for f in fields(Node)}
            nodes = {item["name"]: Node(**{k: v for k, v in item.items() if k in known}) for item in document.get("nodes", [])}
            local = document.get("local", {})
            local_ae = LocalAE(local.get("aet", "MEDTL"), int(local.get("port", 11112)), tuple(local.get("accept_from", ())))
        except (OSError, ValueError, TypeError, KeyError, AttributeError, InvalidRequest) as error:
            raise MedtlError(f"{path}: cannot read the saved PACS nodes ({error}); fix or remove the file") from error
        return cls(nodes, local_ae, path)

    def save(self) -> None:
        document = {
            "local": {**asdict(self.local), "accept_from": list(self.local.accept_from)},
            "nodes": [asdict(node) for node in sorted(self.nodes.values(), key=lambda n: n.name)],
        }
        write_text_atomic(self.path or self.default_path(), json.dumps(document, indent=2) + "\n")

    def get(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            known = ", ".join(sorted(self.nodes)) or "none saved; add one with `medtl pacs node add`"
            raise MedtlError(f"no PACS node named {name!r} (known: {known})") from None

    def add(self, node: Node, secret: str | None = None) -> None:
        """Add or replace ``node``; ``secret`` (password or token) goes to the keyring, never into the file."""
        if node.auth != "none" and not secret and not get_secret(node):
            raise InvalidRequest("auth", f"{node.auth} authentication needs a {'token' if node.auth == 'bearer' else 'password'}")
        if secret:
            set_secret(node, secret)
        self.nodes[node.name] = node

    def remove(self, name: str) -> None:
        node = self.get(name)
        del self.nodes[name]
        if node.auth != "none":
            delete_secret(node)

    def accepted_calling_titles(self) -> tuple[str, ...]:
        """The calling AE titles medtl's storage SCP accepts."""
        return self.local.accept_from or tuple(sorted({node.aet for node in self.nodes.values() if not node.is_web}))

    def with_local(self, aet: str | None = None, port: int | None = None) -> None:
        changes = {key: value for key, value in (("aet", aet), ("port", port)) if value is not None}
        self.local = replace(self.local, **changes)


def _keyring():  # noqa: ANN202 - the keyring module, imported when a secret is needed
    try:
        import keyring
        import keyring.errors
    except ImportError as error:  # pragma: no cover - a declared dependency
        raise MedtlError("the `keyring` package is needed for PACS passwords and tokens") from error
    return keyring


def set_secret(node: Node, secret: str) -> None:
    keyring = _keyring()
    try:
        keyring.set_password(KEYRING_SERVICE, node.name, secret)
    except keyring.errors.KeyringError as error:
        raise MedtlError(f"node {node.name}: the OS keyring cannot store the secret ({error})") from error


def get_secret(node: Node) -> str | None:
    keyring = _keyring()
    try:
        return keyring.get_password(KEYRING_SERVICE, node.name)
    except keyring.errors.KeyringError as error:
        raise MedtlError(f"node {node.name}: the OS keyring cannot be read ({error})") from error


def delete_secret(node: Node) -> None:
    keyring = _keyring()
    try:
        keyring.delete_password(KEYRING_SERVICE, node.name)
    except keyring.errors.PasswordDeleteError:
        pass
    except keyring.errors.KeyringError as error:
        raise MedtlError(f"node {node.name}: the OS keyring cannot delete the secret ({error})") from error

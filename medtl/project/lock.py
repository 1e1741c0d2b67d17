"""The lock that lets one program at a time write a project.

Opening a project for writing creates ``project.lock`` (who holds it: user, host, process, since
when, and a random token). The file is created whole (written beside, then hard-linked into place),
so a crash never leaves a half-written lock. A second opener reads it and gets a read-only project
with a notice naming the holder. A lock is *stale* when its process is gone (on this host) or when
its holder showed no activity (the file's modification time, refreshed by the holder) for
:data:`STALE_AFTER_S`; only a stale lock can be taken over, and only when the opener asks to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import getpass
import json
import os
import secrets
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from medtl.errors import MedtlError

LOCK_NAME = "project.lock"
STALE_AFTER_S = 12 * 3600.0
"""A lock whose holder has not written for this long may be taken over, even from another host."""
REFRESH_EVERY_S = 60.0
_TEMPORARY_PREFIX = f".{LOCK_NAME}."


def os_user() -> str:
    """The name of the user running this process (``"unknown"`` when the system has none)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return "unknown"


@dataclass(frozen=True)
class LockHolder:
    """Who holds a project's lock, and whether the lock is stale (why, in words)."""

    user: str
    host: str
    pid: int
    since: float
    last_active: float
    token: str
    stale_because: str | None = None

    def describe(self) -> str:
        since = _when(self.since)
        active = "" if abs(self.last_active - self.since) < 1 else f", last active {_when(self.last_active)}"
        return f"{self.user} on {self.host} (process {self.pid}) since {since}{active}"


class ProjectLock:
    """The lock file of the project in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.token: str | None = None
        self._refreshed = 0.0

    def acquire(self, user: str, take_over: bool = False) -> LockHolder | None:
        """Take the lock for this process; returns None when taken, else the holder (the caller stays read-only).

        ``take_over``: replace a stale lock. A live lock is never taken over (the holder is returned).
        """
        token = secrets.token_hex(16)
        content = json.dumps({"user": user, "host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), "token": token})
        temporary = self.path.with_name(f"{_TEMPORARY_PREFIX}{token}")
        temporary.write_text(content, encoding="utf-8")
        try:
            try:
                _create_from(temporary, self.path, content)
            except FileExistsError:
                holder = self.holder()
                if holder is not None and (not take_over or holder.stale_because is None):
                    return holder
                os.replace(temporary, self.path)  # a stale (or vanished, or unreadable) lock: ours now
            mine = self.holder()
            if mine is None or mine.token != token:  # another opener took it over at the same moment
                return mine or self.holder()
            self.token = token
            self._refreshed = time.time()
            self._remove_left_behind()
            return None
        finally:
            temporary.unlink(missing_ok=True)

    def _remove_left_behind(self) -> None:
        """Temporary lock files of openers killed while taking the lock (older than a minute: not being used)."""
        for path in self.path.parent.glob(f"{_TEMPORARY_PREFIX}*"):
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > 60:
                    path.unlink()

    def holder(self) -> LockHolder | None:
        """Who holds the lock now (None: nobody). An unreadable lock file is a stale lock of an unknown holder."""
        try:
            text = self.path.read_text(encoding="utf-8")
            modified = self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        except OSError as error:
            raise MedtlError(f"{self.path}: cannot read the project's lock ({error.strerror or error})") from None
        try:
            data = json.loads(text)
            holder = LockHolder(str(data["user"]), str(data["host"]), int(data["pid"]), float(data["since"]), modified, str(data["token"]))
        except (ValueError, KeyError, TypeError):
            return LockHolder("unknown", "unknown", 0, modified, modified, "", "the lock file is unreadable")
        return dataclasses.replace(holder, stale_because=_stale_because(holder))

    def held(self) -> bool:
        """Whether this process still holds the lock (nobody took it over)."""
        if self.token is None:
            return False
        holder = self.holder()
        return holder is not None and holder.token == self.token

    def refresh(self) -> None:
        """Mark the holder active (at most every :data:`REFRESH_EVERY_S`), so the lock does not go stale."""
        now = time.time()
        if self.token is not None and now - self._refreshed >= REFRESH_EVERY_S:
            with contextlib.suppress(OSError):
                os.utime(self.path)
                self._refreshed = now

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if self.held():
            self.path.unlink(missing_ok=True)
        self.token = None


def _create_from(temporary: Path, path: Path, content: str) -> None:
    """Create ``path`` whole, from ``temporary`` (a hard link); FileExistsError when it exists. Where the file system has
    no hard links, an exclusive create and write (a crash may then leave a partial lock, which reads as stale)."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise
    except OSError:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)


def _stale_because(holder: LockHolder) -> str | None:
    if holder.host == socket.gethostname() and not pid_alive(holder.pid):
        return f"its process {holder.pid} is no longer running"
    idle = time.time() - holder.last_active
    if idle > STALE_AFTER_S:
        return f"its holder has not written for {idle / 3600:.0f} hours"
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        try:
            return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")

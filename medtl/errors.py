"""Errors a user can cause, with messages meant to be shown to them as they are."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class MedtlError(Exception):
    """A problem with the user's input or environment; its message is shown without a traceback."""


class DicomReadError(MedtlError):
    """A DICOM file could not be read or decoded; names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class GeometryError(MedtlError):
    """A series whose slices do not form a volume that can be trusted (e.g. mixed orientations)."""


class InvalidRequest(MedtlError):
    """A request field whose value cannot work. ``field`` is the dataclass field's name."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(reason)

    def for_cli(self, flags: Mapping[str, str]) -> MedtlError:
        """The same error with the command line's flag for the field in front (``--time-limit: …``)."""
        flag = flags.get(self.field)
        return MedtlError(f"{flag}: {self.reason}" if flag else self.reason)

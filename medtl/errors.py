"""Errors a user can cause, with messages meant to be shown to them as they are."""

from __future__ import annotations

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

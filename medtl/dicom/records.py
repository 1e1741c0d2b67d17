"""What a scan finds: instance headers grouped into patient -> study -> series, plus problems.

These are plain data; `medtl.dicom.scan` fills them and `medtl.dicom.catalog` stores them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class InstanceHeader:
    """The header fields of one DICOM file that browsing and volume assembly need (no pixels)."""

    path: Path
    size: int
    mtime_ns: int
    sop_instance_uid: str
    sop_class_uid: str
    series_uid: str
    study_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    study_description: str
    series_description: str
    modality: str
    series_number: int | None
    instance_number: int | None
    rows: int | None
    columns: int | None
    number_of_frames: int
    image_position: tuple[float, float, float] | None
    image_orientation: tuple[float, ...] | None  # 6 direction cosines (row, column)
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing) as DICOM orders it
    transfer_syntax_uid: str
    has_pixels: bool


@dataclass(frozen=True)
class ScanProblem:
    """A file that could not be used, with a reason a user can act on."""

    path: Path
    reason: str


class _ListMadeOnFirstUse:
    """A dataclass field holding a list, given as the list or as a function that makes it: the
    function is called on first access, once (the list is kept). Given nothing: an empty list.

    Reading the field (``repr``, ``==``, :func:`dataclasses.replace`) makes the list; threads that
    race on a first access each make an equal list, and the last one is kept.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._attribute = f"_{name}"

    def __get__(self, instance: object | None, owner: type | None = None) -> list | None:
        if instance is None:
            return None  # the field's default, which __set__ makes an empty list
        value = instance.__dict__[self._attribute]
        if callable(value):
            value = instance.__dict__[self._attribute] = value()
        return value

    def __set__(self, instance: object, value: list | Callable[[], list] | None) -> None:
        instance.__dict__[self._attribute] = [] if value is None else value


@dataclass
class SeriesInfo:
    """One series: its instances (sorted by instance number) and warnings about them.

    ``instances`` may be given as a function that makes the list: the catalog restores a
    remembered scan that way, so that a re-scan of an unchanged folder makes no object per file
    until a series' instances are used.
    """

    series_uid: str
    modality: str
    description: str
    series_number: int | None
    instances: list[InstanceHeader] = _ListMadeOnFirstUse()  # type: ignore[assignment]
    warnings: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return [instance.path for instance in self.instances]

    @property
    def rows(self) -> int | None:
        return self.instances[0].rows if self.instances else None

    @property
    def columns(self) -> int | None:
        return self.instances[0].columns if self.instances else None


@dataclass
class StudyInfo:
    study_uid: str
    study_date: str
    description: str
    series: list[SeriesInfo] = field(default_factory=list)


@dataclass
class PatientInfo:
    patient_id: str
    patient_name: str
    studies: list[StudyInfo] = field(default_factory=list)


@dataclass
class ScanResult:
    """The hierarchy found under a folder, the problems met, and how much work the scan did."""

    patients: list[PatientInfo] = field(default_factory=list)
    errors: list[ScanProblem] = field(default_factory=list)
    files_seen: int = 0
    files_read: int = 0  # headers actually parsed (0 on a warm re-scan of an unchanged folder)
    skipped_non_dicom: int = 0
    duplicates: int = 0

    def all_series(self) -> list[SeriesInfo]:
        return [series for patient in self.patients for study in patient.studies for series in study.series]

    def series_by_uid(self, series_uid: str) -> SeriesInfo | None:
        return next((s for s in self.all_series() if s.series_uid == series_uid), None)

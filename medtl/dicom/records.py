"""What a scan finds: instance headers grouped into patient -> study -> series, plus problems.

These are plain data; `medtl.dicom.scan` fills them and `medtl.dicom.catalog` stores them.
"""

from __future__ import annotations

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


@dataclass
class SeriesInfo:
    series_uid: str
    modality: str
    description: str
    series_number: int | None
    instances: list[InstanceHeader] = field(default_factory=list)
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

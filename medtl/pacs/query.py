"""A query for studies in a node (:class:`Query`) and what a node answers (:class:`Match`).

Levels are patient, study and series. Text keys take DICOM wildcards (``*`` and ``?``); the date
is a range ``YYYYMMDD-YYYYMMDD`` (either end may be left open). A series query without a study
UID is answered in two steps, studies then their series, by both DIMSE and DICOMweb, so the
patient, date and accession keys work at every level.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from medtl.errors import InvalidRequest

LEVELS = ("patient", "study", "series")
_DATE = re.compile(r"^\d{8}$")
_UID = re.compile(r"^[0-9.]{1,64}$")


def count_from(value: Any) -> int | None:
    """A count a node answered (NumberOfSeriesRelatedInstances, ...), or None where it gave none or nothing sensible."""
    try:
        count = int(value)
    except (TypeError, ValueError):
        return None
    return count if count > 0 else None


def check_uid(value: str, field_name: str) -> str:
    if value and not _UID.match(value):
        raise InvalidRequest(field_name, f"{value!r} is not a DICOM UID (digits and dots, 64 at most)")
    return value


@dataclass(frozen=True)
class Query:
    """What to look for; empty keys match everything."""

    level: str = "study"
    patient_name: str = ""
    patient_id: str = ""
    date_from: str = ""  # YYYYMMDD
    date_to: str = ""
    modality: str = ""
    accession: str = ""
    description: str = ""  # the study description at patient/study level, the series description at series level
    study_uid: str = ""

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise InvalidRequest("level", f"the level must be one of {', '.join(LEVELS)}, not {self.level!r}")
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value and not _DATE.match(value):
                raise InvalidRequest(name, f"{value!r} is not a date (YYYYMMDD)")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidRequest("date_from", f"the date range ends ({self.date_to}) before it starts ({self.date_from})")
        check_uid(self.study_uid, "study_uid")

    @staticmethod
    def dates(text: str) -> tuple[str, str]:
        """``FROM-TO``, ``FROM-``, ``-TO`` or one date, each ``YYYYMMDD`` -> (from, to); checked on creation."""
        start, dash, end = text.strip().partition("-")
        return (start, end) if dash else (start, start)

    @property
    def date_range(self) -> str:
        """The DICOM range-matching value (``""`` when no date is asked)."""
        if not (self.date_from or self.date_to):
            return ""
        if self.date_from == self.date_to:
            return self.date_from
        return f"{self.date_from}-{self.date_to}"


@dataclass(frozen=True)
class Match:
    """One answer row. Series fields are empty for study and patient rows; study fields for patient rows."""

    level: str
    patient_id: str = ""
    patient_name: str = ""
    study_uid: str = ""
    study_date: str = ""
    study_description: str = ""
    accession: str = ""
    modalities: str = ""  # in the study (study and patient rows)
    series_uid: str = ""
    series_number: str = ""
    series_description: str = ""
    modality: str = ""
    count: int | None = None  # studies of a patient, series of a study, instances of a series, if the node says

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def text(dataset: Any, keyword: str) -> str:
    """An attribute of a pydicom dataset as one string ("" when absent or empty; multiple values joined by '\\')."""
    value = dataset.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(item) for item in value)
    return str(value)


def number(dataset: Any, keyword: str) -> int | None:
    value = text(dataset, keyword)
    try:
        return int(value) if value else None
    except ValueError:
        return None


def match_from(dataset: Any, level: str) -> Match:
    """A :class:`Match` from one C-FIND or QIDO answer (a pydicom dataset)."""
    count_key = {
        "patient": "NumberOfPatientRelatedStudies",
        "study": "NumberOfStudyRelatedSeries",
        "series": "NumberOfSeriesRelatedInstances",
    }[level]
    return Match(
        level=level,
        patient_id=text(dataset, "PatientID"),
        patient_name=text(dataset, "PatientName"),
        study_uid=text(dataset, "StudyInstanceUID") if level != "patient" else "",
        study_date=text(dataset, "StudyDate") if level != "patient" else "",
        study_description=text(dataset, "StudyDescription") if level != "patient" else "",
        accession=text(dataset, "AccessionNumber") if level != "patient" else "",
        modalities=text(dataset, "ModalitiesInStudy") if level != "patient" else "",
        series_uid=text(dataset, "SeriesInstanceUID") if level == "series" else "",
        series_number=text(dataset, "SeriesNumber") if level == "series" else "",
        series_description=text(dataset, "SeriesDescription") if level == "series" else "",
        modality=text(dataset, "Modality") if level == "series" else "",
        count=number(dataset, count_key),
    )


def patients_of(studies: list[Match]) -> list[Match]:
    """Patient rows from study rows (for nodes that answer no patient-level query, as DICOMweb)."""
    rows: dict[tuple[str, str], int] = {}
    for study in studies:
        key = (study.patient_id, study.patient_name)
        rows[key] = rows.get(key, 0) + 1
    return [Match("patient", patient_id=pid, patient_name=name, count=count) for (pid, name), count in rows.items()]

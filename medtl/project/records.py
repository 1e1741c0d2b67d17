"""What a project holds, as plain records: series, label definitions, mask versions, audit entries, runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtl.data.sparse import Annotated

# Tools an audit entry names (the app may name others, e.g. a new tool, in the same words a user sees).
BRUSH, ERASER, POLYGON, THRESHOLD, REGION_GROW, INTERPOLATION = "brush", "eraser", "polygon", "threshold", "region grow", "interpolation"
BOX_PROMPT, PREDICTION, IMPORT, RESTORE = "box prompt", "accepted prediction", "import", "restore"
LABEL_TABLE, CLASS_LABEL = "label table", "class label"


@dataclass(frozen=True)
class SeriesRecord:
    """A series of the project: its UIDs, where its image is (DICOM files, or one NIfTI image), and a summary of its grid."""

    series_uid: str
    study_uid: str
    patient_id: str | None
    path: Path
    files: tuple[Path, ...]
    modality: str
    description: str
    grid: dict[str, Any] = field(default_factory=dict)
    """From the headers: ``rows``, ``columns``, ``slices`` (instances or frames), ``pixel_spacing`` (mm, row then column)."""


@dataclass(frozen=True)
class LabelDefinition:
    """A segmentation label: its mask value (1-255), name, display colour (R, G, B) and display state."""

    value: int
    name: str
    colour: tuple[int, int, int]
    hidden: bool = False
    locked: bool = False


@dataclass(frozen=True)
class MaskVersion:
    """One saved mask of a series by one reader: version 1 is the first save; every save makes a new version."""

    series_uid: str
    reader: str
    version: int
    path: Path
    saved_at: float
    annotated: Annotated


@dataclass(frozen=True)
class AuditEntry:
    """One change: who made it, when (seconds since the epoch), with which tool, on what (series, label value, slices)."""

    at: float
    who: str
    tool: str
    series_uid: str | None = None
    reader: str | None = None
    value: int | None = None
    slices: Annotated | None = None
    detail: str = ""
    mask_version: int | None = None


@dataclass(frozen=True)
class RunRecord:
    """A training run folder linked to the project."""

    path: Path
    added_at: float
    note: str = ""

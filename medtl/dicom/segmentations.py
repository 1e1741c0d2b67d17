"""The DICOM SEG series a scan found, listed with the series they label rather than as series of their own.

:func:`seg_series` gives a :class:`SegSeries` for each series of Segmentation Storage objects in a
:class:`~medtl.dicom.records.ScanResult`: the series it references and its segments, read from the
SEG headers (no pixel data; cached by path, size and mtime). :meth:`SegSeries.misfit` says, from
headers alone, when its frames cannot lie on the series it labels (another matrix size);
:func:`medtl.labels.mask_import.read_mask` makes the full check when the labels are read.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from medtl.dicom.records import ScanResult, SeriesInfo
from medtl.dicom.scan import SEGMENTATION_STORAGE


@dataclass(frozen=True)
class Segment:
    """One segment of a SEG: its number (the label value it becomes), its label, and its display colour as stored
    (DICOM-scaled CIELab: 0..65535 each; None when the SEG recommends none)."""

    number: int
    label: str
    lab: tuple[int, int, int] | None

    def rgb(self) -> tuple[int, int, int] | None:
        """The display colour as RGB 0..255 (None when the SEG recommends none)."""
        if self.lab is None:
            return None
        from highdicom.color import CIELabColor  # only when colours are shown: `medtl scan` never needs it

        return tuple(int(v) for v in CIELabColor.from_dicom_value(self.lab).to_rgb(clip=True))  # type: ignore[return-value]


@dataclass(frozen=True)
class SegFile:
    """One SEG object: the series it references, its segments and its frame size (Rows, Columns)."""

    path: Path
    referenced: tuple[str, ...]
    segments: tuple[Segment, ...]
    rows: int | None
    columns: int | None


@dataclass(frozen=True)
class SegSeries:
    """A series of DICOM SEG objects and what they label."""

    series: SeriesInfo
    files: tuple[SegFile, ...]

    @property
    def referenced(self) -> tuple[str, ...]:
        """The Series Instance UIDs its files reference, in order of appearance (empty when none can be read)."""
        return tuple(dict.fromkeys(uid for file in self.files for uid in file.referenced))

    @property
    def segment_count(self) -> int:
        return sum(len(file.segments) for file in self.files)

    @property
    def name(self) -> str:
        """Its description, else its series number, else its UID."""
        if self.series.description:
            return self.series.description
        return f"series {self.series.series_number}" if self.series.series_number is not None else self.series.series_uid

    def summary(self, labelled: SeriesInfo | None) -> str:
        """``DICOM SEG of series <description or UID> (<n> segments)``; ``labelled``: the series it labels, None when that
        series is not in the scan (then the UIDs it references are named)."""
        count = f"({self.segment_count} segment{'' if self.segment_count == 1 else 's'})"
        if labelled is not None:
            return f"DICOM SEG of series {labelled.description or labelled.series_uid} {count}"
        if not self.referenced:
            return f"DICOM SEG naming no series it labels {count}"
        return f"DICOM SEG of series {', '.join(self.referenced)} {count}; that series is not in this folder"

    def misfit(self, labelled: SeriesInfo) -> str | None:
        """Why its frames cannot lie on ``labelled``'s slices, as far as headers tell (frame size); None when they may."""
        sizes = {(file.rows, file.columns) for file in self.files if labelled.series_uid in file.referenced and file.rows}
        wrong = sorted(size for size in sizes if size != (labelled.rows, labelled.columns))
        if not wrong or labelled.rows is None:
            return None
        rows, columns = wrong[0]
        return f"does not fit the series: its frames are {columns}×{rows} pixels, the series' slices {labelled.columns}×{labelled.rows}"


def seg_series(result: ScanResult) -> list[SegSeries]:
    """The series of ``result`` that hold DICOM SEG objects, in scan order."""
    found = []
    for series in result.all_series():
        files = tuple(read_seg_file(h.path, h.size, h.mtime_ns) for h in series.instances if h.sop_class_uid == SEGMENTATION_STORAGE)
        if files:
            found.append(SegSeries(series, files))
    return found


def by_referenced_series(segs: list[SegSeries]) -> dict[str, list[SegSeries]]:
    """``segs`` under each Series Instance UID they reference."""
    index: dict[str, list[SegSeries]] = {}
    for seg in segs:
        for uid in seg.referenced:
            index.setdefault(uid, []).append(seg)
    return index


@functools.lru_cache(maxsize=1024)
def read_seg_file(path: Path, size: int = 0, mtime_ns: int = 0) -> SegFile:
    """What the header of the SEG at ``path`` says (``size`` and ``mtime_ns``, from the scan, key the cache so that a
    changed file is read again). A header that cannot be read gives a SegFile referencing nothing, with no segments."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["ReferencedSeriesSequence", "SegmentSequence", "Rows", "Columns"])
        referenced = tuple(str(item.SeriesInstanceUID) for item in ds.get("ReferencedSeriesSequence", []) if "SeriesInstanceUID" in item)
        segments = tuple(
            Segment(int(item.SegmentNumber), str(item.get("SegmentLabel", "")) or f"segment {int(item.SegmentNumber)}", _lab(item))
            for item in ds.get("SegmentSequence", [])
            if "SegmentNumber" in item
        )
        rows, columns = ds.get("Rows"), ds.get("Columns")
        return SegFile(path, referenced, segments, int(rows) if rows else None, int(columns) if columns else None)
    except Exception:  # noqa: BLE001 - a damaged SEG is listed as labelling nothing; loading it reports why
        return SegFile(path, (), (), None, None)


def _lab(item: object) -> tuple[int, int, int] | None:
    value = getattr(item, "RecommendedDisplayCIELabValue", None)
    return (int(value[0]), int(value[1]), int(value[2])) if value is not None and len(value) == 3 else None

"""Assemble a :class:`Volume` in modality units from the DICOM files of one series.

What is loaded, and how:

- Classic single-frame series (CT, MR, PET, ...): one plane per file, ordered and spaced by
  :func:`medtl.dicom.geometry.plan_stack` (gaps interpolated, gantry tilt resampled, both
  with a warning; mixed orientations, irregular spacing and conflicting duplicates refused).
- Enhanced multi-frame (Enhanced CT/MR/...): planes from the per-frame functional groups
  (PlanePositionSequence, PlaneOrientationSequence, PixelMeasuresSequence, per-frame rescale),
  ordered by position, not by frame number.
- Other multi-frame objects: placed by ImagePositionPatient + GridFrameOffsetVector when they
  have them (RT Dose, some NM/CT); otherwise (US cine, multi-frame SC, enhanced objects without
  plane positions) the frames are stacked as z with 1 mm spacing on an identity grid, with a
  warning that the volume has no world geometry.
- Single 2D images (CR, DX, US, SC, RGB or grey): one slice on an identity grid at the origin,
  spacing from PixelSpacing, else ImagerPixelSpacing, else 1 mm with a warning.

Nothing is used before it is checked (:mod:`medtl.dicom.values`, :func:`~medtl.dicom.pixels.check_pixel_module`):
numbers must be finite and in range, the pixel module must describe the bytes of the pixel data,
declared sizes must fit the file and the memory, the files must lie in one frame of reference, and
files sharing a SOP Instance UID must be copies of one another. A gap is interpolated only when no
unreadable file beside the series may be the missing slice: such a file is named instead.

Every slice of the volume records its source (:attr:`Volume.slice_sources`: file, SOP Instance UID,
frame of a multi-frame file; ``None`` for a slice interpolated into a gap).

Pixels are decoded slice by slice into one preallocated array, so the peak memory stays near
the size of the volume: uncompressed pixel data (classic slices and the frames of a multi-frame
file) is read straight from its offset in the file, found while reading the header. Progress is
reported and cancellation polled between slices.
"""

from __future__ import annotations

import logging
import math
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from medtl.dicom.geometry import Plane, StackGeometry, plan_stack
from medtl.dicom.header import NON_IMAGE_WITH_PIXELS, instance_number
from medtl.dicom.messages import describe
from medtl.dicom.pixels import (
    Rescale,
    ValuesDoNotFit,
    check_pixel_module,
    decode_frame,
    frame_rescales,
    functional_item,
    is_colour,
    modality_dtypes,
    native_dtype,
    native_frame,
    rescale_of,
    transfer_syntax,
    write_modality,
)
from medtl.dicom.values import MAX_POSITION_MM, MAX_SPACING_MM, MIN_SPACING_MM, decimal, decimals, raw_value, tag_name
from medtl.dicom.volume import SliceSource, Volume
from medtl.dicom.walk import list_files
from medtl.errors import DicomReadError, GeometryError, InvalidRequest, MedtlError
from medtl.progress import CancelToken, Cancelled, ProgressCallback, report

log = logging.getLogger(__name__)

# Objects that hold pixels but are not intensity images.
NON_IMAGE_MODALITIES = {"SEG", "RTSTRUCT", "RTPLAN", "SR", "PR", "KO", "REG"}

# PatientID, StudyInstanceUID, SeriesInstanceUID: what a scan groups files into series by.
_SCAN_KEY = (0x00100020, 0x0020000D, 0x0020000E)
_SOP_INSTANCE_UID, _SOP_CLASS_UID, _INSTANCE_NUMBER = 0x00080018, 0x00080016, 0x00200013

Decode = Callable[[int], tuple[np.ndarray, Rescale]]
PixelSpan = tuple[int, int]  # (offset, length) of an uncompressed Pixel Data value in its file


def load_series(files: Sequence[Path | str], progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Volume:
    """The volume of one series given as its files (classic series, or one multi-frame / 2D file)."""
    paths = [Path(f) for f in files]
    if not paths:
        raise MedtlError("no DICOM files to load")
    headers, spans = _read_headers(paths, cancel)
    return _load_read(paths, headers, spans, progress, cancel)


def _load_read(
    paths: list[Path], headers: list[Dataset], spans: list[PixelSpan | None], progress: ProgressCallback | None, cancel: CancelToken | None
) -> Volume:
    """The volume of the files ``paths`` of one series, whose headers have been read."""
    padded = _check_headers(paths, headers, spans)
    paths, headers, spans, copies = _without_copies(paths, headers, spans)
    if len(paths) == 1 and _frame_count(headers[0]) > 1:
        volume = _load_multiframe(paths[0], progress, cancel)
    elif len(paths) == 1 and not _is_placed(headers[0]):
        volume = _load_image_2d(paths[0], progress, cancel)
    else:
        volume = _load_classic(paths, headers, spans, progress, cancel)
    volume.warnings[:0] = padded + copies
    return volume


def load_path(
    path: Path | str,
    series_uid: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Volume:
    """The volume of the series at ``path`` (a file, or a folder holding one image series or ``series_uid``).

    A folder that holds only one uncompressed series is read once; anything else is scanned first (as the app's
    browser scans), and the series chosen then read.
    """
    path = Path(path)
    if not path.exists():
        raise MedtlError(f"{path}: no such file or folder")
    read = _read_once(path, series_uid, progress, cancel)
    if read is not None:
        try:
            return _load_read(*read, progress, cancel)
        except Cancelled:
            raise
        except MedtlError:
            pass  # the scan below reads the files again, and refuses as it always has (e.g. naming a file that belongs)
    from medtl.dicom.scan import scan  # its catalog's modules (sqlite3, json, hashlib) are not needed above

    result = scan(path, progress=progress, cancel=cancel)
    images = [s for s in result.all_series() if s.rows is not None and s.modality not in NON_IMAGE_MODALITIES]
    if series_uid is not None:
        chosen = result.series_by_uid(series_uid)
        if chosen is None:
            raise MedtlError(f"{path}: no series {series_uid}; {_list_series(images)}")
    elif len(images) == 1:
        chosen = images[0]
    elif not images:
        problems = "; ".join(f"{p.path.name}: {p.reason}" for p in result.errors[:3])
        raise MedtlError(f"{path}: no DICOM image series found" + (f" ({problems})" if problems else ""))
    else:
        raise InvalidRequest("series_uid", f"{path} holds {len(images)} image series; choose one by its series UID. {_list_series(images)}")
    folders = {file.parent for file in chosen.files}
    _refuse_unreadable_members(chosen.series_uid, [p.path for p in result.errors if p.path.parent in folders], certain_only=True)
    return load_series(chosen.files, progress, cancel)


def _read_once(
    path: Path, series_uid: str | None, progress: ProgressCallback | None, cancel: CancelToken | None
) -> tuple[list[Path], list[Dataset], list[PixelSpan | None]] | None:
    """The files under ``path`` with their headers, read once, in the order a scan gives them, when they are all
    uncompressed image instances of one series (``series_uid``, if given), each its own instance.

    None when only a scan can tell what to load or how to word a refusal: a file that is not such an instance, a
    DICOMDIR, several series, copies of an instance, a folder that cannot be listed. Then nothing was lost but the read.
    """
    files, problems = list_files(path, cancel)
    if problems or not files:
        return None
    found: list[tuple[int | None, Path, Dataset, PixelSpan]] = []
    series, instances = set(), set()
    for done, name in enumerate(sorted(files)):  # a scan's order: by path, then (stable) by instance number
        if cancel is not None:
            cancel.raise_if_cancelled()
        report(progress, done, len(files), "reading headers")
        try:
            header, span = _read_header(Path(name))
        except DicomReadError:
            return None
        key = tuple(_plain_text(header, tag) for tag in _SCAN_KEY)
        instance = _plain_text(header, _SOP_INSTANCE_UID)
        sop_class = _plain_text(header, _SOP_CLASS_UID) or str(header.file_meta.get("MediaStorageSOPClassUID", ""))
        series.add(key)
        if span is None or None in key or not (key[1] and key[2] and instance) or instance in instances or len(series) > 1:
            return None
        if sop_class in NON_IMAGE_WITH_PIXELS or _plain_text(header, _INSTANCE_NUMBER) is None:
            return None
        instances.add(instance)
        found.append((instance_number(header.get_item(_INSTANCE_NUMBER)), Path(name), header, span))
    if series_uid is not None and series.pop()[2] != series_uid:
        return None
    found.sort(key=lambda item: (item[0] is None, item[0] or 0))
    return [item[1] for item in found], [item[2] for item in found], [item[3] for item in found]


def _plain_text(header: Dataset, tag: int) -> str | None:
    """A raw text value as a scan reads it, when it is plain ASCII (else None: a scan decodes it with the file's
    character set); empty when absent."""
    element = header.get_item(tag)
    if element is None:
        return ""
    raw = element.value if isinstance(element, RawDataElement) else None
    if not isinstance(raw, bytes) or not raw.isascii() or b"\x1b" in raw:
        return None
    return raw.decode("ascii").strip(" \0")


def _list_series(series: Sequence[Any]) -> str:
    rows = [f"  {s.series_uid}  {s.modality or '-'}  {s.description or '(no description)'!r}  {len(s.files)} instance(s)" for s in series]
    return "Series:\n" + "\n".join(rows)


# --- headers ---------------------------------------------------------------------------------


def _read_dataset(path: Path) -> Dataset:
    """The whole dataset, pixel data included, its pixel module checked against the pixel data."""
    ds = _parse(path, lambda: pydicom.dcmread(path))
    pixels = raw_value(ds, "PixelData", path)
    native = pixels is not None and not transfer_syntax(ds).is_encapsulated
    check_pixel_module(ds, path, len(pixels) if native else None, _file_size(path))
    return ds


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as error:
        raise DicomReadError(path, f"cannot read the file ({error.strerror or error})") from None


def _parse(path: Path, read: Callable[[], Any]) -> Any:
    try:
        return read()
    except FileNotFoundError:
        raise DicomReadError(path, "no such file") from None
    except InvalidDicomError:
        raise DicomReadError(path, "not a DICOM file") from None
    except Exception as error:  # noqa: BLE001 - pydicom raises many kinds on corrupt input
        raise DicomReadError(path, f"unreadable DICOM ({describe(error)})") from error


def _read_header(path: Path) -> tuple[Dataset, PixelSpan | None]:
    """The header (no pixels) and where its uncompressed Pixel Data value lies in the file (None: unknown)."""

    def read() -> tuple[Dataset, PixelSpan | None]:
        with open(path, "rb") as handle:
            ds = pydicom.dcmread(handle, stop_before_pixels=True)
            return ds, _native_pixel_span(handle, ds)

    return _parse(path, read)


def _native_pixel_span(handle: BinaryIO, ds: Dataset) -> PixelSpan | None:
    """(offset, length) of the Pixel Data value that follows the header just read, if uncompressed and not deflated."""
    syntax = transfer_syntax(ds)
    if syntax.is_encapsulated or syntax.is_deflated or ds.original_encoding[0] is None:
        return None
    implicit, little = ds.original_encoding
    start = handle.tell()
    element = handle.read(12)
    order = "<" if little else ">"
    if len(element) < 12 or struct.unpack(f"{order}HH", element[:4]) != (0x7FE0, 0x0010):
        return None
    length, header = (struct.unpack(f"{order}I", element[4:8])[0], 8) if implicit else (struct.unpack(f"{order}I", element[8:12])[0], 12)
    return None if length == 0xFFFFFFFF else (start + header, length)


def _stored_values(path: Path, header: Dataset, span: PixelSpan | None) -> np.ndarray:
    """Stored values of a single-frame file.

    With a ``span`` the pixel bytes are read there and viewed as they lie when they can be
    (:func:`~medtl.dicom.pixels.native_frame`), else lent to ``header`` while decoding (then dropped);
    without one the whole file is parsed again.
    """
    if span is None:
        return decode_frame(_read_dataset(path), path)
    offset, length = span
    with open(path, "rb") as handle:
        handle.seek(offset)
        value = handle.read(length)
    if len(value) != length:
        raise DicomReadError(path, f"truncated: the pixel data needs {length} bytes, the file holds {len(value)}")
    stored = native_frame(header, value)
    if stored is not None:
        return stored
    header.PixelData = value
    try:
        return decode_frame(header, path)
    finally:
        del header.PixelData


def _read_headers(paths: Sequence[Path], cancel: CancelToken | None) -> tuple[list[Dataset], list[PixelSpan | None]]:
    headers, spans = [], []
    for path in paths:
        if cancel is not None:
            cancel.raise_if_cancelled()
        header, span = _read_header(path)
        headers.append(header)
        spans.append(span)
    return headers, spans


def _check_headers(paths: Sequence[Path], headers: Sequence[Dataset], spans: Sequence[PixelSpan | None]) -> list[str]:
    """Refuse files that are not images of one series in one frame of reference, or whose pixel module does not fit their
    pixels; returns a warning about pixel data padded beyond what the header describes."""
    uids = {str(raw_value(h, "SeriesInstanceUID", p) or "") for p, h in zip(paths, headers)}
    if len(uids) > 1:
        raise MedtlError(f"the {len(paths)} files belong to {len(uids)} different series; load one series at a time")
    frames: dict[str, Path] = {}
    padded: list[tuple[Path, int]] = []
    for path, header, span in zip(paths, headers, spans):
        modality = raw_value(header, "Modality", path)
        if modality in NON_IMAGE_MODALITIES:
            hint = "; import it as the labels of the series it segments" if modality == "SEG" else ""
            raise DicomReadError(path, f"is a {modality} object, not an image{hint}")
        padding = check_pixel_module(header, path, span[1] if span is not None else None, _file_size(path))
        if padding:
            padded.append((path, padding))
        frames.setdefault(str(raw_value(header, "FrameOfReferenceUID", path) or ""), path)
    frames.pop("", None)
    if len(frames) > 1:
        examples = ", ".join(_names(list(frames.values())[:3]))
        raise GeometryError(
            f"the files of series {uids.pop() or '(no UID)'} lie in {len(frames)} different frames of reference "
            f"({tag_name('FrameOfReferenceUID')} differs: e.g. {examples}), so they are separate acquisitions, not one volume; "
            "put the files of each in a folder of its own and load them one at a time"
        )
    if not padded:
        return []
    most = max(padding for _, padding in padded)
    return [f"{len(padded)} file(s) (e.g. {padded[0][0].name}) hold up to {most} bytes of pixel data beyond what their header describes; ignored"]


def _names(paths: Sequence[Path]) -> list[str]:
    """Short names that tell ``paths`` apart: relative to their common folder."""
    try:
        common = os.path.commonpath([path.parent for path in paths])
    except ValueError:  # on different drives
        return [str(path) for path in paths]
    return [os.path.relpath(path, common) for path in paths]


def _without_copies(
    paths: Sequence[Path], headers: Sequence[Dataset], spans: Sequence[PixelSpan | None]
) -> tuple[list[Path], list[Dataset], list[PixelSpan | None], list[str]]:
    """The files less the copies of an instance (same SOP Instance UID, position and pixels), and a warning naming them.

    Files that share a SOP Instance UID but differ in position or pixels are refused: one of them is
    wrong, and which one cannot be told.
    """
    first: dict[str, int] = {}
    dropped: list[int] = []
    for index, (path, header) in enumerate(zip(paths, headers)):
        uid = str(raw_value(header, "SOPInstanceUID", path) or "")
        if not uid or uid not in first:
            first.setdefault(uid, index)
            continue
        kept = first[uid]
        same_place = _position(headers[kept], paths[kept]) == _position(header, path)
        a, b = _stored_values(paths[kept], headers[kept], spans[kept]), _stored_values(path, header, spans[index])
        same_rescale = rescale_of(headers[kept], paths[kept]) == rescale_of(header, path)
        if not (same_place and same_rescale and a.shape == b.shape and np.array_equal(a, b)):
            differ = "pixels" if same_place else "positions"
            a_name, b_name = _names([paths[kept], path])
            raise GeometryError(
                f"{a_name} and {b_name} have the same SOP Instance UID but different {differ}; one of them is "
                "wrong and medtl cannot tell which - remove the wrong file"
            )
        dropped.append(index)
    if not dropped:
        return list(paths), list(headers), list(spans), []
    keep = [i for i in range(len(paths)) if i not in set(dropped)]
    names = ", ".join(paths[i].name for i in dropped[:5])
    warning = f"{len(dropped)} file(s) repeat another file's instance (same SOP Instance UID and pixels) and were ignored ({names})"
    return [paths[i] for i in keep], [headers[i] for i in keep], [spans[i] for i in keep], [warning]


def _position(header: Dataset, path: Path) -> tuple[float, ...] | None:
    return decimals(header, "ImagePositionPatient", 3, path, bound=MAX_POSITION_MM)


def _refuse_unreadable_members(series_uid: str, candidates: Sequence[Path], *, certain_only: bool, gap: Sequence[int] = ()) -> None:
    """Refuse the series when one of ``candidates`` (files beside its own) cannot be read but belongs to it.

    The series UID of such a file is read as far as it can be; a file whose UID cannot be read at all
    may belong to the series too, unless ``certain_only``. Its slice would otherwise be missing, or
    interpolated over (``gap``: the slices missing), without the file ever being named.
    """
    from medtl.dicom.header import read_header

    for path in sorted(candidates):
        try:
            read_header(path)
            continue  # a readable instance (of another series, or left out by the caller) or not DICOM at all
        except DicomReadError as error:
            reason = error.reason
        uid = _damaged_series_uid(path)
        if uid == series_uid or (uid is None and not certain_only):
            belongs = "it belongs to" if uid == series_uid else "it may belong to"
            missing = f" (slice(s) {list(gap)} are missing)" if gap else ""
            raise DicomReadError(path, f"{reason}; {belongs} this series{missing}: repair it, or remove it to load the series without it")


def _damaged_series_uid(path: Path) -> str | None:
    """The SeriesInstanceUID of a damaged file, read as far as it can be; None if it cannot."""
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
        return str(ds.get("SeriesInstanceUID", "")) or None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - a damaged file may fail in any way; then its series is unknown
        return None


def _siblings(paths: Sequence[Path]) -> list[Path]:
    """The other files in the folders of ``paths``."""
    own = set(paths)
    found = []
    for folder in {path.parent for path in paths}:
        try:
            with os.scandir(folder) as entries:
                found.extend(Path(entry.path) for entry in entries if entry.is_file() and Path(entry.path) not in own)
        except OSError:
            continue  # an unlistable folder hides nothing the series was given
    return found


def _frame_count(ds: Dataset) -> int:
    return int(ds.get("NumberOfFrames", 1) or 1)


def _is_placed(ds: Dataset) -> bool:
    return "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds


def _plane(item: Dataset, orientation_item: Dataset, path: Path, label: str) -> Plane:
    """The plane of a slice or frame from ImagePositionPatient and ImageOrientationPatient (both required)."""
    position = _position(item, path)
    orientation = decimals(orientation_item, "ImageOrientationPatient", 6, path, bound=1.0 + 1e-3)
    if position is None or orientation is None:
        raise DicomReadError(path, f"has no {tag_name('ImagePositionPatient' if position is None else 'ImageOrientationPatient')}")
    return Plane(position, orientation, label)  # type: ignore[arg-type]


def _pixel_spacing(item: Dataset | None, path: Path) -> tuple[float, float] | None:
    """(row, column) spacing in mm from PixelSpacing, else ImagerPixelSpacing; None if absent or zero."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        spacing = decimals(item, keyword, 2, path, bound=MAX_SPACING_MM) if item is not None else None
        if spacing is None or max(spacing) == 0:
            continue
        if min(spacing) < MIN_SPACING_MM:
            raise DicomReadError(path, f"{tag_name(keyword)} is {list(spacing)}; a pixel spacing must be positive (at least {MIN_SPACING_MM:g} mm)")
        return spacing  # type: ignore[return-value]
    return None


def _frame_shape(ds: Dataset) -> tuple[int, ...]:
    shape = (int(ds.Rows), int(ds.Columns))
    return (*shape, 3) if is_colour(ds) else shape


def _metadata(ds: Dataset, path: Path, instances: int, kind: str, warnings: list[str]) -> dict[str, Any]:
    """Key attributes of the series (may hold PHI: never log them); a window that cannot be used is left out, with a warning."""
    def text(keyword: str) -> str:
        return str(raw_value(ds, keyword, path) or "")

    modality, rescale_type = text("Modality"), text("RescaleType")
    meta: dict[str, Any] = {
        "modality": modality,
        "series_uid": text("SeriesInstanceUID"),
        "study_uid": text("StudyInstanceUID"),
        "frame_of_reference_uid": text("FrameOfReferenceUID"),
        "series_description": text("SeriesDescription"),
        "patient_id": text("PatientID"),
        "sop_class_uid": text("SOPClassUID"),
        "transfer_syntax": str(transfer_syntax(ds)),
        "photometric": "RGB" if is_colour(ds) else text("PhotometricInterpretation"),
        "units": {"CT": "HU", "RTDOSE": text("DoseUnits")}.get(modality, "" if rescale_type == "US" else rescale_type),
        "instances": instances,
        "kind": kind,
    }
    try:
        voi = functional_item(ds, 0, "FrameVOILUTSequence", path) or ds
        center, width = decimal(voi, "WindowCenter", path), decimal(voi, "WindowWidth", path, low=1e-6)
    except DicomReadError as error:
        warnings.append(f"{path.name}: {error.reason}; its display window is ignored")
        return meta
    for key, value in (("window_center", center), ("window_width", width)):
        if value is not None:
            meta[key] = value
    return meta


def _frame_sources(path: Path, ds: Dataset) -> list[SliceSource]:
    """The source of each frame of ``ds`` (one, without a frame number, for a single-frame file)."""
    uid = str(raw_value(ds, "SOPInstanceUID", path) or "")
    count = _frame_count(ds)
    return [SliceSource(path, uid, frame + 1 if count > 1 else None) for frame in range(count)]



# --- pixel filling -----------------------------------------------------------------------------


def _fill(
    slots: Sequence[int | None],
    decode: Decode,
    frame_shape: tuple[int, ...],
    dtypes: Sequence[np.dtype],
    label: Callable[[int], str],
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> np.ndarray:
    """A new array with slice ``z`` holding plane ``slots[z]`` in modality units (``None`` slots left empty).

    Tries ``dtypes`` in order, moving to the next when a slice's values overflow one. One thread:
    on 300 uncompressed 512x512 slices, and on JPEG 2000 / JPEG-LS / RLE series, a thread pool
    was slower (parsing holds the GIL), so none is used.
    """
    for dtype in dtypes[:-1]:
        try:
            return _fill_as(dtype, slots, decode, frame_shape, label, progress, cancel)
        except ValuesDoNotFit:
            log.info("values overflow %s; reloading as %s", dtype, dtypes[-1])
    try:
        return _fill_as(dtypes[-1], slots, decode, frame_shape, label, progress, cancel)
    except ValuesDoNotFit:
        raise DicomReadError(label(0), f"pixel values exceed the range that BitsStored allows ({dtypes[-1]})") from None


def _fill_as(
    dtype: np.dtype,
    slots: Sequence[int | None],
    decode: Decode,
    frame_shape: tuple[int, ...],
    label: Callable[[int], str],
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> np.ndarray:
    jobs = [(z, index) for z, index in enumerate(slots) if index is not None]
    out = _allocate((len(slots), *frame_shape), dtype, label(jobs[0][1]))
    for done, (z, index) in enumerate(jobs, 1):
        if cancel is not None:
            cancel.raise_if_cancelled()
        stored, rescale = decode(index)
        if stored.shape != frame_shape:
            raise DicomReadError(label(index), f"image is {stored.shape}, the other slices are {frame_shape}")
        write_modality(stored, rescale, out[z])
        if out.dtype.kind == "f" and not np.isfinite(out[z]).all():
            raise DicomReadError(label(index), f"pixel values are not finite numbers after the rescale {rescale.slope:g} x value + {rescale.intercept:g}")
        report(progress, done, len(jobs), "reading slices")
    return out


def _allocate(shape: tuple[int, ...], dtype: np.dtype, label: str) -> np.ndarray:
    """An empty array, refused with a reason when it would not fit in this computer's memory."""
    size = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
    problem = MedtlError(f"{label}: the volume ({' x '.join(map(str, shape))} {np.dtype(dtype)}) needs {size / 2**30:.1f} GiB, more than this computer's memory")
    if size > _physical_memory():
        raise problem
    try:
        return np.empty(shape, dtype=dtype)
    except MemoryError:
        raise problem from None


def _physical_memory() -> float:
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # not POSIX: numpy's own MemoryError is the only guard
        return math.inf


def _interpolate_missing(array: np.ndarray, slots: Sequence[int | None]) -> None:
    """Fill ``None`` slots linearly from the nearest filled slices on either side (in place)."""
    z = 0
    while z < len(slots):
        if slots[z] is not None:
            z += 1
            continue
        below, above = z - 1, z
        while slots[above] is None:
            above += 1
        for missing in range(z, above):
            weight = (missing - below) / (above - below)
            values = (1 - weight) * array[below].astype(np.float32) + weight * array[above]
            np.copyto(array[missing], np.rint(values) if array.dtype.kind in "iu" else values, casting="unsafe")
        z = above


def _remove_shear(array: np.ndarray, shifts: Sequence[tuple[float, float]]) -> None:
    """Shift each slice in-plane by ``shifts[z]`` (rows, columns) pixels, onto the orthogonal grid (in place)."""
    from scipy import ndimage

    background = float(array.min())
    for z, (rows, columns) in enumerate(shifts):
        if rows == 0 and columns == 0:
            continue
        offset = (rows, columns, 0.0)[: array.ndim - 1]
        moved = ndimage.shift(array[z].astype(np.float32), offset, order=1, mode="grid-constant", cval=background)
        np.copyto(array[z], np.rint(moved) if array.dtype.kind in "iu" else moved, casting="unsafe")


def _check_duplicates(geometry: StackGeometry, decode: Decode, label: Callable[[int], str]) -> list[str]:
    """Warnings for duplicate planes with identical pixels; refuses duplicates whose pixels differ."""
    for kept, dropped in geometry.duplicates:
        (a, rescale_a), (b, rescale_b) = decode(kept), decode(dropped)
        if rescale_a != rescale_b or not np.array_equal(a, b):
            raise GeometryError(
                f"{label(kept)} and {label(dropped)} lie at the same position but hold different pixels; the series mixes "
                "several acquisitions (e.g. echoes, phases or time points) - split it into one series per acquisition"
            )
    if not geometry.duplicates:
        return []
    dropped_labels = ", ".join(label(d) for _, d in geometry.duplicates[:5])
    return [f"{len(geometry.duplicates)} duplicate slice(s) with identical pixels were ignored ({dropped_labels})"]


def _assemble(
    planes: Sequence[Plane],
    pixel_spacing: tuple[float, float],
    single_slice_spacing: float,
    decode: Decode,
    ds: Dataset,
    rescales: Sequence[Rescale],
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> tuple[np.ndarray, StackGeometry, tuple[float, float, float], list[str]]:
    """Plan the grid of ``planes``, fill it and fix gaps and tilt: (array, geometry, spacing, warnings)."""
    geometry = plan_stack(planes, pixel_spacing)

    def label(index: int) -> str:
        return planes[index].label

    warnings = _check_duplicates(geometry, decode, label) + list(geometry.warnings)
    dtypes = modality_dtypes(ds, rescales)
    array = _fill(geometry.slots, decode, _frame_shape(ds), dtypes, label, progress, cancel)
    _interpolate_missing(array, geometry.slots)
    if geometry.tilt_degrees:
        _remove_shear(array, geometry.shifts)
    slice_spacing = geometry.slice_spacing or single_slice_spacing
    return array, geometry, (pixel_spacing[1], pixel_spacing[0], slice_spacing), warnings


def _volume(
    array: np.ndarray,
    geometry: StackGeometry,
    spacing: tuple[float, float, float],
    metadata: dict[str, Any],
    warnings: list[str],
    sources: Sequence[SliceSource],
) -> Volume:
    """The Volume; ``sources[i]`` is where plane ``i`` came from (slice ``z`` records that of ``geometry.slots[z]``)."""
    for warning in warnings:
        log.info("%s", warning)
    if array.dtype.kind == "f" and not np.isfinite(array).all():  # each slice was checked; a last guard for what follows from them
        raise GeometryError("the assembled volume holds values that are not finite numbers")
    return Volume(
        array=array,
        spacing=spacing,
        origin=geometry.origin,
        direction=geometry.direction,
        metadata=metadata,
        warnings=warnings,
        interpolated_slices=geometry.interpolated,
        slice_sources=tuple(None if slot is None else sources[slot] for slot in geometry.slots),
    )


# --- the four kinds of input -------------------------------------------------------------------


def _load_classic(
    paths: Sequence[Path],
    headers: Sequence[Dataset],
    spans: Sequence[PixelSpan | None],
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> Volume:
    first = headers[0]
    planes = []
    for path, header in zip(paths, headers):
        if _frame_count(header) > 1:
            raise DicomReadError(path, "is a multi-frame object inside a multi-file series; load it on its own")
        if not _is_placed(header):
            raise DicomReadError(
                path, "has no ImagePositionPatient/ImageOrientationPatient, so it is not a slice of a volume; load such images one at a time"
            )
        if (header.Rows, header.Columns) != (first.Rows, first.Columns):
            raise GeometryError(f"{path}: image is {header.Rows}x{header.Columns}, {paths[0].name} is {first.Rows}x{first.Columns}")
        planes.append(_plane(header, header, path, path.name))
    pixel_spacing = _common_pixel_spacing(paths, headers)

    rescales = [rescale_of(h, p) for p, h in zip(paths, headers)]

    def decode(index: int) -> tuple[np.ndarray, Rescale]:
        return _stored_values(paths[index], headers[index], spans[index]), rescales[index]

    array, geometry, spacing, warnings = _assemble(planes, pixel_spacing, _slice_thickness(first, paths[0]), decode, first, rescales, progress, cancel)
    if geometry.interpolated:
        _refuse_unreadable_members(str(first.SeriesInstanceUID), _siblings(paths), certain_only=False, gap=geometry.interpolated)
    sources = [source for path, header in zip(paths, headers) for source in _frame_sources(path, header)]
    return _volume(array, geometry, spacing, _metadata(first, paths[0], len(paths), "classic", warnings), warnings, sources)


def _common_pixel_spacing(paths: Sequence[Path], headers: Sequence[Dataset]) -> tuple[float, float]:
    spacings = {_pixel_spacing(h, p) for p, h in zip(paths, headers)}
    if len(spacings) > 1:
        raise GeometryError(f"the slices have different pixel spacings ({sorted(map(str, spacings))}); they do not form one volume")
    spacing = spacings.pop()
    if spacing is None:
        raise DicomReadError(paths[0], "has no PixelSpacing, so the voxel size is unknown")
    return spacing


def _slice_thickness(ds: Dataset, path: Path) -> float:
    """The z spacing of a single-slice volume (SpacingBetweenSlices, SliceThickness, else 1 mm)."""
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = decimal(ds, keyword, path, high=MAX_SPACING_MM)
        if value is not None and 0 < value < MIN_SPACING_MM:
            raise DicomReadError(path, f"{tag_name(keyword)} is {value:g}; a slice thickness must be at least {MIN_SPACING_MM:g} mm")
        if value is not None and value > 0:
            return value
    return 1.0


def _load_multiframe(path: Path, progress: ProgressCallback | None, cancel: CancelToken | None) -> Volume:
    header, span = _read_header(path)
    read_frame = _frame_reader(path, header, span)
    ds = header if read_frame is not None else _read_dataset(path)
    rescales = frame_rescales(ds, path)

    def decode(index: int) -> tuple[np.ndarray, Rescale]:
        return (read_frame(index) if read_frame is not None else decode_frame(ds, path, index)), rescales[index]

    planes = _frame_planes(ds, path)
    if planes is None:
        return _unplaced(ds, path, decode, rescales, "multiframe", progress, cancel)
    measures = functional_item(ds, 0, "PixelMeasuresSequence", path)
    pixel_spacing = _pixel_spacing(measures, path) or _pixel_spacing(ds, path)
    if pixel_spacing is None:
        raise DicomReadError(path, "has no PixelSpacing, so the voxel size is unknown")
    array, geometry, spacing, warnings = _assemble(
        planes, pixel_spacing, _slice_thickness(measures or ds, path), decode, ds, rescales, progress, cancel
    )
    kind = "enhanced" if "PerFrameFunctionalGroupsSequence" in ds else "multiframe"
    return _volume(array, geometry, spacing, _metadata(ds, path, 1, kind, warnings), warnings, _frame_sources(path, ds))


def _frame_reader(path: Path, header: Dataset, span: PixelSpan | None) -> Callable[[int], np.ndarray] | None:
    """A reader of one uncompressed frame at a time from the file (never the whole file in memory); None if not possible."""
    dtype = native_dtype(header)
    rows, columns = int(header.Rows), int(header.Columns)
    frame_bytes = rows * columns * (dtype.itemsize if dtype is not None else 0)
    if span is None or dtype is None or span[1] < _frame_count(header) * frame_bytes:
        return None

    def read(index: int) -> np.ndarray:
        with open(path, "rb") as handle:
            handle.seek(span[0] + index * frame_bytes)
            return np.frombuffer(handle.read(frame_bytes), dtype).reshape(rows, columns)

    return read


def _frame_planes(ds: Dataset, path: Path) -> list[Plane] | None:
    """The plane of every frame (enhanced functional groups, or IPP + GridFrameOffsetVector); None if unplaced."""
    count = _frame_count(ds)
    if "PerFrameFunctionalGroupsSequence" in ds:
        planes = []
        for frame in range(count):
            position = functional_item(ds, frame, "PlanePositionSequence", path)
            orientation = functional_item(ds, frame, "PlaneOrientationSequence", path)
            if position is None or orientation is None or "ImagePositionPatient" not in position:
                return None
            planes.append(_plane(position, orientation, path, f"{path.name} frame {frame + 1}"))
        return planes
    offsets = raw_value(ds, "GridFrameOffsetVector", path)
    if not _is_placed(ds) or offsets is None or count < 2:
        return None
    first = _plane(ds, ds, path, f"{path.name} frame 1")
    distances = decimals(ds, "GridFrameOffsetVector", count, path, bound=MAX_POSITION_MM)
    normal = np.cross(first.orientation[:3], first.orientation[3:])
    # GridFrameOffsetVector is relative to IPP when its first value is 0, absolute otherwise: both are offsets from frame 1.
    return [
        Plane(tuple(np.array(first.position) + (offset - distances[0]) * normal), first.orientation, f"{path.name} frame {frame + 1}")  # type: ignore[arg-type, index]
        for frame, offset in enumerate(distances)  # type: ignore[arg-type]
    ]


def _load_image_2d(path: Path, progress: ProgressCallback | None, cancel: CancelToken | None) -> Volume:
    ds = _read_dataset(path)
    rescales = [rescale_of(ds, path)]
    return _unplaced(ds, path, lambda _: (decode_frame(ds, path), rescales[0]), rescales, "image2d", progress, cancel)


def _unplaced(
    ds: Dataset,
    path: Path,
    decode: Decode,
    rescales: Sequence[Rescale],
    kind: str,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> Volume:
    """Frames stacked as z on an identity grid at the origin (2D images, unplaced multi-frame)."""
    warnings = []
    pixel_spacing = _pixel_spacing(ds, path)
    if pixel_spacing is None:
        pixel_spacing = (1.0, 1.0)
        warnings.append(f"{path.name}: no pixel spacing in the file; 1 mm pixels assumed")
    count = _frame_count(ds)
    if count > 1:
        warnings.append(f"{path.name}: the {count} frames have no positions in space; stacked as z with 1 mm spacing")
    slots = list(range(count))
    dtypes = modality_dtypes(ds, rescales)
    array = _fill(slots, decode, _frame_shape(ds), dtypes, lambda _: str(path), progress, cancel)
    geometry = StackGeometry(tuple(slots), (0.0, 0.0, 0.0), np.eye(3), 1.0, (), 0.0, (), ())
    return _volume(array, geometry, (pixel_spacing[1], pixel_spacing[0], 1.0), _metadata(ds, path, 1, kind, warnings), warnings, _frame_sources(path, ds))

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

Every slice of the volume records its source (:attr:`Volume.slice_sources`: file, SOP Instance UID,
frame of a multi-frame file; ``None`` for a slice interpolated into a gap).

Pixels are decoded slice by slice into one preallocated array, so the peak memory stays near
the size of the volume: uncompressed pixel data (classic slices and the frames of a multi-frame
file) is read straight from its offset in the file, found while reading the header. Progress is
reported and cancellation polled between slices.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from medtl.dicom.geometry import Plane, StackGeometry, plan_stack
from medtl.dicom.pixels import (
    Rescale,
    ValuesDoNotFit,
    decode_frame,
    frame_rescales,
    functional_item,
    is_colour,
    modality_dtypes,
    native_dtype,
    rescale_of,
    transfer_syntax,
    write_modality,
)
from medtl.dicom.volume import SliceSource, Volume
from medtl.errors import DicomReadError, GeometryError, InvalidRequest, MedtlError
from medtl.progress import CancelToken, ProgressCallback, report

log = logging.getLogger(__name__)

# Objects that hold pixels but are not intensity images.
NON_IMAGE_MODALITIES = {"SEG", "RTSTRUCT", "RTPLAN", "SR", "PR", "KO", "REG"}

Decode = Callable[[int], tuple[np.ndarray, Rescale]]
PixelSpan = tuple[int, int]  # (offset, length) of an uncompressed Pixel Data value in its file


def load_series(files: Sequence[Path | str], progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Volume:
    """The volume of one series given as its files (classic series, or one multi-frame / 2D file)."""
    paths = [Path(f) for f in files]
    if not paths:
        raise MedtlError("no DICOM files to load")
    headers, spans = _read_headers(paths, cancel)
    _check_one_series(paths, headers)
    if len(paths) == 1 and _frame_count(headers[0]) > 1:
        return _load_multiframe(paths[0], progress, cancel)
    if len(paths) == 1 and not _is_placed(headers[0]):
        return _load_image_2d(paths[0], progress, cancel)
    return _load_classic(paths, headers, spans, progress, cancel)


def load_path(
    path: Path | str,
    series_uid: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Volume:
    """The volume of the series at ``path`` (a file, or a folder holding one image series or ``series_uid``)."""
    from medtl.dicom.scan import scan

    path = Path(path)
    if not path.exists():
        raise MedtlError(f"{path}: no such file or folder")
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
    return load_series(chosen.files, progress, cancel)


def _list_series(series: Sequence[Any]) -> str:
    rows = [f"  {s.series_uid}  {s.modality or '-'}  {s.description or '(no description)'!r}  {len(s.files)} instance(s)" for s in series]
    return "Series:\n" + "\n".join(rows)


# --- headers ---------------------------------------------------------------------------------


def _read_dataset(path: Path) -> Dataset:
    """The whole dataset, pixel data included."""
    return _parse(path, lambda: pydicom.dcmread(path))


def _parse(path: Path, read: Callable[[], Any]) -> Any:
    try:
        return read()
    except FileNotFoundError:
        raise DicomReadError(path, "no such file") from None
    except InvalidDicomError:
        raise DicomReadError(path, "not a DICOM file") from None
    except Exception as error:  # noqa: BLE001 - pydicom raises many kinds on corrupt input
        raise DicomReadError(path, f"unreadable DICOM ({type(error).__name__}: {error})") from error


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


def _decode_file(path: Path, header: Dataset, span: PixelSpan | None) -> tuple[np.ndarray, Rescale]:
    """Stored values and rescale of a single-frame file.

    With a ``span`` the pixel bytes are read there and lent to ``header`` while decoding (then dropped);
    without one the whole file is parsed again.
    """
    if span is None:
        ds = _read_dataset(path)
        return decode_frame(ds, path), rescale_of(ds)
    offset, length = span
    with open(path, "rb") as handle:
        handle.seek(offset)
        value = handle.read(length)
    if len(value) != length:
        raise DicomReadError(path, f"truncated: the pixel data needs {length} bytes, the file holds {len(value)}")
    header.PixelData = value
    try:
        return decode_frame(header, path), rescale_of(header)
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


def _check_one_series(paths: Sequence[Path], headers: Sequence[Dataset]) -> None:
    uids = {str(h.get("SeriesInstanceUID", "")) for h in headers}
    if len(uids) > 1:
        raise MedtlError(f"the {len(paths)} files belong to {len(uids)} different series; load one series at a time")
    for path, header in zip(paths, headers):
        if header.get("Modality") in NON_IMAGE_MODALITIES:
            raise DicomReadError(path, f"is a {header.Modality} object, not an image")
        if "Rows" not in header or "Columns" not in header:
            raise DicomReadError(path, "is not an image (no Rows/Columns)")


def _frame_count(ds: Dataset) -> int:
    return int(ds.get("NumberOfFrames", 1) or 1)


def _is_placed(ds: Dataset) -> bool:
    return "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds


def _decimals(value: Any, count: int, path: Path, keyword: str) -> tuple[float, ...]:
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != count:
        raise DicomReadError(path, f"{keyword} must have {count} numbers, got {value!r}")
    return numbers


def _pixel_spacing(item: Dataset | None, path: Path) -> tuple[float, float] | None:
    """(row, column) spacing in mm from PixelSpacing, else ImagerPixelSpacing; None if absent or zero."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        if item is not None and item.get(keyword):
            spacing = _decimals(item.get(keyword), 2, path, keyword)
            if min(spacing) > 0:
                return spacing  # type: ignore[return-value]
    return None


def _frame_shape(ds: Dataset) -> tuple[int, ...]:
    shape = (int(ds.Rows), int(ds.Columns))
    return (*shape, 3) if is_colour(ds) else shape


def _metadata(ds: Dataset, instances: int, kind: str) -> dict[str, Any]:
    """Key attributes of the series (may hold PHI: never log them)."""
    modality = str(ds.get("Modality", ""))
    meta: dict[str, Any] = {
        "modality": modality,
        "series_uid": str(ds.get("SeriesInstanceUID", "")),
        "study_uid": str(ds.get("StudyInstanceUID", "")),
        "frame_of_reference_uid": str(ds.get("FrameOfReferenceUID", "")),
        "series_description": str(ds.get("SeriesDescription", "")),
        "patient_id": str(ds.get("PatientID", "")),
        "sop_class_uid": str(ds.get("SOPClassUID", "")),
        "transfer_syntax": str(transfer_syntax(ds)),
        "photometric": "RGB" if is_colour(ds) else str(ds.get("PhotometricInterpretation", "")),
        "units": _units(ds, modality),
        "instances": instances,
        "kind": kind,
    }
    voi = functional_item(ds, 0, "FrameVOILUTSequence") or ds
    for keyword, key in (("WindowCenter", "window_center"), ("WindowWidth", "window_width")):
        value = voi.get(keyword)
        if value not in (None, ""):
            meta[key] = float(value[0] if isinstance(value, MultiValue) else value)
    return meta


def _frame_sources(path: Path, ds: Dataset) -> list[SliceSource]:
    """The source of each frame of ``ds`` (one, without a frame number, for a single-frame file)."""
    uid = str(ds.get("SOPInstanceUID", ""))
    count = _frame_count(ds)
    return [SliceSource(path, uid, frame + 1 if count > 1 else None) for frame in range(count)]


def _units(ds: Dataset, modality: str) -> str:
    if modality == "CT":
        return "HU"
    if modality == "RTDOSE":
        return str(ds.get("DoseUnits", ""))
    rescale_type = str(ds.get("RescaleType", ""))
    return "" if rescale_type in ("", "US") else rescale_type


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
    out = np.empty((len(slots), *frame_shape), dtype=dtype)
    jobs = [(z, index) for z, index in enumerate(slots) if index is not None]
    for done, (z, index) in enumerate(jobs, 1):
        if cancel is not None:
            cancel.raise_if_cancelled()
        stored, rescale = decode(index)
        if stored.shape != frame_shape:
            raise DicomReadError(label(index), f"image is {stored.shape}, the other slices are {frame_shape}")
        write_modality(stored, rescale, out[z])
        report(progress, done, len(jobs), "reading slices")
    return out


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
        position = _decimals(header.ImagePositionPatient, 3, path, "ImagePositionPatient")
        orientation = _decimals(header.ImageOrientationPatient, 6, path, "ImageOrientationPatient")
        planes.append(Plane(position, orientation, path.name))  # type: ignore[arg-type]
    pixel_spacing = _common_pixel_spacing(paths, headers)

    def decode(index: int) -> tuple[np.ndarray, Rescale]:
        return _decode_file(paths[index], headers[index], spans[index])

    array, geometry, spacing, warnings = _assemble(
        planes, pixel_spacing, _slice_thickness(first), decode, first, [rescale_of(h) for h in headers], progress, cancel
    )
    sources = [source for path, header in zip(paths, headers) for source in _frame_sources(path, header)]
    return _volume(array, geometry, spacing, _metadata(first, len(paths), "classic"), warnings, sources)


def _common_pixel_spacing(paths: Sequence[Path], headers: Sequence[Dataset]) -> tuple[float, float]:
    spacings = {_pixel_spacing(h, p) for p, h in zip(paths, headers)}
    if len(spacings) > 1:
        raise GeometryError(f"the slices have different pixel spacings ({sorted(map(str, spacings))}); they do not form one volume")
    spacing = spacings.pop()
    if spacing is None:
        raise DicomReadError(paths[0], "has no PixelSpacing, so the voxel size is unknown")
    return spacing


def _slice_thickness(ds: Dataset) -> float:
    """The z spacing of a single-slice volume (SpacingBetweenSlices, SliceThickness, else 1 mm)."""
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = ds.get(keyword)
        if value not in (None, "") and float(value) > 0:
            return float(value)
    return 1.0


def _load_multiframe(path: Path, progress: ProgressCallback | None, cancel: CancelToken | None) -> Volume:
    header, span = _read_header(path)
    read_frame = _frame_reader(path, header, span)
    ds = header if read_frame is not None else _read_dataset(path)
    rescales = frame_rescales(ds)

    def decode(index: int) -> tuple[np.ndarray, Rescale]:
        return (read_frame(index) if read_frame is not None else decode_frame(ds, path, index)), rescales[index]

    planes = _frame_planes(ds, path)
    if planes is None:
        return _unplaced(ds, path, decode, rescales, "multiframe", progress, cancel)
    measures = functional_item(ds, 0, "PixelMeasuresSequence")
    pixel_spacing = _pixel_spacing(measures, path) or _pixel_spacing(ds, path)
    if pixel_spacing is None:
        raise DicomReadError(path, "has no PixelSpacing, so the voxel size is unknown")
    array, geometry, spacing, warnings = _assemble(
        planes, pixel_spacing, _slice_thickness(measures or ds), decode, ds, rescales, progress, cancel
    )
    kind = "enhanced" if "PerFrameFunctionalGroupsSequence" in ds else "multiframe"
    return _volume(array, geometry, spacing, _metadata(ds, 1, kind), warnings, _frame_sources(path, ds))


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
            position = functional_item(ds, frame, "PlanePositionSequence")
            orientation = functional_item(ds, frame, "PlaneOrientationSequence")
            if position is None or orientation is None or "ImagePositionPatient" not in position:
                return None
            planes.append(
                Plane(
                    _decimals(position.ImagePositionPatient, 3, path, "ImagePositionPatient"),  # type: ignore[arg-type]
                    _decimals(orientation.ImageOrientationPatient, 6, path, "ImageOrientationPatient"),  # type: ignore[arg-type]
                    f"{path.name} frame {frame + 1}",
                )
            )
        return planes
    offsets = ds.get("GridFrameOffsetVector")
    if not _is_placed(ds) or offsets is None or len(offsets) != count:
        return None
    origin = np.array(_decimals(ds.ImagePositionPatient, 3, path, "ImagePositionPatient"))
    orientation = _decimals(ds.ImageOrientationPatient, 6, path, "ImageOrientationPatient")
    normal = np.cross(orientation[:3], orientation[3:])
    # GridFrameOffsetVector is relative to IPP when its first value is 0, absolute otherwise: both are offsets from frame 1.
    return [
        Plane(tuple(origin + (float(offset) - float(offsets[0])) * normal), orientation, f"{path.name} frame {frame + 1}")  # type: ignore[arg-type]
        for frame, offset in enumerate(offsets)
    ]


def _load_image_2d(path: Path, progress: ProgressCallback | None, cancel: CancelToken | None) -> Volume:
    ds = _read_dataset(path)
    rescales = [rescale_of(ds)]
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
    return _volume(array, geometry, (pixel_spacing[1], pixel_spacing[0], 1.0), _metadata(ds, 1, kind), warnings, _frame_sources(path, ds))

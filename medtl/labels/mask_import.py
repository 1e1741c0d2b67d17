"""Existing masks (NIfTI, DICOM SEG) read onto the grid of the series they label, or refused with the reason.

:func:`read_mask` gives an :class:`ImportedMask`: an integer label map ``[z, y, x]`` on the voxels
of a series' :class:`~medtl.dicom.volume.Volume` and the names of its values.

- NIfTI (``.nii``, ``.nii.gz``): its grid must be the series' physical grid: the same voxel
  centres within :data:`~medtl.labels.store.GRID_TOLERANCE_MM`. A file stored in another axis
  order or with flipped axes (RAS against LPS, slices reversed) is reoriented exactly, by
  transposing and flipping, never resampled. Voxel values must be whole numbers 0..65535 (a
  probability map is refused). Names come from a medtl sidecar (``mask.json``, written by
  :func:`medtl.export.label_export.export_nifti`) when there is one, else "label N".
- DICOM SEG (a file, or a folder holding one; read with highdicom): it must reference the
  series (when the series' UID is known) and every frame must lie on one of its slices, with
  the same orientation, pixel spacing and size; frames are placed by their plane positions, or
  by the instance they were derived from when they have none. Segment N becomes label value
  N, named by its SegmentLabel. FRACTIONAL segments count a voxel in from half their maximum.
  Segments that overlap are refused: a label map holds one label per voxel.

Every refusal is a :class:`~medtl.errors.MedtlError` that names the file and what does not fit,
e.g. ``mask.nii.gz: 256×256×40 voxels of 1×1×3 mm does not fit series 1.2.3's 512×512×40 voxels
of 0.5×0.5×3 mm``.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medtl.dicom.scan import SEGMENTATION_STORAGE
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.labels.store import GRID_TOLERANCE_MM

if TYPE_CHECKING:  # pragma: no cover
    from highdicom.seg import Segmentation
    from pydicom.dataset import Dataset

_MAX_LABEL = 65535


@dataclass(frozen=True)
class ImportedMask:
    """A mask on a series' grid: label values ``[z, y, x]`` (uint8, or uint16 above 255) and the name of each value present."""

    array: np.ndarray
    names: dict[int, str]


def read_mask(path: Path | str, grid: Volume, *, name: str | None = None) -> ImportedMask:
    """The mask at ``path`` (NIfTI file, DICOM SEG file or a folder holding one) on ``grid`` (the series it labels).

    ``name`` names the mask's label, when it holds one. MedtlError naming the file when it cannot be read or does not fit
    ``grid`` (see the module's description).
    """
    from medtl.data.images import image_format

    path = Path(path)
    if not path.exists():
        raise MedtlError(f"{path}: no such file or folder")
    kind = image_format(path)
    if kind == "nifti":
        array, names = _nifti_mask(path, grid)
    elif kind == "dicom":
        array, names = _seg_mask(_seg_file(path), grid)
    else:
        raise MedtlError(f"{path}: a {kind} file is not a mask medtl imports; give a NIfTI file or a DICOM SEG")
    present = [int(v) for v in np.unique(array) if v != 0]
    names = {value: names.get(value, f"label {value}") for value in present}
    if name is not None:
        if len(present) != 1:
            raise MedtlError(f"{path}: holds {len(present)} labels ({', '.join(names.values()) or 'none'}); one name can only be given to a mask of one label")
        names = {present[0]: name}
    return ImportedMask(np.ascontiguousarray(array, dtype=np.uint8 if max(present, default=0) <= 255 else np.uint16), names)


# --- NIfTI -----------------------------------------------------------------------------------


def _nifti_mask(path: Path, grid: Volume) -> tuple[np.ndarray, dict[int, str]]:
    from medtl.data.images import read_image

    try:
        volume = read_image(path)
    except MedtlError as error:  # names the file; nibabel's reasons may span lines
        raise MedtlError(" ".join(str(error).split())) from None
    if path.name.lower().endswith(".gz"):
        _check_gzip(path)
    if volume.is_rgb:
        raise MedtlError(f"{path}: an RGB image is not a mask")
    values = volume.array
    if not np.issubdtype(values.dtype, np.integer):
        if not np.all(np.isfinite(values)) or not np.array_equal(values, np.round(values)):
            raise MedtlError(f"{path}: holds values that are not whole numbers (a probability map?); a mask holds label values 0, 1, 2, ...")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low < 0 or high > _MAX_LABEL:
        raise MedtlError(f"{path}: holds values {low:g}..{high:g}; label values lie in 0..{_MAX_LABEL}")
    return _onto_grid(volume, grid, path), _sidecar_names(path)


def _check_gzip(path: Path) -> None:
    """MedtlError unless ``path`` is a whole gzip stream: a copy cut short may still hold every voxel nibabel reads."""
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 24):
                pass
    except (OSError, EOFError, zlib.error) as error:
        raise MedtlError(f"{path}: the compressed file is damaged or cut short ({error})") from None


def _onto_grid(mask: Volume, grid: Volume, path: Path) -> np.ndarray:
    """``mask``'s voxels in ``grid``'s order, when both are the same voxels in space (any axis order, any flips)."""
    index_map = np.linalg.inv(grid.affine_lps()) @ mask.affine_lps()  # mask index (x, y, z) -> grid index
    permutation = np.round(index_map[:3, :3])
    is_signed_permutation = np.all(np.isin(permutation, (-1, 0, 1))) and np.all(np.abs(permutation).sum(axis=0) == 1) and np.all(np.abs(permutation).sum(axis=1) == 1)
    if is_signed_permutation:
        mask_xyz = np.transpose(mask.array, (2, 1, 0))
        axes = [int(np.flatnonzero(permutation[a])[0]) for a in range(3)]  # grid axis a <- mask axis axes[a]
        flips = [permutation[a, axes[a]] < 0 for a in range(3)]
        shift = np.array([mask_xyz.shape[axes[a]] - 1 if flips[a] else 0 for a in range(3)])
        exact = index_map.copy()
        exact[:3, :3], exact[:3, 3] = permutation, shift
        same_voxels = np.allclose(mask.affine_lps()[:3], (grid.affine_lps() @ exact)[:3], atol=GRID_TOLERANCE_MM)
        reordered = np.transpose(mask_xyz, axes)
        if same_voxels and reordered.shape == grid.shape[::-1]:
            for a in range(3):
                if flips[a]:
                    reordered = np.flip(reordered, axis=a)
            return np.transpose(reordered, (2, 1, 0))
    raise MedtlError(f"{path}: {_describe(mask)} does not fit {_series_name(grid)} {_describe(grid)}{_difference(mask, grid)}")


def _describe(volume: Volume) -> str:
    z, y, x = volume.shape
    return f"{x}×{y}×{z} voxels of {'×'.join(f'{s:g}' for s in volume.spacing)} mm"


def _series_name(grid: Volume, possessive: bool = True) -> str:
    """``series 1.2.3's`` (or ``the series'``); without ``possessive``: ``series 1.2.3``."""
    uid = grid.metadata.get("series_uid")
    name = f"series {uid}" if uid else "the series"
    return name + ("'" if name.endswith("s") else "'s") if possessive else name


def _difference(mask: Volume, grid: Volume) -> str:
    """What differs between two grids that do not fit, in words (after a "; ")."""
    if sorted(mask.shape) == sorted(grid.shape) and np.allclose(sorted(mask.spacing), sorted(grid.spacing), atol=GRID_TOLERANCE_MM):
        axes = np.abs(mask.direction.T @ grid.direction)
        if not np.allclose(axes, np.round(axes), atol=1e-3):
            return "; its axes are rotated against the series' axes"
        boxes = [np.sort(volume.index_to_lps([[0, 0, 0], np.array(volume.shape[::-1]) - 1]), axis=0) for volume in (mask, grid)]
        return f"; it lies {np.abs(boxes[0] - boxes[1]).max():.3g} mm away from the series"
    return ""


def _sidecar_names(path: Path) -> dict[int, str]:
    """The label names in a medtl sidecar beside the NIfTI file (``mask.json``), if there is a readable one."""
    from medtl.export.label_export import sidecar_path

    sidecar = sidecar_path(path)
    try:
        document = json.loads(sidecar.read_text(encoding="utf-8"))
        return {int(entry["value"]): str(entry["name"]) for entry in document["labels"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # none, or not medtl's: the values get default names


# --- DICOM SEG -------------------------------------------------------------------------------


def _seg_file(path: Path) -> Path:
    """``path`` if it is a file, else the one DICOM SEG file in the folder ``path`` (and below)."""
    from medtl.dicom.header import read_header
    from medtl.errors import DicomReadError

    if path.is_file():
        return path
    found = []
    for candidate in sorted(p for p in path.rglob("*") if p.is_file()):
        try:
            header = read_header(candidate)
        except DicomReadError:
            continue
        if header is not None and header.sop_class_uid == SEGMENTATION_STORAGE:
            found.append(candidate)
    if not found:
        raise MedtlError(f"{path}: holds no DICOM SEG file")
    if len(found) > 1:
        raise MedtlError(f"{path}: holds {len(found)} DICOM SEG files ({', '.join(p.name for p in found[:5])}); give the one to import")
    return found[0]


def _seg_mask(path: Path, grid: Volume) -> tuple[np.ndarray, dict[int, str]]:
    seg = _read_seg(path)
    try:
        _check_references(seg, grid, path)
        return _label_map(seg, grid, path)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as error:  # an attribute missing or malformed
        raise MedtlError(f"{path}: a damaged DICOM SEG ({type(error).__name__}: {error})") from None


def _label_map(seg: Segmentation, grid: Volume, path: Path) -> tuple[np.ndarray, dict[int, str]]:
    """The segments of ``seg`` as one label map on ``grid`` (segment N -> value N) and the segments' labels."""
    frames = _frame_pixels(seg, path)
    sop_slices = {(where.sop_instance_uid, where.frame or 1): z for z, where in enumerate(grid.slice_sources) if where is not None}
    shared = seg.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in seg else None
    per_frame = seg.get("PerFrameFunctionalGroupsSequence", [])
    if len(per_frame) != len(frames):
        raise MedtlError(f"{path}: has {len(frames)} frames but {len(per_frame)} per-frame descriptions; the file is damaged")
    if (int(seg.Rows), int(seg.Columns)) != grid.shape[1:]:
        raise MedtlError(f"{path}: its frames of {seg.Columns}×{seg.Rows} pixels do not fit {_series_name(grid)} {grid.shape[2]}×{grid.shape[1]} pixels per slice")
    names = {int(item.SegmentNumber): str(item.get("SegmentLabel", "")) or f"segment {int(item.SegmentNumber)}" for item in seg.SegmentSequence}
    array = np.zeros(grid.shape, dtype=np.uint16 if max(names, default=0) > 255 else np.uint8)  # one label map, however many segments
    for index, (item, pixels) in enumerate(zip(per_frame, frames)):
        number = int(_item(item, shared, "SegmentIdentificationSequence", path, index).ReferencedSegmentNumber)
        if number not in names or not 0 < number <= _MAX_LABEL:
            raise MedtlError(f"{path}: frame {index + 1} belongs to segment {number}, which the file does not describe")
        z = _frame_slice(item, shared, grid, sop_slices, path, index)
        plane = array[z]
        overlap = pixels & (plane != 0) & (plane != number)
        if overlap.any():
            other = int(plane[overlap][0])
            raise MedtlError(
                f"{path}: segments {other} ({names[other]}) and {number} ({names[number]}) overlap (on slice {z}); "
                "a label map holds one label per voxel: export the segments to separate files"
            )
        plane[pixels] = number
    return array, names


def _read_seg(path: Path) -> Segmentation:
    import highdicom as hd
    import pydicom
    from pydicom.uid import UID

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception as error:  # noqa: BLE001 - pydicom raises many kinds on a damaged or foreign file
        raise MedtlError(f"{path}: not a readable DICOM file ({type(error).__name__}: {error})") from None
    sop_class = str(header.get("SOPClassUID", ""))
    if not sop_class:
        raise MedtlError(f"{path}: has no SOP Class UID: not a DICOM object, or one cut short")
    if sop_class != SEGMENTATION_STORAGE:
        raise MedtlError(f"{path}: is a {UID(sop_class).name} object, not a DICOM SEG (Segmentation Storage)")
    try:
        return hd.seg.segread(path)
    except Exception as error:  # noqa: BLE001 - highdicom and pydicom raise many kinds on damaged input
        raise MedtlError(f"{path}: not a readable DICOM SEG ({type(error).__name__}: {error})") from None


def _check_references(seg: Segmentation, grid: Volume, path: Path) -> None:
    """Refuse a SEG that segments another series than ``grid``'s (when ``grid`` knows its series) or another frame of reference."""
    referenced = [str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", [])]
    series = str(grid.metadata.get("series_uid", ""))
    if series and referenced and series not in referenced:
        raise MedtlError(f"{path}: segments series {', '.join(referenced)}, not series {series}; import it into the series it references")
    frame_of_reference, own = str(seg.get("FrameOfReferenceUID", "")), str(grid.metadata.get("frame_of_reference_uid", ""))
    if frame_of_reference and own and frame_of_reference != own:
        raise MedtlError(f"{path}: lies in frame of reference {frame_of_reference}, not in series {series or '(no UID)'}'s {own}")


def _frame_pixels(seg: Segmentation, path: Path) -> np.ndarray:
    """The frames as booleans ``[frame, row, column]``: BINARY as stored, FRACTIONAL from half the maximum value."""
    try:
        pixels = np.asarray(seg.pixel_array)
    except Exception as error:  # noqa: BLE001 - pixel data that cannot be decoded
        raise MedtlError(f"{path}: its pixel data cannot be decoded ({type(error).__name__}: {error})") from None
    if pixels.ndim == 2:
        pixels = pixels[None]
    if str(seg.get("SegmentationType", "")) == "FRACTIONAL":
        return pixels.astype(np.int32) * 2 >= int(seg.get("MaximumFractionalValue", 255))
    return pixels != 0


def _item(item: Dataset, shared: Dataset | None, keyword: str, path: Path, index: int) -> Dataset:
    """The first item of functional group ``keyword`` for frame ``index`` (its own, else the shared one)."""
    for groups in (item, shared):
        if groups is not None and keyword in groups and len(groups[keyword].value):
            return groups[keyword].value[0]
    raise MedtlError(f"{path}: frame {index + 1} has no {keyword}; the file is damaged")


def _frame_slice(item: Dataset, shared: Dataset | None, grid: Volume, sop_slices: dict[tuple[str, int], int], path: Path, index: int) -> int:
    """The ``grid`` slice frame ``index`` lies on: by its plane position (checked against the grid's orientation and
    spacing), else by the source instance it was derived from."""
    from medtl.export.dicom_seg import same_orientation, slice_index

    frame = f"{path}: frame {index + 1}"
    has_position = any(groups is not None and "PlanePositionSequence" in groups for groups in (item, shared))
    if has_position:
        orientation = _item(item, shared, "PlaneOrientationSequence", path, index).ImageOrientationPatient
        if not same_orientation(orientation, grid):
            raise MedtlError(f"{frame} is oriented {[float(v) for v in orientation]}, not as {_series_name(grid)} slices")
        spacing = [float(v) for v in _item(item, shared, "PixelMeasuresSequence", path, index).PixelSpacing]
        if not np.allclose(spacing, (grid.spacing[1], grid.spacing[0]), atol=GRID_TOLERANCE_MM):
            raise MedtlError(f"{frame} has pixels of {spacing[1]:g}×{spacing[0]:g} mm, not {_series_name(grid)} {grid.spacing[0]:g}×{grid.spacing[1]:g} mm")
        position = _item(item, shared, "PlanePositionSequence", path, index).ImagePositionPatient
        z = slice_index(position, grid)
        if z is None:
            raise MedtlError(f"{frame} at {[round(float(v), 3) for v in position]} mm lies on no slice of {_series_name(grid, possessive=False)}")
        return z
    for derivation in item.get("DerivationImageSequence", []):
        for source in derivation.get("SourceImageSequence", []):
            numbers = source.get("ReferencedFrameNumber", 1)
            key = (str(source.ReferencedSOPInstanceUID), int(numbers[0] if isinstance(numbers, list | tuple) else numbers or 1))
            if key in sop_slices:
                return sop_slices[key]
    raise MedtlError(f"{frame} has no plane position and references no image of {_series_name(grid, possessive=False)}")

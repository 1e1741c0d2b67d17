"""A mask (predicted, or drawn by a person) as a DICOM Segmentation object (highdicom, BINARY) that references its source series.

The mask must lie on the grid of the DICOM series it was made on (a segmentation prediction's
mask does). That source Volume records the file and SOP instance of each of its slices
(:attr:`~medtl.dicom.volume.Volume.slice_sources`), so only those files' headers are read again (the
folder is not searched), and each instance (or, for an enhanced multi-frame object, each frame) is
checked to lie on the mask slice it fills by its ImagePositionPatient. A prediction
(:func:`write_dicom_seg`) has one segment per non-zero label of its run, numbered 1..N in label
order, algorithm type AUTOMATIC; drawn labels (:func:`write_segments` with no algorithm) are MANUAL
and carry their display colours. Slices that were interpolated
into a gap have no source instance and are left out (reported as a warning); a series resampled for
gantry tilt is refused, because its slices no longer coincide with the source images.

A SEG for the PACS carries its source's patient and study modules. A SEG to be shared is written with
a :class:`~medtl.export.deidentify.Deidentifier`, which applies the PS3.15 basic profile to the whole
SEG before it is saved: it holds no patient name, ID or birth date, and its references are the
pseudonymous UIDs that a copy of the source de-identified by the same Deidentifier has.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydicom.dataset import Dataset

from medtl import __version__
from medtl.atomic import atomic_path
from medtl.dicom.volume import SliceSource, Volume
from medtl.errors import GeometryError, MedtlError

if TYPE_CHECKING:  # pragma: no cover
    from medtl.export.deidentify import Deidentifier

SLICE_TOLERANCE = 0.2  # of the slice spacing
IN_PLANE_TOLERANCE = 0.1  # of the smaller pixel spacing
ORIENTATION_TOLERANCE = 1e-3
SEG_SERIES_NUMBER = 9000
_LABEL_CHARACTERS = 64  # SegmentLabel is an LO


@dataclass(frozen=True)
class SourceFrames:
    """The source images highdicom references, and the mask slice of each of their frames, in frame order."""

    datasets: list[Dataset]
    slices: list[int]
    missing: list[int]  # mask slices without a source frame (interpolated gaps)


def source_frames(source: Volume, grid: Volume) -> SourceFrames:
    """The source images recorded by ``source`` (a Volume loaded from DICOM) and the ``grid`` slice of each of their frames.

    ``grid`` (the mask) must lie on ``source``'s grid; every instance's position is checked against it.
    """
    recorded = [(z, where) for z, where in enumerate(source.slice_sources) if where is not None]
    if not recorded or len(source.slice_sources) != grid.shape[0]:
        raise ValueError(f"a grid of {grid.shape[0]} slices needs a source Volume that records as many, not {len(source.slice_sources)}")
    missing = [z for z, where in enumerate(source.slice_sources) if where is None]
    if all(where.frame is not None for _, where in recorded) and len({where.path for _, where in recorded}) == 1:
        ds = _source_header(recorded[0][1])  # one multi-frame object: all of its frames, in frame order
        return SourceFrames([ds], _frame_slices(ds, recorded[0][1].path, grid), missing)
    datasets = []
    for z, where in recorded:
        ds = _source_header(where)
        if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:  # else a single unplaced 2D image
            found = _slice_of(ds.ImagePositionPatient, ds.ImageOrientationPatient, grid, where.path)
            if found != z:
                raise MedtlError(f"{where.path}: now lies on slice {found}, not on slice {z} as when the series was loaded; load it again")
        datasets.append(ds)
    return SourceFrames(datasets, [z for z, _ in recorded], missing)


def _source_header(where: SliceSource) -> Dataset:
    """The header of a recorded source file, refused if it is gone or now holds another instance."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(where.path, stop_before_pixels=True)
    except (OSError, InvalidDicomError) as error:
        raise MedtlError(f"{where.path}: the source image can no longer be read ({error}); cannot reference it in DICOM SEG") from None
    if str(ds.get("SOPInstanceUID", "")) != where.sop_instance_uid:
        raise MedtlError(f"{where.path}: holds another image than when the series was loaded; load the series again")
    return ds


def _source_location(source: Volume) -> Path:
    """Where ``source``'s DICOM files are, for messages: its one file, or the folder that holds them all."""
    paths = {where.path for where in source.slice_sources if where is not None}
    return paths.pop() if len(paths) == 1 else Path(os.path.commonpath(sorted(paths)))


def _frame_slices(ds: Dataset, path: Path, grid: Volume) -> list[int]:
    """The mask slice of each frame of an enhanced multi-frame object."""
    shared = ds.get("SharedFunctionalGroupsSequence", [Dataset()])[0]
    slices = []
    for index, frame in enumerate(ds.get("PerFrameFunctionalGroupsSequence", [])):
        position = frame.get("PlanePositionSequence", [Dataset()])[0].get("ImagePositionPatient")
        orientation_item = frame.get("PlaneOrientationSequence") or shared.get("PlaneOrientationSequence")
        orientation = orientation_item[0].get("ImageOrientationPatient") if orientation_item else None
        if position is None or orientation is None:
            raise MedtlError(f"{path}: frame {index + 1} has no plane position or orientation; cannot write DICOM SEG for it")
        slices.append(_slice_of(position, orientation, grid, f"{path} frame {index + 1}"))
    if not slices:
        raise MedtlError(f"{path}: a multi-frame object without per-frame plane positions; cannot write DICOM SEG for it")
    return slices


def _slice_of(position: object, orientation: object, grid: Volume, label: object) -> int:
    """The grid slice index at ImagePositionPatient ``position``; GeometryError unless it lies on the grid."""
    if not same_orientation(orientation, grid):
        raise GeometryError(f"{label}: its orientation differs from the mask's grid; cannot write DICOM SEG")
    z = slice_index(position, grid)
    if z is None:
        raise GeometryError(
            f"{label}: lies off the mask's grid (the series was resampled, e.g. for gantry tilt); "
            "DICOM SEG would be misplaced, use the NIfTI mask instead"
        )
    return z


def same_orientation(orientation: object, grid: Volume) -> bool:
    """Whether ImageOrientationPatient ``orientation`` (row and column cosines) is that of ``grid``'s x and y axes."""
    iop = np.asarray([float(v) for v in orientation], dtype=float)  # type: ignore[attr-defined]
    return iop.shape == (6,) and np.allclose(iop[:3], grid.direction[:, 0], atol=ORIENTATION_TOLERANCE) and np.allclose(iop[3:], grid.direction[:, 1], atol=ORIENTATION_TOLERANCE)


def slice_index(position: object, grid: Volume) -> int | None:
    """The ``grid`` slice whose first voxel is at ImagePositionPatient ``position`` (LPS mm), or None when no slice is."""
    offset = np.asarray([float(v) for v in position], dtype=float) - np.asarray(grid.origin)  # type: ignore[attr-defined]
    k = float(offset @ grid.direction[:, 2]) / grid.spacing[2]
    z = round(k)
    in_plane = offset - z * grid.spacing[2] * grid.direction[:, 2]
    if abs(k - z) > SLICE_TOLERANCE or not 0 <= z < grid.shape[0] or np.linalg.norm(in_plane) > IN_PLANE_TOLERANCE * min(grid.spacing[:2]):
        return None
    return z


@dataclass(frozen=True)
class Segment:
    """One segment of a DICOM SEG: the mask value it covers, its label and, if chosen, its display colour (RGB 0-255)."""

    value: int
    label: str
    colour: tuple[int, int, int] | None = None


def write_dicom_seg(
    mask: Volume, labels: dict[int, str], source: Volume, destination: Path | str, algorithm: str = "medtl", deidentify: Deidentifier | None = None
) -> list[str]:
    """Write ``mask`` (label values on the grid of ``source``, a Volume loaded from DICOM) as DICOM SEG at
    ``destination``, referencing the instances ``source`` was loaded from; returns warnings.

    ``labels`` maps mask values to names (0 is background); ``algorithm`` names the model in the
    segment descriptions; ``deidentify`` makes the SEG one to share (see the module's description).
    The file is written atomically.
    """
    segments = [Segment(value, name) for value, name in sorted(labels.items()) if value != 0]
    if not segments:
        raise MedtlError(f"{destination}: the labels {labels} name no segment besides the background (0)")
    description = "medtl prediction (research use, not for diagnosis)"
    return write_segments(mask, segments, source, destination, algorithm=algorithm, description=description, deidentify=deidentify)


def write_segments(
    mask: Volume, segments: list[Segment], source: Volume, destination: Path | str, *, algorithm: str | None, description: str,
    deidentify: Deidentifier | None = None,
) -> list[str]:  # fmt: skip
    """Write ``segments`` of ``mask`` (on the grid of ``source``, a Volume loaded from DICOM) as one BINARY DICOM SEG at
    ``destination`` referencing ``source``'s instances, numbered 1..N in the given order; returns warnings.

    ``algorithm``: the model that made the mask (algorithm type AUTOMATIC), or None for a mask a person drew (MANUAL).
    ``description`` becomes the SEG's content description. Every mask value but 0 must belong to a segment.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    values = [segment.value for segment in segments]
    unknown = sorted(set(np.unique(mask.array).tolist()) - set(values) - {0})
    if unknown:
        raise MedtlError(f"{destination}: the mask holds values {unknown} that no label names")
    if not any(source.slice_sources):
        raise MedtlError(f"{destination}: the image does not record its DICOM source files (it was not loaded from a DICOM series); cannot write DICOM SEG")
    if mask.shape != source.shape:
        raise MedtlError(f"{destination}: the mask's grid {mask.shape} is not its source image's {source.shape}")
    frames = source_frames(source, mask)
    lookup = np.zeros(max(int(mask.array.max(initial=0)), *values) + 1, dtype=np.uint16 if len(values) > 255 else np.uint8)
    for number, value in enumerate(values, 1):
        lookup[value] = number
    pixels = lookup[mask.array[frames.slices]]
    manual = algorithm is None
    identification = None if manual else hd.AlgorithmIdentificationSequence(name=algorithm[:64], family=codes.cid7162.ArtificialIntelligence, version=__version__)
    algorithm_type = hd.seg.SegmentAlgorithmTypeValues.MANUAL if manual else hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=segment.label[:_LABEL_CHARACTERS],
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=algorithm_type,
            algorithm_identification=identification,
            display_color=None if segment.colour is None else hd.color.CIELabColor.from_rgb(*segment.colour),
        )
        for number, segment in enumerate(segments, 1)
    ]
    model = "manual" if manual else algorithm
    try:
        seg = hd.seg.Segmentation(
            source_images=frames.datasets,
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=generate_uid(),
            series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer="medtl",
            manufacturer_model_name=model[:64],
            software_versions=__version__,
            device_serial_number="0",
            content_description=description[:64],
            series_description=f"medtl {model}"[:64],
            omit_empty_frames=bool(pixels.any()),
        )
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise MedtlError(f"{destination}: cannot build DICOM SEG from {_source_location(source)} ({error})") from None
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    if "SliceThickness" not in measures:  # highdicom copies the source's; without it, highdicom's own reader refuses the SEG
        measures.SliceThickness = f"{mask.spacing[2]:.6g}"
    if deidentify is not None:
        deidentify.apply(seg)
    with atomic_path(destination) as tmp:
        seg.save_as(tmp)
    if frames.missing:
        return [f"{len(frames.missing)} slice(s) interpolated into gaps have no source image and are not in the DICOM SEG"]
    return []

"""A predicted mask as a DICOM Segmentation object (highdicom, BINARY) that references its source series.

The mask must lie on the grid of a DICOM series (a :class:`~medtl.inference.predictor.Prediction`'s
mask does). The Volume does not carry its source files, so the series is found again under the
input path by its SeriesInstanceUID, and every instance (or, for an enhanced multi-frame object,
every frame) is matched to a mask slice by its ImagePositionPatient. One segment per non-zero label,
numbered 1..N in label order and named after the run's labels. Slices that were interpolated into a
gap have no source instance and are left out (reported as a warning); a series resampled for gantry
tilt is refused, because its slices no longer coincide with the source images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from medtl import __version__
from medtl.atomic import atomic_path
from medtl.dicom.volume import Volume
from medtl.errors import GeometryError, MedtlError

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


def source_frames(source: Path | str, grid: Volume) -> SourceFrames:
    """Find ``grid``'s series under ``source`` (file or folder) and match its frames to ``grid``'s slices."""
    import pydicom

    from medtl.dicom.scan import scan

    source = Path(source)
    uid = str(grid.metadata.get("series_uid", ""))
    if not uid:
        raise MedtlError(f"{source}: the prediction carries no series UID, so its DICOM source cannot be found")
    series = scan(source, workers=1).series_by_uid(uid)
    if series is None:
        raise MedtlError(f"{source}: series {uid} is no longer there; cannot reference its instances")
    datasets = [pydicom.dcmread(path, stop_before_pixels=True) for path in series.files]
    if len(datasets) == 1 and int(datasets[0].get("NumberOfFrames", 1) or 1) > 1:
        frames = _frame_slices(datasets[0], series.files[0], grid)
        return SourceFrames(datasets, frames, sorted(set(range(grid.shape[0])) - set(frames)))
    by_slice: dict[int, Dataset] = {}
    for path, ds in zip(series.files, datasets):
        if "ImagePositionPatient" not in ds and grid.shape[0] == 1:
            by_slice.setdefault(0, ds)  # a single unplaced 2D image
            continue
        by_slice.setdefault(_slice_of(ds.ImagePositionPatient, ds.ImageOrientationPatient, grid, path), ds)
    slices = sorted(by_slice)
    return SourceFrames([by_slice[z] for z in slices], slices, sorted(set(range(grid.shape[0])) - set(slices)))


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
    iop = np.asarray([float(v) for v in orientation], dtype=float)  # type: ignore[attr-defined]
    if not (np.allclose(iop[:3], grid.direction[:, 0], atol=ORIENTATION_TOLERANCE) and np.allclose(iop[3:], grid.direction[:, 1], atol=ORIENTATION_TOLERANCE)):
        raise GeometryError(f"{label}: its orientation differs from the predicted mask's grid; cannot write DICOM SEG")
    offset = np.asarray([float(v) for v in position], dtype=float) - np.asarray(grid.origin)  # type: ignore[attr-defined]
    k = float(offset @ grid.direction[:, 2]) / grid.spacing[2]
    z = round(k)
    in_plane = offset - z * grid.spacing[2] * grid.direction[:, 2]
    if abs(k - z) > SLICE_TOLERANCE or not 0 <= z < grid.shape[0] or np.linalg.norm(in_plane) > IN_PLANE_TOLERANCE * min(grid.spacing[:2]):
        raise GeometryError(
            f"{label}: lies off the predicted mask's grid (the series was resampled, e.g. for gantry tilt); "
            "DICOM SEG would be misplaced, use the NIfTI mask instead"
        )
    return z


def write_dicom_seg(mask: Volume, labels: dict[int, str], source: Path | str, destination: Path | str, algorithm: str = "medtl") -> list[str]:
    """Write ``mask`` (label values on a DICOM series' grid) as DICOM SEG at ``destination``; returns warnings.

    ``labels`` maps mask values to names (0 is background); ``algorithm`` names the model in the
    segment descriptions. The file is written atomically.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    values = sorted(value for value in labels if value != 0)
    if not values:
        raise MedtlError(f"{destination}: the labels {labels} name no segment besides the background (0)")
    unknown = sorted(set(np.unique(mask.array).tolist()) - set(values) - {0})
    if unknown:
        raise MedtlError(f"{destination}: the mask holds values {unknown} that the labels {labels} do not name")
    frames = source_frames(source, mask)
    lookup = np.zeros(int(mask.array.max(initial=0)) + 1, dtype=np.uint16 if len(values) > 255 else np.uint8)
    for number, value in enumerate(values, 1):
        if value < len(lookup):
            lookup[value] = number
    pixels = lookup[mask.array[frames.slices]]
    identification = hd.AlgorithmIdentificationSequence(name=algorithm[:64], family=codes.cid7162.ArtificialIntelligence, version=__version__)
    segments = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=labels[value][:_LABEL_CHARACTERS],
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=identification,
        )
        for number, value in enumerate(values, 1)
    ]
    try:
        seg = hd.seg.Segmentation(
            source_images=frames.datasets,
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=segments,
            series_instance_uid=generate_uid(),
            series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer="medtl",
            manufacturer_model_name=algorithm[:64],
            software_versions=__version__,
            device_serial_number="0",
            content_description="medtl prediction (research use, not for diagnosis)",
            series_description=f"medtl {algorithm}"[:64],
            omit_empty_frames=bool(pixels.any()),
        )
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise MedtlError(f"{destination}: cannot build DICOM SEG from {source} ({error})") from None
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    if "SliceThickness" not in measures:  # highdicom copies the source's; without it, highdicom's own reader refuses the SEG
        measures.SliceThickness = f"{mask.spacing[2]:.6g}"
    with atomic_path(destination) as tmp:
        seg.save_as(tmp)
    if frames.missing:
        return [f"{len(frames.missing)} slice(s) interpolated into gaps have no source image and are not in the DICOM SEG"]
    return []

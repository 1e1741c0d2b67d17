"""A generator of DICOM series with known geometry and values, for tests and benchmarks.

``write_series`` writes one CT/MR series from an array in modality units with the geometry
conventions of :class:`medtl.dicom.volume.Volume` (array ``[z, y, x]``, spacing ``(x, y, z)``,
LPS origin, direction columns = x, y, z axes). Options cover the edge cases the engine must
handle: file order, names without extension, implicit VR, unsigned storage with an intercept,
compressed transfer syntaxes, missing slices, gantry tilt. ``write_enhanced`` writes one
enhanced multi-frame object with per-frame functional groups.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

STORAGE = {"CT": CTImageStorage, "MR": MRImageStorage}


@dataclass
class SeriesSpec:
    """What to write; defaults give a small axial CT series."""

    modality: str = "CT"
    spacing: tuple[float, float, float] = (0.7, 0.7, 2.5)
    origin: tuple[float, float, float] = (-120.0, -110.0, 40.0)
    direction: np.ndarray | None = None  # 3x3, columns = x, y, z axes in LPS; identity if None
    slope: float = 1.0
    intercept: float = -1024.0
    unsigned: bool = False
    implicit_vr: bool = False
    transfer_syntax: str | None = None  # None: explicit/implicit little endian uncompressed
    photometric: str = "MONOCHROME2"
    extension: str = ".dcm"  # "" for files without extension
    order: str = "shuffled"  # "sorted", "reversed" or "shuffled" file names / instance numbers
    drop_slices: Sequence[int] = ()  # z indices not written (gaps)
    gantry_tilt: float = 0.0  # degrees; shears slice positions along y as scanners do
    patient_id: str = "GEN001"
    patient_name: str = "Test^Generated"
    study_uid: str | None = None
    series_uid: str | None = None
    frame_of_reference_uid: str | None = None  # None: one derived from series_uid when given (parts of a series share it), else a new one
    series_description: str = "generated"
    seed: int = 0


def stored_values(values: np.ndarray, spec: SeriesSpec) -> np.ndarray:
    """Values in modality units -> stored integers (inverse of rescale), exact on the integer grid."""
    stored = np.rint((values - spec.intercept) / spec.slope)
    dtype = np.uint16 if spec.unsigned else np.int16
    info = np.iinfo(dtype)
    if stored.min() < info.min or stored.max() > info.max:
        raise ValueError("values do not fit the stored pixel type")
    return stored.astype(dtype)


def _base_dataset(spec: SeriesSpec, study_uid: str, series_uid: str, frame_of_reference: str) -> Dataset:
    ds = Dataset()
    ds.PatientID = spec.patient_id
    ds.PatientName = spec.patient_name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_of_reference
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = "ACC1"
    ds.StudyDescription = "generated study"
    ds.SeriesDescription = spec.series_description
    ds.SeriesNumber = 3
    ds.Modality = spec.modality
    ds.Manufacturer = "medtl-tests"
    return ds


def _pixel_module(ds: Dataset, spec: SeriesSpec, rows: int, columns: int) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = spec.photometric
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0 if spec.unsigned else 1
    ds.RescaleSlope = f"{spec.slope:g}"
    ds.RescaleIntercept = f"{spec.intercept:g}"
    ds.RescaleType = "HU" if spec.modality == "CT" else "US"


def _save(ds: Dataset, path: Path, sop_class: str, spec: SeriesSpec) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    syntax = ImplicitVRLittleEndian if spec.implicit_vr else ExplicitVRLittleEndian
    meta.TransferSyntaxUID = syntax
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    if spec.transfer_syntax is not None and spec.transfer_syntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        ds.compress(spec.transfer_syntax)
    ds.save_as(path, enforce_file_format=True)


def slice_positions(shape: tuple[int, int, int], spec: SeriesSpec) -> np.ndarray:
    """LPS ImagePositionPatient of each slice (z, 3), including gantry-tilt shear."""
    direction = np.eye(3) if spec.direction is None else np.asarray(spec.direction, float)
    z = np.arange(shape[0])
    positions = np.asarray(spec.origin) + np.outer(z * spec.spacing[2], direction[:, 2])
    if spec.gantry_tilt:
        shift = z * spec.spacing[2] * np.tan(np.radians(spec.gantry_tilt))
        positions = positions + np.outer(shift, direction[:, 1])
    return positions


def write_series(folder: Path, values: np.ndarray, spec: SeriesSpec | None = None) -> list[Path]:
    """Write ``values`` ([z, y, x], modality units) as one classic single-frame series; returns the files."""
    spec = spec or SeriesSpec()
    folder.mkdir(parents=True, exist_ok=True)
    direction = np.eye(3) if spec.direction is None else np.asarray(spec.direction, float)
    study_uid = spec.study_uid or generate_uid()
    series_uid = spec.series_uid or generate_uid()
    frame_of_reference = spec.frame_of_reference_uid or generate_uid(entropy_srcs=[spec.series_uid] if spec.series_uid else None)
    stored = stored_values(values, spec)
    positions = slice_positions(values.shape, spec)
    kept = [z for z in range(values.shape[0]) if z not in set(spec.drop_slices)]
    numbers = list(range(1, len(kept) + 1))
    if spec.order == "reversed":
        numbers.reverse()
    elif spec.order == "shuffled":
        random.Random(spec.seed).shuffle(numbers)
    paths = []
    for z, number in zip(kept, numbers):
        ds = _base_dataset(spec, study_uid, series_uid, frame_of_reference)
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = number
        ds.ImagePositionPatient = [f"{v:.6f}" for v in positions[z]]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in np.r_[direction[:, 0], direction[:, 1]]]
        ds.PixelSpacing = [f"{spec.spacing[1]:g}", f"{spec.spacing[0]:g}"]  # row spacing, column spacing
        ds.SliceThickness = f"{spec.spacing[2]:g}"
        ds.SliceLocation = f"{float(positions[z] @ direction[:, 2]):.6f}"
        if spec.gantry_tilt:
            ds.GantryDetectorTilt = f"{spec.gantry_tilt:g}"
        _pixel_module(ds, spec, values.shape[1], values.shape[2])
        ds.PixelData = np.ascontiguousarray(stored[z]).tobytes()
        path = folder / f"IM{number:05d}{spec.extension}"
        _save(ds, path, STORAGE[spec.modality], spec)
        paths.append(path)
    return paths


def write_enhanced(path: Path, values: np.ndarray, spec: SeriesSpec | None = None, frame_order: Sequence[int] | None = None) -> Path:
    """Write ``values`` as one Enhanced CT object with per-frame plane positions (frames optionally permuted)."""
    spec = spec or SeriesSpec()
    path.parent.mkdir(parents=True, exist_ok=True)
    direction = np.eye(3) if spec.direction is None else np.asarray(spec.direction, float)
    ds = _base_dataset(spec, spec.study_uid or generate_uid(), spec.series_uid or generate_uid(), generate_uid())
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceNumber = 1
    order = list(frame_order) if frame_order is not None else list(range(values.shape[0]))
    positions = slice_positions(values.shape, spec)
    shared = Dataset()
    orientation = Dataset()
    orientation.ImageOrientationPatient = [f"{v:.8f}" for v in np.r_[direction[:, 0], direction[:, 1]]]
    measures = Dataset()
    measures.PixelSpacing = [f"{spec.spacing[1]:g}", f"{spec.spacing[0]:g}"]
    measures.SliceThickness = f"{spec.spacing[2]:g}"
    transform = Dataset()
    transform.RescaleSlope = f"{spec.slope:g}"
    transform.RescaleIntercept = f"{spec.intercept:g}"
    transform.RescaleType = "HU"
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PixelValueTransformationSequence = DicomSequence([transform])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames = []
    for z in order:
        plane = Dataset()
        plane.ImagePositionPatient = [f"{v:.6f}" for v in positions[z]]
        frame = Dataset()
        frame.PlanePositionSequence = DicomSequence([plane])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    ds.NumberOfFrames = len(order)
    _pixel_module(ds, spec, values.shape[1], values.shape[2])
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
        delattr(ds, keyword)  # enhanced objects carry these in the functional groups
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.PixelData = np.ascontiguousarray(stored_values(values, spec)[order]).tobytes()
    _save(ds, path, EnhancedCTImageStorage, spec)
    return path


def phantom(shape: tuple[int, int, int] = (12, 40, 48), seed: int = 0) -> np.ndarray:
    """An asymmetric CT-like test object in HU: every axis flip and permutation changes it."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    values = np.full(shape, -1000.0)
    values[(x**2 + y**2) < 0.8] = 40.0  # soft-tissue cylinder
    values[((x - 0.3) ** 2 + (y + 0.2) ** 2 + (z - 0.2) ** 2) < 0.1] = 700.0  # off-centre bone blob
    values += np.round(10 * z + 5 * y + 2 * x)  # gradients break mirror symmetries
    values += rng.integers(-3, 4, size=shape)
    return values.astype(np.float32)


def rotation(axis: str, degrees: float) -> np.ndarray:
    """A 3x3 rotation about an LPS axis, for oblique directions."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    matrix = np.eye(3)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    return matrix

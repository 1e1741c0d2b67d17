"""The real-anatomy sample study: nilearn's MNI ICBM152 2009 T1 template as a DICOM MR series, with a brain mask.

Built offline and reproducibly from the template that ships inside the ``nilearn`` package (licence in
``resources/LICENSES.md``, "Sample study"): the same installed template always gives byte-identical files,
because every UID is derived from the template's voxels and no date or time is written.

Layout of a built study::

    dicom/IM00001.dcm ...   one MR slice per file, axial, int16, 197 x 233 x 189 at 1 mm, LPS geometry
    labels/brain.nii.gz     the brain mask (uint8 0/1) on exactly the series' grid (RAS affine, as NIfTI wants)
    README.txt              source, licence notice and layout

The series is stored in the conventional axial orientation (``ImageOrientationPatient`` 1\\0\\0\\0\\1\\0: columns
run to the patient's left, rows to the back), so viewers show it with the patient's right on the screen's left
and anterior at the top. The template's RAS affine is converted with ``LPS = diag(-1, -1, 1) @ RAS``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.progress import CancelToken, ProgressCallback, report

STUDY_FOLDER = "sample-study-v1"  # bump the version when the content changes, so old builds are not reused
DICOM_FOLDER = "dicom"
LABEL_FILE = Path("labels") / "brain.nii.gz"
SLICE_COUNT = 189
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_UID_SALT = "medtl sample study v1"

README = """medtl sample study (built by medtl.sample_study from the template bundled in nilearn)

Image: MNI ICBM152 2009a nonlinear T1 template, skull-stripped, 1 mm (nilearn's file
mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz), read as nilearn.datasets.load_mni152_template(resolution=1)
reads it; stored values 0..255, the file's own values.
Label: labels/brain.nii.gz, as nilearn.datasets.load_mni152_brain_mask(resolution=1) makes it (template > 0.2).

Copyright (C) 1993-2004 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological Institute,
McGill University. Permission to use, copy, modify, and distribute this software and its documentation for
any purpose and without fee is hereby granted, provided that the above copyright notice appear in all
copies. The authors and McGill University make no representations about the suitability of this software
for any purpose. It is provided "as is" without express or implied warranty. The authors are not
responsible for any data loss, equipment damage, property loss, or injury to subjects or patients resulting
from the use or misuse of this software package.

References: Fonov et al., NeuroImage 54(1) 2011, doi:10.1016/j.neuroimage.2010.07.033;
Fonov et al., NeuroImage 47 Suppl 1 2009, S102, doi:10.1016/S1053-8119(09)70884-5.
"""


def template_volumes() -> tuple[Volume, Volume]:
    """The T1 template (int16, 0..255) and its brain mask (uint8) as volumes on one LPS grid, axial, standard orientation."""
    import nibabel

    from medtl.mni152 import load_brain_mask, load_map

    template = nibabel.as_closest_canonical(load_map("template"))  # axes run to R, A, S
    mask = nibabel.as_closest_canonical(load_brain_mask())
    if template.shape != mask.shape or not np.allclose(template.affine, mask.affine):
        raise MedtlError("nilearn's MNI152 template and brain mask are not on one grid; reinstall nilearn")
    shape = np.asarray(template.shape)
    # flip the R and A axes so index x runs to the left and y to the back: LPS-positive, as scanners store axial slices
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[:3, 3] = [shape[0] - 1, shape[1] - 1, 0]
    lps = RAS_TO_LPS @ template.affine @ flip
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    geometry = {
        "spacing": tuple(float(s) for s in spacing),
        "origin": tuple(float(v) for v in lps[:3, 3]),
        "direction": lps[:3, :3] / spacing,
    }

    def zyx(data: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(data[::-1, ::-1, :], (2, 1, 0)))

    values = np.rint(np.asarray(template.get_fdata(), dtype=np.float64) * 255.0).astype(np.int16)  # nilearn scales 0..255 to 0..1
    labels = (np.asarray(mask.dataobj) > 0).astype(np.uint8)
    return Volume(zyx(values), **geometry), Volume(zyx(labels), **geometry)  # type: ignore[arg-type]


def build_sample_study(out_dir: Path | str, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Path:
    """Build the study into ``out_dir`` (which must not exist yet): written in a temporary folder beside it, then renamed."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise MedtlError(f"{out_dir} already exists; remove it to build the sample study there again")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        _write_study(scratch, progress, cancel)
        try:
            os.rename(scratch, out_dir)
        except OSError as error:
            raise MedtlError(f"cannot put the sample study in place at {out_dir}: {error}") from error
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out_dir


def is_built(folder: Path) -> bool:
    """Whether ``folder`` holds a complete study (a build is renamed into place whole, so this only fails if files were removed)."""
    dicom = folder / DICOM_FOLDER
    return dicom.is_dir() and (folder / LABEL_FILE).is_file() and sum(1 for _ in dicom.glob("*.dcm")) == SLICE_COUNT


def sample_study_dir(progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Path:
    """The built study in the user's medtl data folder; built there on first use (a few seconds), reused afterwards."""
    import platformdirs

    target = Path(platformdirs.user_data_dir("medtl")) / STUDY_FOLDER
    if is_built(target):
        return target
    if target.exists():  # an incomplete copy (files removed by hand): build it again
        shutil.rmtree(target)
    try:
        return build_sample_study(target, progress, cancel)
    except MedtlError:
        if is_built(target):  # another process built it meanwhile
            return target
        raise


def _write_study(folder: Path, progress: ProgressCallback | None, cancel: CancelToken | None) -> None:
    report(progress, 0, 0, "reading the MNI152 template")
    image, mask = template_volumes()
    if image.shape[0] != SLICE_COUNT:
        raise MedtlError(f"nilearn's MNI152 template has {image.shape[0]} axial slices, expected {SLICE_COUNT}; check the nilearn version")
    write_dicom_series(folder / DICOM_FOLDER, image, progress, cancel)
    import nibabel

    (folder / LABEL_FILE).parent.mkdir(parents=True)
    nibabel.save(mask.to_nifti(), folder / LABEL_FILE)  # the whole folder is renamed into place, so no temp file here
    (folder / "README.txt").write_text(README, encoding="utf-8")


def write_dicom_series(folder: Path, volume: Volume, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> list[Path]:
    """Write ``volume`` (int16 ``[z, y, x]``) as one MR Image Storage series, one slice a file, Explicit VR Little Endian.

    Every UID is derived from the voxel values, so the same volume gives byte-identical files.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True)
    digest = hashlib.sha256(volume.array.tobytes()).hexdigest()

    def uid(*parts: object) -> str:
        return generate_uid(entropy_srcs=[_UID_SALT, digest, *map(str, parts)])

    study, series, frame = uid("study"), uid("series"), uid("frame of reference")
    nz, ny, nx = volume.shape
    affine = volume.affine_lps()
    paths = []
    for z in range(nz):
        if cancel is not None:
            cancel.raise_if_cancelled()
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, uid("instance", z)
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "MNI152^Template", "MNI152", "", "O"
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = study, "", "", "1", ""
        ds.ReferringPhysicianName, ds.StudyDescription = "", "MNI ICBM152 2009 template (medtl sample)"
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.Modality = series, 1, "MR"
        ds.SeriesDescription, ds.BodyPartExamined = "T1 MNI ICBM152 2009a, 1 mm", "BRAIN"
        ds.Manufacturer, ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = "medtl", frame, ""
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions, ds.MRAcquisitionType = "RM", "NONE", "", "3D"
        ds.EchoTime, ds.RepetitionTime, ds.EchoTrainLength = "", "", ""
        ds.InstanceNumber = z + 1
        position = affine @ np.array([0.0, 0.0, z, 1.0])
        ds.ImagePositionPatient = [f"{v:.6g}" for v in position[:3]]
        ds.ImageOrientationPatient = [f"{v:.6g}" for v in np.r_[volume.direction[:, 0], volume.direction[:, 1]]]
        ds.SliceLocation = f"{float(position[:3] @ volume.direction[:, 2]):.6g}"
        ds.PixelSpacing = [f"{volume.spacing[1]:.6g}", f"{volume.spacing[0]:.6g}"]  # row spacing, column spacing
        ds.SliceThickness = ds.SpacingBetweenSlices = f"{volume.spacing[2]:.6g}"
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", ny, nx
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.ascontiguousarray(volume.array[z], dtype="<i2").tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = MRImageStorage, ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"IM{z + 1:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
        report(progress, z + 1, nz, "writing the sample study")
    return paths

"""A de-identified label export (DICOM SEG, NIfTI, MSD, image copies) holds no byte of the patient's name, ID or birth date.

The series is made of copies of pydicom's real CT_small.dcm (a GE header with 179 private elements), given a patient
name in Latin-1, an ID, other IDs, a birth date and a private block that repeats them.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from medtl.dicom.series import load_series
from medtl.errors import MedtlError
from medtl.export.deidentify import Deidentifier, phi_found, write_deidentified
from medtl.export.label_export import LabelInfo, MsdCase, export_msd, export_nifti, export_seg

NAME, PATIENT_ID, OTHER_ID, BIRTH = "Müller^Jürgen", "MRN4471902", "ALT-558812", "19620315"
IDENTITY = [NAME, PATIENT_ID, OTHER_ID, BIRTH, "1962-03-15", "15.03.1962", "03/15/1962", "CompressedSamples^CT1", "GEMS_IDEN_01"]
LABELS = [LabelInfo(1, "nodule", (250, 200, 0))]
SLICES = 4


def named_series(folder: Path) -> list[Path]:
    """Four slices 5 mm apart, copies of the real CT_small.dcm carrying the patient's identity in public and private tags."""
    folder.mkdir(parents=True)
    series_uid, paths = generate_uid(), []
    for k in range(SLICES):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName, ds.PatientID, ds.OtherPatientIDs, ds.PatientBirthDate = NAME, PATIENT_ID, OTHER_ID, BIRTH
        block = ds.private_block(0x0029, "ACME PATIENT", create=True)
        block.add_new(0x10, "LO", f"{NAME} {PATIENT_ID} {BIRTH}")
        ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.InstanceNumber = series_uid, generate_uid(), k + 1
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.ImagePositionPatient = [-158.135803, -179.035797, -75.699997 + 5 * k]
        ds.SliceLocation = -75.699997 + 5 * k
        paths.append(folder / f"slice{k}.dcm")
        ds.save_as(paths[-1])
    return paths


def every_byte(folder: Path) -> bytes:
    """Every file under ``folder``: its path and its bytes, gzip decompressed."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert files
    return b"".join(str(p.relative_to(folder)).encode() + (gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()) for p in files)


def nodule() -> np.ndarray:
    mask = np.zeros((SLICES, 128, 128), np.uint8)
    mask[1:3, 40:60, 50:75] = 1
    return mask


def test_the_check_finds_the_identity_in_an_export_that_is_not_deidentified(tmp_path: Path) -> None:
    files = named_series(tmp_path / "series")
    export_seg(nodule(), LABELS, files, tmp_path / "pacs" / "labels.dcm")
    assert set(phi_found(every_byte(tmp_path / "pacs"), IDENTITY)) >= {NAME, PATIENT_ID, BIRTH}  # the SEG copies the patient module
    assert set(phi_found(every_byte(tmp_path / "series"), IDENTITY)) >= {NAME, PATIENT_ID, OTHER_ID, BIRTH, "GEMS_IDEN_01"}  # the sources have them all


def test_a_deidentified_seg_and_its_images_hold_no_identity_and_reference_each_other_by_the_same_pseudonyms(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = named_series(tmp_path / "series")
    export = Deidentifier()
    with caplog.at_level(logging.DEBUG):
        seg_path = export_seg(nodule(), LABELS, files, tmp_path / "shared" / "labels.dcm", deidentifier=export)
        images = write_deidentified(files, tmp_path / "shared" / "images", export)
    assert phi_found(every_byte(tmp_path / "shared"), IDENTITY) == [] and phi_found(caplog.text.encode(), IDENTITY) == []
    seg = hd.seg.segread(seg_path)
    copies = [pydicom.dcmread(path) for path in images]
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == copies[0].SeriesInstanceUID == export.uid(pydicom.dcmread(files[0]).SeriesInstanceUID)
    assert sorted(item.ReferencedSOPInstanceUID for item in referenced.ReferencedInstanceSequence) == sorted(ds.SOPInstanceUID for ds in copies)
    assert seg.StudyInstanceUID == copies[0].StudyInstanceUID and seg.PatientID == copies[0].PatientID == export.identifier(PATIENT_ID)
    assert [path.name for path in images] == [f"{ds.SOPInstanceUID}.dcm" for ds in copies]
    for ds in (seg, *copies):
        assert ds.PatientIdentityRemoved == "YES" and ds.get("PatientBirthDate", "") == ""
        assert [item.CodeValue for item in ds.DeidentificationMethodCodeSequence] == ["113100", "113107"]
        assert ds.DeidentificationMethod[0] == "PS3.15 Basic Application Level Confidentiality Profile"
        assert not any(element.tag.is_private for element in ds.iterall())
    volume = load_series(images)  # the copies are still a series medtl (and a viewer) loads, with the SEG on it
    assert volume.shape == (SLICES, 128, 128)
    frames = seg.get_pixels_by_source_instance([where.sop_instance_uid for where in volume.slice_sources], combine_segments=True)
    assert np.array_equal(frames, nodule())


def test_a_deidentified_msd_and_nifti_export_hold_no_identity_in_names_headers_or_json(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = named_series(tmp_path / "series")
    volume = load_series(files)
    export = Deidentifier()
    with caplog.at_level(logging.DEBUG):
        dataset = export_msd([MsdCase(PATIENT_ID, volume, nodule(), files)], LABELS, tmp_path / "msd", name="Nodules", modality="CT", deidentifier=export)
        export_nifti(nodule(), volume, LABELS, tmp_path / "nifti" / "labels.nii.gz", deidentify=True)
    for folder in ("msd", "nifti"):
        assert phi_found(every_byte(tmp_path / folder), IDENTITY) == []
    assert phi_found(caplog.text.encode(), IDENTITY) == []
    case = f"case_{export.identifier(PATIENT_ID).lower()}"
    assert sorted(str(p.relative_to(dataset.parent)) for p in dataset.parent.rglob("*.nii.gz")) == [f"imagesTr/{case}.nii.gz", f"labelsTr/{case}.nii.gz"]
    assert volume.metadata["series_uid"].encode() not in every_byte(tmp_path / "nifti")  # the sidecar keeps no UID when de-identified


def test_images_with_burned_in_annotation_are_not_exported_deidentified(tmp_path: Path) -> None:
    files = named_series(tmp_path / "series")
    ds = pydicom.dcmread(files[2])
    ds.BurnedInAnnotation = "YES"
    ds.save_as(files[2])
    volume = load_series(files)
    with pytest.raises(MedtlError, match=r"slice2.dcm: the image has burned-in annotation"):
        export_msd([MsdCase("a", volume, nodule(), files)], LABELS, tmp_path / "msd", name="x", modality="CT", deidentifier=Deidentifier())
    with pytest.raises(MedtlError, match=r"slice2.dcm: the image has burned-in annotation"):
        write_deidentified(files, tmp_path / "images", Deidentifier())
    assert not (tmp_path / "msd").exists()

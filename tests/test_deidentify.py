"""The PS3.15 basic confidentiality profile on real DICOM headers: what leaves, what is recorded, pseudonyms that agree."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID
from pydicom.valuerep import DA

from medtl.errors import MedtlError
from medtl.export.deidentify import Deidentifier, patient_identity, phi_found, profile_actions
from tests.dicomgen import SeriesSpec, phantom, write_series


def real(name: str) -> Dataset:
    """One of pydicom's bundled real files: CT_small.dcm (GE, 179 private elements), MR2_J2KI.dcm (with a birth date)."""
    return pydicom.dcmread(get_testdata_file(name, download=False))


def saved(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR2_J2KI.dcm"])
def test_a_real_header_keeps_no_byte_of_the_patients_identity_nor_any_private_tag(name: str) -> None:
    ds = real(name)
    private = any(element.tag.is_private for element in ds.iterall())
    identity = [*patient_identity(ds), str(ds.InstitutionName), *(["GEMS_IDEN_01"] if private else [])]  # a GE private creator
    assert len(identity) == 4  # a name, an ID, an institution, and a private block (CT_small) or a birth date (MR2_J2KI)
    assert phi_found(saved(ds), identity) == identity  # the check finds them before
    Deidentifier().apply(ds)
    assert phi_found(saved(ds), identity) == []
    assert not any(element.tag.is_private for element in ds.iterall())
    assert (str(ds.PatientName), ds.PatientBirthDate, ds.PatientIdentityRemoved) == ("", "", "YES")
    assert [(item.CodeValue, item.CodingSchemeDesignator) for item in ds.DeidentificationMethodCodeSequence] == [("113100", "DCM"), ("113107", "DCM")]
    assert ds.DeidentificationMethodCodeSequence[0].CodeMeaning == "Basic Application Confidentiality Profile"
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert ds.SOPClassUID == real(name).SOPClassUID and ds.Rows == real(name).Rows  # what is not identifying stays


def test_one_export_maps_each_uid_and_id_to_one_pseudonym_and_another_export_to_others(tmp_path: Path) -> None:
    files = write_series(tmp_path / "ct", phantom((3, 8, 8)), SeriesSpec(patient_name="Doe^Jane", patient_id="MRN0042"))
    originals = [pydicom.dcmread(path) for path in files]
    export = Deidentifier()
    cleaned = [export.apply(pydicom.dcmread(path)) for path in files]
    assert len({ds.StudyInstanceUID for ds in cleaned}) == len({ds.SeriesInstanceUID for ds in cleaned}) == len({ds.PatientID for ds in cleaned}) == 1
    assert cleaned[0].SeriesInstanceUID == export.uid(originals[0].SeriesInstanceUID) != originals[0].SeriesInstanceUID
    assert [ds.SOPInstanceUID for ds in cleaned] == [export.uid(ds.SOPInstanceUID) for ds in originals]  # the same UID, the same pseudonym, twice
    assert len({ds.SOPInstanceUID for ds in cleaned}) == 3 and all(ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID for ds in cleaned)
    assert cleaned[0].PatientID == export.identifier("MRN0042") and "MRN0042" not in cleaned[0].PatientID
    assert all(UID(ds.SOPInstanceUID).is_valid and len(ds.SOPInstanceUID) <= 64 for ds in cleaned)
    other = Deidentifier().apply(pydicom.dcmread(files[0]))
    assert other.StudyInstanceUID != cleaned[0].StudyInstanceUID and other.PatientID != cleaned[0].PatientID


def test_shifted_dates_keep_their_intervals_and_the_birth_date_goes() -> None:
    original, ds = real("CT_small.dcm"), real("CT_small.dcm")
    ds.PatientBirthDate = "19620315"
    Deidentifier().apply(ds)
    days = {keyword: DA(ds[keyword].value) - DA(original[keyword].value) for keyword in ("StudyDate", "SeriesDate", "ContentDate")}
    assert len(set(days.values())) == 1 and -3650 <= next(iter(days.values())).days <= -365
    assert ds.StudyTime == original.StudyTime and ds.PatientBirthDate == ""


def test_without_date_shifting_dates_follow_the_basic_profile() -> None:
    ds = Deidentifier(shift_dates=False).apply(real("CT_small.dcm"))
    assert (ds.StudyDate, ds.StudyTime, ds.ContentDate) == ("", "", "19000101")  # Z, Z, and a dummy for Z/D
    assert "AcquisitionDate" in ds and ds.AcquisitionDate == ""  # X/Z
    assert [item.CodeValue for item in ds.DeidentificationMethodCodeSequence] == ["113100"] and ds.LongitudinalTemporalInformationModified == "REMOVED"


def test_identifying_attributes_go_also_inside_sequences_and_outside_the_table() -> None:
    ds = real("MR_small.dcm")
    ds.OtherPatientNames = "Roe^Richard"
    ds.PatientAddress = "12 Elm Street Springfield"
    ds.PatientComments = "sister of Mary Major"
    ds.InstitutionAddress = "1 Hospital Road"
    request = Dataset()
    request.RequestedProcedureDescription = "CT for Jane"
    request.AccessionNumber = "ACC998877"
    ds.RequestAttributesSequence = Sequence([request])  # X: the whole sequence goes
    referenced = Dataset()
    referenced.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    referenced.ReferencedSOPClassUID = ds.SOPClassUID
    ds.ReferencedImageSequence = Sequence([referenced])  # X/Z/U*: kept, its UIDs pseudonymised
    unlisted = Dataset()
    unlisted.EvaluatorName = "Major^Mary"  # a person name the table does not list, in a sequence it does not list
    ds.ReferencedSeriesSequence = Sequence([unlisted])
    secrets = ["Roe^Richard", "12 Elm Street", "Mary Major", "1 Hospital Road", "CT for Jane", "ACC998877", "Major^Mary"]
    assert phi_found(saved(ds), secrets) == secrets
    export = Deidentifier()
    export.apply(ds)
    assert phi_found(saved(ds), secrets) == []
    assert "RequestAttributesSequence" not in ds
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID and ds.ReferencedImageSequence[0].ReferencedSOPClassUID == ds.SOPClassUID


def test_an_item_in_two_sequences_is_pseudonymised_once() -> None:
    ds, shared = Dataset(), Dataset()
    shared.ReferencedSOPInstanceUID = "1.2.3.4"
    ds.ReferencedImageSequence = Sequence([shared])
    ds.SourceImageSequence = Sequence([shared])  # the same item object, as highdicom builds a SEG's references
    export = Deidentifier()
    export.apply(ds)
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == ds.SourceImageSequence[0].ReferencedSOPInstanceUID == export.uid("1.2.3.4")


def test_the_profile_table_is_the_standards() -> None:
    single, repeating = profile_actions()
    assert len(single) > 600 and len(repeating) == 3  # PS3.15 Table E.1-1 (2026c); curves and overlay data and comments
    keyword = pydicom.datadict.tag_for_keyword
    names = ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "PatientComments")
    assert [single[keyword(name)] for name in names] == ["Z", "D", "Z", "U", "X"]


def test_an_image_with_burned_in_annotation_is_refused() -> None:
    ds = real("CT_small.dcm")
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(MedtlError, match="burned-in annotation"):
        Deidentifier().apply(ds)


@pytest.mark.parametrize(
    ("value", "written"), [("Doe^Jane", b"DOE^JANE"), ("Doe^Jane", b"Jane Doe"), ("Doe^Jane", b"doe"), ("Doe^Jan\u00e9", "JAN\u00c9".encode("latin-1"))]
)
def test_the_phi_check_finds_a_name_however_it_is_written(value: str, written: bytes) -> None:
    assert phi_found(b"\x00header " + written + b" trailer", [value]) == [value]


def test_the_phi_check_finds_nothing_in_other_bytes() -> None:
    assert phi_found(b"2.25.123 19700102 Do Jan", ["Doe^Jane", "19700101", "MRN0042"]) == []
    assert phi_found(b"anything", ["", "  "]) == []

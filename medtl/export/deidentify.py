"""De-identification of DICOM headers: the DICOM PS3.15 Basic Application Level Confidentiality Profile (Annex E).

One :class:`Deidentifier` serves one export: within it the same original UID, ID or date always maps
to the same replacement, so that the objects of one export still reference each other (a
de-identified DICOM SEG and a de-identified copy of its source images match), while two exports
cannot be linked (each draws its own secret key and date shift).

What :meth:`Deidentifier.apply` does to a pydicom Dataset (and its file meta), recursively:

- every attribute of the profile's table (PS3.15 Table E.1-1, as transcribed by the
  ``dicom-anonymizer`` package, release 2026c) gets its action: X removed, Z emptied, D replaced by
  a dummy (a pseudonym for text, so that equal values stay equal), U replaced by a pseudonymous
  UID (``2.25.`` and a UUID keyed on the original); compound actions take the one that keeps the
  object valid (Z/D and X/D as D, X/Z as Z, X/Z/D as D, X/Z/U* as U on UIDs and cleaning inside
  sequences); a sequence to be emptied or replaced loses its items;
- every private attribute is removed (the Retain Safe Private option is not used), and so is
  any attribute whose value cannot be read;
- with ``shift_dates`` (the default: the Retain Longitudinal Temporal Information with Modified
  Dates option, code 113107), every date (DA) and date-time (DT) is moved back by the export's
  whole number of days and times of day are kept, so intervals between studies survive; the
  patient's birth date and time are removed all the same. Without it, dates follow the table;
- every person name outside the table is emptied as well (stricter than the profile);
- the choices are recorded: PatientIdentityRemoved ``YES``, DeidentificationMethod,
  DeidentificationMethodCodeSequence (113100 and the options used) and
  LongitudinalTemporalInformationModified.

Pixel data is not examined (the Clean Pixel Data option is not applied): an object whose
BurnedInAnnotation is ``YES`` is refused, and so is an export of such images' pixels to NIfTI
(:func:`refuse_burned_in`). :func:`write_deidentified` writes de-identified copies of a series,
named by their pseudonymous UIDs, which a DICOM SEG of the same export references.
:func:`phi_found` tells whether bytes (a finished file) still hold any of given identifying strings.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from medtl import __version__
from medtl.errors import MedtlError

_ACTIONS = {
    "D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "D", "X_Z_TAGS": "Z", "X_D_TAGS": "D", "X_Z_D_TAGS": "D", "X_Z_U_STAR_TAGS": "U*",
}
"""The table's action categories, compound ones resolved to the action that keeps the object valid."""

_BIRTH = frozenset({0x00100030, 0x00100032})
"""The patient's birth date and time: never kept, not even shifted."""

_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_DUMMY = {"DA": "19000101", "DT": "19000101000000", "TM": "000000", "DS": "0", "IS": "0", "AS": "000Y"}
_NUMBER_VRS = frozenset({"FD", "FL", "SL", "SS", "SV", "UL", "US", "UV"})
_MIN_SHIFT_DAYS, _MAX_SHIFT_DAYS = 365, 10 * 365
_ID_CHARACTERS = 12  # hex digits of a pseudonymous ID: fits every text VR (SH and CS allow 16)

BASIC_PROFILE = ("113100", "Basic Application Confidentiality Profile")
MODIFIED_DATES_OPTION = ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")


@functools.cache
def profile_actions() -> tuple[dict[int, str], tuple[tuple[int, int, int, int, str], ...]]:
    """The action per tag of PS3.15 Table E.1-1 (release 2026c), and its repeating-group entries as
    ``(group, element, group mask, element mask, action)``."""
    from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as table  # imported by name: an installer finds it

    single: dict[int, str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for category, action in _ACTIONS.items():
        for entry in getattr(table, category):
            if len(entry) == 2:
                single[(entry[0] << 16) | entry[1]] = action
            else:
                masked.append((*entry, action))
    return single, tuple(masked)


def _action_of(tag: int) -> str | None:
    single, masked = profile_actions()
    if tag in single:
        return single[tag]
    group, element = tag >> 16, tag & 0xFFFF
    return next((action for g, e, gm, em, action in masked if group & gm == g & gm and element & em == e & em), None)


class Deidentifier:
    """De-identifies DICOM datasets for one export, with consistent pseudonyms (see the module's description).

    ``shift_dates``: keep dates, moved back by one random whole number of days (365 to 3650) for the
    whole export; otherwise dates are emptied or replaced as the basic profile says.
    """

    def __init__(self, shift_dates: bool = True) -> None:
        self.shift_dates = shift_dates
        self._key = secrets.token_bytes(32)
        self._shift = datetime.timedelta(days=_MIN_SHIFT_DAYS + secrets.randbelow(_MAX_SHIFT_DAYS - _MIN_SHIFT_DAYS + 1))

    @property
    def method_codes(self) -> tuple[tuple[str, str], ...]:
        """The (DCM code, meaning) of the profile and of each option used (CID 7050)."""
        return (BASIC_PROFILE, MODIFIED_DATES_OPTION) if self.shift_dates else (BASIC_PROFILE,)

    def uid(self, original: str) -> str:
        """The pseudonymous UID of ``original`` in this export (a ``2.25.`` UUID UID)."""
        if not original:
            return original
        return f"2.25.{uuid.UUID(bytes=self._digest('uid', original)[:16], version=4).int}"

    def identifier(self, original: str) -> str:
        """The pseudonym of an ID (or of any text to be replaced) in this export: 12 upper-case hex digits."""
        if not original:
            return original
        return self._digest("id", original).hex()[:_ID_CHARACTERS].upper()

    def date(self, original: str) -> str:
        """A DA or DT value moved back by this export's shift (the time of day kept); empty if it is not a date."""
        try:
            day = datetime.datetime.strptime(original[:8], "%Y%m%d").date()
        except ValueError:
            return ""
        return (day - self._shift).strftime("%Y%m%d") + original[8:]

    def _digest(self, kind: str, original: str) -> bytes:
        return hmac.new(self._key, f"{kind}\0{original.strip()}".encode(), hashlib.sha256).digest()

    def apply(self, ds: Dataset) -> Dataset:
        """De-identify ``ds`` in place (its file meta too) and record how; returns ``ds``.

        MedtlError when its pixels carry burned-in annotation, which medtl cannot remove.
        """
        if "PixelData" in ds and str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
            raise MedtlError("the image has burned-in annotation (BurnedInAnnotation YES) that medtl cannot remove; it cannot be de-identified")
        cleaned: set[int] = set()  # an item may sit in two sequences (highdicom shares them): it is cleaned once
        self._clean(ds, cleaned)
        if getattr(ds, "file_meta", None) is not None:
            self._clean(ds.file_meta, cleaned)
        self._record(ds)
        return ds

    def _record(self, ds: Dataset) -> None:
        """Record in ``ds`` that it was de-identified, how and with which options (PS3.15 E.1.1)."""
        ds.PatientIdentityRemoved = "YES"
        options = [meaning for _, meaning in self.method_codes[1:]]
        ds.DeidentificationMethod = ["PS3.15 Basic Application Level Confidentiality Profile", *options, f"medtl {__version__}"]
        items = []
        for value, meaning in self.method_codes:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(items)
        ds.LongitudinalTemporalInformationModified = "MODIFIED" if self.shift_dates else "REMOVED"

    def _clean(self, ds: Dataset, cleaned: set[int]) -> None:
        if id(ds) in cleaned:
            return
        cleaned.add(id(ds))
        for tag in list(ds.keys()):
            if tag.is_private:
                del ds[tag]
                continue
            try:
                element = ds[tag]
            except Exception:  # noqa: BLE001 - a value pydicom cannot read may hold anything: it goes
                del ds[tag]
                continue
            self._clean_element(ds, element, cleaned)

    def _clean_element(self, ds: Dataset, element: DataElement, cleaned: set[int]) -> None:
        action, vr = _action_of(int(element.tag)), element.VR
        if vr == "SQ":
            if action == "X":
                del ds[element.tag]
            elif action in ("Z", "D"):
                element.value = Sequence()
            else:
                for item in element.value:
                    self._clean(item, cleaned)
        elif self.shift_dates and vr in ("DA", "DT", "TM") and int(element.tag) not in _BIRTH:
            if vr != "TM":
                element.value = self._map(element, self.date)
        elif action is None:
            if vr == "PN":
                element.value = element.empty_value
        elif action == "X":
            del ds[element.tag]
        elif action in ("U", "U*") and vr == "UI":
            element.value = self._map(element, self.uid)
        elif action in ("Z", "U*"):
            element.value = element.empty_value
        elif action == "D":
            element.value = self._dummy(element)

    def _dummy(self, element: DataElement) -> object:
        """D: a non-empty value of the element's VR that says nothing about the patient (equal originals, equal pseudonyms)."""
        vr = element.VR
        if vr == "UI":
            return self._map(element, self.uid)
        if vr in _TEXT_VRS:
            return self._map(element, self.identifier)
        if vr in _DUMMY:
            return _DUMMY[vr]
        if vr in _NUMBER_VRS:
            return 0
        return element.empty_value

    @staticmethod
    def _map(element: DataElement, replace: Callable[[str], str]) -> str | list[str]:
        """``replace`` applied to each of the element's values (a multi-valued element stays one)."""
        values = [replace(value) for value in _values(element.value)]
        return values if isinstance(element.value, MultiValue) else values[0]


def write_deidentified(files: Iterable[Path], out_dir: Path | str, deidentifier: Deidentifier) -> list[Path]:
    """De-identified copies of the DICOM ``files`` (a series a DICOM SEG of the same export references) in ``out_dir``,
    each named by its pseudonymous SOP Instance UID (``<uid>.dcm``: no PHI in a file name), written atomically."""
    import pydicom

    from medtl.atomic import atomic_path

    out_dir = Path(out_dir)
    written = []
    for path in files:
        try:
            ds = pydicom.dcmread(path)
        except Exception as error:  # noqa: BLE001 - pydicom raises many kinds on a damaged file
            raise MedtlError(f"{path}: cannot be read to de-identify it ({type(error).__name__})") from None
        try:
            deidentifier.apply(ds)
        except MedtlError as error:
            raise MedtlError(f"{path}: {error}") from None
        destination = out_dir / f"{ds.SOPInstanceUID}.dcm"
        with atomic_path(destination) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        written.append(destination)
    return written


def refuse_burned_in(paths: Iterable[Path]) -> None:
    """MedtlError naming the first of ``paths`` (DICOM files whose pixels are to be exported de-identified) that declares
    burned-in annotation (BurnedInAnnotation YES): medtl cannot remove text from pixels."""
    import pydicom

    for path in paths:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["BurnedInAnnotation"])
        except Exception as error:  # noqa: BLE001 - pydicom raises many kinds on a damaged file
            raise MedtlError(f"{path}: cannot be read to check for burned-in annotation ({type(error).__name__})") from None
        if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
            raise MedtlError(f"{path}: the image has burned-in annotation (BurnedInAnnotation YES) that medtl cannot remove; it cannot be exported de-identified")


def phi_found(data: bytes | Path, values: Iterable[str]) -> list[str]:
    """Which of ``values`` (a name, an ID, a birth date…) occur in ``data`` (bytes, or a file's bytes).

    Each value is looked for as given, with the name separator ``^`` and spaces swapped, in upper,
    lower and title case, and each ``^``-separated name part of three or more characters on its own, encoded as
    UTF-8 and as Latin-1 (DICOM's default character set). Returns the values found (as given).
    """
    content = data.read_bytes() if isinstance(data, Path) else data
    found = []
    for value in values:
        value = str(value).strip()
        if not value:
            continue
        parts = {value, value.replace("^", " "), value.replace(" ", "^"), *(part.strip() for part in value.split("^") if len(part.strip()) >= 3)}
        forms = {form for part in parts for form in (part, part.upper(), part.lower(), part.title())}
        encoded = {form.encode(codec, errors="ignore") for form in forms for codec in ("utf-8", "latin-1")}
        if any(needle and needle in content for needle in encoded):
            found.append(value)
    return found


def patient_identity(ds: Dataset) -> list[str]:
    """The patient's name, ID, other IDs and birth date in ``ds`` (those present and not empty)."""
    return [value for keyword in ("PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate") for value in _values(ds.get(keyword)) if value]


def _values(value: object) -> list[str]:
    """An element's value(s) as text: one per value of a multi-valued element, ``[""]`` for none."""
    if isinstance(value, MultiValue):
        return [str(item) for item in value]
    return [str(value) if value is not None else ""]

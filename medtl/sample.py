"""The sample data medtl ships with."""

from __future__ import annotations

from pathlib import Path

from medtl.errors import MedtlError


def sample_dicom_dir() -> Path:
    """A real multi-patient DICOM folder with a DICOMDIR (pydicom's ``dicomdirtests``, MIT licence).

    It holds CT, MR and CR series from three patients, including a CT series with a gap and MR
    localizer series in mixed orientations: a realistic small PACS export.
    """
    import pydicom.data

    path = Path(pydicom.data.__file__).parent / "test_files" / "dicomdirtests"
    if not (path / "DICOMDIR").is_file():
        raise MedtlError(f"the sample DICOM folder is missing from the pydicom installation ({path}); reinstall pydicom")
    return path

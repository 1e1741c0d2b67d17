"""`medtl scan` lists a DICOM SEG under the series it labels (not as a non-image series), as an orphan naming the
series it references when that series is absent, and says when its frames cannot fit that series."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medtl.cli import main
from medtl.dicom.scan import scan
from medtl.dicom.segmentations import seg_series
from medtl.dicom.series import load_series
from medtl.errors import MedtlError
from medtl.export.label_export import LabelInfo, export_seg
from medtl.labels.mask_import import read_mask
from tests.dicomgen import SeriesSpec, phantom, write_series

SHAPE = (6, 20, 24)  # z, y, x
LABELS = [LabelInfo(1, "liver", (220, 40, 40)), LabelInfo(2, "lesion", (40, 220, 90))]


def drawn(shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[1:4, 3:9, 2:15] = 1
    mask[4, 12:15, 16:18] = 2
    return mask


def series_with_seg(folder: Path, description: str = "chest") -> tuple[list[Path], Path]:
    """A CT series and a SEG of it (two segments) in ``folder``."""
    files = write_series(folder / "ct", phantom(SHAPE), SeriesSpec(series_description=description, patient_id="SEGP"))
    return files, export_seg(drawn(), LABELS, files, folder / "seg" / "labels.dcm")


@pytest.fixture(autouse=True)
def private_catalog(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDTL_CATALOG", str(tmp_path / "catalog.sqlite"))


def scan_text(folder: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["scan", str(folder)]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_seg_is_listed_under_the_series_it_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    series_with_seg(tmp_path / "study")
    lines = scan_text(tmp_path / "study", capsys)
    ct = next(i for i, line in enumerate(lines) if "  CT  chest  6 instance(s)  20x24" in line)
    seg_line = lines[ct + 1]
    assert seg_line.startswith("      Series ") and "  SEG  " in seg_line  # indented under the CT series
    assert seg_line.endswith("DICOM SEG of series chest (2 segments)")
    assert not any("non-image" in line or "warning" in line for line in lines)
    assert "Problems" not in "\n".join(lines)

    assert main(["scan", str(tmp_path / "study"), "--json"]) == 0
    series = json.loads(capsys.readouterr().out)["patients"][0]["studies"][0]["series"]
    ct_uid = next(s["series_uid"] for s in series if s["modality"] == "CT")
    seg = next(s for s in series if s["modality"] == "SEG")
    assert seg["segmentation"] == {"referenced_series": [ct_uid], "segments": ["liver", "lesion"]}


def test_a_seg_whose_series_is_absent_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files, seg = series_with_seg(tmp_path / "source")
    shutil.copytree(seg.parent, tmp_path / "only_seg")
    lines = scan_text(tmp_path / "only_seg", capsys)
    uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    assert any(line.startswith("    Series ") and line.endswith(f"DICOM SEG of series {uid} (2 segments); that series is not in this folder") for line in lines)


def test_a_seg_that_does_not_fit_its_series_grid_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files, seg = series_with_seg(tmp_path / "source")
    original = pydicom.dcmread(files[0])
    # the series it references, re-exported on another grid (same UIDs, 32×28 pixels per slice)
    folder = tmp_path / "resampled"
    spec = SeriesSpec(series_description="chest", patient_id="SEGP", series_uid=original.SeriesInstanceUID,
                      study_uid=original.StudyInstanceUID, frame_of_reference_uid=original.FrameOfReferenceUID)  # fmt: skip
    resampled = write_series(folder / "ct", phantom((6, 28, 32)), spec)
    shutil.copy(seg, folder / "labels.dcm")
    lines = scan_text(folder, capsys)
    ct = next(i for i, line in enumerate(lines) if "  CT  chest  6 instance(s)  28x32" in line)
    assert lines[ct + 1].endswith("DICOM SEG of series chest (2 segments)")
    assert lines[ct + 2] == "        warning: does not fit the series: its frames are 24×20 pixels, the series' slices 32×28"
    # reading it onto the series gives the full reason, naming the file
    [found] = seg_series(scan(folder))
    with pytest.raises(MedtlError, match=r"labels.dcm: its frames of 24×20 pixels do not fit series [0-9.]+'s 32×28 pixels per slice"):
        read_mask(found.files[0].path, load_series(resampled))

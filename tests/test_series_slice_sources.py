"""Each slice of a loaded DICOM volume records its source file and SOP instance (Volume.slice_sources)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medtl.dicom.series import load_path, load_series
from medtl.dicom.volume import SliceSource, Volume
from tests.dicomgen import SeriesSpec, phantom, rotation, write_enhanced, write_series


def sop_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_a_shuffled_series_records_each_slice_in_position_order(tmp_path: Path) -> None:
    files = write_series(tmp_path / "ct", phantom((5, 8, 10)), SeriesSpec(order="shuffled", direction=rotation("x", 20)))
    volume = load_series(list(reversed(files)))  # neither file order nor instance numbers follow z
    assert volume.slice_sources == tuple(SliceSource(path, sop_uid(path)) for path in files)  # write_series returns them in z order


def test_a_slice_interpolated_into_a_gap_has_no_source(tmp_path: Path) -> None:
    files = write_series(tmp_path / "gap", phantom((6, 8, 10)), SeriesSpec(drop_slices=[2]))
    volume = load_path(tmp_path / "gap")
    assert volume.interpolated_slices == (2,)
    assert volume.slice_sources[2] is None
    assert [where.path for where in volume.slice_sources if where is not None] == files


def test_an_enhanced_object_records_the_frame_of_each_slice(tmp_path: Path) -> None:
    path = write_enhanced(tmp_path / "enhanced.dcm", phantom((4, 8, 10)), frame_order=[2, 0, 3, 1])
    volume = load_series([path])
    assert volume.slice_sources == tuple(SliceSource(path, sop_uid(path), frame) for frame in (2, 4, 1, 3))


def test_a_single_slice_records_its_file() -> None:
    path = Path(get_testdata_file("CT_small.dcm"))
    assert load_series([path]).slice_sources == (SliceSource(path, sop_uid(path)),)


def test_a_volume_refuses_a_record_of_another_length() -> None:
    with pytest.raises(ValueError, match="3 slices but 2 slice sources"):
        Volume(np.zeros((3, 4, 4)), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), slice_sources=(None, None))

"""What `medtl convert` leaves out to start fast, and that its result is the same without it.

A folder holding one uncompressed series is read once (no scan first); a `medtl convert` that ends its process,
given only uncompressed files, imports pydicom without its third-party decoder plugins; the garbage collector
does not walk what the imports made.
"""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless

import medtl.dicom.scan
from medtl.cli import main
from medtl.cli.convert_command import only_uncompressed
from medtl.dicom.raw_header import MEDIA_STORAGE_SOP_CLASS, TRANSFER_SYNTAX, file_meta
from medtl.dicom.scan import scan
from medtl.dicom.series import load_path, load_series
from medtl.errors import DicomReadError
from medtl.gc_pause import gc_paused
from tests.dicomgen import SeriesSpec, phantom, write_series

REPO = Path(__file__).resolve().parent.parent


def data(name: str) -> Path:
    return Path(get_testdata_file(name, download=False))  # type: ignore[arg-type]


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths `load_path` has the scan read (load_path imports it from its module when it needs it)."""
    seen: list[Path] = []

    def counted(path: Path, *args: object, **kwargs: object) -> object:
        seen.append(path)
        return scan(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(medtl.dicom.scan, "scan", counted)
    return seen


def renamed_against_instance_numbers(folder: Path) -> None:
    """Give the files names in the reverse order of their instance numbers, and each its own display window."""
    files = sorted(folder.iterdir())
    for index, path in enumerate(files):
        ds = pydicom.dcmread(path)
        ds.WindowCenter, ds.WindowWidth = 10 * int(ds.InstanceNumber), 400
        ds.save_as(folder / f"Z{len(files) - index:03d}.dcm")
        path.unlink()


def test_one_series_is_read_once_in_the_order_a_scan_gives(tmp_path: Path, scans: list[Path]) -> None:
    write_series(tmp_path / "ct", phantom((6, 16, 20)), SeriesSpec(order="sorted"))
    renamed_against_instance_numbers(tmp_path / "ct")
    expected = load_series(scan(tmp_path / "ct").all_series()[0].files)  # the scan's files, in its order
    volume = load_path(tmp_path / "ct")
    assert scans == []
    np.testing.assert_array_equal(volume.array, expected.array)
    assert volume.metadata == expected.metadata and volume.metadata["window_center"] == 10  # instance 1's window, as before
    assert volume.slice_sources == expected.slice_sources


def add_readme(folder: Path) -> None:
    (folder / "README.txt").write_text("exported by a viewer\n")


def add_copy(folder: Path) -> None:
    shutil.copy(sorted(folder.iterdir())[0], folder / "copy.dcm")


def add_second_series(folder: Path) -> None:
    write_series(folder / "mr", phantom((3, 16, 20)), SeriesSpec(modality="MR", series_uid="1.2.826.0.1.77"))


def add_segmentation(folder: Path) -> None:
    shutil.copy(data("liver.dcm"), folder / "seg.dcm")  # a SEG: pixels, but not an image


@pytest.mark.parametrize("add", [add_readme, add_copy, add_second_series, add_segmentation])
def test_anything_but_one_series_is_left_to_the_scan(tmp_path: Path, scans: list[Path], add: object) -> None:
    values = phantom((5, 16, 20))
    files = write_series(tmp_path / "ct", values, SeriesSpec(series_uid="1.2.826.0.1.55"))
    add(tmp_path / "ct")  # type: ignore[operator]
    np.testing.assert_array_equal(load_path(tmp_path / "ct", series_uid="1.2.826.0.1.55").array, values)
    assert scans == [tmp_path / "ct"]
    assert len(load_path(tmp_path / "ct", series_uid="1.2.826.0.1.55").slice_sources) == len(files)


def test_a_series_that_fails_when_read_once_is_refused_as_the_scan_words_it(tmp_path: Path, scans: list[Path]) -> None:
    files = write_series(tmp_path / "ct", phantom((5, 16, 20)))
    files[2].write_bytes(files[2].read_bytes()[:-40])
    with pytest.raises(DicomReadError, match=f"{files[2].name}: truncated.*it belongs to this series"):
        load_path(tmp_path / "ct")
    assert scans == [tmp_path / "ct"]


def test_only_uncompressed_reads_each_file_meta(tmp_path: Path) -> None:
    write_series(tmp_path / "ct", phantom((3, 8, 8)))
    assert only_uncompressed(tmp_path / "ct")
    assert file_meta(sorted((tmp_path / "ct").iterdir())[0])[TRANSFER_SYNTAX] == "1.2.840.10008.1.2.1"
    write_series(tmp_path / "j2k", phantom((2, 32, 32)), SeriesSpec(transfer_syntax=JPEG2000Lossless))
    assert not only_uncompressed(tmp_path / "j2k") and not only_uncompressed(tmp_path)
    shutil.copy(data("DICOMDIR"), tmp_path / "ct" / "DICOMDIR")
    assert file_meta(tmp_path / "ct" / "DICOMDIR")[MEDIA_STORAGE_SOP_CLASS] == "1.2.840.10008.1.3.10"
    assert not only_uncompressed(tmp_path / "ct")
    assert not only_uncompressed(tmp_path / "missing")
    add_readme(tmp_path / "j2k")
    assert file_meta(tmp_path / "j2k" / "README.txt") == {}


def test_file_meta_of_damaged_files_is_empty_or_partial(tmp_path: Path) -> None:
    source = sorted(write_series(tmp_path / "ct", phantom((1, 8, 8))))[0].read_bytes()
    rng = np.random.default_rng(3)
    damaged = tmp_path / "damaged.dcm"
    for case in range(300):
        data = bytearray(source[: int(rng.integers(0, 600))] if case % 2 else source)
        for position in rng.integers(128, max(129, min(len(data), 400)), size=int(rng.integers(1, 6))):
            if position < len(data):
                data[position] = int(rng.integers(0, 256))
        damaged.write_bytes(bytes(data))
        meta = file_meta(damaged)  # never raises
        assert set(meta) <= {TRANSFER_SYNTAX, MEDIA_STORAGE_SOP_CLASS} and all(isinstance(v, str) for v in meta.values())


def run_program(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "medtl", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("syntax", [None, JPEG2000Lossless])
def test_the_program_writes_what_main_writes_compressed_or_not(tmp_path: Path, syntax: str | None) -> None:
    values = phantom((4, 32, 40))
    write_series(tmp_path / "dicom", values, SeriesSpec(transfer_syntax=syntax))
    assert main(["convert", str(tmp_path / "dicom"), "-o", str(tmp_path / "in_process.nii")]) == 0
    done = run_program("convert", str(tmp_path / "dicom"), "-o", str(tmp_path / "program.nii"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.startswith(f"{tmp_path / 'program.nii'}: 40 x 32 x 4 voxels")
    assert (tmp_path / "program.nii").read_bytes() == (tmp_path / "in_process.nii").read_bytes()
    # main() in a process that goes on leaves pydicom's decoder plugins registered: tests/test_convert_cli.py


def test_resuming_the_collector_does_not_walk_what_was_made_while_paused() -> None:
    with gc_paused():
        made = [[index] for index in range(50_000)]
        assert gc.get_count()[0] >= 50_000
    assert gc.get_count()[0] < 1_000  # all of it joined the oldest generation
    assert gc.isenabled() and len(made) == 50_000

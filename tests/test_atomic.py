"""Atomic writes: all or nothing, the written file has the permissions a plain write would give it, and a write that fails
(a full disk, a read-only folder) says so naming the file asked for."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

import pytest

from medtl.atomic import WriteError, atomic_path, write_bytes_atomic, write_text_atomic
from medtl.cli import main
from medtl.errors import MedtlError
from tests.dicomgen import phantom, write_series


def test_a_written_file_gets_the_usual_permissions_not_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    write_text_atomic(target, "# report\n")
    plain = tmp_path / "plain.md"
    plain.write_text("# report\n")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    assert target.read_text() == "# report\n"


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "mask.nii.gz"
    target.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise OSError("disk full")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["mask.nii.gz"]


def no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_names_the_file_asked_for_says_why_in_words_and_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "labels.json"
    target.write_text("previous")

    def fill_the_disk(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))  # as a writer reports it: the file it was writing

    with pytest.raises(WriteError) as raised, atomic_path(target) as tmp:
        fill_the_disk(tmp)
    assert str(raised.value) == f"{target}: cannot write it: no space left on the device; the previous file is kept"
    assert isinstance(raised.value, MedtlError) and raised.value.errno == errno.ENOSPC  # still an OSError for those who catch it
    assert target.read_text() == "previous" and os.listdir(tmp_path) == ["labels.json"]


def test_a_full_disk_at_fsync_on_a_new_file_says_nothing_was_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(WriteError, match=r"new.txt: cannot write it: no space left on the device; nothing was written$"):
        write_text_atomic(tmp_path / "new.txt", "text")
    assert os.listdir(tmp_path) == []


def test_an_error_about_another_file_is_not_called_a_write_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as raised, atomic_path(tmp_path / "out.txt"):
        open(tmp_path / "missing-input.txt")  # noqa: SIM115 - the writer's own input is missing
    assert not isinstance(raised.value, WriteError)


def test_a_read_only_folder_is_named_as_such_not_the_hidden_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "outputs"
    folder.mkdir()

    def refused(*args: object, dir: str = "", **kwargs: object) -> None:  # noqa: A002 - mkstemp's own name
        raise PermissionError(errno.EACCES, "Permission denied", f"{dir}/.mask.abc123.tmp.nii.gz")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != folder)
    with pytest.raises(WriteError) as raised:
        write_text_atomic(folder / "mask.nii.gz", "x")
    assert str(raised.value) == f"{folder / 'mask.nii.gz'}: cannot write it: the folder is read-only; nothing was written"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="needs a non-root POSIX user (root ignores folder permissions)")
def test_a_really_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "outputs"
    folder.mkdir()
    (folder / "mask.nii.gz").write_text("previous")
    folder.chmod(0o555)
    try:
        with pytest.raises(WriteError, match=r"mask.nii.gz: cannot write it: the folder is read-only; the previous file is kept"):
            write_text_atomic(folder / "mask.nii.gz", "new")
        assert (folder / "mask.nii.gz").read_text() == "previous"
    finally:
        folder.chmod(0o755)


def test_convert_on_a_full_disk_names_the_output_and_keeps_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    write_series(tmp_path / "ct", phantom((3, 8, 10)))
    output = tmp_path / "ct.nii.gz"
    output.write_bytes(b"previous")
    monkeypatch.setattr(os, "fsync", no_space)
    assert main(["convert", str(tmp_path / "ct"), "-o", str(output)]) == 2
    err = capsys.readouterr().err
    assert err == f"medtl convert: error: {output}: cannot write it: no space left on the device; the previous file is kept\n"
    assert output.read_bytes() == b"previous" and sorted(os.listdir(tmp_path)) == ["ct", "ct.nii.gz"]


def test_bytes_in_parts_are_written_whole_into_folders_made_on_the_way(tmp_path: Path) -> None:
    target = tmp_path / "study" / "series" / "1.2.3.dcm"
    write_bytes_atomic(target, b"meta|", bytearray(b"data set"))
    assert target.read_bytes() == b"meta|data set" and os.listdir(target.parent) == ["1.2.3.dcm"]

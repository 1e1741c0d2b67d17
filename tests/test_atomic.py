"""Atomic writes: all or nothing, and the written file has the permissions a plain write would give it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from medtl.atomic import atomic_path, write_text_atomic


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

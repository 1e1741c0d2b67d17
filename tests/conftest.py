"""Shared fixtures. Tests never download anything: DICOM comes from pydicom, pydicom-data or tests/dicomgen."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `medtl` sets it (medtl.cli.THREAD_WAITING), before torch loads OpenMP
# Never touch the user's own catalog, settings or built sample: every test run (and the
# subprocesses it starts) gets throwaway per-user folders.
_user_dirs = Path(tempfile.mkdtemp(prefix="medtl-tests-"))
for _variable in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
    os.environ[_variable] = str(_user_dirs / _variable.lower())
os.environ["MEDTL_CATALOG"] = str(_user_dirs / "catalog.sqlite")


@pytest.fixture
def sample_dir() -> Path:
    from medtl.sample import sample_dicom_dir

    return sample_dicom_dir()

"""Shared fixtures. Tests never download anything: DICOM comes from pydicom, pydicom-data or tests/dicomgen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def sample_dir() -> Path:
    from medtl.sample import sample_dicom_dir

    return sample_dicom_dir()

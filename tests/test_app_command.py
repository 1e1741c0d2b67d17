"""`medtl app`'s console: the libraries' own log lines stay out of it unless --verbose."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from medtl.cli import app_command
from medtl.errors import MedtlError


@pytest.mark.parametrize("verbose", [False, True])
def test_pacs_and_dicom_library_logs_stay_off_the_console_unless_verbose(verbose: bool, tmp_path: Path) -> None:
    loggers = [logging.getLogger(name) for name in ("pydicom", "pynetdicom")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        with pytest.raises(MedtlError, match="no such file or folder"):  # stops before the window opens
            app_command.run(argparse.Namespace(path=tmp_path / "missing", screenshot=None, verbose=verbose))
        # pynetdicom logs "Connection refused" as an ERROR when a PACS node is down; the PACS dialogs say so, naming the node
        assert loggers[1].isEnabledFor(logging.ERROR) is verbose
        assert loggers[0].isEnabledFor(logging.WARNING) is verbose
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)

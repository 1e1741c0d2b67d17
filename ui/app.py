"""Start the desktop app: `run_app(path, screenshot)` (what `medtl app` calls).

Torch is not imported here or by anything the window needs: the window appears first, and the
training and prediction parts import torch when they are used.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from medtl.dicom.catalog import Catalog
from medtl.errors import MedtlError
from ui.qt.main_window import MainWindow
from ui.qt.settings import AppSettings
from ui.qt.theme import apply_dark_theme

log = logging.getLogger(__name__)

SCREENSHOT_SIZE = (1440, 900)
SCREENSHOT_TIMEOUT_MS = 60_000


def application() -> QApplication:
    """The QApplication (created once, themed)."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
        app.setOrganizationName("medtl")
        app.setApplicationName("medtl")
        apply_dark_theme(app)
    return app


def open_catalog() -> Catalog | None:
    """The user's catalog; without one (unwritable cache, ...) scans still work, only slower the second time."""
    try:
        return Catalog()
    except (MedtlError, OSError) as error:
        log.warning("working without a catalog: %s", error)
        return None


def run_app(path: Path | None = None, screenshot: Path | None = None) -> int:
    """Show the window on ``path`` (default: the real-anatomy sample study, built in the background on first use);
    with ``screenshot``, save a PNG of it once the first image series is shown, and exit (1 if nothing could be
    shown within a minute).

    A screenshot run uses fresh settings, kept nowhere: it always shows the default layout, and it leaves
    the user's window layout and recent folders as they were.
    """
    app = application()
    with tempfile.TemporaryDirectory(prefix="medtl-screenshot-") as scratch:
        settings = AppSettings(QSettings(str(Path(scratch) / "settings.ini"), QSettings.Format.IniFormat)) if screenshot else AppSettings()
        window = MainWindow(settings, catalog=open_catalog())
        if screenshot is None:
            window.projects.open_at_start()  # the last project, else the default one (the label store moves in once)
        if screenshot is not None:
            window.resize(*SCREENSHOT_SIZE)
            _exit_after_screenshot(app, window, screenshot)
        window.show()
        if path is None:
            window.open_sample()
        else:
            window.open_path(path)
        return app.exec()


def _exit_after_screenshot(app: QApplication, window: MainWindow, target: Path) -> None:
    def save() -> None:
        app.processEvents()
        if not window.grab().save(str(target)):
            print(f"medtl app: error: cannot write the screenshot {target}", file=sys.stderr)
            app.exit(2)
            return
        window.close()
        app.exit(0)

    def give_up(reason: str) -> None:
        print(f"medtl app: error: no image series shown ({reason})", file=sys.stderr)
        window.close()
        app.exit(1)

    window.series_shown.connect(lambda _model: QTimer.singleShot(200, save))
    window.task_failed.connect(give_up)
    window.scan_finished.connect(lambda _result: not window.browser.image_series() and give_up("the folder holds no image series"))
    QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, lambda: give_up("timed out"))

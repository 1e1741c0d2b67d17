"""A real X11 window under Xvfb: the screen (not the widget's own rendering) shows the viewer and its image.

Skipped where `xvfb-run` is not installed (apt: xvfb, plus the xcb libraries Qt's xcb plugin needs:
libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0 libxcb-cursor0).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from tests.dicomgen import SeriesSpec, phantom, write_series
from tests.test_ui_app import image_array

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys
from PySide6.QtCore import QSettings, QTimer
from ui.app import application
from ui.qt.main_window import MainWindow
from ui.qt.settings import AppSettings

app = application()
window = MainWindow(AppSettings(QSettings(sys.argv[3], QSettings.Format.IniFormat)))
window.setGeometry(20, 20, 1200, 800)

def capture():
    frame = window.frameGeometry()
    shot = app.primaryScreen().grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
    shot.save(sys.argv[2])
    print("platform", app.platformName(), flush=True)
    window.close()
    app.exit(0)

window.series_shown.connect(lambda _model: QTimer.singleShot(500, capture))
window.task_failed.connect(lambda message: (print(message), app.exit(1)))
window.show()
window.open_path(sys.argv[1])
sys.exit(app.exec())
"""


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")
def test_real_window_on_an_x_server_shows_the_image(tmp_path: Path) -> None:
    folder = tmp_path / "ct"
    write_series(folder, phantom((8, 64, 72)), SeriesSpec(series_description="phantom"))
    target = tmp_path / "screen.png"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "xcb", "MEDTL_CATALOG": str(tmp_path / "catalog.sqlite")}
    command = [
        "xvfb-run",
        "-a",
        "-s",
        "-screen 0 1280x900x24",
        sys.executable,
        "-c",
        SCRIPT,
        str(folder),
        str(target),
        str(tmp_path / "s.ini"),
    ]
    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "platform xcb" in finished.stdout
    grey = image_array(QImage(str(target)), grey=True)
    assert grey.shape[0] >= 780 and grey.shape[1] >= 1180
    centre = grey[grey.shape[0] // 3 : 2 * grey.shape[0] // 3, grey.shape[1] // 3 : 2 * grey.shape[1] // 3]
    assert 100 < np.median(centre) < 220  # the phantom's soft tissue fills the middle of the viewer...
    assert (grey < 8).mean() > 0.05  # ...whose background is black

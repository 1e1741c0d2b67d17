"""`medtl app` as a user starts it: a screenshot of the first series, and no torch at start (own processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

from ui.app import SCREENSHOT_SIZE

ROOT = Path(__file__).resolve().parent.parent


def image_array(image: QImage, grey: bool = False) -> np.ndarray:
    """The pixels of ``image`` as ``[h, w]`` grey or ``[h, w, 3]`` RGB uint8 (a copy)."""
    converted = image.convertToFormat(QImage.Format.Format_Grayscale8 if grey else QImage.Format.Format_RGB888)
    height, width = converted.height(), converted.width()
    shape = (height, width) if grey else (height, width, 3)
    rows = np.array(converted.constBits(), dtype=np.uint8).reshape(height, converted.bytesPerLine())
    return rows[:, : int(np.prod(shape[1:]))].reshape(shape).copy()


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": str(ROOT),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # QSettings of this run only
        "MEDTL_CATALOG": str(tmp_path / "catalog.sqlite"),
    }
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_screenshot_of_the_sample_without_importing_torch(tmp_path: Path) -> None:
    """The CLI opens the bundled sample, shows its first loadable image series, saves the window, exits 0;
    by then neither torch nor MONAI has been imported."""
    target = tmp_path / "window.png"
    code = (
        "import sys\nfrom medtl.cli import main\n"
        f"code = main(['app', '--screenshot', {str(target)!r}])\n"
        "print('heavy:', sorted(m for m in ('torch', 'monai') if m in sys.modules))\n"
        "sys.exit(code)\n"
    )
    finished = run_python(code, tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert "heavy: []" in finished.stdout
    grey = image_array(QImage(str(target)), grey=True)
    assert (grey.shape[1], grey.shape[0]) == SCREENSHOT_SIZE
    assert grey.std() > 10 and len(np.unique(grey)) > 50  # chrome, text and an image, not a blank frame


def test_app_refuses_a_missing_path(tmp_path: Path) -> None:
    finished = run_python(f"from medtl.cli import main; raise SystemExit(main(['app', {str(tmp_path / 'nope')!r}]))", tmp_path)
    assert finished.returncode == 2 and "no such file or folder" in finished.stderr

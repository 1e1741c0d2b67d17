"""Bundled icons and style sheets (``resources/`` at the repository root)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

RESOURCES = Path(__file__).resolve().parents[2] / "resources"  # ui/qt/resources.py -> the repository root


@cache
def icon(name: str) -> QIcon:
    """The icon ``resources/icons/NAME.svg``; raises if it is not bundled (a packaging error, not a user one)."""
    path = RESOURCES / "icons" / f"{name}.svg"
    if not path.is_file():
        raise FileNotFoundError(f"icon {name!r} is missing from {path.parent}")
    return QIcon(str(path))


def stylesheet(name: str) -> str:
    """The text of ``resources/style/NAME.qss``."""
    return (RESOURCES / "style" / f"{name}.qss").read_text(encoding="utf-8")

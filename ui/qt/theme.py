"""The dark reading-room theme: Fusion style, a dark palette (for what style sheets do not reach) and `dark.qss`."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from ui.qt.resources import stylesheet

_PALETTE = {
    QPalette.ColorRole.Window: "#15181e",
    QPalette.ColorRole.WindowText: "#d5dbe3",
    QPalette.ColorRole.Base: "#12151a",
    QPalette.ColorRole.AlternateBase: "#171b21",
    QPalette.ColorRole.Text: "#d5dbe3",
    QPalette.ColorRole.Button: "#1d222b",
    QPalette.ColorRole.ButtonText: "#d5dbe3",
    QPalette.ColorRole.Highlight: "#2b5a8a",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.ToolTipBase: "#1d222b",
    QPalette.ColorRole.ToolTipText: "#d5dbe3",
    QPalette.ColorRole.PlaceholderText: "#6b7482",
    QPalette.ColorRole.Link: "#4fb3ff",
}


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    for role, colour in _PALETTE.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5c6573"))
    app.setPalette(palette)
    app.setStyleSheet(stylesheet("dark"))

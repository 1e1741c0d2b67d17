"""The dark reading-room theme: Fusion style, a dark palette (for what style sheets do not reach) and `dark.qss`."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleOption, QWidget

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


_INDICATORS = (QStyle.PrimitiveElement.PE_IndicatorCheckBox, QStyle.PrimitiveElement.PE_IndicatorItemViewItemCheck, QStyle.PrimitiveElement.PE_IndicatorRadioButton)
_OUTLINE, _DISABLED_OUTLINE = QColor("#7d8796"), QColor("#3a414d")


class ReadingRoomStyle(QProxyStyle):
    """Fusion, with a light outline round check boxes and radio buttons: Fusion draws theirs darker than the dark
    window, so an unticked box could not be seen."""

    def __init__(self) -> None:
        super().__init__("Fusion")

    def drawPrimitive(self, element: QStyle.PrimitiveElement, option: QStyleOption, painter: QPainter, widget: QWidget | None = None) -> None:
        super().drawPrimitive(element, option, painter, widget)
        if element not in _INDICATORS:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(_OUTLINE if option.state & QStyle.StateFlag.State_Enabled else _DISABLED_OUTLINE)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        rect = QRectF(option.rect).adjusted(0.5, 0.5, -1.5, -1.5)
        if element == QStyle.PrimitiveElement.PE_IndicatorRadioButton:
            painter.drawEllipse(rect)
        else:
            painter.drawRoundedRect(rect, 2, 2)
        painter.restore()


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle(ReadingRoomStyle())
    palette = QPalette()
    for role, colour in _PALETTE.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5c6573"))
    app.setPalette(palette)
    app.setStyleSheet(stylesheet("dark"))

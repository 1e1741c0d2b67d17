"""`CurvePlot`: a small line chart (training loss and metrics against epochs, ROC curves), painted with QPainter.

Two y axes: losses on the left, metrics on the right (each scaled to its own range), so curves
of different units share one chart without a plotting library.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

AXIS_COLOUR = QColor("#7d8796")
_MARGIN = (46, 12, 46, 24)  # left, top, right, bottom


@dataclass
class Curve:
    name: str
    points: list[tuple[float, float]]
    colour: QColor
    right_axis: bool = False  # scaled on the right-hand axis
    width: float = 1.5


class CurvePlot(QWidget):
    """Draws :attr:`curves` against ``x_label`` (from 0); call :meth:`set_curves` to replace them."""

    def __init__(
        self, parent: QWidget | None = None, x_label: str = "epoch", empty_text: str = "Curves appear once training runs", legend_at_bottom: bool = False
    ) -> None:
        super().__init__(parent)
        self.curves: list[Curve] = []
        self.x_label, self.empty_text, self.legend_at_bottom = x_label, empty_text, legend_at_bottom
        self.setMinimumHeight(180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_curves(self, curves: list[Curve]) -> None:
        self.curves = curves
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#101318"))
        left, top, right, bottom = _MARGIN
        area = QRectF(left, top, self.width() - left - right, self.height() - top - bottom)
        painter.setPen(QPen(AXIS_COLOUR, 1))
        painter.drawRect(area)
        drawn = [curve for curve in self.curves if curve.points]
        if not drawn:
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, self.empty_text)
            painter.end()
            return
        x_max = max(max(x for x, _ in curve.points) for curve in drawn)
        for right_axis in (False, True):
            side = [curve for curve in drawn if curve.right_axis == right_axis]
            if side:
                self._draw_side(painter, area, side, x_max, right_axis)
        _draw_legend(painter, area, drawn, self.legend_at_bottom)
        painter.setPen(QPen(AXIS_COLOUR, 1))
        painter.drawText(QRectF(area.left(), area.bottom() + 4, area.width(), 16), Qt.AlignmentFlag.AlignRight, f"{self.x_label} {x_max:g}")
        painter.end()

    def _draw_side(self, painter: QPainter, area: QRectF, curves: list[Curve], x_max: float, right_axis: bool) -> None:
        ys = [y for curve in curves for _, y in curve.points]
        low, high = min(ys), max(ys)
        if high - low < 1e-12:
            low, high = low - 0.5, high + 0.5

        def at(x: float, y: float) -> QPointF:
            return QPointF(area.left() + area.width() * x / max(x_max, 1e-9), area.bottom() - area.height() * (y - low) / (high - low))

        for curve in curves:
            path = QPainterPath(at(*curve.points[0]))
            for point in curve.points[1:]:
                path.lineTo(at(*point))
            painter.setPen(QPen(curve.colour, curve.width))
            painter.drawPath(path)
            if len(curve.points) == 1:
                painter.drawEllipse(at(*curve.points[0]), 2.5, 2.5)
        painter.setPen(QPen(AXIS_COLOUR, 1))
        align = Qt.AlignmentFlag.AlignLeft if right_axis else Qt.AlignmentFlag.AlignRight
        x = area.right() + 4 if right_axis else 0
        width = _MARGIN[2] - 6 if right_axis else area.left() - 4
        painter.drawText(QRectF(x, area.top() - 6, width, 14), align, f"{high:.3g}")
        painter.drawText(QRectF(x, area.bottom() - 8, width, 14), align, f"{low:.3g}")


def _draw_legend(painter: QPainter, area: QRectF, curves: list[Curve], at_bottom: bool) -> None:
    """One line per curve, top left (or bottom right, out of the way of curves that rise early): a stroke of its colour
    and its name (right-axis curves say so)."""
    height = 14 * len(curves) + 2
    left = area.left() + (area.width() * 0.3 if at_bottom else 2)
    box = QRectF(left, area.bottom() - height - 2 if at_bottom else area.top() + 2, area.right() - left - 2, height)
    painter.fillRect(box, QColor(16, 19, 24, 190))
    y = box.top() + 8
    for curve in curves:
        painter.setPen(QPen(curve.colour, curve.width + 0.5))
        painter.drawLine(QPointF(box.left() + 4, y), QPointF(box.left() + 18, y))
        painter.setPen(QPen(curve.colour, 1))
        label = f"{curve.name} (right axis)" if curve.right_axis else curve.name
        painter.drawText(QRectF(box.left() + 22, y - 7, box.width() - 24, 14), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)
        y += 14

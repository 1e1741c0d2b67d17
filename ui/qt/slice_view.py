"""`SliceView`: the widget that paints one plane of a :class:`ViewerModel` with its annotations.

It owns only screen state (zoom, pan); everything else lives in the model. Painted on top of the
image: orientation letters, corner text, a scale bar, the crosshair (in multi-plane layouts) and a
colour bar for each visible heatmap layer.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from medtl.render.colours import colormap_table
from medtl.render.window import WindowLevel
from ui.models.label_editor import PAINTING_TOOLS, Tool
from ui.models.overlays import HeatmapLayer
from ui.models.prompt_marks import PromptMarks, engine_plane
from ui.models.view_plane import ViewPlane
from ui.models.viewer_model import PixelInfo, ViewerModel

# Listed in the shortcuts dialog; handled in SliceView's mouse events below.
MOUSE_GESTURES = (
    ("Wheel", "next / previous slice"),
    ("Ctrl + wheel", "zoom about the pointer"),
    ("Right drag", "window / level (horizontal: width, vertical: level)"),
    ("Middle drag, Shift + left drag", "pan"),
    ("Left click / drag", "move the crosshair (1×3, 2×2 layouts) and read the pixel; with the brush, eraser or threshold brush: paint"),
    ("Left drag (lasso), Shift + drag", "fill the region dragged round; with Shift: erase it"),
    ("Ctrl + left drag (threshold brush)", "paint the pixels within the threshold range inside the box"),
    ("Left click (region growing)", "paint the connected region of similar intensity"),
    ("Left drag (AI box tool)", "draw a box: the AI model outlines the structure in it"),
    ("Left click, Shift + click or right click (AI box tool)", "add a spot to the AI mask, or take one away"),
    ("Double click", "fit the image to the view"),
)

TEXT_COLOUR = QColor(220, 225, 230)
MARKER_COLOUR = QColor(255, 210, 90)
CROSSHAIR_COLOUR = QColor(90, 200, 255, 200)
PROMPT_COLOUR = QColor(120, 255, 160)
INCLUDE_COLOUR, EXCLUDE_COLOUR = QColor(80, 230, 120), QColor(255, 80, 80)
_CLICK_PIXELS = 4  # a press and release closer than this is a click, not a box
_ZOOM_STEP = 1.25
_ZOOM_RANGE = (0.1, 40.0)
_CROSSHAIR_GAP = 8  # screen pixels left open around the crosshair centre


class SliceView(QWidget):
    """One plane of a volume, with zoom (1 = fit), pan and mouse interaction."""

    hovered = Signal(object)  # PixelInfo | None under the pointer
    activated = Signal()  # the user clicked or scrolled in this view
    stroke_ended = Signal()  # a brush or eraser stroke changed the editable label
    prompt_box = Signal(object, int, object)  # plane, slice, (row0, column0, row1, column1): a box dragged with the AI box tool
    prompt_point = Signal(object, int, float, float, bool)  # plane, slice, row, column, include: a click with the AI box tool

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model: ViewerModel | None = None
        self.plane: ViewPlane | None = None
        self.zoom = 1.0
        self.pan = QPointF(0, 0)
        self.show_crosshair = False
        self.tool = Tool.NAVIGATE
        self._pointer: QPointF | None = None  # where the brush outline is drawn
        self._pixels: np.ndarray | None = None  # keeps the QImage's buffer alive
        self._image: QImage | None = None
        self._dirty = True
        self._drag: tuple[Qt.MouseButton, QPointF, WindowLevel | QPointF] | None = None
        self._box: tuple[QPointF, QPointF] | None = None  # the AI or threshold box being dragged (widget points)
        self._lasso: list[QPointF] | None = None  # the lasso path being dragged (widget points)
        self.prompt_marks: PromptMarks | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def set_model(self, model: ViewerModel | None, plane: ViewPlane | None) -> None:
        if self.model is not None:
            self.model.changed.disconnect(self.invalidate)
        self.model, self.plane = model, plane
        if model is not None:
            model.changed.connect(self.invalidate)
        self.fit()

    def invalidate(self) -> None:
        """The model changed: render again at the next paint."""
        self._dirty = True
        self.update()

    def fit(self) -> None:
        self.zoom, self.pan = 1.0, QPointF(0, 0)
        self.invalidate()

    def zoom_by(self, factor: float, about: QPointF | None = None) -> None:
        """Zoom by ``factor`` keeping the point ``about`` (default: the view centre) still."""
        new_zoom = min(max(self.zoom * factor, _ZOOM_RANGE[0]), _ZOOM_RANGE[1])
        if about is not None:
            centre = QPointF(self.width() / 2, self.height() / 2) + self.pan
            self.pan += (about - centre) * (1 - new_zoom / self.zoom)
        self.zoom = new_zoom
        self.update()

    def rendered_image(self) -> QImage | None:
        """The current slice's pixels (rendered now if the model changed)."""
        if self.model is None or self.plane is None:
            return None
        if self._dirty or self._image is None:
            self._pixels = self.model.render(self.plane)
            rows, columns = self._pixels.shape[:2]
            self._image = QImage(self._pixels.data, columns, rows, columns * 4, QImage.Format.Format_RGB32)
            self._dirty = False
        return self._image

    def image_rect(self) -> QRectF:
        """Where the slice lies on the widget: fitted with the pixel spacing's aspect, then zoomed and panned."""
        assert self.model is not None and self.plane is not None
        rows, columns, _ = self.plane.size(self.model.volume.shape)
        width_mm, height_mm = (n * s for n, s in zip((columns, rows), self.plane.pixel_spacing(self.model.volume.spacing)))
        scale = min(self.width() / width_mm, self.height() / height_mm) * self.zoom
        size = QPointF(width_mm * scale, height_mm * scale)
        top_left = QPointF(self.width(), self.height()) / 2 + self.pan - size / 2
        return QRectF(top_left.x(), top_left.y(), size.x(), size.y())

    def image_position(self, point: QPointF) -> tuple[float, float]:
        """(row, column) of ``point`` in continuous image coordinates, pixel centres at integers (round for the pixel)."""
        assert self.model is not None and self.plane is not None
        rows, columns, _ = self.plane.size(self.model.volume.shape)
        rect = self.image_rect()
        column = (point.x() - rect.left()) / rect.width() * columns - 0.5
        row = (point.y() - rect.top()) / rect.height() * rows - 0.5
        return row, column

    def pixel_under(self, point: QPointF) -> PixelInfo | None:
        if self.model is None or self.plane is None:
            return None
        return self.model.pixel_at(self.plane, *self.image_position(point))

    # --- painting ----------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.black)
        image = self.rendered_image()
        if image is None or self.model is None or self.plane is None:
            painter.end()
            return
        rect = self.image_rect()
        magnified = rect.width() >= 4 * image.width()  # then show crisp pixels, as reading them individually needs
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not magnified)
        painter.drawImage(rect, image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.show_crosshair:
            self._paint_crosshair(painter, rect)
        self._paint_orientation(painter)
        self._paint_corner_text(painter)
        self._paint_scale_bar(painter, rect)
        self._paint_colour_bars(painter)
        self._paint_brush(painter, rect)
        self._paint_lasso(painter)
        self._paint_prompt(painter, rect)
        if self.hasFocus() and self.show_crosshair:
            painter.setPen(QPen(CROSSHAIR_COLOUR, 2))
            painter.drawRect(self.rect().adjusted(1, 1, -1, -1))
        painter.end()

    def _paint_crosshair(self, painter: QPainter, rect: QRectF) -> None:
        assert self.model is not None and self.plane is not None
        rows, columns, _ = self.plane.size(self.model.volume.shape)
        row, column, _ = self.plane.from_index(self.model.cursor, self.model.volume.shape)
        x = rect.left() + (column + 0.5) * rect.width() / columns
        y = rect.top() + (row + 0.5) * rect.height() / rows
        painter.setPen(QPen(CROSSHAIR_COLOUR, 1))
        for start, end in (
            (QPointF(rect.left(), y), QPointF(x - _CROSSHAIR_GAP, y)),
            (QPointF(x + _CROSSHAIR_GAP, y), QPointF(rect.right(), y)),
            (QPointF(x, rect.top()), QPointF(x, y - _CROSSHAIR_GAP)),
            (QPointF(x, y + _CROSSHAIR_GAP), QPointF(x, rect.bottom())),
        ):
            painter.drawLine(start, end)

    def _paint_brush(self, painter: QPainter, rect: QRectF) -> None:
        """The brush or eraser outline under the pointer, at its true size in mm."""
        if not self._painting() or self._pointer is None:
            return
        editor = self.model.editor  # type: ignore[union-attr]
        assert editor is not None and self.plane is not None
        rows, columns, _ = self.plane.size(self.model.volume.shape)  # type: ignore[union-attr]
        width_mm, height_mm = self.plane.pixel_spacing(self.model.volume.spacing)  # type: ignore[union-attr]
        radius_x = editor.radius_mm * rect.width() / (columns * width_mm)
        radius_y = editor.radius_mm * rect.height() / (rows * height_mm)
        painter.setPen(QPen(MARKER_COLOUR if self.tool is Tool.ERASER else TEXT_COLOUR, 1, Qt.PenStyle.DashLine if editor.in_3d else Qt.PenStyle.SolidLine))
        painter.drawEllipse(self._pointer, radius_x, radius_y)

    def _paint_lasso(self, painter: QPainter) -> None:
        """The lasso path being dragged, closed back to its start."""
        if self._lasso is None or len(self._lasso) < 2:
            return
        painter.setPen(QPen(PROMPT_COLOUR, 1.5, Qt.PenStyle.DashLine))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPolygon(QPolygonF(self._lasso))

    def set_prompt_marks(self, marks: PromptMarks | None) -> None:
        self.prompt_marks = marks
        self.update()

    def _paint_prompt(self, painter: QPainter, rect: QRectF) -> None:
        """The AI box being dragged, and the box and clicks of the current prompt when it is on this slice."""
        assert self.model is not None and self.plane is not None
        rows, columns, _ = self.plane.size(self.model.volume.shape)

        def at(row: float, column: float) -> QPointF:
            return QPointF(rect.left() + (column + 0.5) * rect.width() / columns, rect.top() + (row + 0.5) * rect.height() / rows)

        painter.setBrush(Qt.BrushStyle.NoBrush)
        if self._box is not None:
            painter.setPen(QPen(PROMPT_COLOUR, 1.5, Qt.PenStyle.DashLine))
            painter.drawRect(QRectF(*self._box).normalized())
        marks = self.prompt_marks
        if marks is None or marks.plane != self.plane or marks.index != self.model.slice_index(self.plane):
            return
        painter.setPen(QPen(PROMPT_COLOUR, 1.5))
        painter.drawRect(QRectF(at(marks.box[0], marks.box[1]), at(marks.box[2], marks.box[3])).normalized())
        for row, column, include in marks.points:
            painter.setPen(QPen(QColor(0, 0, 0), 1))
            painter.setBrush(INCLUDE_COLOUR if include else EXCLUDE_COLOUR)
            painter.drawEllipse(at(row, column), 4.5, 4.5)
        painter.setBrush(Qt.BrushStyle.NoBrush)

    def _paint_orientation(self, painter: QPainter) -> None:
        assert self.model is not None and self.plane is not None
        labels = self.model.edge_labels(self.plane)
        if labels is None:
            return
        painter.setFont(_font(13, bold=True))
        w, h, m = self.width(), self.height(), 6
        flags = Qt.AlignmentFlag
        for text, box, align in (
            (labels.left, QRectF(m, 0, 60, h), flags.AlignLeft | flags.AlignVCenter),
            (labels.right, QRectF(w - 60 - m, 0, 60, h), flags.AlignRight | flags.AlignVCenter),
            (labels.top, QRectF(0, m, w, 24), flags.AlignHCenter | flags.AlignTop),
            (labels.bottom, QRectF(0, h - 24 - m, w, 24), flags.AlignHCenter | flags.AlignBottom),
        ):
            _shadowed_text(painter, box, align, text, MARKER_COLOUR)

    def _paint_corner_text(self, painter: QPainter) -> None:
        """Four corner blocks, each line elided to under half the width so the edge letters stay clear."""
        assert self.model is not None and self.plane is not None
        corners = self.model.corner_text(self.plane)
        painter.setFont(_font(10))
        metrics = painter.fontMetrics()
        room = max(self.width() // 2 - 20, 40)
        box = QRectF(self.rect()).adjusted(8, 6, -8, -6)
        flags = Qt.AlignmentFlag
        for lines, align in (
            (corners.top_left, flags.AlignLeft | flags.AlignTop),
            (corners.top_right, flags.AlignRight | flags.AlignTop),
            (corners.bottom_left, flags.AlignLeft | flags.AlignBottom),
            (corners.bottom_right + [f"zoom {self.zoom:.2f}"], flags.AlignRight | flags.AlignBottom),
        ):
            text = "\n".join(metrics.elidedText(line, Qt.TextElideMode.ElideRight, room) for line in lines)
            _shadowed_text(painter, box, align, text, TEXT_COLOUR)

    def _paint_scale_bar(self, painter: QPainter, rect: QRectF) -> None:
        """A bar of a round length (1, 2 or 5 x 10^k mm) at most a fifth of the view wide, above the bottom letter."""
        assert self.model is not None and self.plane is not None
        columns = self.plane.size(self.model.volume.shape)[1]
        mm_per_screen_pixel = columns * self.plane.pixel_spacing(self.model.volume.spacing)[0] / rect.width()
        length_mm = nice_length(self.width() / 5 * mm_per_screen_pixel)
        length = length_mm / mm_per_screen_pixel
        y = self.height() - 40
        left = (self.width() - length) / 2
        painter.setPen(QPen(TEXT_COLOUR, 1.5))
        painter.drawLine(QPointF(left, y), QPointF(left + length, y))
        for tick in range(6):
            x = left + length * tick / 5
            painter.drawLine(QPointF(x, y), QPointF(x, y - (6 if tick in (0, 5) else 3)))
        painter.setFont(_font(9))
        label = f"{length_mm:g} mm" if length_mm >= 1 else f"{length_mm * 1000:g} µm"
        painter.drawText(QRectF(left - 40, y - 24, length + 80, 16), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, label)

    def _paint_colour_bars(self, painter: QPainter) -> None:
        assert self.model is not None
        heatmaps = [layer for layer in self.model.layers if isinstance(layer, HeatmapLayer) and layer.visible]
        painter.setFont(_font(9))
        for number, layer in enumerate(heatmaps):
            bar = QRectF(self.width() - 80 - 50 * number, self.height() * 0.3, 14, self.height() * 0.4)
            colours = np.ascontiguousarray(colormap_table(layer.colormap)[::-1][:, None, :])
            image = QImage(colours.data, 1, 256, 3, QImage.Format.Format_RGB888)
            painter.drawImage(bar, image)
            painter.setPen(QPen(TEXT_COLOUR, 1))
            painter.drawRect(bar)
            painter.drawText(QPointF(bar.right() + 3, bar.top() + 8), f"{layer.vmax:g}")
            painter.drawText(QPointF(bar.right() + 3, bar.bottom()), f"{layer.vmin:g}")

    # --- interaction -------------------------------------------------------------------------

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt API
        if self.model is None or self.plane is None:
            return
        self.activated.emit()
        steps = event.angleDelta().y() / 120
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_by(_ZOOM_STEP**steps, event.position())
        elif steps:
            self.model.step(self.plane, -int(math.copysign(max(1, abs(round(steps))), steps)))
            self.hovered.emit(self.pixel_under(event.position()))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self.model is None or self.plane is None:
            return
        self.activated.emit()
        button = event.button()
        shift = event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        if button == Qt.MouseButton.LeftButton and self._prompting():
            if shift:
                self._emit_point(event.position(), include=False)
            else:
                self._box = (event.position(), event.position())
        elif button == Qt.MouseButton.LeftButton and self._editing(Tool.THRESHOLD) and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self._box = (event.position(), event.position())
        elif button == Qt.MouseButton.LeftButton and self._editing(Tool.LASSO):
            self._lasso = [event.position()]
        elif button == Qt.MouseButton.LeftButton and self._editing(Tool.GROW):
            self._grow_at(event.position())
        elif button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and shift):
            self._drag = (Qt.MouseButton.MiddleButton, event.position(), QPointF(self.pan))
        elif button == Qt.MouseButton.RightButton:
            self._drag = (button, event.position(), self.model.window_of(self.plane))
        elif button == Qt.MouseButton.LeftButton and self._painting():
            assert self.model.editor is not None
            self._drag = (button, event.position(), QPointF())
            self.model.editor.begin(self.plane, self.model.slice_index(self.plane))
            self._paint_at(event.position())
        elif button == Qt.MouseButton.LeftButton:
            self._drag = (button, event.position(), QPointF())
            self._move_cursor(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self.model is None or self.plane is None:
            return
        if self._box is not None:
            self._box = (self._box[0], event.position())
            self.update()
        if self._lasso is not None:
            self._lasso.append(event.position())
            self.update()
        if self._drag is not None:
            button, start, initial = self._drag
            delta = event.position() - start
            if button == Qt.MouseButton.MiddleButton and isinstance(initial, QPointF):
                self.pan = initial + delta
                self.update()
            elif button == Qt.MouseButton.RightButton and isinstance(initial, WindowLevel):
                sensitivity = max(self.model.initial_window.width, 10.0) / 256
                self.model.set_window(initial.dragged(delta.x(), delta.y(), sensitivity), self.plane)
            elif button == Qt.MouseButton.LeftButton and self._painting():
                self._paint_at(event.position())
            elif button == Qt.MouseButton.LeftButton:
                self._move_cursor(event.position())
        if self.tool is not Tool.NAVIGATE:
            self._pointer = event.position()
            self.update()
        self.hovered.emit(self.pixel_under(event.position()))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._box is not None:
            start, self._box = self._box[0], None
            self.update()
            if self.tool is Tool.THRESHOLD:
                self._threshold_released(start, event.position())
            else:
                self._prompt_released(start, event.position())
        elif self._drag is not None and self._drag[0] == Qt.MouseButton.RightButton and self._prompting() and _is_click(self._drag[1], event.position()):
            self._emit_point(event.position(), include=False)
        elif self._lasso is not None:
            path, self._lasso = self._lasso + [event.position()], None
            self._lasso_released(path, erase=bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
        if self._drag is not None and self._drag[0] == Qt.MouseButton.LeftButton and self._painting():
            assert self.model is not None and self.model.editor is not None
            if self.model.editor.end() is not None:
                self.stroke_ended.emit()
        self._drag = None

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.LeftButton:
            self.fit()

    def leaveEvent(self, event: object) -> None:  # noqa: N802 - Qt API
        self._pointer = None
        self.update()
        self.hovered.emit(None)

    def _painting(self) -> bool:
        return self._editing(*PAINTING_TOOLS)

    def _editing(self, *tools: Tool) -> bool:
        """One of ``tools`` is active on a slice (not a projection) of a series with an editable label."""
        editable = self.model is not None and self.model.editor is not None and self.plane is not None and not self.plane.projection
        return self.tool in tools and editable

    def _lasso_released(self, path: list[QPointF], erase: bool) -> None:
        """Fill (or erase) the region inside the lasso ``path``."""
        assert self.model is not None and self.model.editor is not None and self.plane is not None
        points = [self.image_position(point) for point in path]
        if self.model.editor.lasso(self.plane, self.model.slice_index(self.plane), points, erase=erase) is not None:
            self.model.layer_changed()
            self.stroke_ended.emit()
        else:
            self.update()

    def _threshold_released(self, start: QPointF, end: QPointF) -> None:
        """Paint the pixels within the threshold band inside the box dragged from ``start`` to ``end``."""
        assert self.model is not None and self.model.editor is not None and self.plane is not None
        corners = (*self.image_position(start), *self.image_position(end))
        image = self.model.volume.array if not self.model.volume.is_rgb else self.model.volume.array.mean(axis=-1)
        if self.model.editor.threshold_box(self.plane, self.model.slice_index(self.plane), corners, image) is not None:
            self.model.layer_changed()
            self.stroke_ended.emit()

    def _grow_at(self, point: QPointF) -> None:
        """Grow a region from the pixel under ``point``."""
        assert self.model is not None and self.model.editor is not None and self.plane is not None
        model, plane, editor = self.model, self.plane, self.model.editor
        index = model.slice_index(plane)
        image = model.volume.array if not model.volume.is_rgb else model.volume.array.mean(axis=-1)
        cut = model.cuts.get(plane, image, index) if plane.computed else plane.extract(image, index)
        if editor.grow(plane, index, *self.image_position(point), image, cut, model.volume.spacing) is not None:
            model.layer_changed()
            self.stroke_ended.emit()

    def _prompting(self) -> bool:
        """The AI box tool is active on a grid view of a series with an editable label."""
        editable = self.model is not None and self.model.editor is not None and self.plane is not None
        return self.tool is Tool.BOX and editable and engine_plane(self.plane) is not None  # type: ignore[arg-type]

    def _prompt_released(self, start: QPointF, end: QPointF) -> None:
        """A left press released with the AI box tool: a click includes the spot, a drag draws a box."""
        assert self.model is not None and self.plane is not None
        index = self.model.slice_index(self.plane)
        if _is_click(start, end):
            self._emit_point(end, include=True)
        else:
            self.prompt_box.emit(self.plane, index, (*self.image_position(start), *self.image_position(end)))

    def _emit_point(self, point: QPointF, include: bool) -> None:
        assert self.model is not None and self.plane is not None
        self.prompt_point.emit(self.plane, self.model.slice_index(self.plane), *self.image_position(point), include)

    def _paint_at(self, point: QPointF) -> None:
        """Paint the open stroke at ``point`` (erasing with the eraser) and show the result."""
        assert self.model is not None and self.model.editor is not None
        row, column = self.image_position(point)
        volume = self.model.volume
        image = volume.array if self.tool is Tool.THRESHOLD and not volume.is_rgb else None
        self.model.editor.paint(row, column, volume.spacing, erase=self.tool is Tool.ERASER, image=image)
        self.model.layer_changed()

    def _move_cursor(self, point: QPointF) -> None:
        """Put the crosshair on the voxel under ``point`` (within this plane's current slice)."""
        if not self.show_crosshair:
            return
        assert self.model is not None and self.plane is not None
        row, column = self.image_position(point)
        self.model.set_cursor(self.plane.to_index(row, column, self.model.slice_index(self.plane), self.model.volume.shape))


def _is_click(start: QPointF, end: QPointF) -> bool:
    return (end - start).manhattanLength() < _CLICK_PIXELS


def nice_length(target: float) -> float:
    """The largest of 1, 2, 5 x 10^k not above ``target`` (> 0)."""
    exponent = math.floor(math.log10(target))
    return max(m * 10.0**exponent for m in (1, 2, 5) if m * 10.0**exponent <= target)


def _font(points: int, bold: bool = False) -> QFont:
    font = QFont()
    font.setPointSize(points)
    font.setBold(bold)
    return font


def _shadowed_text(painter: QPainter, box: QRectF, align: Qt.AlignmentFlag, text: str, colour: QColor) -> None:
    """Text with a one-pixel dark shadow, readable on any image."""
    painter.setPen(QColor(0, 0, 0, 220))
    painter.drawText(box.translated(1, 1), int(align), text)
    painter.setPen(colour)
    painter.drawText(box, int(align), text)

"""`ViewerWidget`: one series in a single view, a 1×3 axial / coronal / sagittal layout, or a 2×2 layout that adds a
coronal maximum intensity projection (:mod:`ui.models.projection`), with its commands.

The view commands are ``QAction`` s with shortcuts active while the viewer has focus (so arrow
keys still move through the study browser when it has focus); the main window puts the same
actions in its menus and toolbar, and the shortcuts dialog lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QStackedLayout, QWidget

from medtl.render.window import PRESETS
from ui.models.label_editor import Tool
from ui.models.projection import ProjectionPlane
from ui.models.view_plane import PlaneKind, ViewPlane
from ui.models.viewer_model import ViewerModel
from ui.qt.resources import icon
from ui.qt.slice_view import SliceView
from ui.qt.tasks import start_task

_PAGE = 10  # slices per Page Up / Page Down


class Layout(Enum):
    SINGLE = "1×1"
    MPR = "1×3"
    GRID = "2×2"


# Where each view sits in each layout (row, column); None: hidden.
_CELLS: dict[Layout, tuple[tuple[int, int] | None, ...]] = {
    Layout.SINGLE: ((0, 0), None, None, None),
    Layout.MPR: ((0, 0), (0, 1), (0, 2), None),
    Layout.GRID: ((0, 0), (0, 1), (1, 0), (1, 1)),
}
_ACTION_OF = {Layout.SINGLE: "layout_single", Layout.MPR: "layout_mpr", Layout.GRID: "layout_grid"}
_GRID_ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" fill="none" stroke="#d5dbe3" '
    b'stroke-width="1.8" stroke-linejoin="round"><rect x="3" y="3" width="8" height="8" rx="1"/><rect x="13" y="3" width="8" '
    b'height="8" rx="1"/><rect x="3" y="13" width="8" height="8" rx="1"/><rect x="13" y="13" width="8" height="8" rx="1"/></svg>'
)


class ViewerWidget(QWidget):
    """The image area: a hint when nothing is loaded, else one, three or four :class:`SliceView` s."""

    hovered = Signal(object)  # PixelInfo | None, from whichever view the pointer is over
    stroke_ended = Signal()  # a brush or eraser stroke changed the editable label
    prompt_box = Signal(object, int, object)  # from any view: SliceView.prompt_box
    prompt_point = Signal(object, int, float, float, bool)  # from any view: SliceView.prompt_point
    tool_changed = Signal(object)  # Tool
    layout_changed = Signal(object)  # Layout
    projection_ready = Signal()  # the 2×2 layout's projection has been made

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model: ViewerModel | None = None
        self.layout_mode = Layout.SINGLE
        self.views = [SliceView(self) for _ in range(4)]
        self.active_view = self.views[0]
        for view in self.views:
            view.hovered.connect(self.hovered)
            view.stroke_ended.connect(self.stroke_ended)
            view.prompt_box.connect(self.prompt_box)
            view.prompt_point.connect(self.prompt_point)
            view.activated.connect(lambda view=view: self._activate(view))
        self._grid = QWidget(self)
        self._cells = QGridLayout(self._grid)
        self._cells.setContentsMargins(0, 0, 0, 0)
        self._cells.setSpacing(2)
        self._hint = QLabel("Open a DICOM folder (Ctrl+O), drop one here, or pick a series in the study browser.", self)
        self._hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._hint.setWordWrap(True)
        self._hint.setObjectName("viewerHint")
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self._hint)
        self._stack.addWidget(self._grid)
        self.actions_by_name: dict[str, QAction] = {}
        self._create_actions()
        self._update_enabled()
        self.set_layout_mode(Layout.SINGLE)

    # --- model and layout --------------------------------------------------------------------

    def set_model(self, model: ViewerModel | None) -> None:
        """Show ``model`` (None: the hint); the anonymised mode carries over from the previous series."""
        self.model = model
        if model is not None:
            model.set_anonymised(self.actions_by_name["anonymise"].isChecked())
        self.actions_by_name["invert"].setChecked(False)
        self._apply_layout()
        self._stack.setCurrentIndex(0 if model is None else 1)
        self._update_enabled()

    def set_layout_mode(self, mode: Layout) -> None:
        self.layout_mode = mode
        for layout, name in _ACTION_OF.items():
            self.actions_by_name[name].setChecked(mode is layout)
        for view, cell in zip(self.views, _CELLS[mode]):
            self._cells.removeWidget(view)
            if cell is not None:
                self._cells.addWidget(view, *cell)
        self._apply_layout()
        self.layout_changed.emit(mode)

    def set_tool(self, tool: Tool) -> None:
        """What a left drag does in every view: move the crosshair, paint / erase the editable label, or draw an AI box."""
        for view in self.views:
            view.tool = tool
            view.setCursor(Qt.CursorShape.ArrowCursor if tool is Tool.NAVIGATE else Qt.CursorShape.CrossCursor)
        self.tool_changed.emit(tool)

    def _apply_layout(self) -> None:
        model = self.model
        if model is None:
            for view in self.views:
                view.set_model(None, None)
            return
        direction = model.volume.direction
        planes: list[ViewPlane | None] = [ViewPlane.acquired(direction), None, None, None]
        if self.layout_mode is not Layout.SINGLE:
            planes[:3] = model.patient_planes()
        if self.layout_mode is Layout.GRID:
            planes[3] = ProjectionPlane.of_kind(PlaneKind.CORONAL, direction)
            self._prepare_projection(model, planes[3])  # type: ignore[arg-type]
        model.forget_cuts([plane for plane in planes if plane is not None])
        for view, plane in zip(self.views, planes):
            view.set_model(model if plane is not None else None, plane)
            view.show_crosshair = self.layout_mode is not Layout.SINGLE
            view.setVisible(plane is not None)
        self._activate(self.views[0])

    def _prepare_projection(self, model: ViewerModel, plane: ProjectionPlane) -> None:
        """Make the image's projection in a worker (its view is black meanwhile), then repaint."""
        if model.cuts.cached(plane, model.volume.array, 0) is not None:
            return
        start_task(lambda _progress, _cancel: model.prepare_projection(plane), self, done=lambda _none: self._projection_made(model))

    def _projection_made(self, model: ViewerModel) -> None:
        model.layer_changed()
        self.projection_ready.emit()

    def focus_active_view(self) -> None:
        """Give the keyboard focus to the view the slice keys act on (after a panel command, say)."""
        if self.model is not None:
            self.active_view.setFocus(Qt.FocusReason.OtherFocusReason)

    def _activate(self, view: SliceView) -> None:
        """Make ``view`` the one the slice keys act on (keyboard focus stays where the user put it)."""
        self.active_view = view

    # --- commands ----------------------------------------------------------------------------

    def _create_actions(self) -> None:
        def step(delta: int) -> Callable[[], None]:
            return lambda: self._on_active(lambda m, v: m.step(v.plane, delta))  # type: ignore[arg-type]

        def to_end(last: bool) -> Callable[[], None]:
            return lambda: self._on_active(lambda m, v: m.go_to_slice(v.plane, m.slice_count(v.plane) - 1 if last else 0))  # type: ignore[arg-type]

        add = self._add_action
        add("next_slice", "Next slice", ["Down", "Right"], step(1))
        add("previous_slice", "Previous slice", ["Up", "Left"], step(-1))
        add("page_forward", f"{_PAGE} slices forward", ["PgDown"], step(_PAGE))
        add("page_back", f"{_PAGE} slices back", ["PgUp"], step(-_PAGE))
        add("first_slice", "First slice", ["Home"], to_end(False))
        add("last_slice", "Last slice", ["End"], to_end(True))
        add("zoom_in", "Zoom in", ["+", "="], lambda: self.active_view.zoom_by(1.25), "zoom-in")
        add("zoom_out", "Zoom out", ["-"], lambda: self.active_view.zoom_by(0.8), "zoom-out")
        add("fit", "Fit to view", ["F"], self._fit_all, "fit")
        add("reset", "Reset view (window, inversion, zoom, crosshair)", ["R"], self._reset, "reset")
        add("auto_window", "Automatic window/level", ["A"], lambda: self._on_model(ViewerModel.auto_window), "auto-window")
        invert = add("invert", "Invert greyscale", ["I"], lambda: self._on_model(lambda m: m.set_invert(not m.invert)), "invert")
        invert.setCheckable(True)
        anonymise = add("anonymise", "Anonymise corner text", ["Ctrl+Shift+A"], self._toggle_anonymised, "anonymise")
        anonymise.setCheckable(True)
        for number, name in enumerate(PRESETS, start=1):
            add(
                f"preset_{number}",
                f"Window preset: {name} ({PRESETS[name]})",
                [str(number)],
                lambda _checked=False, name=name: self._on_model(lambda m: m.apply_preset(name)),
            )
        single = add(
            "layout_single", "Single view (acquired plane)", ["Ctrl+1"], lambda: self.set_layout_mode(Layout.SINGLE), "layout-single"
        )
        mpr = add(
            "layout_mpr",
            "1×3 layout: axial, coronal, sagittal with crosshair",
            ["Ctrl+3"],
            lambda: self.set_layout_mode(Layout.MPR),
            "layout-mpr",
        )
        grid = add(
            "layout_grid", "2×2 layout: axial, coronal, sagittal and a coronal MIP", ["Ctrl+4"], lambda: self.set_layout_mode(Layout.GRID)
        )
        grid.setIcon(_svg_icon(_GRID_ICON))
        for action in (single, mpr, grid):
            action.setCheckable(True)
        single.setChecked(True)

    def _add_action(self, name: str, text: str, keys: list[str], slot: Callable[[], None], icon_name: str | None = None) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(key) for key in keys])
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        if icon_name is not None:
            action.setIcon(icon(icon_name))
        action.triggered.connect(slot)
        self.addAction(action)
        self.actions_by_name[name] = action
        return action

    def _on_model(self, command: Callable[[ViewerModel], None]) -> None:
        if self.model is not None:
            command(self.model)
            self.actions_by_name["invert"].setChecked(self.model.invert)

    def _on_active(self, command: Callable[[ViewerModel, SliceView], None]) -> None:
        if self.model is not None and self.active_view.plane is not None:
            command(self.model, self.active_view)

    def _fit_all(self) -> None:
        for view in self.views:
            view.fit()

    def _reset(self) -> None:
        self._on_model(ViewerModel.reset)
        self._fit_all()

    def _toggle_anonymised(self) -> None:
        self._on_model(lambda m: m.set_anonymised(self.actions_by_name["anonymise"].isChecked()))

    def _update_enabled(self) -> None:
        for name, action in self.actions_by_name.items():
            if name not in ("anonymise", *_ACTION_OF.values()):
                action.setEnabled(self.model is not None)


def _svg_icon(svg: bytes) -> QIcon:
    pixmap = QPixmap()
    pixmap.loadFromData(svg, "SVG")
    return QIcon(pixmap)

"""`ViewerWidget`: one series in a single view or a 1×3 axial / coronal / sagittal layout, with its commands.

The view commands are ``QAction`` s with shortcuts active while the viewer has focus (so arrow
keys still move through the study browser when it has focus); the main window puts the same
actions in its menus and toolbar, and the shortcuts dialog lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QGridLayout, QLabel, QStackedLayout, QWidget

from ui.resources import icon
from ui.slice_view import SliceView
from ui.view_plane import PlaneKind, ViewPlane
from ui.viewer_model import ViewerModel
from ui.window_level import PRESETS

_PAGE = 10  # slices per Page Up / Page Down


class Layout(Enum):
    SINGLE = "1×1"
    MPR = "1×3"


class ViewerWidget(QWidget):
    """The image area: a hint when nothing is loaded, else one or three :class:`SliceView` s."""

    hovered = Signal(object)  # PixelInfo | None, from whichever view the pointer is over

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model: ViewerModel | None = None
        self.layout_mode = Layout.SINGLE
        self.views = [SliceView(self) for _ in range(3)]
        self.active_view = self.views[0]
        for view in self.views:
            view.hovered.connect(self.hovered)
            view.activated.connect(lambda view=view: self._activate(view))
        self._grid = QWidget(self)
        grid = QGridLayout(self._grid)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        for column, view in enumerate(self.views):
            grid.addWidget(view, 0, column)
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
        self.actions_by_name["layout_single"].setChecked(mode is Layout.SINGLE)
        self.actions_by_name["layout_mpr"].setChecked(mode is Layout.MPR)
        self._apply_layout()

    def _apply_layout(self) -> None:
        model = self.model
        if model is None:
            for view in self.views:
                view.set_model(None, None)
            return
        direction = model.volume.direction
        if self.layout_mode is Layout.SINGLE:
            planes: list[ViewPlane | None] = [ViewPlane.acquired(direction), None, None]
        else:
            planes = [ViewPlane.of_kind(kind, direction) for kind in PlaneKind]
        for view, plane in zip(self.views, planes):
            view.set_model(model if plane is not None else None, plane)
            view.show_crosshair = self.layout_mode is Layout.MPR
            view.setVisible(plane is not None)
        self._activate(self.views[0])

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
        for action in (single, mpr):
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
            if name not in ("anonymise", "layout_single", "layout_mpr"):
                action.setEnabled(self.model is not None)

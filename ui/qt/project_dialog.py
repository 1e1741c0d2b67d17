"""The app's project: File → New / Open project, the read-only banner (with Take over for a stale lock), the reader's
name, the label history of the shown series and the agreement between two of its readers.

:class:`ProjectController` binds a :class:`~ui.models.project_session.ProjectSession` to the main window: its menu
actions, the timer that keeps the lock fresh, the banner, and the edits it reports to the session (which tool made
each) so a save records them. It also keeps the label table's definitions and the class labels in the project: each
change is written (and audited) as it is made, and what the project holds is shown when it or a series is opened;
"Next unlabelled" opens the project's next series. A read-only project is not written: the panel says why.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.project import MaskVersion, Project
from medtl.project.lock import REFRESH_EVERY_S
from medtl.project.project import DATABASE_NAME
from medtl.progress import CancelToken, ProgressCallback
from medtl.project.label_files import Exported
from medtl.project.records import INTERPOLATION, PREDICTION
from ui.models.class_labels import ClassLabels
from ui.models.label_editor import LabelEditor, Tool
from ui.models.project_session import EDITOR_TOOLS, HistoryRow, ProjectSession, layer_name
from ui.models.viewer_model import ViewerModel
from ui.qt.export_labels_dialog import ExportLabelsDialog
from ui.qt.tasks import start_task

if TYPE_CHECKING:  # pragma: no cover
    from ui.qt.main_window import MainWindow

AUTOSAVE_EVERY_MS = 500
"""How often the shown label's new edits are saved into the open project (each save is a new version, in a worker)."""
DETAIL_WIDTH = 220
"""The least width of the history's Detail column (a run's path there is shortened in the middle; its tooltip has it all)."""
UNKNOWN_TOOL = "edit"
"""Recorded for a save whose edits no tool was reported for (e.g. a label restored, then saved)."""


class ProjectBanner(QWidget):
    """"Read-only: <who holds the project, since when>", with Take over when the lock is stale."""

    take_over_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.text.setObjectName("read_only_notice")
        self.text.setStyleSheet("color: #edc948; font-weight: bold")
        self.take_over_button = QPushButton("Take over", self)
        self.take_over_button.setToolTip("the program holding the project is gone or idle for hours: open the project for writing here")
        self.take_over_button.clicked.connect(self.take_over_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.take_over_button)

    def show_notice(self, notice: str, stale: bool) -> None:
        self.text.setText(f"Read-only: {notice}. Labels are saved to your label store until the project can be written.")
        self.take_over_button.setVisible(stale)


class LabelHistoryDialog(QDialog):
    """The audit entries of the shown series, newest first: when, who, tool, label, reader, mask version, detail.
    Restore makes the chosen entry's mask version (one of ``reader`` 's) the label again."""

    COLUMNS = ("When", "Who", "Tool", "Label", "Reader", "Version", "Detail")
    restore_requested = Signal(int)  # a mask version of the reader

    def __init__(self, rows: list[HistoryRow], series_name: str, reader: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Label history of {series_name}")
        self.rows, self.reader = rows, reader
        self.table = QTableWidget(len(rows), len(self.COLUMNS), self)
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, entry in enumerate(rows):
            for column, text in enumerate((entry.when, entry.who, entry.tool, entry.label, entry.reader, entry.version, entry.detail)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)  # a long detail (a run's path) is shortened in its cell
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setColumnWidth(len(self.COLUMNS) - 1, DETAIL_WIDTH)  # the rest of the width: its header stays in sight
        self.table.horizontalHeader().setStretchLastSection(True)
        empty = QLabel("No label of this series has been saved in the project yet.", self)
        empty.setVisible(not rows)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        self.restore_button = QPushButton("Restore this version", self)
        self.restore_button.setToolTip(f"make the chosen version of {reader}'s mask the label again (saved as a new version: nothing is lost)")
        self.restore_button.clicked.connect(self.restore)
        buttons.addButton(self.restore_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.itemSelectionChanged.connect(lambda: self.restore_button.setEnabled(self._chosen_version() is not None))
        self.restore_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(empty)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(900, 420)

    def _chosen_version(self) -> int | None:
        row = self.table.currentRow()
        entry = self.rows[row] if 0 <= row < len(self.rows) else None
        return int(entry.version) if entry is not None and entry.version and entry.reader == self.reader else None

    def restore(self) -> None:
        version = self._chosen_version()
        if version is not None:
            self.restore_requested.emit(version)
            self.accept()

    def cell(self, row: int, column: str) -> str:
        item = self.table.item(row, self.COLUMNS.index(column))
        return item.text() if item is not None else ""


class AgreementDialog(QDialog):
    """Pick two readers of the shown series; Compare shows the Dice of each label over the slices both annotated."""

    compared = Signal(object)  # list[tuple[str, float | None]]: label, Dice

    def __init__(self, session: ProjectSession, model: ViewerModel, series_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Reader agreement on {series_name}")
        self.session, self.model = session, model
        readers = session.readers_of(model)
        self.first, self.second = QComboBox(self), QComboBox(self)
        for box in (self.first, self.second):
            box.addItems(readers)
        self.second.setCurrentIndex(min(1, len(readers) - 1))
        self.compare_button = QPushButton("Compare", self)
        self.compare_button.setEnabled(len(readers) >= 2)
        self.compare_button.clicked.connect(self.compare)
        self.status = QLabel("" if len(readers) >= 2 else "Agreement needs two readers who saved a mask of this series.", self)
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(["Label", "Dice"])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        pick = QHBoxLayout()
        for widget in (QLabel("Reader", self), self.first, QLabel("and", self), self.second, self.compare_button):
            pick.addWidget(widget)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(pick)
        layout.addWidget(self.status)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(460, 320)

    def compare(self) -> None:
        """Work out the agreement of the two readers chosen, in a worker (it reads both masks)."""
        a, b = self.first.currentText(), self.second.currentText()
        if a == b:
            self.status.setText("Choose two different readers.")
            return
        self.status.setText(f"comparing {a} and {b}…")
        self.compare_button.setEnabled(False)
        session, model = self.session, self.model
        start_task(lambda _progress, _cancel: session.agreement(model, a, b), self, done=self._show, failed=self._failed)

    def _show(self, scores: list[tuple[str, float | None]]) -> None:
        self.compare_button.setEnabled(True)
        self.table.setRowCount(len(scores))
        for row, (label, dice) in enumerate(scores):
            self.table.setItem(row, 0, QTableWidgetItem(label))
            self.table.setItem(row, 1, QTableWidgetItem("—" if dice is None else f"{dice:.3f}"))
        self.table.resizeColumnsToContents()
        self.status.setText(
            f"Dice between {self.first.currentText()} and {self.second.currentText()} over the slices both annotated "
            "(— : neither drew the label)"
        )
        self.compared.emit(scores)

    def _failed(self, message: str) -> None:
        self.compare_button.setEnabled(True)
        self.status.setText(f"<span style='color:#e15759'>{html.escape(message)}</span>")


class ProjectController(QObject):
    """The project's menu actions, banner and lock timer in ``window``, and the edits reported to ``session``."""

    opened = Signal(object)  # the Project now open (read-only or not)
    exported = Signal(object)  # medtl.project.label_files.Exported, once an export is written

    def __init__(self, window: MainWindow, session: ProjectSession) -> None:
        super().__init__(window)
        self.window, self.session = window, session
        self.history_dialog: LabelHistoryDialog | None = None
        self.agreement_dialog: AgreementDialog | None = None
        self.banner = ProjectBanner(window)
        self.banner.take_over_requested.connect(self.take_over)
        self._banner_bar: QToolBar | None = None  # made on the first notice (after the window's saved layout is restored)
        self._tool = Tool.NAVIGATE
        self._last_tool = UNKNOWN_TOOL
        self._edits_noted = 0  # the editor's edit count when the last edit was noted
        self.timer = QTimer(self)
        self.timer.setInterval(int(REFRESH_EVERY_S * 1000 / 2))
        self.timer.timeout.connect(session.refresh_lock)
        self.timer.start()
        self.autosave_timer = QTimer(self)  # every edit reaches the project: a kill loses at most the stroke in progress
        self.autosave_timer.setInterval(AUTOSAVE_EVERY_MS)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        self._autosaved: tuple[int, int] | None = None  # (editor id, edit count) of the last autosave started
        self.actions = {
            "new": self._action("&New project…", self.new_project),
            "open": self._action("Open &project…", self.open_project),
            "add": self._action("&Add the shown series' folder to the project", self.add_shown_folder),
            "reader": self._action("Reader &name…", self.set_reader),
            "history": self._action("Label &history…", self.show_history),
            "agreement": self._action("Reader &agreement…", self.show_agreement),
            "export": self._action("&Export project labels…", self.export_labels),
        }
        window.viewer.tool_changed.connect(self._tool_changed)
        window.viewer.stroke_ended.connect(lambda: self._note(EDITOR_TOOLS.get(self._tool.value, self._tool.value)))
        window.prompt_tool.prompted.connect(lambda _stroke: self._note(EDITOR_TOOLS["box"]))
        window.prompt_tool.propagation_arrived.connect(lambda _index: self._note(EDITOR_TOOLS["box"]))
        interpolate = window.label_tools.actions_by_name.get("interpolate")  # where the editor interpolates between slices
        if interpolate is not None:
            interpolate.triggered.connect(lambda _checked=False: self._note_if_edited(INTERPOLATION))
        self._definitions_seen: dict[str, object] | None = None  # the label table's definitions as last shown or written
        self._classes_seen: dict[str, object] | None = None  # the class labels (to_dict) as last shown or written
        self._series_to_select: str | None = None  # a project series asked for, in a folder being scanned
        tools = window.label_tools
        tools.label_table.definitions_replaced.connect(self.show_definitions)
        tools.label_table.definitions_changed.connect(self._definitions_edited)
        for name in ("undo", "redo"):  # undoing a delete brings the label back: the project defines it again
            tools.actions_by_name[name].triggered.connect(lambda _checked=False: self._definitions_edited())
        tools.class_labels.labels_changed.connect(self._classes_edited)
        tools.class_labels.series_requested.connect(self.open_series)
        window.series_shown.connect(lambda _model: self.show_class_labels())
        window.scan_finished.connect(self._scanned)

    def _action(self, text: str, slot: Callable[[], object]) -> QAction:
        action = QAction(text, self.window)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    # --- edits -------------------------------------------------------------------------------

    def _tool_changed(self, tool: Tool) -> None:
        self._tool = tool

    def _note(self, tool: str, detail: str = "") -> None:
        self._last_tool = tool
        self.session.note_edit(tool, detail)
        model = self.window.viewer.model
        self._edits_noted = model.editor.edits if model is not None and model.editor is not None else 0

    def _note_if_edited(self, tool: str) -> None:
        """Note ``tool`` if the label changed since the last edit noted (an action that may have found nothing to do)."""
        model = self.window.viewer.model
        if model is not None and model.editor is not None and model.editor.edits != self._edits_noted:
            self._note(tool)

    def note_prediction(self, run_dir: Path | None, layer_name: str) -> None:
        """A prediction was merged into the label: recorded as accepted from its run."""
        self._note(PREDICTION, f"run {run_dir}" if run_dir is not None else layer_name)

    def last_tool(self) -> str:
        """The tool a save records when no edit was reported since the last one."""
        return self._last_tool

    def autosave(self) -> bool:
        """Save the shown label into the writable project when it has edits no save has started on, and no stroke is
        being painted; True when a save started."""
        window, model = self.window, self.window.viewer.model
        if model is None or model.editor is None or not model.editor.dirty or model.editor.painting:
            return False
        if not self.session.writable_for(model) or "save_label" in window._tasks.running:
            return False
        editor = model.editor
        if self.session.saved_edits(editor) >= editor.edits:  # saved by a save whose answer was superseded
            editor.saved(editor.edits)
            window.label_tools.refresh()
            return False
        if self._autosaved == (id(editor), editor.edits):
            return False  # started already (and failed, if the label is still dirty: Problems says why)
        self._autosaved = (id(editor), editor.edits)
        window.save_label()
        return True

    def label_saved(self, editor: LabelEditor, edits: int, version: MaskVersion | None) -> None:
        """A save into the project ended (None: this snapshot, or a newer one, had been saved already)."""
        window = self.window
        window._idle()
        if version is None:
            if self.session.saved_edits(editor) >= edits:  # e.g. Ctrl+S after the autosave: the status said "saving…"
                editor.saved(edits)
                window.label_tools.refresh()
                window.status_message.setText(f"Label saved in the project {self._name()} (no change since its last save)")
            return
        editor.saved(edits)
        editor.layer.name = layer_name(version)  # as it comes back; before: "label (new)" for good
        model = window.viewer.model
        if model is not None and model.editor is editor:
            model.layer_changed()
        window.label_tools.refresh()
        window.status_message.setText(f"Label saved in the project {self._name()} as {version.reader}'s version {version.version}")
        window.label_saved.emit(version)

    # --- label definitions and class labels ---------------------------------------------------

    def show_definitions(self) -> None:
        """Show the open project's label definitions (names, colours, hidden, locked) in the label table."""
        table = self.window.label_tools.label_table
        definitions, model = table.definitions, self.window.viewer.model
        if definitions is None or model is None:
            self._definitions_seen = None
            return
        shown = definitions.to_dict()
        data = self.session.label_definitions(shown)
        if data is not None and data != shown:
            definitions.load(data)
            model.layer_changed()  # redraw in the project's colours, hide its hidden labels, refresh the table
        self._definitions_seen = definitions.to_dict()

    def _definitions_edited(self) -> None:
        """Write the label table's definitions into the project when they changed (a rename, recolour, hide, lock,
        delete, or the undo of a delete)."""
        table = self.window.label_tools.label_table
        if table.definitions is None or self.session.project is None:
            return
        data = table.definitions.to_dict()
        if data == self._definitions_seen:
            return
        self._definitions_seen = data
        if self.session.read_only:  # kept in the label (saved to the label store), not in the project
            self._refused(table.message, f"Label changes are not saved in the project: {self.session.notice}")
            return
        try:
            self.session.write_definitions(data)
        except MedtlError as error:
            self._refused(table.message, f"Labels not changed in the project: {error}")
            self.show_definitions()  # the project's definitions, as they are

    def show_class_labels(self) -> None:
        """Give the class labels panel the reader's classes and class labels in the open project, over all its series."""
        panel = self.window.label_tools.class_labels
        labels = self.session.class_labels(panel.labels.per_slice)
        if labels is None:
            return
        self._classes_seen = _assignments(labels)
        panel.set_labels(labels)

    def _classes_edited(self) -> None:
        """Write the class labels that changed (a class given or taken off, a class added or renamed) into the project."""
        panel = self.window.label_tools.class_labels
        if self.session.project is None or self._classes_seen is None:
            return
        before, after = self._classes_seen, _assignments(panel.labels)
        if after == before:
            return
        try:
            self.session.write_class_labels(before, after, self.window.viewer.model)
        except MedtlError as error:
            self.show_class_labels()  # back to what the project holds
            self._refused(panel.current, f"Class not saved: {error}")
            return
        self._classes_seen = after

    def _refused(self, place: QLabel, message: str) -> None:
        """Say why a change could not be written, where it was made and in the status bar."""
        place.setText(message)
        self.window.status_message.setText(message)

    def open_series(self, uid: str, index: int | None = None) -> bool:
        """Show series ``uid`` (at slice ``index`` along z): from the study browser when it lists it, else from its
        folder as the project records it. False when neither knows it."""
        window, project = self.window, self.session.project
        window._slice_when_shown = (uid, index) if index is not None else None
        if window.browser.select_series(uid):
            return True
        try:
            record = project.series_record(uid) if project is not None else None
        except MedtlError as error:
            window.status_message.setText(str(error))
            return False
        if record is None:
            window.status_message.setText(f"Series {uid} is neither in the study browser nor in an open project")
            return False
        self._series_to_select = uid if record.files else None
        window.open_path(record.path)
        return True

    def _scanned(self, _result: object) -> None:
        """A folder scanned for a series asked for: show that series once the window has picked its first one."""
        uid, self._series_to_select = self._series_to_select, None
        if uid is not None:
            QTimer.singleShot(0, lambda: self.window.browser.select_series(uid))

    # --- opening -----------------------------------------------------------------------------

    def open_at_start(self) -> None:
        """Open the project open when the app last closed, else the default one (in a worker: the first time, the label
        store's labels move into it)."""
        session, last, store = self.session, self.window.settings.last_project(), self.window.label_store
        self.window._run("project", lambda _progress, _cancel: session.open_at_start(last, store), self._use, self._not_opened)

    def _use(self, project: Project) -> None:
        self.window._idle()
        self.session.use(project)
        self._opened()

    def _not_opened(self, message: str) -> None:
        self.window._idle()
        self.window.problems.add("opening the project", f"{message}; labels are saved to your label store")
        self.window.status_message.setText("No project could be opened: labels are saved to your label store (see Problems)")

    def open_project(self, folder: Path | None = None, take_over: bool = False) -> bool:
        """Open the project in ``folder`` (asked for when None, from beside the open project); False when none was opened."""
        start = self._beside_open_project()
        return self._switch(folder, "Open project", start, "Project not opened", lambda chosen: self.session.open(chosen, take_over=take_over))

    def new_project(self, folder: Path | None = None) -> bool:
        """Create a project in ``folder`` (asked for when None, from beside the open project: a new or empty folder)
        and open it; a folder holding other files is refused."""

        def create(chosen: Path) -> object:
            if chosen.is_dir() and not (chosen / DATABASE_NAME).exists() and any(chosen.iterdir()):
                raise MedtlError(f"{chosen}: not empty; choose or create an empty folder for the new project")
            return self.session.create(chosen)

        return self._switch(folder, "New project: choose or create an empty folder", self._beside_open_project(), "Project not created", create)

    def _beside_open_project(self) -> str:
        """Where the folder choosers start: the folder holding the open project (else the home folder)."""
        project = self.session.project
        return str(project.folder.parent if project is not None else Path.home())

    def _switch(self, folder: Path | None, caption: str, start: str, refused: str, use: Callable[[Path], object]) -> bool:
        """Use the project in ``folder`` (asked for with ``caption`` when None) once the shown label's unsaved edits are
        saved or discarded; a refusal is shown under the title ``refused``. False when no project was switched to."""
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(self.window, caption, start)
            if not chosen:
                return False
            folder = Path(chosen)
        if not self.window.resolve_unsaved_label():
            return False
        try:
            use(folder)
        except MedtlError as error:
            QMessageBox.warning(self.window, refused, str(error))
            return False
        self._opened()
        return True

    def take_over(self) -> None:
        """Open the project again for writing, taking over its stale lock."""
        try:
            self.session.take_over()
        except MedtlError as error:
            QMessageBox.warning(self.window, "Project not taken over", str(error))
            return
        self._opened()

    def _opened(self) -> None:
        project = self.session.project
        assert project is not None
        self.window.settings.set_last_project(project.folder)
        self.window.training.set_project(project.folder, self.session.link_run)
        self.show_state()
        self.show_definitions()
        self.show_class_labels()
        self.window.status_message.setText(f"Project {self._name()}" + (" (read-only)" if project.read_only else "") + f", reader {self.session.reader}")
        self.opened.emit(project)

    def show_state(self) -> None:
        """The window title names the project; the banner shows while it is read-only."""
        project = self.session.project
        title = "medtl" if project is None else f"medtl — {project.name}" + (" (read-only)" if project.read_only else "")
        self.window.setWindowTitle(title)
        notice = self.session.notice
        if notice is not None and self._banner_bar is None:
            self.window.addToolBarBreak()
            self._banner_bar = self.window.addToolBar("Project")
            self._banner_bar.setObjectName("project_banner")
            self._banner_bar.setMovable(False)
            self._banner_bar.addWidget(self.banner)
            self._banner_bar.toggleViewAction().setVisible(False)
        if notice is not None:
            self.banner.show_notice(notice, self.session.can_take_over())
        if self._banner_bar is not None:
            self._banner_bar.setVisible(notice is not None)

    def _name(self) -> str:
        return self.session.project.name if self.session.project is not None else "(none)"

    # --- series, reader, history, agreement --------------------------------------------------

    def add_shown_folder(self) -> None:
        """Record the shown series' DICOM folder (its image series) in the project, in a worker."""
        model = self.window.viewer.model
        if model is None or not model.files:
            self.window.status_message.setText("Open a DICOM series first, then add its folder to the project")
            return
        folder = Path(model.files[0]).parent
        session = self.session
        self.window._run("project_add", lambda _progress, _cancel: session.add_folder(folder), self._added, lambda m: self.window._failed("adding to the project", m, "add"))
        self.window._show_progress(0, 0, "adding the folder to the project")

    def _added(self, result: tuple[list[object], list[str]]) -> None:
        self.window._idle()
        recorded, skipped = result
        for reason in skipped:
            self.window.problems.add("adding to the project", reason)
        self.window.status_message.setText(f"{len(recorded)} series in the project {self._name()}" + (f" ({len(skipped)} left out: see Problems)" if skipped else ""))

    def set_reader(self, name: str | None = None) -> str | None:
        """Name the reader (asked for when None; empty: the OS user), remembered in the settings. The shown label is
        the previous reader's: its unsaved edits are saved (or not) as theirs first, then the new reader's own newest
        mask of the series replaces it (none: no label), so that nobody's work is saved under another's name."""
        window = self.window
        if name is None:
            text, ok = QInputDialog.getText(window, "Reader name", "Your name in the label history (empty: your login name):", text=self.session.reader)
            if not ok:
                return None
            name = text
        previous = self.session.reader
        if self.session.reader_named(name) != previous and not window.resolve_unsaved_label():
            return None
        reader = self.session.set_reader(name)
        window.settings.set_reader_name(name.strip() or None)
        self.show_class_labels()  # class labels are the reader's own
        model = window.viewer.model
        if reader != previous and model is not None and self.session.writable_for(model):
            if model.editor is not None:
                model.remove_layer(model.editor.layer)
            window._run("load_label", lambda _progress, _cancel: self.session.reader_mask(model), lambda found: self._reader_label_read(model, reader, found), window._label_not_restored)
        window.status_message.setText(f"Reader: {reader}")
        return reader

    def _reader_label_read(self, model: ViewerModel, reader: str, found: tuple[MaskVersion, Volume] | None) -> None:
        window = self.window
        window._idle()
        if model is not window.viewer.model or reader != self.session.reader or model.editor is not None:
            return  # another series, another reader, or a label begun meanwhile: this one is not wanted any more
        if found is not None:
            self.session.edit(model, *found)
        window.label_tools.refresh()
        window.status_message.setText(f"Reader: {reader}; " + ("your newest label of this series is shown" if found else "you have no label of this series yet"))

    def show_history(self) -> LabelHistoryDialog | None:
        """The shown series' label history in the project."""
        model = self.window.viewer.model
        if model is None or self.session.project is None:
            self.window.status_message.setText("Open a project and a series to see its label history")
            return None
        self.history_dialog = LabelHistoryDialog(self.session.history_rows(model), _series_name(model), self.session.reader, self.window)
        self.history_dialog.restore_requested.connect(self.restore_version)
        self.history_dialog.open()
        return self.history_dialog

    def restore_version(self, number: int) -> None:
        """Make the reader's mask version ``number`` of the shown series the label again (in a worker), and edit it."""
        window, model = self.window, self.window.viewer.model
        if model is None or not window.resolve_unsaved_label():
            return
        try:
            call = self.session.restore_call(model, number)
        except MedtlError as error:
            window.status_message.setText(str(error))
            return
        window._run("restore_label", call, lambda restored: self._restored(model, number, *restored), window._label_not_restored)

    def _restored(self, model: ViewerModel, number: int, version: MaskVersion, mask: Volume) -> None:
        self.window._idle()
        if model is not self.window.viewer.model:
            return
        self.session.edit(model, version, mask)
        self.window.label_tools.refresh()
        self.window.status_message.setText(f"Restored label version {number} as version {version.version} (restore the one before to undo)")
        self.window.label_restored.emit(version)

    def show_agreement(self) -> AgreementDialog | None:
        """Compare two readers' masks of the shown series."""
        model = self.window.viewer.model
        if model is None or self.session.project is None:
            self.window.status_message.setText("Open a project and a series read by two readers to see their agreement")
            return None
        self.agreement_dialog = AgreementDialog(self.session, model, _series_name(model), self.window)
        self.agreement_dialog.open()
        return self.agreement_dialog


    def export_labels(self, choice: tuple[str, Path, bool, str | None] | None = None) -> bool:
        """Export the project's labels (``choice``: format, folder, de-identify, reader; asked for when None) in a
        worker, after the shown label's unsaved edits are saved or discarded; False when nothing was started."""
        project, window = self.session.project, self.window
        if project is None:
            window.status_message.setText("Open a project first, then export its labels")
            return False
        if not window.resolve_unsaved_label():
            return False
        if choice is None:
            dialog = ExportLabelsDialog(project, Path.home() / f"{project.name}-labels", window)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return False
            choice = dialog.choice()
        fmt, folder, deidentify, reader = choice

        def export(_progress: ProgressCallback, _cancel: CancelToken) -> Exported:
            from medtl.project.label_files import export_labels

            return export_labels(project, fmt, folder, deidentify=deidentify, reader=reader)

        window._run("export_labels", export, lambda exported: self._exported(folder, exported), lambda m: window._failed(str(folder), m, "export to"))
        window._show_progress(0, 0, f"exporting the labels to {folder}")
        return True

    def _exported(self, folder: Path, exported: Exported) -> None:
        self.window._idle()
        for note in exported.notes:
            self.window.problems.add("label export", note)
        self.window.status_message.setText(f"Exported {len(exported.paths)} file(s) to {folder}" + (" (notes in Problems)" if exported.notes else ""))
        self.exported.emit(exported)


def _series_name(model: ViewerModel) -> str:
    return model.label.series_description or str(model.volume.metadata.get("series_uid", "")) or "the shown image"


def _assignments(labels: ClassLabels) -> dict[str, object]:
    """What of the class labels a project stores: the classes and every series' and slice's class (not the mode)."""
    data = labels.to_dict()
    data.pop("per_slice")
    return data

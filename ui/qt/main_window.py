"""`MainWindow`: study browser, viewer, layers, fine-tune, results, label-next and problems panels, bound to the engine
through tasks.

Every engine call (scan, load, predict, train, rank) runs in an :class:`EngineTask` off the GUI thread; a new
task of a kind cancels the running one of that kind, and closing the window stops them all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QToolButton,
    QWidget,
)
from superqt.utils import GeneratorWorker

from medtl.data.images import image_format, read_image
from medtl.data.sparse import Annotated
from medtl.dicom.catalog import Catalog
from medtl.dicom.records import ScanResult, SeriesInfo
from medtl.dicom.scan import scan
from medtl.dicom.series import load_series
from medtl.errors import MedtlError
from medtl.labels.store import VERSIONS_FOLDER, LabelStore, SavedLabel
from medtl.progress import CancelToken, ProgressCallback
from medtl.sample_study import sample_study_dir
from ui.models.label_editor import LabelEditor
from ui.models.label_session import attach_saved_label, label_versions, restore_call, save_call, series_uids
from ui.models.overlays import LabelLayer
from ui.models.prediction_layers import choose_uncertainty, prediction_layers, prediction_summary
from ui.models.project_session import ProjectSession
from ui.models.ranking_queue import QueueEntry, series_inputs
from ui.models.seg_layers import attach_segmentations
from ui.models.viewer_model import PixelInfo, SeriesLabel, ViewerModel
from ui.qt.about_dialog import AboutDialog
from ui.qt.label_tools import LabelTools
from ui.qt.label_versions_dialog import LabelVersionsDialog
from ui.qt.layers_panel import LayersPanel
from ui.qt.pretrain_panel import PretrainPanel
from ui.qt.problems_panel import ProblemsPanel
from ui.qt.project_dialog import ProjectController
from ui.qt.send_to_pacs import PacsActions
from ui.qt.prompt_tool import PromptTool
from ui.qt.ranking_panel import RankingPanel
from ui.qt.resources import icon
from ui.qt.results_panel import ResultsPanel
from ui.qt.settings import AppSettings
from ui.qt.shortcuts_dialog import ShortcutsDialog
from ui.qt.study_browser import SeriesPath, StudyBrowser
from ui.qt.tasks import EngineCall, TaskGroup, wait_for_tasks
from ui.qt.thumbnails import start_thumbnails
from ui.qt.training_panel import TrainingPanel
from ui.qt.viewer_widget import ViewerWidget

if TYPE_CHECKING:  # pragma: no cover - importing the predictor imports torch
    from medtl.dicom.volume import Volume
    from medtl.export.prediction_outputs import PredictionOutputs
    from medtl.inference.predictor import Prediction

log = logging.getLogger(__name__)

APP_TITLE = "medtl"
STOP_TIMEOUT_MS = 60_000  # a training step, or a prediction batch, may take this long to end on a slow CPU


class MainWindow(QMainWindow):
    """The application window. ``open_path`` scans in the background and shows the first image series."""

    scan_finished = Signal(object)  # ScanResult
    series_shown = Signal(object)  # ViewerModel, once its first slice can be painted
    task_failed = Signal(str)
    label_saved = Signal(object)  # SavedLabel (label store), or MaskVersion (the open project)
    label_restored = Signal(object)  # SavedLabel or MaskVersion (project): an earlier version made the label again, and shown
    prediction_shown = Signal(object)  # Prediction, once its layers are on the series it was made for
    prediction_exported = Signal(object)  # PredictionOutputs: the files written

    def __init__(self, settings: AppSettings | None = None, catalog: Catalog | None = None, label_store: LabelStore | None = None) -> None:
        super().__init__()
        self.settings = settings or AppSettings()
        self.catalog = catalog
        self.label_store = label_store or LabelStore()
        self.folder: Path | None = None
        self.last_prediction: tuple[Prediction, Path] | None = None  # and the run that made it, for Export prediction
        self._tasks = TaskGroup(self)  # running tasks by kind ("scan", "load"); a new one cancels the old
        self._fallbacks: list[SeriesPath] = []
        self._thumbnails: GeneratorWorker | None = None  # image series to try, in order, if the one shown first fails to load
        self._predict_when_shown: Path | None = None  # a run to predict with on the series being opened (a case of the Results panel)
        self._slice_when_shown: tuple[str, int] | None = None  # (series UID, z): the slice to show once that series is shown
        self.versions_dialog: LabelVersionsDialog | None = None
        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.viewer = ViewerWidget(self)
        self.setCentralWidget(self.viewer)
        self.browser = StudyBrowser(self)
        self.browser.series_selected.connect(self.show_series)
        self.browser_dock = self._dock("Studies", "studies", self.browser, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.problems = ProblemsPanel(self)
        self.problems_dock = self._dock("Problems", "problems", self.problems, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.layers = LayersPanel(self)
        self.layers_dock = self._dock("Layers", "layers", _scrolled(self.layers), Qt.DockWidgetArea.RightDockWidgetArea)
        self.label_tools = LabelTools(self.viewer, self.layers, self.layers)
        self.layers.layout().addWidget(self.label_tools)
        self.label_tools.accept_requested.connect(self.accept_as_label)
        self.label_tools.new_requested.connect(self.new_label)
        self.label_tools.save_requested.connect(self.save_label)
        self.viewer.stroke_ended.connect(self.label_tools.refresh)
        self.prompt_tool = PromptTool(self.viewer, self)
        self.label_tools.propagate_requested.connect(self.prompt_tool.propagate)
        self.prompt_tool.prompted.connect(lambda _stroke: self.label_tools.refresh())
        self.prompt_tool.propagation_arrived.connect(lambda _index: self.label_tools.refresh())
        self.prompt_tool.problem.connect(self._prompt_problem)
        self.prompt_tool.status.connect(lambda text: self.status_message.setText(text))  # the status bar is made below
        self.prompt_tool.progress.connect(self._show_progress)
        self.prompt_tool.idle.connect(self._idle)
        self.training = TrainingPanel(self.settings, self, self.label_store)
        self.training_dock = self._dock("Fine-tune", "fine_tune", _scrolled(self.training), Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.layers_dock, self.training_dock)
        self.results = ResultsPanel(self)
        self.results_dock = self._dock("Results", "results", _scrolled(self.results), Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.training_dock, self.results_dock)
        self.pretrain = PretrainPanel(self)
        self.pretrain_dock = self._dock("Pretrain", "pretrain", _scrolled(self.pretrain), Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.results_dock, self.pretrain_dock)
        self.ranking = RankingPanel(self)  # a list of series to open, like the study browser: beside it
        self.ranking_dock = self._dock("Label next", "label_next", self.ranking, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tabifyDockWidget(self.browser_dock, self.ranking_dock)
        self.browser_dock.raise_()
        self.pretrain.weights_chosen.connect(self.fine_tune_from)
        self.layers_dock.raise_()
        self.training.predict_requested.connect(self.predict_with_run)
        self.training.run_finished.connect(self._review_latest_run)
        self.results.case_activated.connect(self.open_case)
        self.ranking.rank_requested.connect(self.rank_cases)
        self.ranking.open_requested.connect(self.open_ranked)
        self.training.monitor.problem.connect(lambda message: self._run_problem("fine-tuning", message))
        self.pretrain.monitor.problem.connect(lambda message: self._run_problem("pretraining", message))
        self.problems.count_changed.connect(lambda n: self.problems_dock.setWindowTitle(f"Problems ({n})" if n else "Problems"))
        self._build_status_bar()
        self.project_session = ProjectSession(self.settings.reader_name())  # none open until open_project / open_start_project
        self.projects = ProjectController(self, self.project_session)
        self.pacs = PacsActions(self)
        self._build_menus_and_toolbar()
        self.viewer.hovered.connect(self._show_pixel)
        self.viewer.set_layout_mode(self.settings.viewer_layout())
        self.viewer.layout_changed.connect(self.settings.set_viewer_layout)
        self.viewer.actions_by_name["anonymise"].toggled.connect(self.browser.set_anonymised)
        for dock in self.docks():
            _no_focus_on_click(dock)
        self.resize(1440, 900)
        if not self.settings.restore_window(self):
            self.resizeDocks([self.browser_dock, self.layers_dock], [340, 430], Qt.Orientation.Horizontal)  # the panels on the right hold forms and tables
            self.resizeDocks([self.problems_dock], [150], Qt.Orientation.Vertical)

    # --- opening -----------------------------------------------------------------------------

    def open_path(self, path: Path | str) -> None:
        """Scan ``path`` (a folder or a DICOM file) in the background; then list it and show its first image series that
        loads. A NIfTI or picture file is shown as it is (read in the background)."""
        path = Path(path)
        self._predict_when_shown = None
        self.settings.add_recent(path)
        self.setWindowTitle(f"{APP_TITLE} — {path}")
        if path.is_file() and image_format(path) != "dicom":
            self._open_image_file(path)
            return
        self.folder = path
        self.pretrain.set_input_folder(path)
        catalog = self.catalog
        started = time.perf_counter()
        self._run(
            "scan", lambda progress, cancel: scan(path, catalog, progress, cancel),
            lambda result: self._scanned(path, result, time.perf_counter() - started), lambda message: self._failed(str(path), message),
        )  # fmt: skip
        self._show_progress(0, 0, f"scanning {path.name or path}")

    def _open_image_file(self, path: Path) -> None:
        """Show a NIfTI or picture file (it has no study or series to list)."""
        if not self.resolve_unsaved_label():
            return
        self._fallbacks = []

        def load(_progress: ProgressCallback, _cancel: CancelToken) -> ViewerModel:
            volume = read_image(path)
            model = ViewerModel(volume, SeriesLabel(series_description=path.name, modality=str(volume.metadata.get("modality", ""))))
            model.patient_planes()
            return model

        self._run("load", load, self._loaded, lambda message: self._failed(str(path), message))
        self._show_progress(0, 0, f"reading {path.name}")

    def open_case(self, image: Path, run_dir: Path) -> None:
        """Open a case of a run's results (its image: a DICOM folder or file, NIfTI or picture) and, once it is shown,
        predict it with the run."""
        if not self.resolve_unsaved_label():
            return
        self.open_path(image)
        self._predict_when_shown = run_dir

    def show_series(self, series_path: SeriesPath) -> None:
        """Load the series (and the label saved for it, if any) in the background and show it."""
        if not self.resolve_unsaved_label():
            return
        self._fallbacks = [path for path in self._fallbacks if path is not series_path]
        patient, study, series = series_path
        files, label, store, session = series.files, SeriesLabel.of(patient, study, series), self.label_store, self.project_session
        segs = self.browser.segmentations_of(series.series_uid)

        def load(progress: ProgressCallback, cancel: CancelToken) -> ViewerModel:
            model = ViewerModel(load_series(files, progress, cancel), label, files)
            model.patient_planes()  # resampled planes of an oblique series take a moment to set up: here, not in the GUI
            if not session.attach(model):  # the reader's mask in the open project, else the label store's
                attach_saved_label(model, store)
            attach_segmentations(model, segs)
            return model

        self._run("load", load, self._loaded, lambda message: self._load_failed(f"series {series.description or series.series_uid}", message))
        self._show_progress(0, len(files), "loading series")

    def predict_with_run(self, run_dir: Path | str) -> None:
        """Apply the trained run at ``run_dir`` to the shown series in the background; its outputs become overlay layers
        (with "Show uncertainty", also the model's uncertainty map)."""
        model = self.viewer.model
        if model is None:
            self.status_message.setText("Open a series first, then predict on it")
            return
        run_dir = Path(run_dir)
        volume, with_uncertainty = model.volume, self.uncertainty_action.isChecked()

        def predict(progress: ProgressCallback, cancel: CancelToken) -> tuple[Prediction, str | None, str | None]:
            from medtl.inference.predictor import (
                Predictor,  # imports torch: only now, in the worker
            )

            predictor = Predictor.from_run(run_dir)
            method, note = choose_uncertainty(predictor.check_uncertainty) if with_uncertainty else (None, None)
            return predictor.predict(volume, progress, cancel, uncertainty=method), method, note

        self._run("predict", predict, lambda result: self._predicted(model, run_dir, *result), lambda message: self._failed(f"run {run_dir}", message))
        self._show_progress(0, 0, f"loading run {run_dir.name}")

    def choose_run(self) -> None:
        start = self.settings.store.value("last_run_folder", str(Path.home()))
        folder = QFileDialog.getExistingDirectory(self, "Predict with a trained run folder", str(start))
        if folder:
            self.settings.store.setValue("last_run_folder", folder)
            self.predict_with_run(folder)

    def _predicted(self, model: ViewerModel, run_dir: Path, prediction: Prediction, uncertainty: str | None, note: str | None) -> None:
        self._idle()
        for layer in prediction_layers(prediction, run_dir.name, uncertainty):
            model.add_layer(layer)
        self.layers_dock.show()
        summary = prediction_summary(prediction)
        if note is not None:  # uncertainty was asked for and the model allows none
            self.problems.add(f"run {run_dir}", note)
            summary += f"; {note}"
        self.status_message.setText(summary)
        self.last_prediction = (prediction, run_dir)
        self.export_action.setEnabled(True)
        self.prediction_shown.emit(prediction)

    def export_prediction(self, folder: Path | None = None) -> None:
        """Write the last prediction as ``medtl predict`` does (mask NIfTI and DICOM SEG, or probabilities and
        heatmaps) into ``folder`` (asked for when not given), in the background."""
        if self.last_prediction is None:
            self.status_message.setText("Predict with a trained run first, then export the prediction")
            return
        if folder is None:
            start = self.settings.store.value("last_export_folder", str(Path.home()))
            chosen = QFileDialog.getExistingDirectory(self, "Export the prediction into", str(start))
            if not chosen:
                return
            self.settings.store.setValue("last_export_folder", chosen)
            folder = Path(chosen)
        prediction, run_dir = self.last_prediction
        destination = folder

        def export(_progress: ProgressCallback, _cancel: CancelToken) -> PredictionOutputs:
            from medtl.export.prediction_outputs import export_prediction
            from medtl.training.run_folder import RunFolder

            model_name = str(RunFolder(run_dir).read_config().model.get("architecture", run_dir.name))
            return export_prediction(prediction, destination, f"{run_dir.name}_prediction", model_name)

        self._run("export", export, self._exported, lambda message: self._failed(str(destination), message, "export to"))
        self._show_progress(0, 0, f"exporting the prediction to {destination}")

    def _exported(self, outputs: PredictionOutputs) -> None:
        self._idle()
        for warning in outputs.warnings:
            self.problems.add("export", warning)
        names = ", ".join(path.name for path in outputs.files)
        self.status_message.setText(f"Exported to {outputs.files[0].parent}: {names}" if outputs.files else "Nothing was exported")
        self.prediction_exported.emit(outputs)

    # --- review: results, what to label next ------------------------------------------------

    def _review_latest_run(self) -> None:
        """The run the fine-tune panel just finished goes to the Results panel, and predicts the shown series, so the
        user sees what it learnt where they were labelling."""
        run = self.training.predictable_run()
        if run is None:
            return
        self.results.show_run(run)
        if self.viewer.model is not None and self.training.outcome is not None and self.training.outcome.has_model:
            self.predict_with_run(run)

    def show_results(self) -> None:
        self.results_dock.show()
        self.results_dock.raise_()

    def run_to_rank(self) -> Path | None:
        """The run to rank with: the one the Results panel shows, else the fine-tune panel's last, else one chosen now."""
        run = self.results.run_dir or self.training.predictable_run()
        if run is None:
            start = self.settings.store.value("last_run_folder", str(Path.home()))
            folder = QFileDialog.getExistingDirectory(self, "Rank with a trained run folder", str(start))
            run = Path(folder) if folder else None
        return run

    def rank_cases(self) -> None:
        """Rank the unlabelled series of the study browser with the run under review, in the Label next panel."""
        self.ranking_dock.show()
        self.ranking_dock.raise_()
        run = self.run_to_rank()
        if run is None:
            self.status_message.setText("Train a model or open a run in the Results panel first, then rank")
            return
        inputs, skipped = series_inputs(self.browser.image_series(), self.label_store)
        self.ranking.start(run, inputs, skipped)

    def open_ranked(self, entry: QueueEntry) -> None:
        """Open a series of the ranking (from the study browser when it lists it), at the slice the model is least sure of."""
        model = self.viewer.model
        self.status_message.setText(f"Next case: {entry.text()}")
        self._slice_when_shown = (entry.series.series_uid, entry.slice_index) if entry.slice_index is not None else None
        if model is not None and series_uids(model)[1] == entry.series.series_uid:
            self._go_to_pending_slice(model)
        elif not self.browser.select_series(entry.series.series_uid):
            self.open_path(entry.series.path)

    def _go_to_pending_slice(self, model: ViewerModel) -> None:
        """Show the slice a ranking pointed at, if ``model`` is the series it was for."""
        pending, self._slice_when_shown = self._slice_when_shown, None
        if pending is not None and pending[0] == series_uids(model)[1]:
            model.set_cursor([*model.cursor[:2], pending[1]])

    # --- labels ------------------------------------------------------------------------------

    def show_label_versions(self) -> None:
        """List the earlier saves of the shown series' label, to restore one."""
        model = self.viewer.model
        if model is not None and self.project_session.writable_for(model):
            self.projects.show_history()  # the project's versions, with who saved each and with which tools
            return
        versions = label_versions(model, self.label_store) if model is not None else []
        if model is None or not versions:
            self.status_message.setText("No earlier versions: a label's earlier saves are kept each time it is saved again")
            return
        name = model.label.series_description or series_uids(model)[1]
        self.versions_dialog = LabelVersionsDialog(versions, name, self)
        self.versions_dialog.restore_requested.connect(self.restore_label_version)
        self.versions_dialog.open()

    def restore_label_version(self, number: int) -> None:
        """Make version ``number`` the shown series' label again (in the background) and edit it; the label it replaces
        is kept as the newest version."""
        model = self.viewer.model
        if model is None or not self.resolve_unsaved_label():
            return
        self._run("restore_label", restore_call(model, self.label_store, number), lambda found: self._label_restored(model, number, *found), self._label_not_restored)

    def _label_restored(self, model: ViewerModel, number: int, saved: SavedLabel, mask: Volume) -> None:
        self._idle()
        if model is not self.viewer.model:
            return
        model.edit_label(mask.array, saved.labels, f"label (version {number})", dirty=False, annotated=saved.annotated)
        self.label_tools.refresh()
        newest = label_versions(model, self.label_store)[0].number
        self.status_message.setText(f"Restored label version {number}; the label it replaced is kept as version {newest} (restore it to undo)")
        self.label_restored.emit(saved)

    def _label_not_restored(self, message: str) -> None:
        self._idle()
        self.problems.add("restoring the label", message)
        self.problems_dock.show()
        self.status_message.setText("The label was NOT restored: see Problems")

    def accept_as_label(self, layer: LabelLayer) -> None:
        """Merge ``layer`` (a prediction) into the editable label of the shown series (a new one if there is none), as
        one undoable step: the prediction fills what the user has not drawn; the user's strokes stay."""
        model = self.viewer.model
        if model is None or layer not in model.layers:
            return
        editor = model.editor
        if editor is None:
            editor = model.edit_label(np.zeros(model.volume.shape, np.uint8), layer.names, f"label (from {layer.name})", dirty=False, annotated=Annotated())
        if editor.accept(layer.mask, layer.names) is None:
            self.status_message.setText(f"{layer.name} adds nothing to the label")
            return
        layer.visible = False  # else it shows through where the eraser corrects the label
        model.layer_changed()
        self.projects.note_prediction(self.last_prediction[1] if self.last_prediction else None, layer.name)
        self.label_tools.refresh()
        self.viewer.focus_active_view()
        self.status_message.setText(
            f"Merged {layer.name} into the label, keeping what you drew, and hid it (tick it in Layers to compare; Ctrl+Z undoes): "
            "correct the label with the brush (B) and eraser (E), save with Ctrl+S"
        )

    def new_label(self) -> None:
        """An empty editable label for the shown series."""
        model = self.viewer.model
        if model is None or (model.editor is not None and model.editor.dirty and not self.confirm_replace_label()):
            return
        model.edit_label(np.zeros(model.volume.shape, np.uint8), {1: "label 1"}, "label (new)", dirty=False, annotated=Annotated())
        self.viewer.focus_active_view()

    def save_label(self) -> None:
        """Save the editable label into the open project (the label store when none can be written), in the background."""
        model = self.viewer.model
        if model is None or model.editor is None:
            return
        editor = model.editor
        if self.project_session.writable_for(model):
            call, edits = self.project_session.save_call(model, self.projects.last_tool())
            self._run("save_label", call, lambda version: self.projects.label_saved(editor, edits, version), self._label_not_saved)
            return
        call, edits = save_call(model, self.label_store)
        self._run("save_label", call, lambda saved: self._label_saved(editor, edits, saved), self._label_not_saved)

    def _label_not_saved(self, message: str) -> None:
        self._idle()
        self.problems.add("saving the label", message)
        self.problems_dock.show()
        self.status_message.setText("The label was NOT saved (its edits are kept): see Problems")

    def _label_saved(self, editor: LabelEditor, edits: int, saved: SavedLabel) -> None:
        self._idle()
        editor.saved(edits)
        self.label_tools.refresh()
        kept = len(self.label_store.versions(saved.study_uid, saved.series_uid))
        self.status_message.setText(f"Label saved to {saved.mask}" + (f" (earlier saves kept: {kept} in {saved.mask.parent / VERSIONS_FOLDER})" if kept else ""))
        self.label_saved.emit(saved)

    def resolve_unsaved_label(self) -> bool:
        """Before the shown label goes away: ask to save, discard or cancel its unsaved edits. False: cancel."""
        model = self.viewer.model
        if model is None or model.editor is None or not model.editor.dirty:
            return True
        answer = self.ask_unsaved_label()
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer == QMessageBox.StandardButton.Save:
            try:  # the window is going away or changing series: save now, and stay if it fails
                writable = self.project_session.writable_for(model)
                call, edits = self.project_session.save_call(model, self.projects.last_tool()) if writable else save_call(model, self.label_store)
                call(lambda *_: None, CancelToken())
            except (MedtlError, OSError) as error:
                QMessageBox.warning(self, "Label not saved", str(error))
                return False
            model.editor.saved(edits)
        return True

    def ask_unsaved_label(self) -> QMessageBox.StandardButton:
        buttons = QMessageBox.StandardButton
        return QMessageBox.question(
            self, "Unsaved label", "The label has unsaved edits. Save them?", buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save
        )

    def confirm_replace_label(self) -> bool:
        answer = QMessageBox.question(self, "Replace the label?", "The label being edited has unsaved edits. Replace it anyway?")
        return answer == QMessageBox.StandardButton.Yes

    def show_training(self) -> None:
        self.training_dock.show()
        self.training_dock.raise_()

    def show_pretrain(self) -> None:
        self.pretrain_dock.show()
        self.pretrain_dock.raise_()

    def fine_tune_from(self, weights: str) -> None:
        """Show the fine-tune panel with ``weights`` (e.g. ``run:FOLDER`` of a pretraining run) chosen."""
        self.training.weights_box.setCurrentText(weights)
        self.show_training()

    def choose_folder(self) -> None:
        start = str(self.folder.parent if self.folder else Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open DICOM folder", start)
        if folder:
            self.open_path(folder)

    def open_sample(self) -> None:
        """Open the real-anatomy sample study; on its first use it is built first, in the background (a few seconds)."""
        self._run("sample", lambda progress, cancel: sample_study_dir(progress, cancel), self.open_path, lambda message: self._failed("the sample study", message))
        self._show_progress(0, 0, "preparing the sample study")

    def cancel_tasks(self) -> None:
        self._tasks.cancel_all()
        self.prompt_tool.cancel()
        if self._thumbnails is not None:
            self._thumbnails.quit()

    def _run(self, kind: str, call: EngineCall, done: Callable[[Any], None], failed: Callable[[str], None]) -> None:
        """Run ``call`` in the background as the task of ``kind`` (cancelling the running one of that kind, whose result
        is then ignored), its progress in the status bar."""
        self._tasks.start(kind, call, progress=self._show_progress, done=done, failed=failed, cancelled=self._cancelled)

    def _scanned(self, path: Path, result: ScanResult, seconds: float) -> None:
        self._idle()
        self.browser.set_result(result)
        self.problems.show_scan(path if path.is_dir() else path.parent, result)
        series = result.all_series()
        self.status_message.setText(
            f"{len(result.patients)} patients, {len(series)} series, {len(result.errors)} problem files ({seconds:.1f} s)"
        )
        self.scan_finished.emit(result)
        images = self.browser.image_series()
        self._make_thumbnails([path[2] for path in images])
        self._fallbacks = images
        self._show_next_fallback()

    def _make_thumbnails(self, series: list[SeriesInfo]) -> None:
        """Thumbnails for the listed series, in the background (stopping the previous folder's, if still going)."""
        if self._thumbnails is not None:
            self._thumbnails.quit()
        self._thumbnails = start_thumbnails(series, lambda result: self.browser.set_thumbnail(*result))

    def _show_next_fallback(self) -> None:
        """Select the next image series still to try after opening a folder, if any is left."""
        if self._fallbacks:
            self.browser.select_series(self._fallbacks[0][2].series_uid)

    def _load_failed(self, where: str, message: str) -> None:
        """List the failure; when the series was picked automatically, try the next one."""
        if self._fallbacks:
            self._idle()
            self.problems.add(where, message)
            self._show_next_fallback()
        else:
            self._failed(where, message)

    def _loaded(self, model: ViewerModel) -> None:
        self._idle()
        self._fallbacks = []
        for warning in model.volume.warnings:
            self.problems.add(f"series {model.label.series_description or model.volume.metadata.get('series_uid', '')}", warning)
        self.viewer.set_model(model)
        self.layers.set_model(model)
        self.label_tools.set_model(model)
        self.prompt_tool.set_model(model)
        z, y, x = model.volume.shape
        self.status_message.setText(f"{model.label.modality} {x}×{y}×{z}, {model.volume.array.dtype}")
        self._go_to_pending_slice(model)
        self.series_shown.emit(model)
        run, self._predict_when_shown = self._predict_when_shown, None
        if run is not None:
            self.predict_with_run(run)

    def _prompt_problem(self, where: str, message: str) -> None:
        self.problems.add(where, message)
        self.problems_dock.show()

    def _run_problem(self, job: str, message: str) -> None:
        """A training-like run could not start or failed: list it in Problems and say so in the status bar."""
        self.problems.add(job, message)
        self.problems_dock.show()
        self.status_message.setText(f"{job.capitalize()}: {message} (see Problems)")

    def _failed(self, where: str, message: str, action: str = "open") -> None:
        self._idle()
        self._predict_when_shown = None
        self.problems.add(where, message)
        self.problems_dock.show()
        self.status_message.setText(f"Could not {action} {where}: see Problems")
        self.task_failed.emit(message)

    # --- status bar --------------------------------------------------------------------------

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_message = QLabel("Ready", self)
        self.progress = QProgressBar(self)
        self.progress.setFixedWidth(220)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setIcon(icon("cancel"))
        self.cancel_button.setToolTip("Cancel (Esc)")
        self.cancel_button.clicked.connect(self.cancel_tasks)
        self.pixel_label = QLabel("", self)
        self.pixel_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar.addWidget(self.status_message, 1)
        bar.addPermanentWidget(self.label_tools.class_labels.status_progress)
        bar.addPermanentWidget(self.pixel_label)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        self._idle()

    def _cancelled(self) -> None:
        """A task stopped on request: quiet the status bar unless a newer task is still running."""
        if all(task.token.cancelled for task in self._tasks.running.values()):
            self._idle()
            self.status_message.setText("Cancelled")

    def _show_progress(self, done: int, total: int, message: str) -> None:
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.progress.setRange(0, total)  # 0..0: busy indicator
        self.progress.setValue(done)
        self.progress.setFormat(f"{message} %v/%m" if total else message)
        self.status_message.setText(message)

    def _idle(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)

    def _show_pixel(self, info: PixelInfo | None) -> None:
        self.pixel_label.setText("" if info is None else str(info))

    # --- menus -------------------------------------------------------------------------------

    def _build_menus_and_toolbar(self) -> None:
        views = self.viewer.actions_by_name
        open_action = self._action("&Open folder…", "Ctrl+O", self.choose_folder, "open-folder")
        sample_action = self._action("Open &sample study", None, self.open_sample)
        quit_action = self._action("&Quit", "Ctrl+Q", self.close)
        cancel_action = self._action("Cancel scan, load or prediction", "Esc", self.cancel_tasks)
        predict_action = self._action("&Predict with a trained run…", "Ctrl+P", self.choose_run, "predict")
        self.export_action = self._action("&Export prediction…", "Ctrl+E", lambda: self.export_prediction())  # not the checked flag
        self.export_action.setEnabled(False)
        train_action = self._action("&Fine-tune a model…", "Ctrl+T", self.show_training, "train")
        pretrain_action = self._action("P&retrain on unlabelled images…", "Ctrl+Shift+T", self.show_pretrain)
        results_action = self._action("Review a run's &results", "Ctrl+R", self.show_results)
        self.rank_action = self._action("Ran&k cases to label next…", None, self.rank_cases)
        self.addAction(self.ranking.next_action)
        self.uncertainty_action = QAction("Show &uncertainty (TTA) when predicting", self)
        self.uncertainty_action.setCheckable(True)  # off by default: uncertainty takes several forward passes
        for box in (self.training.uncertainty_box, self.results.uncertainty_box):
            box.toggled.connect(self.uncertainty_action.setChecked)
            self.uncertainty_action.toggled.connect(box.setChecked)
        versions_action = self._action("Restore an earlier &version…", None, self.show_label_versions)
        self.help_action = self._action("&Keyboard shortcuts", "F1", self.show_shortcuts, "help")
        self.about_action = self._action("&About medtl", None, self.show_about)
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addActions([open_action, sample_action])
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        file_menu.addActions([self.projects.actions[name] for name in ("new", "open", "add", "reader", "export")])
        file_menu.addSeparator()
        file_menu.addActions([self.pacs.open_action, self.pacs.send_action])
        file_menu.addSeparator()
        file_menu.addActions([cancel_action, quit_action])
        model_menu = self.menuBar().addMenu("&Model")
        model_menu.addActions([train_action, pretrain_action, predict_action, self.uncertainty_action, self.export_action])
        model_menu.addSeparator()
        model_menu.addActions([results_action, self.rank_action, self.ranking.next_action])
        labels = self.label_tools.actions_by_name
        label_menu = self.menuBar().addMenu("&Label")
        for names in (
            ("accept", "new_label"), ("brush", "eraser", "lasso", "threshold", "grow", "ball", "smaller", "larger", "interpolate"), ("box", "propagate"),
            ("undo", "redo", "save"), ("next_unlabelled",),
        ):  # fmt: skip
            label_menu.addActions([labels[name] for name in names])
            label_menu.addSeparator()
        label_menu.addAction(versions_action)
        label_menu.addActions([self.projects.actions["history"], self.projects.actions["agreement"]])
        self.addActions(list(labels.values()))
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addActions([views["layout_single"], views["layout_mpr"], views["layout_grid"]])
        view_menu.addSeparator()
        view_menu.addActions([views[name] for name in ("zoom_in", "zoom_out", "fit", "reset", "invert", "anonymise")])
        self.presets_menu = view_menu.addMenu("&Window presets")
        self.presets_menu.addAction(views["auto_window"])
        self.presets_menu.addActions([action for name, action in views.items() if name.startswith("preset_")])
        slices_menu = view_menu.addMenu("&Slices")
        slices_menu.addActions(
            [views[name] for name in ("next_slice", "previous_slice", "page_forward", "page_back", "first_slice", "last_slice")]
        )
        view_menu.addSeparator()
        view_menu.addActions([dock.toggleViewAction() for dock in self.docks()])
        self.menuBar().addMenu("&Help").addActions([self.help_action, self.about_action])

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main_toolbar")
        toolbar.setMovable(False)
        toolbar.addAction(open_action)
        toolbar.addSeparator()
        toolbar.addActions([views["layout_single"], views["layout_mpr"], views["layout_grid"]])
        toolbar.addSeparator()
        presets = QToolButton(self)
        presets.setIcon(icon("auto-window"))
        presets.setToolTip("Window/level presets")
        presets.setMenu(self.presets_menu)
        presets.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        toolbar.addWidget(presets)
        toolbar.addActions([views[name] for name in ("invert", "zoom_in", "zoom_out", "fit", "reset", "anonymise")])
        toolbar.addSeparator()
        toolbar.addActions([train_action, predict_action])
        toolbar.addSeparator()
        toolbar.addAction(self.help_action)

    def _action(self, text: str, key: str | None, slot: Callable[[], object], icon_name: str | None = None) -> QAction:
        action = QAction(text, self)
        if key is not None:
            action.setShortcut(QKeySequence(key))
        if icon_name is not None:
            action.setIcon(icon(icon_name))
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        folders = self.settings.recent_folders()
        for folder in folders:
            self.recent_menu.addAction(folder, lambda _checked=False, folder=folder: self.open_path(folder))
        if not folders:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self.settings.clear_recent)

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog([*self.actions(), *self.viewer.actions()], self)
        dialog.show()
        return dialog

    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self)
        dialog.show()
        return dialog

    def docks(self) -> list[QDockWidget]:
        return [self.browser_dock, self.layers_dock, self.training_dock, self.results_dock, self.ranking_dock, self.pretrain_dock, self.problems_dock]

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    # --- window events -----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    def confirm_stop_training(self) -> bool:
        """Ask whether closing may stop the running training (it keeps a checkpoint to resume from)."""
        answer = QMessageBox.question(
            self, "Training is running",
            "Stop the training and close? The run keeps its last checkpoint, so it can be resumed later.",
        )  # fmt: skip
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        """Ask before stopping a training run; stop all background work, wait for it, remember the window layout."""
        training = self.training.running or self.pretrain.running
        if (training and not self.confirm_stop_training()) or not self.resolve_unsaved_label():
            event.ignore()
            return
        self.training.cancel()
        self.pretrain.cancel()
        self.cancel_tasks()
        if not wait_for_tasks(STOP_TIMEOUT_MS):
            log.warning("background tasks did not stop within the time allowed")
        self.settings.save_window(self)
        self.project_session.close()  # releases the project's lock
        super().closeEvent(event)


def _no_focus_on_click(widget: QWidget) -> None:
    """Buttons in ``widget`` take the keyboard focus by Tab only: clicking one leaves it where it was (on the image,
    so the slice keys go on working)."""
    for button in widget.findChildren(QAbstractButton):
        button.setFocusPolicy(Qt.FocusPolicy.TabFocus)


def _scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a vertical scroll area: a tall panel never sets the window's minimum height."""
    scroller = QScrollArea(widget.parentWidget())
    scroller.setWidget(widget)
    scroller.setWidgetResizable(True)
    scroller.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroller.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # a click on the panel's background or a button leaves the focus where it was
    wheel = _WheelScrollsPanel(scroller)
    for field in (*widget.findChildren(QComboBox), *widget.findChildren(QAbstractSpinBox)):
        field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel does not give it the focus
        field.installEventFilter(wheel)
    return scroller


class _WheelScrollsPanel(QObject):
    """Scrolling a panel with the wheel scrolls the panel, never the choice or number under the pointer (a scroll
    must not change a setting); a field the user clicked into takes the wheel as usual."""

    def __init__(self, scroller: QScrollArea) -> None:
        super().__init__(scroller)
        self._scroller = scroller

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            self._scroller.verticalScrollBar().event(event)
            return True
        return False

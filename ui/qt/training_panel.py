"""`TrainingPanel`: fine-tune a model on a datalist in a worker, with live progress, curves and log.

The engine's :func:`medtl.workflow.train.train` runs in an :class:`EngineTask`; its events are
relayed to this panel as a queued signal (step events at most ten times a second) and folded into
a :class:`TrainingProgress`. Cancel stops the engine within one step; it leaves a checkpoint that
Resume goes on from. "Train again from this model" starts a new run from the finished one on the
current labels (:mod:`ui.models.run_request`).

Nothing needs typing: the task follows the datalist (masks: segmentation), the run folder is a new
dated folder under the per-user data folder, and "Use my saved labels" trains on the open project (where the
app saves labels), else writes the label store's datalist (partly annotated labels as sparse masks). "From
project" trains on the open project's labels with no datalist (the engine writes them into the run), and
lists the run in the project when it starts (the app holds the project's lock, so the engine cannot).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPaintEvent
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QToolButton, QVBoxLayout, QWidget

from medtl.data.datalist import TASKS, load_datalist
from medtl.data.summary import DatalistSummary, summarise_datalist
from medtl.errors import MedtlError
from medtl.labels.store import DATALIST_NAME, LabelStore
from medtl.models.licence import licence_text
from medtl.models.registry import ARCHITECTURES
from medtl.models.strategy import STRATEGIES
from medtl.models.weights import PACKAGED
from medtl.progress import CancelToken, ProgressCallback
from medtl.training.compare import ComparisonFolder
from medtl.training.compare import runs_in
from medtl.training.events import CANCELLED, StepProgress
from medtl.training.run_folder import RunFolder
from medtl.workflow.train import TrainRequest, preview
from ui.models.run_request import RunOutcome, default_run_dir, resume_request, train_again_request
from ui.models.training_progress import TrainingProgress, ended_status, progress_of_run
from ui.qt.curve_plot import Curve
from ui.qt.run_monitor import RunMonitor, RunPanel, loss_curves
from ui.qt.tasks import EngineTask, TaskGroup, start_task

if TYPE_CHECKING:  # pragma: no cover
    from medtl.workflow.train import TrainResult
    from ui.qt.settings import AppSettings

DEFAULT = "(default for the data)"
FROM_SCRATCH = "none (random initialisation)"
_PROBE_DELAY_MS = 300
_SUMMARY_DELAY_MS = 300  # typing a path: summarise once it stops changing
_METRIC_COLOURS = ("#59a14f", "#edc948", "#b07aa1", "#76b7b2")
_RUN_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#edc948")


class TrainingPanel(RunPanel):
    """The form, Start / Cancel, a progress bar with the time left, loss and metric curves, and the log."""

    run_finished = Signal(object)  # the run's TrainResult, also after a cancel-free early stop
    predict_requested = Signal(object)  # Path of the run to predict with
    datalist_chosen = Signal(object)  # Path of the datalist put in the form
    summary_shown = Signal(object)  # DatalistSummary of the chosen datalist

    def __init__(self, settings: AppSettings, parent: QWidget | None = None, label_store: LabelStore | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.label_store = label_store or LabelStore()
        self._run_dir: Path | None = None
        self.project: Path | None = None  # the open project's folder ("From project" trains on it)
        self._link_run: Callable[[Path], None] | None = None
        self.outcome: RunOutcome | None = None  # how the last run of this panel ended
        self._device_probe: EngineTask | None = None
        self._build_form()
        self._build_progress()
        self._epochs_read = False
        self.monitor.event_received.connect(self._read_planned_epochs)
        if not self.datalist.text().strip():
            self.task_box.setCurrentText("segmentation")  # labels drawn in the app are masks; a datalist chosen sets its own task
        self._task_changed(self.task_box.currentText())
        self.monitor.running_changed.connect(self._set_running)
        self._set_running(False)

    # --- form --------------------------------------------------------------------------------

    def _build_form(self) -> None:
        self.datalist = QLineEdit(str(self.settings.store.value("training/datalist", "")), self)
        self.datalist.setPlaceholderText("datalist .json (MSD style: images and labels)")
        self.task_box = QComboBox(self)
        self.task_box.addItems(list(TASKS))
        self.out_dir = QLineEdit(str(default_run_dir()), self)
        self.out_dir.setPlaceholderText("a new folder for the run")
        self.out_dir.setToolTip("where the run is written: a new folder (a dated one under your medtl data folder unless you choose)")
        self.model_box = QComboBox(self)
        self.weights_box = QComboBox(self)
        self.weights_box.setEditable(True)
        self.weights_box.addItems([DEFAULT, FROM_SCRATCH, *PACKAGED])
        self.weights_box.setToolTip("pretrained weights: a packaged name, a file, a MONAI bundle, a URL or an earlier run")
        for index in range(self.weights_box.count()):
            text = licence_text(self.weights_box.itemText(index), DEFAULT, FROM_SCRATCH)
            self.weights_box.setItemData(index, text, Qt.ItemDataRole.ToolTipRole)
        self.licence = QLabel(self)
        self.licence.setWordWrap(True)
        self.licence.setObjectName("licence")
        self.choice = QLabel(self)
        self.choice.setWordWrap(True)
        self.choice.setObjectName("choice")
        self.choice.setTextFormat(Qt.TextFormat.RichText)  # escaped text and a red failure alike
        self.choice.setToolTip("what Start trains, from which weights under which licence, and why (kept in the run's config.json)")
        self.data_summary = QLabel("Choose a datalist to see its cases and split.", self)
        self.data_summary.setWordWrap(True)
        self._summary_task = TaskGroup(self)  # the running datalist summary: a new one cancels it
        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.setInterval(_SUMMARY_DELAY_MS)
        self._summary_timer.timeout.connect(self.summarise_datalist)
        self.strategy_box = QComboBox(self)
        self.strategy_box.addItems([DEFAULT, *STRATEGIES])
        self.epochs = QSpinBox(self)
        self.epochs.setRange(0, 10_000)
        self.epochs.setSpecialValueText("automatic")
        self.minutes = QDoubleSpinBox(self)
        self.minutes.setRange(0, 10_000)
        self.minutes.setSpecialValueText("no limit")
        self.minutes.setSuffix(" min")
        self.device_box = QComboBox(self)
        self.device_box.addItems(["auto", "cuda", "cpu"])
        self.device_box.setToolTip("auto: the GPU if there is one, else the CPU")
        self.device_label = QLabel("auto: looking for a GPU…", self)
        self.compare = QCheckBox("compare with training from scratch", self)
        for box in (self.task_box, self.model_box, self.weights_box, self.strategy_box, self.device_box):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(10)
        form = QFormLayout()
        form.addRow("Datalist", _with_browse(self.datalist, self._choose_datalist))
        self.from_labels_button = QPushButton("Use my saved labels", self)
        self.from_labels_button.setToolTip("train on every series with a saved label: the open project's, else a datalist of the label store's")
        self.from_labels_button.clicked.connect(self.use_saved_labels)
        form.addRow("", self.from_labels_button)
        self.from_project = QCheckBox("From project", self)
        self.from_project.setToolTip("train on the saved labels of the open project (no datalist needed); the run is listed in the project")
        self.from_project.setEnabled(False)
        self.from_project.toggled.connect(self._from_project_toggled)
        form.addRow("", self.from_project)
        form.addRow("Data", self.data_summary)
        form.addRow("Task", self.task_box)
        form.addRow("Run folder", _with_browse(self.out_dir, self._choose_out_dir))
        form.addRow("Model", self.model_box)
        form.addRow("Weights", self.weights_box)
        form.addRow("", self.licence)
        form.addRow("Network", self.choice)
        form.addRow("Strategy", self.strategy_box)
        form.addRow("Epochs", self.epochs)
        form.addRow("Time budget", self.minutes)
        form.addRow("Device", self.device_box)
        form.addRow("", self.device_label)
        form.addRow("", self.compare)
        self.start_button = QPushButton("Start", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.open_button = QPushButton("Open runs…", self)
        self.open_button.setToolTip("show the curves of a past run (a comparison folder shows both of its runs)")
        self.add_button = QPushButton("Compare with…", self)
        self.add_button.setToolTip("add another run's curves to the ones shown")
        self.predict_button = QPushButton("Predict", self)
        self.predict_button.setToolTip("predict on the shown series with the run just trained")
        self.uncertainty_box = QCheckBox("Show uncertainty (TTA)", self)
        self.uncertainty_box.setToolTip("predict with test-time flips (or MC dropout) and show how unsure the model is, as a heat map layer")
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.setToolTip("go on with the cancelled or time-limited run from its checkpoint")
        self.again_button = QPushButton("Train again from this model", self)
        self.again_button.setToolTip("a new run that starts from the model just trained, on the current labels (saved labels are read again)")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(4, 4, 4, 4)
        self._layout.addLayout(form)
        rows = ((self.start_button, self.cancel_button, self.predict_button), (self.uncertainty_box,), (self.resume_button, self.again_button), (self.open_button, self.add_button))
        for row in rows:
            buttons = QHBoxLayout()
            for button in row:
                buttons.addWidget(button)
            self._layout.addLayout(buttons)
        self.task_box.currentTextChanged.connect(self._task_changed)
        self.task_box.currentTextChanged.connect(lambda _text: self._summary_timer.start())
        self.datalist.textChanged.connect(lambda _text: self._summary_timer.start())
        self.weights_box.currentTextChanged.connect(self._show_licence)
        self._show_licence(self.weights_box.currentText())
        for box in (self.model_box, self.weights_box, self.strategy_box):
            box.currentTextChanged.connect(lambda _text: self.show_choice())
        if self.datalist.text():
            self._summary_timer.start()
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.predict_button.clicked.connect(lambda: self.predict_requested.emit(self.predictable_run()))
        self.predict_button.setEnabled(False)
        self.resume_button.clicked.connect(self.resume)
        self.again_button.clicked.connect(self.train_again)
        self.open_button.clicked.connect(lambda: self._choose_runs(replace=True))
        self.add_button.clicked.connect(lambda: self._choose_runs(replace=False))
        self.history: list[tuple[str, TrainingProgress]] = []  # past runs shown instead of the live one

    def _build_progress(self) -> None:
        self.monitor = RunMonitor(self._curves, self)
        self._layout.addWidget(self.monitor)

    def _task_changed(self, task: str) -> None:
        self.model_box.clear()
        self.model_box.addItems([DEFAULT, *(name for name, architecture in ARCHITECTURES.items() if architecture.task == task)])

    def set_project(self, folder: Path | None, link_run: Callable[[Path], None] | None = None) -> None:
        """The project open in the app (None: none), and how to list a run started from it in it."""
        self.project, self._link_run = folder, link_run
        self.from_project.setEnabled(folder is not None)
        self.from_project.setText("From project" + (f" {folder.name}" if folder is not None else ""))
        if folder is None:
            self.from_project.setChecked(False)
        elif self.from_project.isChecked():
            self._from_project_toggled(True)

    def _from_project_toggled(self, on: bool) -> None:
        for widget in (self.datalist, self.from_labels_button):
            widget.setEnabled(not on)
        if on:
            self.data_summary.setText(f"the saved labels of the project {self.project} (written into the run when it starts)")
            self.show_choice()
        else:
            self._summary_timer.start()

    def _choose_datalist(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Datalist", self.datalist.text(), "Datalist (*.json)")
        if path:
            self.datalist.setText(path)

    def summarise_datalist(self) -> None:
        """Read the chosen datalist in a worker, set the task its labels make (masks: segmentation, class names:
        classification) and show its cases per class or label and its split."""
        self._summary_task.cancel_all()
        if self.from_project.isChecked():
            return  # the project's labels are read when the run starts
        path = self.datalist.text().strip()
        if not path:
            self.data_summary.setText("Choose a datalist to see its cases and split.")
            return
        self.data_summary.setText("reading the datalist…")

        def summarise(progress: ProgressCallback, cancel: CancelToken) -> tuple[str, DatalistSummary]:
            task = load_datalist(path).task
            return task, summarise_datalist(path, task, progress, cancel)

        self._summary_task.start(
            "summary", summarise,
            progress=lambda done, total, _message: self.data_summary.setText(f"reading the datalist… {done}/{total}"),
            done=lambda result: self._show_summary(*result),
            failed=lambda message: self.data_summary.setText(f"<span style='color:#e15759'>{html.escape(message)}</span>"),
        )  # fmt: skip

    def _show_summary(self, task: str, summary: DatalistSummary) -> None:
        if task != self.task_box.currentText():
            self.task_box.blockSignals(True)  # the summary shown is already this task's
            self.task_box.setCurrentText(task)
            self.task_box.blockSignals(False)
            self._task_changed(task)
        lines = [html.escape(line) for line in summary.lines()]
        lines += [f"<span style='color:#edc948'>{html.escape(warning)}</span>" for warning in summary.warnings]
        self.data_summary.setText("<br>".join(lines))
        self.summary_shown.emit(summary)
        self.show_choice()

    def show_choice(self) -> None:
        """Work out, in a worker, which network Start would train from the form, and show it with its licence and reason."""
        try:
            request = self.request()
        except MedtlError as error:
            self.choice.setText(html.escape(f"(complete the form: {error})"))
            return
        self.choice.setText("working out the network…")
        self._summary_task.start(
            "choice", lambda _progress, _cancel: preview(request),
            done=lambda plan: self.choice.setText(html.escape(plan.text())),
            failed=lambda message: self.choice.setText(f"<span style='color:#e15759'>{html.escape(message)}</span>"),
        )  # fmt: skip

    def _show_licence(self, choice: str) -> None:
        self.licence.setText(licence_text(choice, DEFAULT, FROM_SCRATCH))

    def use_saved_labels(self) -> None:
        """Train on the saved labels: with a project open, the project's (the app saves labels into it: tick "From
        project"); else write the label store's datalist (in a worker: it reads every saved label's record) and choose it."""
        if self.project is not None:
            self.from_project.setChecked(True)
            self.monitor.add_log(f"your labels are saved in the project {self.project}: training on them")
            return
        store = self.label_store
        start_task(
            lambda _progress, _cancel: store.write_datalist(), self,
            done=self._use_datalist, failed=lambda message: self.monitor.report_problem(f"no datalist from saved labels: {message}"),
        )  # fmt: skip

    def _use_datalist(self, path: Path) -> None:
        self.task_box.setCurrentText("segmentation")
        self.datalist.setText(str(path))
        self.monitor.add_log(f"datalist of the saved labels: {path}")
        self.datalist_chosen.emit(path)

    def _choose_runs(self, replace: bool) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder", self.out_dir.text())
        if folder:
            self.show_runs([Path(folder)], replace)

    def show_runs(self, folders: list[Path], replace: bool = True) -> None:
        """Show the curves of the runs in ``folders`` (added to those shown unless ``replace``) and their summaries."""
        if replace:
            self.history = []
        for folder in folders:
            for name, run_dir in runs_in(folder):
                progress = progress_of_run(run_dir)
                self.history.append((name, progress))
                summary = progress.summary
                best = "(no summary)" if summary is None else f"{summary.best_metric_name or 'metric'} {summary.best_metric}"
                self.monitor.add_log(f"{name}: {len(progress.epoch_loss)} epochs, best {best}")
        self.monitor.redraw()

    def _choose_out_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder", self.out_dir.text())
        if folder:
            self.out_dir.setText(folder)

    def request(self) -> TrainRequest:
        """The form as a request (empty choices left to the engine); :class:`~medtl.workflow.request.InvalidRequest`
        names the field that cannot work."""

        def choice(box: QComboBox) -> str | None:
            text = box.currentText().strip()
            return None if text in ("", DEFAULT) else "none" if text == FROM_SCRATCH else text

        on_project = self.from_project.isChecked() and self.project is not None
        return TrainRequest(
            None if on_project else Path(self.datalist.text().strip()), self.task_box.currentText(), Path(self.out_dir.text().strip()),
            project=self.project if on_project else None, model=choice(self.model_box), weights=choice(self.weights_box), strategy=choice(self.strategy_box),
            epochs=self.epochs.value() or None, time_limit_minutes=self.minutes.value() or None,
            device=self.device_box.currentText(), compare_scratch=self.compare.isChecked(),
        )  # fmt: skip

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        """The first time the panel is drawn (not merely shown: tabbed docks are shown behind others), name the
        device ``auto`` picks, in a worker (it imports torch)."""
        super().paintEvent(event)
        if self._device_probe is None:
            QTimer.singleShot(_PROBE_DELAY_MS, self._probe_device)

    def _probe_device(self) -> None:
        if self._device_probe is not None:
            return
        self._device_probe = start_task(
            lambda _progress, _cancel: _auto_device_name(), self,
            done=lambda name: self.device_label.setText(f"auto uses: {name}"),
            failed=lambda message: self.device_label.setText(f"no device found: {message}"),
        )  # fmt: skip

    # --- running -----------------------------------------------------------------------------

    def start(self) -> bool:
        """Start training from the form; False (with the reasons in the status line and the log) if the form cannot work."""
        request = self.monitor.request_to_start(self.request)
        if request is None:
            return False
        if request.project is None:
            self.settings.store.setValue("training/datalist", str(request.datalist))
        listed = self._list_in_project(request)  # before the worker reads the project: it then leaves the listing to the app
        self._launch(request, f"training a {request.task} model on {request.project or request.datalist} into {request.out_dir}")
        if listed:
            self.monitor.add_log(listed)
        return True

    def _list_in_project(self, request: TrainRequest) -> str | None:
        """Record a run trained from the open project in it; what happened, for the log (None: not from the project)."""
        if request.project is None or self._link_run is None or self.project is None or request.project != self.project.absolute():
            return None
        try:
            self._link_run(request.out_dir)
        except MedtlError as error:
            return f"the run is not listed in the project: {error}"
        return f"the run is listed in the project {request.project}"

    def resume(self) -> bool:
        """Go on with the last run of the panel (cancelled, or stopped at its time limit) from its checkpoint."""
        outcome = self.outcome
        if outcome is None or not outcome.resumable:
            return False
        request = self.monitor.request_to_start(lambda: resume_request(outcome))
        if request is None:
            return False
        self._launch(request, f"resuming {request.out_dir}")
        return True

    def train_again(self) -> None:
        """A new run (in the run folder field's new folder) from the model just trained, on the current labels: the
        label store's datalist is written again first when it is the one in use (labels corrected since are in it)."""
        outcome = self.outcome
        if outcome is None or not outcome.has_model or self.running:
            return
        text = self.datalist.text().strip()
        datalist = Path(text) if text and not self.from_project.isChecked() else None  # None: the parent's (or the project's)
        if (datalist or outcome.datalist) == self.label_store.root / DATALIST_NAME:
            store = self.label_store
            start_task(
                lambda _progress, _cancel: store.write_datalist(datalist or outcome.datalist), self,
                done=lambda _path: self._train_again_on(outcome, datalist),
                failed=lambda message: self.monitor.report_problem(f"no datalist from saved labels: {message}"),
            )  # fmt: skip
        else:
            self._train_again_on(outcome, datalist)

    def _train_again_on(self, parent: RunOutcome, datalist: Path | None) -> None:
        project = self.project if self.from_project.isChecked() else None
        request = self.monitor.request_to_start(lambda: train_again_request(parent, datalist, Path(self.out_dir.text().strip()), project))
        if request is not None:
            listed = self._list_in_project(request)
            self._launch(request, f"training again from {parent.run_dir} on {request.project or request.datalist} into {request.out_dir}")
            if listed:
                self.monitor.add_log(listed)

    def _launch(self, request: TrainRequest, description: str) -> None:
        """Run ``request`` in the worker, shown in the monitor."""
        self._run_dir, self.history, self.outcome = request.out_dir, [], None
        self._set_follow_ups()
        self.monitor.begin()
        self.monitor.add_log(description)
        self._epochs_read = False

        def call(_progress: ProgressCallback, cancel: CancelToken) -> TrainResult:
            from medtl.workflow.train import (
                train,  # imports torch: only now, in the worker
            )

            return train(request, self.monitor.relay, cancel)

        self.monitor.run(call, lambda result: self._done(request, result), lambda: self._cancelled(request))
        self.monitor.task.finished.connect(lambda: self._ended(request))  # type: ignore[union-attr]

    def _read_planned_epochs(self, event: object) -> None:
        """Once the run has written its configuration (by its first step), the status line says "epoch i/n"."""
        if self._epochs_read or not isinstance(event, StepProgress) or self._run_dir is None:
            return
        self._epochs_read = True
        folder = RunFolder(self.predictable_run() or self._run_dir)
        try:
            self.monitor.progress.epochs = folder.read_config().train.epochs
        except MedtlError:
            return
        self.monitor.status.setText(self.monitor.progress.status())

    def _cancelled(self, request: TrainRequest) -> None:
        self.outcome = self._outcome(request, CANCELLED)
        self.monitor.finished("cancelled" + (": Resume goes on from its checkpoint" if self.outcome.resumable else " before training began"))
        self.monitor.add_log(self.monitor.status.text())

    def _ended(self, request: TrainRequest) -> None:
        """Whatever the end: the next run gets a new default folder, and Resume / Train again follow the outcome."""
        if Path(self.out_dir.text().strip()) == request.out_dir:
            self.out_dir.setText(str(default_run_dir()))
        self._set_follow_ups()

    def _outcome(self, request: TrainRequest, stopped_because: str | None) -> RunOutcome:
        run_dir = self.predictable_run() or request.out_dir
        return RunOutcome(run_dir, request.out_dir, request.datalist, request.device, stopped_because)

    def _set_follow_ups(self) -> None:
        running, outcome = self.running, self.outcome
        self.resume_button.setEnabled(not running and outcome is not None and outcome.resumable)
        self.again_button.setEnabled(not running and outcome is not None and outcome.has_model)

    def predictable_run(self) -> Path | None:
        """The run folder the last successful training left (its pretrained arm when compared)."""
        if self._run_dir is None:
            return None
        folder = ComparisonFolder(self._run_dir)
        return folder.arm("pretrained").path if folder.is_comparison() else self._run_dir

    def _done(self, request: TrainRequest, result: TrainResult) -> None:
        summary = result.summary
        self.outcome = self._outcome(request, summary.stopped_because)
        self.monitor.finished(ended_status(summary))
        self.monitor.add_log(self.monitor.status.text())
        self.predict_button.setEnabled(True)
        if result.comparison is not None:
            self.show_runs([result.out_dir])
        self.run_finished.emit(result)

    def _set_running(self, running: bool) -> None:
        if running:
            self.predict_button.setEnabled(False)
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self._set_follow_ups()

    def _curves(self, progress: TrainingProgress) -> list[Curve]:
        """The live run's curves, or, when past runs are open, each run's loss and first metric in its own colour."""
        if not self.history:
            curves = loss_curves(progress)
            for colour, (name, points) in zip(_METRIC_COLOURS, progress.metrics.items()):
                curves.append(Curve(name, points, QColor(colour), right_axis=True, width=2.0))
        else:
            curves = []
            for colour, (run, past) in zip(_RUN_COLOURS, self.history):
                curves.append(Curve(f"{run} loss", past.epoch_loss, QColor(colour), width=1.5))
                for name, points in list(past.metrics.items())[:1]:
                    curves.append(Curve(f"{run} {name}", points, QColor(colour), right_axis=True, width=2.5))
        return curves


def _auto_device_name() -> str:
    from medtl.training.device import device_name, select_device

    return device_name(select_device("auto"))


def _with_browse(field: QLineEdit, choose: Callable[[], None]) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(field)
    button = QToolButton(row)
    button.setText("…")
    button.clicked.connect(choose)
    layout.addWidget(button)
    return row

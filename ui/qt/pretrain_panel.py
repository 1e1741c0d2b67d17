"""`PretrainPanel`: self-supervised pretraining of a backbone on unlabelled folders, in a worker.

The engine's :func:`medtl.workflow.pretrain.pretrain` runs in an :class:`~ui.qt.tasks.EngineTask`; its
events (the training engine's own: steps, epochs, log lines) are relayed as a queued signal (step events
at most ten times a second) and folded into a :class:`~ui.models.training_progress.TrainingProgress`, which
drives the progress bar with the time left, the status line and the loss curves. Cancel stops within one
step and leaves a checkpoint. When the run ends the panel shows its folder and offers it as pretrained
weights (:attr:`PretrainPanel.weights_chosen` carries ``"run:FOLDER"`` for the fine-tune panel).

Docked by the main window with ``PretrainPanel(parent)``; :meth:`PretrainPanel.set_input_folder` gives it
the folder the user opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget, QPushButton, QSpinBox, QVBoxLayout, QWidget

from medtl.models.registry import ARCHITECTURES
from medtl.progress import CancelToken, ProgressCallback
from medtl.training.run_folder import RunFolder
from medtl.workflow.pretrain import DEFAULT_MODEL, PretrainRequest
from ui.models.training_progress import TrainingProgress, ended_status
from ui.qt.curve_plot import Curve
from ui.qt.run_monitor import RunMonitor, RunPanel, loss_curves

if TYPE_CHECKING:
    from medtl.training.run_summary import RunSummary

DEFAULT_MINUTES = 3.0
_PART_COLOURS = {"contrastive": "#f28e2b", "reconstruction": "#59a14f"}


class PretrainPanel(RunPanel):
    """Inputs, model, budget and device; Start / Cancel; a progress bar with the time left, loss curves, the log and the result."""

    run_finished = Signal(object)  # the run's summary (dict), when it ends other than by a cancel
    weights_chosen = Signal(str)  # "run:FOLDER": the user wants to fine-tune from this run

    def __init__(self, parent: QWidget | None = None, folder: Path | None = None) -> None:
        super().__init__(parent)
        self.run_dir: Path | None = None
        self._default_input = False  # the input list holds only the folder set_input_folder proposed
        self._build_form()
        self._build_progress()
        if folder is not None:
            self.set_input_folder(folder)
        self.monitor.running_changed.connect(self._set_running)
        self._set_running(False)

    # --- form --------------------------------------------------------------------------------

    def _build_form(self) -> None:
        self.inputs = QListWidget(self)
        self.inputs.setToolTip("DICOM folders (every image series under them), NIfTI or picture files; no labels needed")
        self.inputs.setMaximumHeight(90)
        self.add_button = QPushButton("Add folder…", self)
        self.remove_button = QPushButton("Remove", self)
        self.out_dir = QLineEdit(self)
        self.out_dir.setPlaceholderText("a new folder for the run")
        self.model_box = QComboBox(self)
        self.model_box.addItems([name for name, architecture in ARCHITECTURES.items() if 2 in architecture.dims])
        self.model_box.setCurrentText(DEFAULT_MODEL)
        self.model_box.setToolTip("the 2D network whose backbone to learn; fine-tune later with the same architecture")
        self.epochs = QSpinBox(self)
        self.epochs.setRange(0, 10_000)
        self.epochs.setSpecialValueText("automatic")
        self.minutes = QDoubleSpinBox(self)
        self.minutes.setRange(0, 10_000)
        self.minutes.setValue(DEFAULT_MINUTES)
        self.minutes.setSpecialValueText("no limit")
        self.minutes.setSuffix(" min")
        self.device_box = QComboBox(self)
        self.device_box.addItems(["auto", "cuda", "cpu"])
        self.device_box.setToolTip("auto: the GPU if there is one, else the CPU")
        input_buttons = QHBoxLayout()
        input_buttons.addWidget(self.add_button)
        input_buttons.addWidget(self.remove_button)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_dir)
        browse = QPushButton("…", self)
        browse.setMaximumWidth(30)
        out_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Unlabelled images", self.inputs)
        form.addRow("", input_buttons)
        form.addRow("Run folder", out_row)
        form.addRow("Model", self.model_box)
        form.addRow("Epochs", self.epochs)
        form.addRow("Time budget", self.minutes)
        form.addRow("Device", self.device_box)
        self.start_button = QPushButton("Start pretraining", self)
        self.cancel_button = QPushButton("Cancel", self)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(4, 4, 4, 4)
        self._layout.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        self._layout.addLayout(buttons)
        self.add_button.clicked.connect(self._choose_input)
        self.remove_button.clicked.connect(lambda: [self.inputs.takeItem(self.inputs.row(item)) for item in self.inputs.selectedItems()])
        browse.clicked.connect(self._choose_out_dir)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)

    def _build_progress(self) -> None:
        self.monitor = RunMonitor(_curves, self)
        self.result = QLabel("", self)
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_button = QPushButton("Use as pretrained weights", self)
        self.use_button.setToolTip("fine-tune from this run: its backbone is loaded, the new head starts from random")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(lambda: self.run_dir is not None and self.weights_chosen.emit(f"run:{self.run_dir}"))
        for widget in (self.monitor, self.result, self.use_button):
            self._layout.addWidget(widget)

    def set_input_folder(self, folder: Path | str) -> None:
        """Make ``folder`` (e.g. the one just opened in the viewer) the input, unless the user already chose inputs;
        also proposes ``<folder>-pretrained`` as the run folder when none is set."""
        folder = Path(folder)
        if self.running:
            return
        if self.inputs.count() == 0 or self._default_input:
            self.inputs.clear()
            self.inputs.addItem(str(folder))
            self._default_input = True
        if not self.out_dir.text().strip():
            self.out_dir.setText(str(folder.parent / f"{folder.name}-pretrained"))

    def input_paths(self) -> tuple[Path, ...]:
        return tuple(Path(self.inputs.item(row).text()) for row in range(self.inputs.count()))

    def _choose_input(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of unlabelled images")
        if folder:
            self._default_input = False
            self.inputs.addItem(folder)

    def _choose_out_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder", self.out_dir.text())
        if folder:
            self.out_dir.setText(folder)

    def request(self) -> PretrainRequest:
        """The form as a request; :class:`~medtl.workflow.request.InvalidRequest` names the field that cannot work."""
        return PretrainRequest(
            self.input_paths(), Path(self.out_dir.text().strip()), self.model_box.currentText(),
            epochs=self.epochs.value() or None, time_limit_minutes=self.minutes.value() or None, device=self.device_box.currentText(),
        )  # fmt: skip

    # --- running -----------------------------------------------------------------------------

    def start(self) -> bool:
        """Start pretraining from the form; False (with the reasons in the log) if the form is incomplete."""
        request = self.monitor.request_to_start(self.request)
        if request is None:
            return False
        self.run_dir = request.out_dir
        self.monitor.begin()
        self.result.setText("")
        self.use_button.setEnabled(False)
        self.monitor.add_log(f"pretraining a {request.model} backbone on {len(request.paths)} input(s) into {request.out_dir}")

        def call(_progress: ProgressCallback, cancel: CancelToken) -> RunSummary:
            from medtl.dicom.catalog import Catalog
            from medtl.workflow.pretrain import (
                pretrain,  # imports torch: only now, in the worker
            )

            catalog = Catalog()
            try:
                return pretrain(request, self.monitor.relay, cancel, catalog=catalog)
            finally:
                catalog.close()

        self.monitor.run(call, self._done, lambda: self._cancelled(request.out_dir))
        return True

    def _done(self, summary: RunSummary) -> None:
        self.monitor.finished(ended_status(summary))
        if summary.cancelled or summary.run_dir is None:  # cancelled between the engine's last poll and its return
            self._cancelled(summary.run_dir or self.run_dir)
            return
        details = summary.details
        data = details.get("data", {})
        self.monitor.add_log(f"done: {summary.stopped_because}; {summary.epochs} epoch(s), final loss {details.get('final_loss')}")
        if details.get("weights"):
            self.result.setText(
                f"Run folder: {summary.run_dir}\nLearned from {data.get('slices')} slices of {data.get('volumes')} volume(s), "
                f"{data.get('patients')} patient(s).\nUse as pretrained weights: in Fine-tune choose Model {details.get('architecture')} "
                f"and Weights {details['weights']}"
            )
            self.use_button.setEnabled(True)
        self.run_finished.emit(summary)

    def _cancelled(self, run_dir: Path) -> None:
        self.monitor.status.setText("cancelled")
        if RunFolder(run_dir).checkpoint_path.is_file():
            self.monitor.add_log(f"cancelled; the checkpoint in {run_dir} lets `medtl pretrain … --out {run_dir} --resume` continue it")
        else:
            self.monitor.add_log("cancelled before pretraining started; nothing was written")

    def _set_running(self, running: bool) -> None:
        for widget in (self.start_button, self.add_button, self.remove_button, self.model_box, self.epochs, self.minutes, self.device_box, self.out_dir):
            widget.setEnabled(not running)
        self.cancel_button.setEnabled(running)


def _curves(progress: TrainingProgress) -> list[Curve]:
    """The loss, and its contrastive and reconstruction parts on the right axis."""
    parts = [Curve(name, points, QColor(_PART_COLOURS.get(name, "#b07aa1")), right_axis=True, width=2.0) for name, points in progress.metrics.items()]
    return loss_curves(progress) + parts

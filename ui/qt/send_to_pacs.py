"""File → PACS… and "Send to PACS…": the PACS dialog (query and retrieve, :mod:`ui.qt.pacs_dialog`) and sending the
shown label or the last prediction back as a DICOM SEG that references the series it was drawn on.

The SEG is written into a temporary folder and sent by C-STORE or STOW-RS (:func:`medtl.pacs.send.send`) in a worker;
the node's answer for each instance goes to the status line, and a refusal to the Problems panel.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QMessageBox, QWidget

from medtl.errors import MedtlError
from medtl.progress import CancelToken, ProgressCallback
from ui.qt.pacs_dialog import PacsDialog, open_pacs_dialog

if TYPE_CHECKING:  # pragma: no cover
    from medtl.pacs.dimse import SendResult
    from medtl.pacs.nodes import Node
    from ui.qt.main_window import MainWindow

LABEL, PREDICTION = "the label being edited", "the last prediction"


class SendDialog(QDialog):
    """What to send (the label, the last prediction) and to which saved node, in one form, with where each node is."""

    def __init__(self, series_name: str, choices: list[str], nodes: dict[str, Node], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Send to PACS")
        self.what = QComboBox()
        self.what.addItems(choices)
        self.node = QComboBox()
        for name in sorted(nodes):
            self.node.addItem(f"{name}  ({nodes[name].describe()})", name)
        form = QFormLayout(self)
        form.addRow(QLabel(f"As a DICOM SEG that references the series {series_name}:"))
        form.addRow("Send", self.what)
        form.addRow("To", self.node)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Send")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def choice(self) -> tuple[str, str]:
        """(what, node name) as chosen."""
        return self.what.currentText(), str(self.node.currentData())


class PacsActions(QObject):
    """The window's PACS menu entries: open the dialog, and send a label or a prediction as DICOM SEG."""

    sent = Signal(object)  # list[SendResult], once a send ends

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.dialog: PacsDialog | None = None
        self.send_dialog: SendDialog | None = None
        self.open_action = QAction("&PACS (query and retrieve)…", window)
        self.open_action.triggered.connect(lambda _checked=False: self.open_dialog())
        self.send_action = QAction("&Send to PACS…", window)
        self.send_action.setToolTip("Send the label being edited, or the last prediction, to a PACS node as a DICOM SEG")
        self.send_action.triggered.connect(lambda _checked=False: self.send())

    def open_dialog(self) -> PacsDialog | None:
        """The PACS dialog; each study it retrieves opens in the window."""
        self.dialog = open_pacs_dialog(self.window, self.window.open_path)
        return self.dialog

    def what_can_be_sent(self) -> list[str]:
        """What the shown series offers: its edited label, the last prediction (when it was made on DICOM files)."""
        model = self.window.viewer.model
        if model is None or not model.files:
            return []
        choices = []
        if model.editor is not None and model.editor.layer.mask.any():
            choices.append(LABEL)
        if self.window.last_prediction is not None:
            choices.append(PREDICTION)
        return choices

    def send(self, what: str | None = None, node_name: str | None = None) -> bool:
        """Send ``what`` (:data:`LABEL` or :data:`PREDICTION`) to the saved node ``node_name`` (each asked for when
        None), in a worker; False when nothing was started."""
        from medtl.pacs.nodes import NodeBook

        window = self.window
        choices = self.what_can_be_sent()
        if not choices:
            window.status_message.setText("Open a DICOM series and draw a label or predict on it, then send it to a PACS")
            return False
        try:
            book = NodeBook.load()
        except MedtlError as error:
            QMessageBox.warning(window, "Send to PACS", str(error))
            return False
        names = sorted(book.nodes)
        if not names:
            window.status_message.setText("No PACS node is saved: add one in File → PACS… first")
            return False
        if what is None or node_name is None:
            model = window.viewer.model
            series = (model.label.series_description or "shown") if model is not None else "shown"
            self.send_dialog = SendDialog(series, [what] if what in choices else choices, book.nodes, window)
            if node_name in book.nodes:
                self.send_dialog.node.setCurrentIndex(names.index(node_name))
            if self.send_dialog.exec() != QDialog.DialogCode.Accepted:
                return False
            what, node_name = self.send_dialog.choice()
        if what not in choices:
            window.status_message.setText(f"There is no {what} to send")
            return False
        node, local, write = book.get(node_name), book.local, self._seg_writer(what)

        def call(progress: ProgressCallback, cancel: CancelToken) -> list[SendResult]:
            from medtl.pacs.send import send

            with tempfile.TemporaryDirectory(prefix="medtl-send-") as scratch:
                return send(node, local, [write(Path(scratch))], progress, cancel)

        window._run("send", call, lambda results: self._sent(node_name, results), lambda message: window._failed(f"PACS node {node_name}", message, "send to"))
        window._show_progress(0, 0, f"sending {what} to {node_name}")
        return True

    def _seg_writer(self, what: str):  # noqa: ANN202 - a callable writing the SEG into a folder, returning its path
        """What writes ``what`` as a DICOM SEG into a folder (the mask is copied now: the user may draw on meanwhile)."""
        model = self.window.viewer.model
        assert model is not None
        files = list(model.files)
        if what == LABEL:
            from medtl.export.label_export import LabelInfo, export_seg

            editor = model.editor
            assert editor is not None
            mask = editor.layer.mask.copy()
            present = {int(value) for value in set(mask.ravel().tolist()) - {0}}
            labels = [LabelInfo(value, editor.names.get(value, f"label {value}"), editor.layer.colors.get(value, editor.layer.colour_of(value))) for value in sorted(present)]
            return lambda folder: export_seg(mask, labels, files, folder / "label_seg.dcm")
        prediction, run_dir = self.window.last_prediction  # type: ignore[misc]

        def write_prediction(folder: Path) -> Path:
            from medtl.export.prediction_outputs import export_prediction

            outputs = export_prediction(prediction, folder, f"{run_dir.name}_prediction", run_dir.name)
            segs = [path for path in outputs.files if path.suffix == ".dcm"]
            if not segs:
                raise MedtlError(f"run {run_dir}: its prediction gives no DICOM SEG to send (a classification, or not made on DICOM)")
            return segs[0]

        return write_prediction

    def _sent(self, node_name: str, results: list[SendResult]) -> None:
        window = self.window
        window._idle()
        failed = [result for result in results if not result.ok]
        for result in failed:
            window.problems.add(f"PACS node {node_name}", result.detail)
        stored = len(results) - len(failed)
        window.status_message.setText(f"Sent to {node_name}: {stored} stored" + (f", {len(failed)} refused (see Problems)" if failed else ""))
        self.sent.emit(results)

"""`PacsDialog`: saved PACS/DICOMweb nodes, a query form, the matches by patient, study or series, and retrieve.

Every network call (test connection, search, retrieve) runs in a worker (:mod:`ui.qt.tasks`) with
the node's timeout, so the window never freezes; a retrieve shows its progress per instance and
can be cancelled (what arrived stays, complete, and a later retrieve fetches only the rest). A
retrieved study is in the catalog already; ``on_retrieved(folder)`` is called with its folder so
the main window can open it. :func:`open_pacs_dialog` is the one call the main window needs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medtl.errors import MedtlError
from medtl.pacs import find, check_connection
from medtl.pacs.nodes import Node, NodeBook
from medtl.pacs.query import LEVELS, Match, Query
from medtl.pacs.retrieve import RetrieveRequest, RetrieveResult, retrieve
from medtl.pacs.storage import InstanceStore
from ui.qt.tasks import EngineTask, TaskGroup

COLUMNS = {
    "patient": (("Patient ID", "patient_id"), ("Name", "patient_name"), ("Studies", "count")),
    "study": (("Patient ID", "patient_id"), ("Name", "patient_name"), ("Date", "study_date"), ("Modalities", "modalities"),
              ("Description", "study_description"), ("Accession", "accession"), ("Series", "count")),
    "series": (("Patient ID", "patient_id"), ("Date", "study_date"), ("Modality", "modality"), ("Number", "series_number"),
               ("Description", "series_description"), ("Instances", "count")),
}  # fmt: skip


class NodeForm(QDialog):
    """Asks for a new node: DIMSE (AE title, host, port) or DICOMweb (URL, optional user and password or token).
    OK keeps the form open, with what is wrong under it, until the fields make a node."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a PACS node")
        self.name, self.aet, self.host = (QLineEdit(self) for _ in range(3))
        self.port = QSpinBox(self)  # made in the order of the form: Tab goes from Host to Port
        self.port.setRange(0, 65535)
        self.port.setValue(104)
        self.url, self.user, self.secret = (QLineEdit(self) for _ in range(3))
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.bearer = QCheckBox("the secret is a bearer token", self)
        self.name.setPlaceholderText("letters, digits, '.', '-', '_'")
        self.url.setPlaceholderText("https://archive.example/dicom-web (leave empty for DIMSE)")
        self.error = QLabel("", self)
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #e15759")
        form = QFormLayout(self)
        for label, widget in (("Name", self.name), ("AE title", self.aet), ("Host", self.host), ("Port", self.port),
                              ("DICOMweb URL", self.url), ("User", self.user), ("Password or token", self.secret), ("", self.bearer)):  # fmt: skip
            form.addRow(label, widget)
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def accept(self) -> None:
        """Close only when the fields make a node; else say why and keep what was typed."""
        try:
            self.node()
        except MedtlError as error:
            self.error.setText(str(error))
            self.adjustSize()  # room for the reason's second line
            return
        super().accept()

    def node(self) -> tuple[Node, str]:
        """The node described (raises :class:`MedtlError` saying what is wrong) and its secret ("" for none)."""
        secret = self.secret.text()
        if self.url.text().strip():
            auth = "bearer" if self.bearer.isChecked() and secret else "basic" if secret else "none"
            return Node(self.name.text().strip(), url=self.url.text().strip(), auth=auth, username=self.user.text().strip()), secret
        return Node(self.name.text().strip(), aet=self.aet.text(), host=self.host.text().strip(), port=self.port.value()), ""


class PacsDialog(QDialog):
    """Nodes, query, matches and retrieve; see the module's description."""

    def __init__(
        self, book: NodeBook, on_retrieved: Callable[[Path], None] | None = None, store: InstanceStore | None = None,
        catalog: Any = None, parent: QWidget | None = None,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle("PACS")
        self.book, self.store, self.catalog = book, store, catalog
        self.on_retrieved = on_retrieved
        self.tasks = TaskGroup(self)
        self.matches: list[Match] = []
        self.last_result: RetrieveResult | None = None

        self.nodes = QListWidget(self)
        self.add_button, self.remove_button, self.test_button = QPushButton("Add…", self), QPushButton("Remove", self), QPushButton("Test connection", self)
        self.connection = QLabel("", self)
        self.connection.setWordWrap(True)
        self.level = QComboBox(self)
        self.level.addItems(LEVELS)
        self.level.setCurrentText("study")
        self.patient_name, self.patient_id, self.date_from, self.date_to, self.modality, self.accession, self.description = (QLineEdit(self) for _ in range(7))
        self.patient_name.setPlaceholderText("wildcards: DOE^J*")
        for field in (self.date_from, self.date_to):
            field.setPlaceholderText("YYYYMMDD")
        self.search_button = QPushButton("Search", self)
        self.results = QTableWidget(0, 0, self)
        self.results.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.results.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.results.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.move_box = QCheckBox("C-MOVE to medtl's storage port (instead of C-GET)", self)
        self.retrieve_button, self.cancel_button = QPushButton("Retrieve", self), QPushButton("Cancel", self)
        self.progress = QProgressBar(self)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self._layout()
        self.add_button.clicked.connect(self.add_node)
        self.remove_button.clicked.connect(self.remove_node)
        self.test_button.clicked.connect(self.test_node)
        self.search_button.clicked.connect(self.search)
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        self.cancel_button.clicked.connect(self.cancel_retrieve)
        self.nodes.currentTextChanged.connect(self._node_changed)
        self.results.itemSelectionChanged.connect(self._update_buttons)
        self._fill_nodes()
        self.resize(900, 600)

    def _layout(self) -> None:
        node_buttons = QHBoxLayout()
        for button in (self.add_button, self.remove_button, self.test_button):
            node_buttons.addWidget(button)
        left = QVBoxLayout()
        left.addWidget(QLabel("Nodes", self))
        left.addWidget(self.nodes)
        left.addLayout(node_buttons)
        left.addWidget(self.connection)
        form = QFormLayout()
        for label, widget in (("Level", self.level), ("Patient name", self.patient_name), ("Patient ID", self.patient_id),
                              ("Date from", self.date_from), ("Date to", self.date_to), ("Modality", self.modality),
                              ("Accession", self.accession), ("Description", self.description), ("", self.search_button)):  # fmt: skip
            form.addRow(label, widget)
        left.addLayout(form)
        retrieve_row = QHBoxLayout()
        for widget in (self.move_box, self.retrieve_button, self.cancel_button, self.progress):
            retrieve_row.addWidget(widget)
        right = QVBoxLayout()
        right.addWidget(self.results)
        right.addLayout(retrieve_row)
        right.addWidget(self.status)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addLayout(right, 3)

    # nodes
    def _fill_nodes(self, select: str = "") -> None:
        self.nodes.clear()
        self.nodes.addItems(sorted(self.book.nodes))
        names = sorted(self.book.nodes)
        if names:
            self.nodes.setCurrentRow(names.index(select) if select in names else 0)
        self._update_buttons()

    def node(self) -> Node | None:
        item = self.nodes.currentItem()
        return self.book.nodes.get(item.text()) if item is not None else None

    def _node_changed(self, _: str) -> None:
        self.connection.setText("")
        node = self.node()
        self.move_box.setEnabled(node is not None and not node.is_web)
        self._update_buttons()

    def add_node(self) -> None:
        form = NodeForm(self)
        if form.exec() != QDialog.DialogCode.Accepted:
            return
        try:
            node, secret = form.node()
            self.save_node(node, secret)
        except MedtlError as error:
            QMessageBox.warning(self, "Add a PACS node", str(error))

    def save_node(self, node: Node, secret: str = "") -> None:
        """Add (or replace) ``node`` and save the nodes; its secret goes to the keyring."""
        self.book.add(node, secret or None)
        self.book.save()
        self._fill_nodes(select=node.name)

    def remove_node(self) -> None:
        node = self.node()
        if node is not None:
            self.book.remove(node.name)
            self.book.save()
            self._fill_nodes()

    def test_node(self) -> None:
        node = self.node()
        if node is None:
            return
        self.connection.setText(f"Testing {node.name}…")
        self.tasks.start("echo", lambda progress, cancel: check_connection(node, self.book.local),
                         done=lambda result: self.connection.setText(str(result)), failed=self.connection.setText)  # fmt: skip

    # query
    def query(self) -> Query:
        return Query(
            level=self.level.currentText(), patient_name=self.patient_name.text().strip(), patient_id=self.patient_id.text().strip(),
            date_from=self.date_from.text().strip(), date_to=self.date_to.text().strip(), modality=self.modality.text().strip(),
            accession=self.accession.text().strip(), description=self.description.text().strip(),
        )  # fmt: skip

    def search(self) -> None:
        node = self.node()
        if node is None:
            return
        try:
            query = self.query()
        except MedtlError as error:
            self.status.setText(str(error))
            return
        self.status.setText(f"Searching {node.name}…")
        self.search_button.setEnabled(False)
        self.tasks.start("find", lambda progress, cancel: find(node, self.book.local, query),
                         done=lambda matches: self.show_matches(matches, query.level), failed=self.status.setText,
                         finished=self._after_task)  # fmt: skip

    def show_matches(self, matches: list[Match], level: str) -> None:
        self.matches = matches
        columns = COLUMNS[level]
        self.results.clear()
        self.results.setColumnCount(len(columns))
        self.results.setHorizontalHeaderLabels([title for title, _ in columns])
        self.results.setRowCount(len(matches))
        for row, match in enumerate(matches):
            for column, (_, key) in enumerate(columns):
                value = getattr(match, key)
                self.results.setItem(row, column, QTableWidgetItem("" if value is None else str(value)))
        self.status.setText(f"{len(matches)} {level} match(es)" + ("; search at study or series level to retrieve" if level == "patient" and matches else ""))
        self._update_buttons()

    # retrieve
    def selected(self) -> list[Match]:
        rows = sorted({index.row() for index in self.results.selectionModel().selectedRows()})
        return [self.matches[row] for row in rows if row < len(self.matches) and self.matches[row].level != "patient"]

    def _update_buttons(self) -> None:
        running = "retrieve" in self.tasks.running
        self.retrieve_button.setEnabled(not running and self.node() is not None and bool(self.selected()))
        self.cancel_button.setEnabled(running)
        self.test_button.setEnabled(self.node() is not None)
        self.remove_button.setEnabled(self.node() is not None and not running)
        self.search_button.setEnabled(self.node() is not None and "find" not in self.tasks.running)

    def _after_task(self) -> None:
        QTimer.singleShot(0, self._update_buttons)  # once the task group has let the finished task go

    def retrieve_selected(self) -> EngineTask | None:
        node = self.node()
        chosen = self.selected()
        if node is None or not chosen:
            return None
        move = self.move_box.isChecked() and not node.is_web
        requests = [RetrieveRequest(node, study_uid=m.study_uid, series_uid=m.series_uid, move=move) for m in chosen]

        def fetch(progress: Any, cancel: Any) -> list[RetrieveResult]:
            return [retrieve(request, self.book, self.store, self.catalog, progress, cancel) for request in requests]

        self.progress.setValue(0)
        self.status.setText(f"Retrieving from {node.name}…")
        task = self.tasks.start("retrieve", fetch, progress=self._progress, done=self._retrieved, failed=self._retrieve_failed,
                                cancelled=lambda: self.status.setText("Retrieve cancelled: what arrived is kept, a new retrieve fetches the rest."),
                                finished=self._after_task)  # fmt: skip
        self._update_buttons()
        return task

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        if message:
            self.status.setText(message)

    def _retrieved(self, results: list[RetrieveResult]) -> None:
        self.last_result = results[-1] if results else None
        fetched = sum(r.fetched for r in results)
        here = sum(r.already_here for r in results)
        missing = sum(r.not_received for r in results)
        self.status.setText(f"Retrieved {fetched} instance(s), {here} already here" + (f", {missing} not sent by the node" if missing else "") + ".")
        if self.on_retrieved is not None:
            for folder in dict.fromkeys(r.folder for r in results):
                self.on_retrieved(folder)

    def _retrieve_failed(self, message: str) -> None:
        self.status.setText(f"{message}. What arrived is kept; retrieve again to fetch the rest.")

    def cancel_retrieve(self) -> None:
        task = self.tasks.running.get("retrieve")
        if task is not None:
            task.cancel()
            self.status.setText("Cancelling…")

    def done(self, result: int) -> None:  # closing: stop whatever runs (each engine call stops at its next check)
        self.tasks.cancel_all()
        super().done(result)


def open_pacs_dialog(parent: QWidget | None, on_retrieved: Callable[[Path], None]) -> PacsDialog | None:
    """Show the PACS dialog (not modal) with the saved nodes; ``on_retrieved(study_folder)`` after each retrieve.

    None (after saying why) when the saved nodes cannot be read.
    """
    try:
        book = NodeBook.load()
    except MedtlError as error:
        QMessageBox.warning(parent, "PACS", str(error))
        return None
    dialog = PacsDialog(book, on_retrieved, parent=parent)
    dialog.show()
    return dialog

"""The PACS dialog: nodes, test connection without freezing, search, retrieve with progress and cancel.

The tests that need Orthanc run only inside the private network namespace of ``test_pacs_network.py``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from PySide6.QtCore import QTimer

from medtl.dicom.catalog import Catalog
from medtl.pacs.nodes import Node, NodeBook
from medtl.pacs.storage import InstanceStore
from tests import pacs_servers
from tests.dicomgen import SeriesSpec, phantom, write_series
from ui.qt.pacs_dialog import PacsDialog

TIMEOUT_MS = 20_000
if pacs_servers.in_private_network():
    pacs_servers.loopback_up()


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[pacs_servers.MemoryKeyring]:
    with pacs_servers.memory_keyring() as ring:
        yield ring


def test_a_silent_node_times_out_while_the_window_keeps_painting(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = PacsDialog(NodeBook(path=tmp_path / "nodes.json"))
    qtbot.addWidget(dialog)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        dialog.save_node(Node("slow-pacs", aet="PACS", host="127.0.0.1", port=silent.getsockname()[1], timeout=0.8))
        assert [dialog.nodes.item(i).text() for i in range(dialog.nodes.count())] == ["slow-pacs"]
        assert NodeBook.load(tmp_path / "nodes.json").get("slow-pacs").port == silent.getsockname()[1]
        ticks: list[int] = []
        timer = QTimer(dialog)
        timer.timeout.connect(lambda: ticks.append(1))
        timer.start(50)
        dialog.test_button.click()
        qtbot.waitUntil(lambda: "timed out" in dialog.connection.text(), timeout=TIMEOUT_MS)
        timer.stop()
    assert "slow-pacs" in dialog.connection.text()
    assert len(ticks) >= 5  # the event loop ran all along the 0.8 s wait
    dialog.remove_node()
    assert dialog.nodes.count() == 0 and not dialog.test_button.isEnabled()


class HeldStore(InstanceStore):
    """An instance store whose writes, once ``hold`` is cleared, wait after writing until it is set again: a retrieve
    that the user cancels while it runs, however fast the node sends (40 small instances take ~20 ms)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.hold, self.first_written = threading.Event(), threading.Event()
        self.hold.set()

    def write_encoded(self, *args: Any) -> Path:
        path = super().write_encoded(*args)
        self.first_written.set()
        self.hold.wait(TIMEOUT_MS / 1000)
        return path


@pytest.mark.skipif(not pacs_servers.in_private_network(), reason="needs Orthanc in a private network namespace: run by test_pacs_network.py")
def test_search_then_retrieve_with_progress_then_cancel(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    small = write_series(tmp_path / "small", phantom((3, 16, 16)), SeriesSpec(patient_id="DLG001"))
    large = write_series(tmp_path / "large", phantom((40, 32, 32)), SeriesSpec(patient_id="DLG002"))
    server = pacs_servers.Orthanc(tmp_path / "orthanc").start()
    try:
        server.store_with_storescu([*small, *large])
        opened: list[Path] = []
        store = HeldStore(tmp_path / "pacs")
        dialog = PacsDialog(NodeBook(path=tmp_path / "nodes.json"), opened.append, store, Catalog(tmp_path / "c.sqlite"))
        qtbot.addWidget(dialog)
        dialog.save_node(Node("orthanc", aet=server.aet, host="127.0.0.1", port=server.dicom_port, timeout=5))
        dialog.test_button.click()
        qtbot.waitUntil(lambda: "reachable" in dialog.connection.text(), timeout=TIMEOUT_MS)

        dialog.level.setCurrentText("series")
        dialog.patient_id.setText("DLG*")
        dialog.search_button.click()
        qtbot.waitUntil(lambda: dialog.results.rowCount() == 2, timeout=TIMEOUT_MS)
        counts = {m.patient_id: m.count for m in dialog.matches}
        assert counts == {"DLG001": 3, "DLG002": 40}
        row = [m.patient_id for m in dialog.matches].index("DLG001")
        dialog.results.selectRow(row)
        assert dialog.retrieve_button.isEnabled()
        task = dialog.retrieve_selected()
        with qtbot.waitSignal(task.finished, timeout=TIMEOUT_MS):
            pass
        study = str(pydicom.dcmread(small[0]).StudyInstanceUID)
        assert opened == [store.study_folder(study)] and "Retrieved 3 instance(s), 0 already here" in dialog.status.text()
        assert dialog.progress.value() == dialog.progress.maximum() == 3

        dialog.results.selectRow(1 - row)
        store.first_written.clear()
        store.hold.clear()  # the writes wait after the first file of the large series, until the user has clicked Cancel
        task = dialog.retrieve_selected()
        with qtbot.waitSignal(task.finished, timeout=TIMEOUT_MS):
            qtbot.waitUntil(store.first_written.is_set, timeout=TIMEOUT_MS)
            dialog.cancel_button.click()
            store.hold.set()
        assert "cancelled" in dialog.status.text() and len(opened) == 1
        large_header = pydicom.dcmread(large[0])
        kept = len(store.present(str(large_header.StudyInstanceUID), str(large_header.SeriesInstanceUID)))
        assert 1 <= kept < 40
        qtbot.waitUntil(dialog.retrieve_button.isEnabled, timeout=TIMEOUT_MS)  # a new retrieve would fetch the rest
    finally:
        server.stop(kill=True)

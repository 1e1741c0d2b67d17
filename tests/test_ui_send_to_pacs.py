"""File → Send to PACS… in the app: the label drawn on a series goes to a real Orthanc as a DICOM SEG of that series.

The Orthanc test runs only inside the private network namespace of ``test_pacs_network.py``.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from PySide6.QtWidgets import QDialog

from medtl.labels.store import LabelStore
from medtl.pacs import find
from medtl.pacs.nodes import LocalAE, Node, NodeBook
from medtl.pacs.query import Query
from tests import pacs_servers
from tests.dicomgen import SeriesSpec, phantom, write_series
from tests.test_ui_labels import shown_window, temporary_settings
from tests.test_ui_project import paint_and_erase
from tests.test_ui_window import TIMEOUT_MS, open_and_show
from ui.qt.main_window import MainWindow
from ui.qt.send_to_pacs import LABEL, PREDICTION, SendDialog

if pacs_servers.in_private_network():
    pacs_servers.loopback_up()


@pytest.fixture(autouse=True)
def nodes_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The saved nodes of these tests live in the test's folder, with an in-memory keyring."""
    path = tmp_path / "nodes.json"
    monkeypatch.setenv("MEDTL_PACS_NODES", str(path))
    with pacs_servers.memory_keyring():
        yield path


@pytest.fixture
def window(qtbot, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    return shown_window(qtbot, temporary_settings(tmp_path), LabelStore(tmp_path / "labels"))


def test_send_needs_something_to_send_and_a_saved_node(qtbot, window: MainWindow, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert not window.pacs.send(LABEL, "nowhere") and "draw a label" in window.status_message.text()
    write_series(tmp_path / "ct", phantom((12, 40, 44)), SeriesSpec())
    open_and_show(qtbot, window, tmp_path / "ct")
    paint_and_erase(qtbot, window)
    assert window.pacs.what_can_be_sent() == [LABEL] and PREDICTION not in window.pacs.what_can_be_sent()
    assert not window.pacs.send(LABEL, "nowhere") and "No PACS node is saved" in window.status_message.text()
    window.viewer.model.editor.saved(window.viewer.model.editor.edits)  # type: ignore[union-attr]


def test_one_form_asks_what_to_send_and_where_naming_the_series_and_each_node(qtbot, window: MainWindow, tmp_path: Path, nodes_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    book = NodeBook(path=nodes_file, local=LocalAE("MEDTL", 11113))
    book.add(Node("archive", aet="ARCHIVE", host="10.0.0.7", port=104))
    book.add(Node("web", url="https://pacs.example/dicom-web"))
    book.save()
    write_series(tmp_path / "ct", phantom((12, 40, 44)), SeriesSpec())
    open_and_show(qtbot, window, tmp_path / "ct")
    paint_and_erase(qtbot, window)
    seen: list[tuple[str, list[str], list[str], tuple[str, str]]] = []

    def look(dialog: SendDialog) -> int:
        form = dialog.layout().itemAt(0).widget().text()  # type: ignore[union-attr]
        seen.append((form, [dialog.what.itemText(i) for i in range(dialog.what.count())], [dialog.node.itemText(i) for i in range(dialog.node.count())], dialog.choice()))
        return int(QDialog.DialogCode.Rejected)

    monkeypatch.setattr(SendDialog, "exec", look)
    assert not window.pacs.send()  # cancelled: nothing sent
    [(form, what, nodes, choice)] = seen
    assert "DICOM SEG" in form and "references the series" in form
    assert what == [LABEL] and nodes == ["archive  (ARCHIVE@10.0.0.7:104)", "web  (https://pacs.example/dicom-web)"]
    assert choice == (LABEL, "archive")
    window.viewer.model.editor.saved(window.viewer.model.editor.edits)  # type: ignore[union-attr]


@pytest.mark.skipif(not pacs_servers.in_private_network(), reason="needs Orthanc in a private network namespace: run by test_pacs_network.py")
def test_the_drawn_label_goes_to_orthanc_as_a_seg_of_its_series(qtbot, window: MainWindow, tmp_path: Path, nodes_file: Path) -> None:  # type: ignore[no-untyped-def]
    files = write_series(tmp_path / "ct", phantom((12, 40, 44)), SeriesSpec(patient_id="SEND01"))
    server = pacs_servers.Orthanc(tmp_path / "orthanc").start()
    try:
        server.store_with_storescu(files)
        book = NodeBook(path=nodes_file, local=LocalAE(pacs_servers.MEDTL_AET, pacs_servers.MEDTL_PORT))
        book.add(Node("orthanc", aet=server.aet, host="127.0.0.1", port=server.dicom_port, timeout=5.0))
        book.save()
        open_and_show(qtbot, window, tmp_path / "ct")
        paint_and_erase(qtbot, window)
        with qtbot.waitSignal(window.pacs.sent, timeout=TIMEOUT_MS) as sent:
            assert window.pacs.send(LABEL, "orthanc")
        [result] = sent.args[0]
        assert result.ok and "Sent to orthanc: 1 stored" in window.status_message.text()
        study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        segs = find(book.get("orthanc"), book.local, Query(level="series", study_uid=study, modality="SEG"))
        assert [match.modality for match in segs] == ["SEG"]
    finally:
        server.stop(kill=True)
        window.viewer.model.editor.saved(window.viewer.model.editor.edits)  # type: ignore[union-attr]

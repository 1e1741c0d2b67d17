"""File → Export project labels… in the app: a painted label leaves as an MSD dataset that MONAI reads and as a
de-identified DICOM SEG with no byte of the patient's name or ID; a folder that is not empty is refused in Problems."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from PySide6.QtWidgets import QDialog

from medtl.data.images import read_image
from medtl.labels.store import LabelStore
from medtl.project.label_files import Exported
from tests.dicomgen import SeriesSpec, phantom, write_series
from tests.test_ui_labels import shown_window, temporary_settings
from tests.test_ui_project import paint_and_erase, save, user_folders  # noqa: F401 - the user folders fixture
from tests.test_ui_window import TIMEOUT_MS, open_and_show
from ui.qt.export_labels_dialog import ExportLabelsDialog
from ui.qt.main_window import MainWindow

PATIENT_NAME, PATIENT_ID = "Zephyrine^Quist", "QX-88231"


@pytest.fixture
def window(qtbot, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    return shown_window(qtbot, temporary_settings(tmp_path), LabelStore(tmp_path / "labels"))


def export(qtbot, window: MainWindow, fmt: str, folder: Path, deidentify: bool) -> Exported:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.projects.exported, timeout=TIMEOUT_MS) as done:
        assert window.projects.export_labels((fmt, folder, deidentify, None))
    return done.args[0]


def test_export_a_painted_label_from_the_app_as_msd_and_as_deidentified_seg(qtbot, window: MainWindow, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    series = tmp_path / "ct"
    write_series(series, phantom((8, 32, 36)), SeriesSpec(series_description="phantom", patient_id=PATIENT_ID, patient_name=PATIENT_NAME))
    assert window.projects.new_project(tmp_path / "project")
    open_and_show(qtbot, window, series)
    mask = paint_and_erase(qtbot, window).copy()
    save(qtbot, window)

    dialog = ExportLabelsDialog(window.project_session.project, tmp_path / "default", window)  # type: ignore[arg-type]
    assert dialog.deidentify.isChecked() and dialog.choice()[0] == "seg"  # an export is for sharing: de-identified by default
    dialog.close()
    (tmp_path / "default" / "case_0001").mkdir(parents=True)  # an earlier export
    dialog = ExportLabelsDialog(window.project_session.project, tmp_path / "default", window)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    assert dialog.choice()[1] == tmp_path / "default-2"  # before: the folder taken, and Export failed after the dialog closed
    dialog.out_dir.setText(str(tmp_path / "default"))
    dialog.show()
    dialog.accept()  # Export
    assert dialog.isVisible() and "holds files already; choose a new or empty folder" in dialog.note.text()
    dialog.out_dir.setText(str(tmp_path / "default-2"))
    dialog.accept()
    assert not dialog.isVisible() and dialog.result() == QDialog.DialogCode.Accepted

    msd = export(qtbot, window, "msd", tmp_path / "msd", deidentify=False)
    entries = load_decathlon_datalist(msd.paths[0], data_list_key="training")
    assert len(entries) == 1
    exported = read_image(Path(entries[0]["label"])).array
    annotated = mask.any(axis=(1, 2))  # the painted slices are exported as drawn
    assert np.array_equal(exported[annotated] > 0, mask[annotated] > 0)

    seg = export(qtbot, window, "seg", tmp_path / "seg", deidentify=True)
    files = [path for path in (tmp_path / "seg").rglob("*") if path.is_file()]
    assert seg.paths and any(path.suffix == ".dcm" for path in files)
    for path in files:
        data = path.read_bytes()
        data = gzip.decompress(data) if path.suffix == ".gz" else data
        for secret in (PATIENT_NAME, PATIENT_ID, PATIENT_NAME.replace("^", " ")):
            assert secret.encode() not in data, f"{secret} in {path}"

    with qtbot.waitSignal(window.task_failed, timeout=TIMEOUT_MS) as failed:  # the MSD folder is taken now
        assert window.projects.export_labels(("msd", tmp_path / "msd", False, None))
    assert "not an empty folder" in failed.args[0] and "see Problems" in window.status_message.text()

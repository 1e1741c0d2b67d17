"""A DICOM SEG in an opened folder: listed under the series it labels, shown with it as a label layer (voxel-exact,
named segments, its colours), accepted as the editable label; one that does not fit is a problem, and the series
still opens."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QModelIndex
from PySide6.QtWidgets import QMessageBox

from medtl.dicom.scan import scan
from medtl.labels.store import LabelStore
from tests.dicomgen import SeriesSpec, phantom, write_series
from tests.test_seg_in_scan import LABELS, drawn, series_with_seg
from tests.test_ui_labels import shown_window, temporary_settings
from tests.test_ui_window import open_and_show
from ui.models.overlays import LabelLayer
from ui.qt.main_window import MainWindow
from ui.qt.study_browser import StudyBrowser


def tree_rows(window: MainWindow, parent: QModelIndex | None = None, depth: int = 0) -> list[tuple[int, str, str]]:
    """(depth, text, tooltip) of every row of the study browser, in tree order."""
    model = window.browser.model
    parent = parent or QModelIndex()
    rows = []
    for row in range(model.rowCount(parent)):
        index = model.index(row, 0, parent)
        rows.append((depth, str(index.data()), str(model.itemFromIndex(index).toolTip())))
        rows.extend(tree_rows(window, index, depth + 1))
    return rows


def seg_layers(window: MainWindow) -> list[LabelLayer]:
    assert window.viewer.model is not None
    return [layer for layer in window.viewer.model.layers if isinstance(layer, LabelLayer) and layer.name.startswith("SEG: ")]


def problems(window: MainWindow) -> list[tuple[str, str]]:
    return [(window.problems.topLevelItem(i).text(0), window.problems.topLevelItem(i).text(1)) for i in range(window.problems.topLevelItemCount())]


def test_a_seg_is_a_label_layer_of_its_series(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    series_with_seg(tmp_path / "study")
    window = shown_window(qtbot, temporary_settings(tmp_path), LabelStore(tmp_path / "labels"))
    open_and_show(qtbot, window, tmp_path / "study")

    rows = tree_rows(window)
    ct = next(i for i, (_, text, _) in enumerate(rows) if "chest" in text)
    depth, text, tip = rows[ct + 1]
    assert (depth, text) == (rows[ct][0] + 1, "labels: SEG medtl manual")  # a child of the series it labels
    assert tip.startswith("DICOM SEG of series chest (2 segments)") and "not an image" not in tip
    assert problems(window) == []

    [layer] = seg_layers(window)
    assert layer.name == "SEG: medtl manual"
    assert np.array_equal(layer.mask, drawn())
    assert layer.names == {1: "liver", 2: "lesion"}
    assert layer.colors == {label.value: label.colour for label in LABELS}
    assert any(window.layers.list.item(row).text().startswith("SEG: medtl manual") for row in range(window.layers.list.count()))

    window.layers.list.setCurrentRow(window.layers._shown.index(layer))
    window.label_tools.actions_by_name["accept"].trigger()  # the SEG becomes the editable label
    editor = window.viewer.model.editor
    assert editor is not None and editor.layer is not layer
    assert np.array_equal(editor.layer.mask, drawn()) and editor.names == {1: "liver", 2: "lesion"}
    assert editor.dirty  # a label of its own now, to correct and save
    monkeypatch.setattr(window, "ask_unsaved_label", lambda: QMessageBox.StandardButton.Discard)  # closing the window


def test_a_seg_that_does_not_fit_is_a_problem_and_the_series_still_opens(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files, seg = series_with_seg(tmp_path / "source")
    original = pydicom.dcmread(files[0])
    spec = SeriesSpec(series_description="chest", patient_id="SEGP", series_uid=original.SeriesInstanceUID,
                      study_uid=original.StudyInstanceUID, frame_of_reference_uid=original.FrameOfReferenceUID)  # fmt: skip
    write_series(tmp_path / "resampled" / "ct", phantom((6, 28, 32)), spec)  # the series on another grid
    shutil.copy(seg, tmp_path / "resampled" / "labels.dcm")
    window = shown_window(qtbot, temporary_settings(tmp_path), LabelStore(tmp_path / "labels"))
    open_and_show(qtbot, window, tmp_path / "resampled")

    assert window.viewer.model is not None and window.viewer.model.volume.shape == (6, 28, 32)
    assert seg_layers(window) == []
    [(where, reason)] = problems(window)
    assert where == "series chest"
    assert reason.endswith("labels.dcm: its frames of 24×20 pixels do not fit series " f"{original.SeriesInstanceUID}'s 32×28 pixels per slice")
    seg_row = next(row for row in tree_rows(window) if row[1] == "labels: SEG medtl manual")
    assert "does not fit the series: its frames are 24×20 pixels" in seg_row[2]


def test_a_seg_whose_series_is_absent_stays_in_its_study_naming_that_series(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files, seg = series_with_seg(tmp_path / "source")
    shutil.copytree(seg.parent, tmp_path / "only_seg")
    browser = StudyBrowser()
    qtbot.addWidget(browser)
    browser.set_result(scan(tmp_path / "only_seg"))
    uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    study = browser.model.item(0).child(0)
    assert study.rowCount() == 1 and study.child(0).text() == f"labels: SEG medtl manual (of series {uid}, not in this folder)"
    assert study.child(0).toolTip() == f"DICOM SEG of series {uid} (2 segments); that series is not in this folder, so there is nothing to show it on"
    assert browser.image_series() == [] and browser.segmentations_of(uid)[0].files[0].path == (tmp_path / "only_seg" / seg.name).resolve()

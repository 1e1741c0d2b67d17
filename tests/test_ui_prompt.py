"""The AI box tool in the app, with the real LiteMedSAM on the Colin27 head (Debian's mricron-data, as tests/test_prompt.py).

Real widgets and mouse events, offscreen. The image encoder costs one to several seconds a slice on
2 CPU cores, so one test walks the whole loop on slice 78 (both thalami) and the two slices above it.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QMessageBox

import medtl.models.medsam
import medtl.prompt.engine
from medtl.data.images import read_image
from medtl.errors import MedtlError
from tests.test_prompt import COLIN, SLICE, THALAMUS_L, THALAMUS_R, bbox, dice
from tests.test_ui_labels import drag, screen_point, shown_window, temporary_settings
from ui.models.view_plane import PlaneKind
from ui.qt.main_window import MainWindow
from ui.qt.prompt_tool import PREPARING, PROBLEM_WHERE
from ui.qt.slice_view import SliceView

MODEL_TIMEOUT_MS = 180_000  # loading (~5 s) and an encoder run (1-5 s a slice) on a busy 2-core machine


def opened_colin(qtbot, tmp_path) -> tuple[MainWindow, SliceView]:  # type: ignore[no-untyped-def]
    """A window showing the Colin27 head at axial slice :data:`SLICE`, with a new empty label."""
    window = shown_window(qtbot, temporary_settings(tmp_path))
    window.ask_unsaved_label = lambda: QMessageBox.StandardButton.Discard  # closing at the end never waits on a question
    with qtbot.waitSignal(window.series_shown, timeout=MODEL_TIMEOUT_MS):
        window.open_path(COLIN / "ch2.nii.gz")
    model, view = window.viewer.model, window.viewer.active_view
    assert model is not None and view.plane is not None and view.plane.kind is PlaneKind.AXIAL
    model.go_to_slice(view.plane, SLICE)
    window.label_tools.actions_by_name["new_label"].trigger()
    return window, view


def on_screen(view: SliceView, x: float, y: float) -> QPointF:
    """The widget point of column ``x``, row ``y`` of the shown axial slice as the engine cuts it (``array[k]``)."""
    assert view.plane is not None and view.model is not None
    row, column, _ = view.plane.from_index(np.array([x, y, view.model.slice_index(view.plane)]), view.model.volume.shape)
    return screen_point(view, row, column)


def drag_box(view: SliceView, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    start, end = on_screen(view, x0, y0), on_screen(view, x1, y1)
    drag(view, [start, (start + end) / 2, end])


def click(view: SliceView, point: QPointF, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for kind, buttons in ((QMouseEvent.Type.MouseButtonPress, left), (QMouseEvent.Type.MouseButtonRelease, none)):
        QApplication.sendEvent(view, QMouseEvent(kind, point, view.mapToGlobal(point), left, buttons, modifiers))


def centre_of(mask: np.ndarray) -> tuple[float, float]:
    rows, columns = np.nonzero(mask)
    return float(columns.mean()), float(rows.mean())


@pytest.fixture(scope="module")
def atlas() -> np.ndarray:
    return read_image(COLIN / "aal.nii.gz").array


def test_a_box_gives_a_mask_clicks_refine_it_and_propagation_is_one_undo_step(qtbot, tmp_path, atlas, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    encoder_runs: list[int] = []
    encoder_input = medtl.prompt.engine.encoder_input
    monkeypatch.setattr(medtl.prompt.engine, "encoder_input", lambda *args: encoder_runs.append(1) or encoder_input(*args))
    window, view = opened_colin(qtbot, tmp_path)
    tool, model = window.prompt_tool, window.viewer.model
    editor = model.editor
    assert editor is not None
    left, right = atlas[SLICE] == THALAMUS_L, atlas[SLICE] == THALAMUS_R

    qtbot.keyClick(window, Qt.Key.Key_X)  # the AI box tool: the model loads and the slice is embedded in the background
    assert window.label_tools.actions_by_name["box"].isChecked()
    with qtbot.waitSignal(tool.prompted, timeout=MODEL_TIMEOUT_MS):
        drag_box(view, bbox(left | right))  # at once: before the slice is ready
        assert window.status_message.text() == PREPARING
    label = editor.layer.mask
    both = label[SLICE] == 1
    assert dice(both, left | right) >= 0.8  # measured 0.93, as the engine alone
    assert label.sum() == both.sum() and editor.annotated.slices[0] == {SLICE}  # nothing elsewhere; the slice counts as annotated
    assert "AI mask" in window.status_message.text()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not label.any() and editor.annotated.count() == 0  # one undo removes it entirely
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(label[SLICE] == 1, both)

    runs = len(encoder_runs)
    with qtbot.waitSignal(tool.prompted, timeout=1_000):  # the embedding is cached: the decoder runs at once
        click(view, on_screen(view, *centre_of(right)), Qt.KeyboardModifier.ShiftModifier)  # take the right thalamus away
    only_left = label[SLICE] == 1
    assert (only_left & right).sum() < 0.1 * right.sum() and dice(only_left, left) >= 0.75  # measured 0.90
    assert len(encoder_runs) == runs  # no encoder run for a second prompt on the same slice
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(label[SLICE] == 1, both)  # the refinement replaced the box's mask as one step
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(label[SLICE] == 1, only_left)

    arrived: list[int] = []
    tool.propagation_arrived.connect(arrived.append)
    with qtbot.waitSignal(tool.propagation_ended, timeout=MODEL_TIMEOUT_MS):
        window.label_tools.actions_by_name["propagate"].trigger()
        qtbot.waitUntil(lambda: len(arrived) >= 2, timeout=MODEL_TIMEOUT_MS)
        assert window.progress.isVisible()
        window.cancel_tasks()  # stopping keeps what arrived
    assert arrived[:2] == [SLICE + 1, SLICE + 2]
    for index in arrived:
        assert dice(label[index] == 1, atlas[index] == THALAMUS_L) >= 0.5
    assert np.array_equal(label[SLICE] == 1, only_left) and editor.annotated.slices[0] == {SLICE, *arrived}
    assert f"{len(arrived)} slice" in window.status_message.text()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(label[SLICE] == 1, only_left) and label.sum() == only_left.sum()  # one undo removes the whole propagation
    assert editor.annotated.slices[0] == {SLICE}


def test_without_the_model_the_box_tool_says_why_and_touches_nothing(qtbot, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    reason = "lite_medsam.pth: altered weights: the file's SHA-256 is 0123…, not the LiteMedSAM release's; it is not loaded"

    def refuse(source: str = "medsam") -> None:
        raise MedtlError(reason)

    monkeypatch.setattr(medtl.models.medsam, "load_prompt_model", refuse)
    window, view = opened_colin(qtbot, tmp_path)
    editor = window.viewer.model.editor
    window.label_tools.actions_by_name["brush"].trigger()
    drag(view, [on_screen(view, 90, 100), on_screen(view, 100, 110)])  # what the user drew
    drawn, edits = editor.layer.mask.copy(), editor.edits
    assert drawn.any()
    with qtbot.waitSignal(window.prompt_tool.problem, timeout=MODEL_TIMEOUT_MS):
        window.label_tools.actions_by_name["box"].trigger()
    assert window.status_message.text() == f"The AI box tool cannot work: {reason}"
    problems = window.problems
    assert (problems.topLevelItem(0).text(0), problems.topLevelItem(0).text(1)) == (PROBLEM_WHERE, reason)
    drag_box(view, (70, 80, 110, 120))
    click(view, on_screen(view, 90, 100))
    assert window.status_message.text() == f"The AI box tool cannot work: {reason}"
    assert np.array_equal(editor.layer.mask, drawn) and editor.edits == edits

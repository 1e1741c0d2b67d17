"""With a project open, every finished edit reaches the project without Ctrl+S: a kill loses at most the stroke being
painted. A stroke in progress is not saved half-drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medtl.labels.store import LabelStore
from tests.test_ui_labels import drag, screen_point, shown_window, temporary_settings
from tests.test_ui_project import ct_folder, series_uid, user_folders  # noqa: F401 - fixtures
from tests.test_ui_window import TIMEOUT_MS, open_and_show
from ui.models.label_editor import Tool
from ui.qt.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    return shown_window(qtbot, temporary_settings(tmp_path), LabelStore(tmp_path / "labels"))


def test_each_finished_stroke_is_in_the_project_without_saving(qtbot, window: MainWindow, tmp_path: Path, ct_folder: Path) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    assert window.projects.new_project(tmp_path / "project")
    open_and_show(qtbot, window, ct_folder)
    project, uid = window.project_session.project, series_uid(ct_folder)
    assert project is not None
    window.new_label()
    view = window.viewer.views[0]
    window.label_tools.actions_by_name["brush"].trigger()
    assert view.tool is Tool.BRUSH
    editor = window.viewer.model.editor  # type: ignore[union-attr]

    def saved_mask() -> np.ndarray | None:
        version = project.mask(uid, project.user)
        return None if version is None else project.load_mask(version).array

    drag(view, [screen_point(view, 18, 10), screen_point(view, 18, 30)])  # one stroke, no Ctrl+S
    qtbot.waitUntil(lambda: not editor.dirty, timeout=TIMEOUT_MS)
    first = saved_mask()
    assert first is not None and np.array_equal(first, editor.layer.mask) and first.any()

    editor.begin(view.plane, window.viewer.model.slice_index(view.plane))  # type: ignore[arg-type,union-attr]
    editor.paint(10, 10, (1.0, 1.0, 1.0))  # a stroke in progress...
    qtbot.wait(3 * 500)
    assert len(project.mask_versions(uid, project.user)) == 1  # ...is not saved half-drawn
    editor.end()
    qtbot.waitUntil(lambda: not editor.dirty, timeout=TIMEOUT_MS)
    assert np.array_equal(saved_mask(), editor.layer.mask) and len(project.mask_versions(uid, project.user)) == 2
    assert [entry.tool for entry in project.history(series_uid=uid)][-2:] == ["brush", "brush"]

"""With a project open, every finished edit reaches the project without Ctrl+S: a kill loses at most the stroke being
painted. A stroke in progress is not saved half-drawn. After a crash, the app goes on writing the project it left."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medtl.labels.store import LabelStore
from medtl.project import Project
from tests.test_ui_labels import drag, screen_point, shown_window, temporary_settings
from tests.test_ui_project import ct_folder, series_uid, user_folders  # noqa: F401 - fixtures
from tests.test_ui_window import TIMEOUT_MS, open_and_show
from ui.models.label_editor import Tool
from ui.models.project_session import ProjectSession
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


def held_then_killed(folder: Path, user: str) -> None:
    """A medtl process of ``user`` on this machine opens the project for writing, then is killed (as in a crash)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys; from medtl.project import Project; p = Project.open({str(folder)!r}, user={user!r}); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()


def test_after_a_crash_the_app_goes_on_writing_its_project_but_never_takes_another_readers(tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    for folder in (mine, theirs):
        Project.create(folder).close()
    held_then_killed(mine, "Dr Ada")
    held_then_killed(theirs, "Dr Bea")
    session = ProjectSession("Dr Ada")
    project = session.open_at_start(mine)
    try:
        assert not project.read_only  # this reader's crashed session: taken over at start
    finally:
        project.close()
    project = session.open_at_start(theirs)
    try:
        assert project.read_only and "Dr Bea" in (project.notice or "")  # someone else's stale lock: only when asked
    finally:
        project.close()

"""Help ▸ About medtl: the version from the package metadata and the licences of what ships with it."""

from __future__ import annotations

from importlib.metadata import version

import pytest

pytest.importorskip("pytestqt")

from ui.qt.about_dialog import AboutDialog, components_html  # noqa: E402


def test_about_shows_the_package_version_and_the_bundled_licences(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    heading = dialog.heading.text()
    assert f"medtl {version('medtl')}" in heading and f"PyTorch {version('torch')}" in heading
    components = dialog.components.toPlainText()
    for expected in ("Qt 6 and PySide6", "LGPL-3.0", "MONAI", "Apache-2.0", "PyTorch", f"{version('monai')}", "pylibjpeg-libjpeg", "GPL-3.0"):
        assert expected in components, expected
    assert "replace with your own build" in components  # the LGPL notice: Qt's libraries are replaceable
    assert "efficientnet-lite0" in components and "LiteMedSAM" in components  # the bundled weights and their terms
    assert "Pretrained weights" in dialog.notices.toPlainText()  # resources/LICENSES.md in full


def test_a_component_that_is_not_installed_is_not_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    import ui.qt.about_dialog as about

    monkeypatch.setattr(about, "installed_version", lambda name: None if name == "monai" else "1.0")
    html = components_html()
    assert "MONAI" not in html and "PyTorch" in html


def test_the_help_menu_opens_it(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    from ui.qt.main_window import MainWindow
    from ui.qt.settings import AppSettings

    window = MainWindow(AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(window)
    help_menu = next(action.menu() for action in window.menuBar().actions() if action.text() == "&Help")
    assert window.about_action in help_menu.actions()
    dialog = window.show_about()
    qtbot.addWidget(dialog)
    assert dialog.isVisible() and dialog.windowTitle() == "About medtl"

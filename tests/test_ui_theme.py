"""The reading-room theme keeps what a user cannot click looking unclickable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QApplication, QCheckBox, QPushButton, QVBoxLayout, QWidget

from ui.qt.theme import apply_dark_theme


@pytest.fixture
def themed(qtbot) -> Iterator[QWidget]:  # type: ignore[no-untyped-def]
    """A widget shown under the app's dark theme; the other tests' application is given its look back afterwards."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    style, palette, sheet = app.style().name(), app.palette(), app.styleSheet()
    apply_dark_theme(app)
    widget = QWidget()
    qtbot.addWidget(widget)
    try:
        yield widget
    finally:
        app.setStyleSheet(sheet)
        app.setPalette(palette)
        app.setStyle(style)


def brightest(button: QPushButton) -> int:
    """The lightness (0-255) of the brightest pixel of ``button`` as drawn: its label's, on the dark chrome."""
    image = button.grab().toImage()
    return max(image.pixelColor(x, y).lightness() for y in range(image.height()) for x in range(image.width()))


def test_a_disabled_button_is_drawn_dimmer_than_an_enabled_one(qtbot, themed: QWidget) -> None:  # type: ignore[no-untyped-def]
    layout = QVBoxLayout(themed)
    enabled, disabled = QPushButton("Compare", themed), QPushButton("Compare", themed)
    disabled.setEnabled(False)
    for button in (enabled, disabled):
        layout.addWidget(button)
    themed.show()
    qtbot.waitExposed(themed)
    assert brightest(enabled) >= 200  # light text on the dark chrome
    assert brightest(disabled) < 0.6 * brightest(enabled)  # before: both 220, so a disabled Compare looked clickable


def test_an_unticked_check_box_shows_its_box(qtbot, themed: QWidget) -> None:  # type: ignore[no-untyped-def]
    layout = QVBoxLayout(themed)
    box = QCheckBox("", themed)  # no text: the brightest thing drawn is the box's outline
    layout.addWidget(box)
    themed.show()
    qtbot.waitExposed(themed)
    image = box.grab().toImage()
    outline = max(image.pixelColor(x, y).lightness() for y in range(image.height()) for x in range(image.width()))
    assert outline >= 90  # before: Fusion's outline, darker than the window: an unticked box could not be seen

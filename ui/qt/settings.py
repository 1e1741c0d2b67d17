"""`AppSettings`: what the app remembers between sessions (QSettings): window geometry, recent folders, the viewer layout,
the project last open and the reader's name."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow

from ui.qt.viewer_widget import Layout

MAX_RECENT = 10


class AppSettings:
    """Typed access to a ``QSettings`` store (the user's by default; tests pass their own file)."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self.store = settings if settings is not None else QSettings("medtl", "medtl")

    def recent_folders(self) -> list[str]:
        value = self.store.value("recent_folders", [])
        if isinstance(value, str):  # QSettings returns a one-item list as a plain string on some back ends
            value = [value]
        return [str(path) for path in value or []]

    def add_recent(self, path: Path) -> None:
        """Put ``path`` first in the recent list (once), keeping at most ``MAX_RECENT``."""
        entry = str(Path(path).resolve())
        folders = [entry] + [folder for folder in self.recent_folders() if folder != entry]
        self.store.setValue("recent_folders", folders[:MAX_RECENT])

    def clear_recent(self) -> None:
        self.store.setValue("recent_folders", [])

    def save_window(self, window: QMainWindow) -> None:
        self.store.setValue("window/geometry", window.saveGeometry())
        self.store.setValue("window/state", window.saveState())

    def restore_window(self, window: QMainWindow) -> bool:
        """Restore the saved geometry and dock layout; False if none was saved."""
        geometry = self.store.value("window/geometry")
        state = self.store.value("window/state")
        if isinstance(state, QByteArray):
            window.restoreState(state)
        return isinstance(geometry, QByteArray) and window.restoreGeometry(geometry)

    def viewer_layout(self) -> Layout:
        """The viewer layout last chosen (single view at first, or if the stored value is unknown)."""
        value = self.store.value("viewer/layout", Layout.SINGLE.value)
        return next((layout for layout in Layout if layout.value == value), Layout.SINGLE)

    def set_viewer_layout(self, layout: Layout) -> None:
        self.store.setValue("viewer/layout", layout.value)

    def last_project(self) -> Path | None:
        """The project folder open when the app last closed (None: the default project)."""
        value = str(self.store.value("project/last", "") or "")
        return Path(value) if value else None

    def set_last_project(self, folder: Path | None) -> None:
        self.store.setValue("project/last", str(folder) if folder is not None else "")

    def reader_name(self) -> str | None:
        """The name the user gave as reader (None: the OS user)."""
        return str(self.store.value("project/reader", "") or "").strip() or None

    def set_reader_name(self, name: str | None) -> None:
        self.store.setValue("project/reader", (name or "").strip())

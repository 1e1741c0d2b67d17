"""File → Export project labels…: the open project's labels as DICOM SEG, NIfTI or an MSD dataset (what MONAI and
nnU-Net read), optionally de-identified, written in a worker by :func:`medtl.project.label_files.export_labels`."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from medtl.project import Project

FORMAT_CHOICES = (
    ("DICOM SEG (references the source images)", "seg"),
    ("NIfTI (.nii.gz and a label sidecar)", "nifti"),
    ("Training dataset, MSD layout (MONAI, nnU-Net)", "msd"),
)
ANY_READER = "the newest save of any reader"


def unused_folder(folder: Path) -> Path:
    """``folder`` if it is new or empty, else the first of ``folder-2``, ``folder-3``, … that is."""
    candidate, number = folder, 1
    while not _new_or_empty(candidate):
        number += 1
        candidate = folder.with_name(f"{folder.name}-{number}")
    return candidate


def _new_or_empty(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


class ExportLabelsDialog(QDialog):
    """Format, reader, de-identification and a new (or empty) output folder; :meth:`choice` reads them. The folder
    offered is one not used yet, and Export keeps the dialog open while the folder chosen holds files."""

    def __init__(self, project: Project, start_folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Export the labels of {project.name}")
        self.format_box = QComboBox(self)
        for text, fmt in FORMAT_CHOICES:
            self.format_box.addItem(text, fmt)
        self.reader_box = QComboBox(self)
        self.reader_box.addItem(ANY_READER, None)
        for reader in project.readers():
            self.reader_box.addItem(reader, reader)
        self.deidentify = QCheckBox("De-identify (DICOM PS3.15 basic profile; no names, IDs or birth dates in any file)", self)
        self.deidentify.setChecked(True)  # an export is usually for sharing: the safe choice is the default
        self.out_dir = QLineEdit(str(unused_folder(start_folder)), self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        folder = QHBoxLayout()
        folder.addWidget(self.out_dir)
        folder.addWidget(browse)
        self.note = QLabel("The folder must be new or empty.", self)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Format", self.format_box)
        form.addRow("Masks of", self.reader_box)
        form.addRow("", self.deidentify)
        form.addRow("Into", folder)
        form.addRow("", self.note)
        form.addRow(buttons)
        self.resize(620, 220)

    def accept(self) -> None:
        """Export, unless the folder chosen holds files: then say so here, and let another be chosen."""
        text = self.out_dir.text().strip()
        if text and _new_or_empty(Path(text)):
            super().accept()
            return
        self.note.setText(f"{text}: holds files already; choose a new or empty folder" if text else "Choose a folder to export into.")
        self.note.setStyleSheet("color: #e15759")

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export into (a new or empty folder)", self.out_dir.text())
        if chosen:
            self.out_dir.setText(chosen)

    def choice(self) -> tuple[str, Path, bool, str | None]:
        """Format, output folder, de-identify, reader (None: whoever saved last)."""
        return self.format_box.currentData(), Path(self.out_dir.text().strip()), self.deidentify.isChecked(), self.reader_box.currentData()

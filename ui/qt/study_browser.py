"""`StudyBrowser`: the patient / study / series tree of a scan, with a filter box.

A DICOM SEG series is shown as a child of the series it labels ("labels: SEG <description>"); when that series is
not in the scan, it stays in its study and says which series it labels.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QModelIndex, QSize, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QLineEdit, QTreeView, QVBoxLayout, QWidget

from medtl.dicom.records import PatientInfo, ScanResult, SeriesInfo, StudyInfo
from medtl.dicom.segmentations import SegSeries, by_referenced_series, seg_series
from medtl.dicom.series import NON_IMAGE_MODALITIES
from ui.models.dicom_date import format_dicom_date
from ui.qt.thumbnails import THUMBNAIL_SIZE

COLUMNS = ("Patient / study / series", "Modality", "Date", "Images")
_SERIES_ROLE = Qt.ItemDataRole.UserRole + 1
_IDENTITY_ROLE = Qt.ItemDataRole.UserRole + 2  # the text of a cell that identifies the patient (name, ID, date)
_STAND_IN_ROLE = Qt.ItemDataRole.UserRole + 3  # what that cell shows in anonymised mode
SeriesPath = tuple[PatientInfo, StudyInfo, SeriesInfo]


def is_image_series(series: SeriesInfo) -> bool:
    return series.rows is not None and series.modality not in NON_IMAGE_MODALITIES


class StudyBrowser(QWidget):
    """Shows a :class:`ScanResult`; emits ``series_selected`` when the user selects an image series."""

    series_selected = Signal(object)  # SeriesPath

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter_box = QLineEdit(self)
        self.filter_box.setPlaceholderText("Filter: name, ID, description, modality, date…")
        self.filter_box.setClearButtonEnabled(True)
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(COLUMNS)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setRecursiveFilteringEnabled(True)
        self.proxy.setAutoAcceptChildRows(True)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.tree = QTreeView(self)
        self.tree.setModel(self.proxy)
        self.tree.setAlternatingRowColors(True)
        self.tree.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter_box)
        layout.addWidget(self.tree)
        self._series: dict[str, SeriesPath] = {}
        self._labelling: dict[str, list[SegSeries]] = {}  # the SEG series under each series UID they label
        self.anonymised = False
        self.filter_box.textChanged.connect(self._filter)
        self.tree.selectionModel().currentChanged.connect(self._current_changed)

    def set_result(self, result: ScanResult) -> None:
        """Show the hierarchy of ``result`` (replacing what was shown), fully expanded."""
        self.model.removeRows(0, self.model.rowCount())
        self._series.clear()
        segs = seg_series(result)
        self._labelling = by_referenced_series(segs)
        shown = {series.series_uid for series in result.all_series()}
        orphans = {seg.series.series_uid: seg for seg in segs if not any(uid in shown for uid in seg.referenced)}
        placed = {seg.series.series_uid for seg in segs} - orphans.keys()
        for number, patient in enumerate(result.patients, start=1):
            patient_row = _row(f"{patient.patient_name or '(no name)'}  ·  {patient.patient_id or '(no ID)'}", "", "", "")
            _identifying(patient_row[0], f"Patient {number}")
            self.model.appendRow(patient_row)
            for study in patient.studies:
                images = sum(len(series.instances) for series in study.series)
                study_row = _row(study.description or "(no description)", "", format_dicom_date(study.study_date), str(images))
                _identifying(study_row[2], "")
                patient_row[0].appendRow(study_row)
                for series in study.series:
                    if series.series_uid in orphans:
                        study_row[0].appendRow(self._seg_row(patient, study, orphans[series.series_uid], None))
                    elif series.series_uid not in placed:
                        series_row = self._series_row(patient, study, series)
                        study_row[0].appendRow(series_row)
                        for seg in self._labelling.get(series.series_uid, []):
                            series_row[0].appendRow(self._seg_row(patient, study, seg, series))
        self._show_identities()
        self.tree.expandAll()
        for column in range(1, len(COLUMNS)):
            self.tree.resizeColumnToContents(column)
        self.tree.setColumnWidth(0, max(self.tree.columnWidth(0), 260))

    def set_anonymised(self, anonymised: bool) -> None:
        """Hide (or show again) patient names, IDs and study dates."""
        if anonymised != self.anonymised:
            self.anonymised = anonymised
            self._show_identities()

    def _show_identities(self) -> None:
        role = _STAND_IN_ROLE if self.anonymised else _IDENTITY_ROLE
        for patient_row in range(self.model.rowCount()):
            patient = self.model.item(patient_row)
            for cell in [patient] + [patient.child(row, 2) for row in range(patient.rowCount())]:
                cell.setText(cell.data(role))

    def set_thumbnail(self, series_uid: str, pixels: np.ndarray) -> None:
        """Show ``pixels`` (grey uint8 ``[h, w]``) as the series' icon."""
        matches = self._series_items(series_uid)
        if matches:
            rows, columns = pixels.shape
            image = QImage(pixels.data, columns, rows, columns, QImage.Format.Format_Grayscale8).scaled(
                THUMBNAIL_SIZE, THUMBNAIL_SIZE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )  # a scaled copy: independent of ``pixels``
            self.model.itemFromIndex(matches[0]).setIcon(QIcon(QPixmap.fromImage(image)))

    def image_series(self) -> list[SeriesPath]:
        """The image series shown, in tree order."""
        return [path for path in self._series.values() if is_image_series(path[2])]

    def segmentations_of(self, series_uid: str) -> list[SegSeries]:
        """The DICOM SEG series of the scan shown that label the series ``series_uid``."""
        return list(self._labelling.get(series_uid, []))

    def select_series(self, series_uid: str) -> bool:
        """Select (and so open) the series ``series_uid``; False if it is not shown."""
        index = self._proxy_index(series_uid)
        if not index.isValid():
            return False
        self.tree.setCurrentIndex(index)
        self.tree.scrollTo(index)
        return True

    def visible_series_count(self) -> int:
        """Series rows that pass the filter."""
        return sum(1 for uid in self._series if self._proxy_index(uid).isValid())

    def _series_row(self, patient: PatientInfo, study: StudyInfo, series: SeriesInfo) -> list[QStandardItem]:
        number = "" if series.series_number is None else f"#{series.series_number}  "
        size = f"  ({series.rows}×{series.columns})" if series.rows is not None else ""
        row = _row(f"{number}{series.description or '(no description)'}{size}", series.modality, "", str(len(series.instances)))
        row[0].setData(series.series_uid, _SERIES_ROLE)
        tips = list(series.warnings)
        if not is_image_series(series):
            tips.insert(0, "not an image series: nothing to display")
            for item in row:
                item.setForeground(QBrush(QColor("#6b7482")))
        elif series.warnings:
            row[0].setForeground(QBrush(QColor("#e6c06a")))
        if tips:
            for item in row:
                item.setToolTip("\n".join(tips))
        self._series[series.series_uid] = (patient, study, series)
        return row

    def _seg_row(self, patient: PatientInfo, study: StudyInfo, seg: SegSeries, labelled: SeriesInfo | None) -> list[QStandardItem]:
        """A SEG series, under the series it labels (``labelled``), or in its study when that series is absent (None)."""
        if labelled is not None:
            text, tips = f"labels: SEG {seg.name}", [f"{seg.summary(labelled)}: shown as a label layer with it"]
        else:
            text = f"labels: SEG {seg.name} (of series {', '.join(seg.referenced) or 'none named'}, not in this folder)"
            tips = [f"{seg.summary(None)}, so there is nothing to show it on"]
        row = _row(text, seg.series.modality, "", str(len(seg.series.instances)))
        row[0].setData(seg.series.series_uid, _SERIES_ROLE)
        misfit = seg.misfit(labelled) if labelled is not None else None
        tips.extend([*seg.series.warnings, *([misfit] if misfit else [])])
        colour = "#6b7482" if labelled is None else "#e6c06a" if len(tips) > 1 else None
        for item in row:
            item.setToolTip("\n".join(tips))
            if colour is not None:
                item.setForeground(QBrush(QColor(colour)))
        self._series[seg.series.series_uid] = (patient, study, seg.series)
        return row

    def _series_items(self, series_uid: str) -> list[QModelIndex]:
        flags = Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchExactly
        return self.model.match(self.model.index(0, 0), _SERIES_ROLE, series_uid, 1, flags)

    def _proxy_index(self, series_uid: str) -> QModelIndex:
        matches = self._series_items(series_uid)
        return self.proxy.mapFromSource(matches[0]) if matches else QModelIndex()

    def _filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text.strip())
        self.tree.expandAll()

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        uid = self.proxy.mapToSource(current.siblingAtColumn(0)).data(_SERIES_ROLE)
        path = self._series.get(uid) if uid else None
        if path is not None and is_image_series(path[2]):
            self.series_selected.emit(path)


def _identifying(cell: QStandardItem, stand_in: str) -> None:
    """Mark ``cell`` as identifying the patient; it shows ``stand_in`` in anonymised mode."""
    cell.setData(cell.text(), _IDENTITY_ROLE)
    cell.setData(stand_in, _STAND_IN_ROLE)


def _row(*texts: str) -> list[QStandardItem]:
    items = [QStandardItem(text) for text in texts]
    for item in items:
        item.setEditable(False)
    return items

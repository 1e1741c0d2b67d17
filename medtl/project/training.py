"""A project as training data: the datalist ``medtl train --project`` and the app's training panel train on.

The datalist and the files it names are written into a folder of the caller's (a run's
``project-data/``), so a run keeps the labels it was trained on even as the project changes, and
resuming it reads the same files. Segmentation: each series' newest mask (of one reader, or of
whoever saved last), with the voxels of deleted labels as background; a partly annotated mask gets
the ``ignore`` label outside its annotated slices, through the label store's own datalist writer
(:func:`medtl.labels.store.write_datalist`). Classification: each series' whole-series class label.
The image is the series' DICOM folder when that folder holds only the series, else a NIfTI copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medtl.atomic import write_text_atomic
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.export.nifti import write_nifti
from medtl.labels.store import SavedLabel, sole_series_folder, write_datalist
from medtl.project.project import Project
from medtl.project.records import SeriesRecord

DATALIST_NAME = "datalist.json"


def write_training_data(project: Project, destination: Path, task: str = "segmentation", reader: str | None = None) -> Path:
    """Write ``destination/datalist.json`` (and the masks and images it names) from ``project``; returns its path.

    ``reader``: train on that reader's labels only (default: each series' newest, whoever saved it).
    """
    destination = Path(destination)
    if task == "classification":
        return _classification(project, destination, reader)
    if task != "segmentation":
        raise MedtlError(f"a project trains segmentation or classification, not {task!r}")
    newest = project.latest_masks(reader)
    if not newest:
        who = f" by {reader}" if reader else ""
        raise MedtlError(f"{project.folder}: no saved masks{who} to train on; label a series (or import a mask) first")
    defined = {label.value: label.name for label in project.labels()}
    names = {0: "background", **defined}
    labels = []
    for number, (uid, version) in enumerate(newest.items(), start=1):
        record = project.series_record(uid)
        case = destination / "labels" / f"case_{number:04d}"
        mask = project.load_mask(version)
        kept = defined_voxels(mask.array, defined)
        write_nifti(Volume(kept, mask.spacing, mask.origin, mask.direction), case / "mask.nii.gz")
        image = _image(project, record, destination / "images" / f"case_{number:04d}.nii.gz")
        labels.append(SavedLabel(uid, record.study_uid, record.patient_id, image, case / "mask.nii.gz", names, record.description, version.annotated))
    return write_datalist(labels, destination / DATALIST_NAME, project.folder)


def defined_voxels(mask: np.ndarray, values: Iterable[int]) -> np.ndarray:
    """``mask`` (uint8) with the voxels of values no label defines (deleted labels) set to background."""
    return np.where(np.isin(mask, list(values)), mask, 0).astype(np.uint8)


def _classification(project: Project, destination: Path, reader: str | None) -> Path:
    classes = project.series_classes(reader)
    if not classes:
        raise MedtlError(f"{project.folder}: no series has a class label to train on; give series their classes first")
    training = []
    for number, (uid, name) in enumerate(classes.items(), start=1):
        record = project.series_record(uid)
        image = _image(project, record, destination / "images" / f"case_{number:04d}.nii.gz")
        training.append({"image": str(image), "label": name, **({"patient_id": record.patient_id} if record.patient_id else {})})
    document = {"training": training, "classes": project.classes()}
    target = destination / DATALIST_NAME
    write_text_atomic(target, json.dumps(document, indent=2))
    return target


def _image(project: Project, record: SeriesRecord, copy: Path) -> Path:
    """The series' image as a datalist names it: its DICOM folder when that holds only the series, else a NIfTI written to ``copy``."""
    if not record.files:
        return record.path
    folder = sole_series_folder(record.files)
    if folder is not None:
        return folder
    return write_nifti(project.load_volume(record.series_uid), copy)

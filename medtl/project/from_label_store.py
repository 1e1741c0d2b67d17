"""Moving the labels of the old global label store (:mod:`medtl.labels.store`) into a project, and the default project.

The store is only read: its files stay where they are. Each stored label becomes a series of the
project (its DICOM folder is scanned; an image kept beside the mask is copied into the project),
its earlier versions and then its current mask become mask versions of the OS user, with the
slices they had annotated, and its label names become label definitions (a value the project
already names keeps the project's name). The audit log records each as an import from the store.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from medtl.data.images import read_image
from medtl.data.sparse import Annotated
from medtl.errors import MedtlError
from medtl.labels.store import LabelStore, SavedLabel
from medtl.project.project import IMAGES_FOLDER, Project, series_key
from medtl.project.records import IMPORT, SeriesRecord

IMPORTED_KEY = "label_store_imported"
DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class StoreImport:
    """What an import from the label store brought: series, mask versions, and notes (labels whose names differed)."""

    series: int
    versions: int
    notes: tuple[str, ...] = ()


def import_label_store(project: Project, store: LabelStore | None = None) -> StoreImport:
    """Bring every label of ``store`` (default: the user's store) into ``project``; once per project."""
    store = store or LabelStore()
    if project.meta(IMPORTED_KEY):
        raise MedtlError(f"{project.folder}: the label store {project.meta(IMPORTED_KEY)} was imported already")
    notes: list[str] = []
    versions = 0
    saved = store.saved()
    for label in saved:
        _register(project, label)
        notes.extend(_define(project, label.labels))
        for old in store.versions(label.study_uid, label.series_uid):
            _import_mask(project, label.series_uid, old.mask, _annotated(old.info), f"from the label store, version {old.number}")
            versions += 1
        _import_mask(project, label.series_uid, label.mask, label.annotated, "from the label store")
        versions += 1
    project.set_meta(IMPORTED_KEY, str(store.root))
    return StoreImport(len(saved), versions, tuple(notes))


def default_project_dir() -> Path:
    """Where the default project lives: ``projects/default`` in the per-user data folder."""
    import platformdirs

    return Path(platformdirs.user_data_dir("medtl")) / "projects" / DEFAULT_PROJECT


def open_default_project(folder: Path | None = None, store: LabelStore | None = None) -> Project:
    """The default project (``folder``, else :func:`default_project_dir`), created on first use with the label store's
    labels moved in (the store is kept). The app calls this at start."""
    folder = folder or default_project_dir()
    if (folder / "project.sqlite").is_file():
        return Project.open(folder)
    project = Project.create(folder, name="default")
    store = store or LabelStore()
    if store.saved():
        import_label_store(project, store)
    return project


def _register(project: Project, label: SavedLabel) -> None:
    """Record the series of ``label``: from its DICOM folder, or (an image kept in the store) from a copy of that image."""
    if label.image.is_dir():
        project.add_dicom(label.image)
        project.series_record(label.series_uid)  # the folder must hold the series the label names
        return
    copy = project.folder / IMAGES_FOLDER / series_key(label.series_uid) / "image.nii.gz"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(label.image, copy)
    project.add_image(SeriesRecord(label.series_uid, label.study_uid, label.patient_id, copy, (), "", label.description))


def _define(project: Project, names: dict[int, str]) -> list[str]:
    existing = {label.value: label.name for label in project.labels()}
    taken = {name.lower() for name in existing.values()}
    notes = []
    for value, name in sorted(names.items()):
        if value == 0:
            continue
        if value in existing:
            if existing[value] != name:
                notes.append(f"label {value} is {existing[value]!r} in the project; the store's name {name!r} was not used")
            continue
        if name.lower() in taken:
            name = f"{name} ({value})"
        project.define_label(name, value=value)
        taken.add(name.lower())
    return notes


def _import_mask(project: Project, series_uid: str, path: Path, annotated: Annotated, detail: str) -> None:
    mask = read_image(path)
    project.save_mask(series_uid, mask.array, mask, tool=IMPORT, annotated=annotated, detail=detail)


def _annotated(info: Path) -> Annotated:
    """The annotated slices an earlier version's record names (a record without them, or none: everything)."""
    try:
        return Annotated.from_dict(json.loads(info.read_text(encoding="utf-8")).get("annotated"))
    except (OSError, ValueError, AttributeError):
        return Annotated.everything()

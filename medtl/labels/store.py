"""`LabelStore`: segmentation masks a user drew or corrected, one per series, kept as training labels.

Layout (the root defaults to ``labels/`` in the per-user data folder, ``$MEDTL_LABELS`` overrides)::

    <root>/<StudyInstanceUID>/<SeriesInstanceUID>/mask.nii.gz    the mask on the series' own world grid
                                                 /label.json     image reference, label names, patient, annotated slices
                                                 /image.nii.gz   the image, only when no folder holds just the series
                                                 /training_mask.nii.gz  the mask with ``ignore`` outside the annotated slices
                                                 /versions/mask-0001.nii.gz, label-0001.json, ...  earlier saves
    <root>/datalist.json                                         written by :meth:`LabelStore.write_datalist`

The image a label belongs to is the DICOM folder of the series when that folder holds nothing
else, so the datalist points at the user's own files; otherwise the image is written beside the
mask, on the same grid. Every write is atomic, and a save never replaces a mask silently: the
mask and record it replaces are kept as the next numbered version (:meth:`LabelStore.versions`,
:meth:`LabelStore.restore`).

``label.json`` records which slices the user annotated (:class:`~medtl.data.sparse.Annotated`; a
record written before slices were recorded means the whole mask). :meth:`LabelStore.write_datalist`
points a partly annotated label's entry at its training mask, in which the voxels outside the
annotated slices carry the ``ignore`` label (nnU-Net v2's convention), so ``medtl train`` and
nnU-Net read the same files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medtl.atomic import atomic_path, write_text_atomic
from medtl.data.sparse import IGNORE_NAME, Annotated, with_ignore
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError

ENV_VARIABLE = "MEDTL_LABELS"
MASK_NAME, INFO_NAME, IMAGE_NAME, DATALIST_NAME = "mask.nii.gz", "label.json", "image.nii.gz", "datalist.json"
TRAINING_MASK_NAME = "training_mask.nii.gz"
VERSIONS_FOLDER = "versions"
_VERSION = re.compile(r"^mask-(\d{4,})\.nii\.gz$")
_IGNORED_FILES = {"DICOMDIR"}
_UNSAFE = re.compile(r"[^0-9A-Za-z._-]")
GRID_TOLERANCE_MM = 1e-3
"""Spacing, origin and direction closer than this are the same grid."""

_SAVING = threading.Lock()
"""One label save at a time (a background save and the save on closing may overlap)."""
_NEWEST_WRITTEN: dict[Hashable, tuple[int, SavedLabel]] = {}
"""Per edited label (the caller's key): the edit count of the newest snapshot on disk, and where it went."""


def default_labels_dir() -> Path:
    """``$MEDTL_LABELS`` if set, else ``labels`` in the per-user data folder."""
    override = os.environ.get(ENV_VARIABLE)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("medtl")) / "labels"


@dataclass(frozen=True)
class SavedLabel:
    """One stored mask: the image it labels (DICOM folder or NIfTI), the mask file, names of its values."""

    series_uid: str
    study_uid: str
    patient_id: str | None
    image: Path
    mask: Path
    labels: dict[int, str]
    description: str = ""
    annotated: Annotated = field(default_factory=Annotated.everything)


@dataclass(frozen=True)
class LabelVersion:
    """An earlier save of a label: its number (1 the oldest), mask and record, and when it was saved (seconds since the epoch)."""

    number: int
    mask: Path
    info: Path
    saved_at: float


class LabelStore:
    """Masks by study and series under ``root``."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_labels_dir()

    def folder(self, study_uid: str, series_uid: str) -> Path:
        if not series_uid:
            raise MedtlError("this image has no series UID, so its label cannot be stored; convert it to DICOM or NIfTI first")
        return self.root / _safe(study_uid or "unknown-study") / _safe(series_uid)

    def save(
        self, mask: np.ndarray, image: Volume, files: Sequence[Path], labels: dict[int, str], description: str = "",
        annotated: Annotated | None = None,
    ) -> SavedLabel:  # fmt: skip
        """Store ``mask`` (``[z, y, x]`` integers 0..255 on ``image`` 's grid) for the series ``image`` was loaded from
        (``files``: its DICOM files); ``annotated``: the slices the user annotated (None: all of them). The mask saved
        before, if any, becomes the next version. Returns where it went."""
        from medtl.export.nifti import write_nifti

        if mask.shape != image.shape:
            raise MedtlError(f"the label has shape {mask.shape}, but the image {image.shape}")
        annotated = annotated if annotated is not None else Annotated.everything()
        meta = image.metadata
        series_uid, study_uid = str(meta.get("series_uid", "")), str(meta.get("study_uid", ""))
        folder = self.folder(study_uid, series_uid)
        _keep_version(folder)
        mask_volume = Volume(np.ascontiguousarray(mask, dtype=np.uint8), image.spacing, image.origin, image.direction)
        write_nifti(mask_volume, folder / MASK_NAME)
        source = sole_series_folder(files)
        if source is None:
            source = write_nifti(image, folder / IMAGE_NAME)
        patient = str(meta.get("patient_id", "")) or None
        names = {0: "background", **{int(k): str(v) for k, v in labels.items() if int(k) != 0}}
        saved = SavedLabel(series_uid, study_uid, patient, source, folder / MASK_NAME, names, description, annotated)
        info = {
            "series_uid": series_uid, "study_uid": study_uid, "patient_id": patient, "image": str(source),
            "labels": {str(k): v for k, v in sorted(names.items())}, "description": description, "annotated": annotated.to_dict(),
        }  # fmt: skip
        write_text_atomic(folder / INFO_NAME, json.dumps(info, indent=2))
        return saved

    def versions(self, study_uid: str, series_uid: str) -> list[LabelVersion]:
        """The earlier saves of this series' label, oldest first."""
        folder = self.folder(study_uid, series_uid) / VERSIONS_FOLDER
        found = []
        for path in folder.glob("mask-*.nii.gz") if folder.is_dir() else ():
            match = _VERSION.match(path.name)
            if match:
                number = int(match.group(1))
                found.append(LabelVersion(number, path, folder / _version_info_name(number), path.stat().st_mtime))
        return sorted(found, key=lambda version: version.number)

    def restore(self, study_uid: str, series_uid: str, number: int) -> SavedLabel:
        """Make version ``number`` the label again; the label it replaces becomes the next version."""
        folder = self.folder(study_uid, series_uid)
        version = next((v for v in self.versions(study_uid, series_uid) if v.number == number), None)
        if version is None:
            raise MedtlError(f"{folder / VERSIONS_FOLDER}: the label has no version {number}")
        with _SAVING:
            _keep_version(folder)
            _copy_atomic(version.mask, folder / MASK_NAME)
            if version.info.is_file():
                _copy_atomic(version.info, folder / INFO_NAME)
        restored = _read_info(folder / INFO_NAME)
        if restored is None:
            raise MedtlError(f"{folder / INFO_NAME}: the restored label's record cannot be read")
        return restored

    def save_snapshot(
        self, key: Hashable, edits: int, mask: np.ndarray, image: Volume, files: Sequence[Path], labels: dict[int, str], description: str = "",
        annotated: Annotated | None = None,
    ) -> SavedLabel:  # fmt: skip
        """:meth:`save` a snapshot of a label being edited (``key`` names the label, ``edits`` counts its edits so far).

        Saves run one at a time; a snapshot older than one already written for ``key`` (a slow save that
        waited) writes nothing and returns where the newer one went.
        """
        with _SAVING:
            newest = _NEWEST_WRITTEN.get(key)
            if newest is not None and newest[0] > edits:
                return newest[1]
            saved = self.save(mask, image, files, labels, description, annotated)
            _NEWEST_WRITTEN[key] = (edits, saved)
            return saved

    def load_for(self, image: Volume) -> tuple[SavedLabel, Volume] | None:
        """The label saved for ``image`` 's series and its mask, if there is one; raises :class:`MedtlError` when it
        cannot be read or is not on ``image`` 's grid."""
        from medtl.data.images import read_image

        meta = image.metadata
        saved = self.find(str(meta.get("study_uid", "")), str(meta.get("series_uid", "")))
        if saved is None or not saved.mask.is_file():
            return None
        try:
            mask = read_image(saved.mask)
        except MedtlError as error:
            raise MedtlError(f"the saved label was not loaded: {error}") from None
        if not same_grid(mask, image):
            raise MedtlError(f"{saved.mask}: the saved label is not on this series' grid (the series changed since?); it was not loaded")
        return saved, mask

    def find(self, study_uid: str, series_uid: str) -> SavedLabel | None:
        """The label stored for this series, if any."""
        try:
            return _read_info(self.folder(study_uid, series_uid) / INFO_NAME)
        except MedtlError:
            return None

    def saved(self) -> list[SavedLabel]:
        """Every stored label whose mask and image are still there, ordered by study and series."""
        found = (_read_info(path) for path in sorted(self.root.glob(f"*/*/{INFO_NAME}")))
        return [label for label in found if label is not None and label.mask.is_file() and label.image.exists()]

    def write_datalist(self, destination: Path | str | None = None) -> Path:
        """An MSD-style segmentation datalist of every stored label with an annotated slice (default
        ``<root>/datalist.json``): :func:`write_datalist` of :meth:`saved`."""
        return write_datalist(self.saved(), Path(destination) if destination is not None else self.root / DATALIST_NAME, self.root)


def write_datalist(stored: Sequence[SavedLabel], destination: Path, source: Path) -> Path:
    """An MSD-style segmentation datalist at ``destination`` of the labels in ``stored`` with an annotated slice
    (``source``: where they are kept, named in errors). When a label is only partly annotated, the datalist names an
    ``ignore`` label (the highest value) and points that label's entry at its training mask (written now, beside its
    mask), where every voxel outside the annotated slices is ``ignore``."""
    if not stored:
        raise MedtlError(f"no saved labels in {source}; draw or accept a label and save it first")
    labels = [label for label in stored if label.annotated.complete or label.annotated.count()]
    if not labels:
        raise MedtlError(f"no saved label in {source} has an annotated slice; paint, erase or accept on a slice and save")
    names: dict[int, str] = {}
    for label in labels:
        for value, name in label.labels.items():
            names.setdefault(value, name)
    names = {value: names.get(value, f"label {value}") for value in range(max(names) + 1)}
    ignore = None
    if not all(label.annotated.complete for label in labels):
        ignore = max(names) + 1
        if ignore > 255:
            raise MedtlError(f"the labels use every value up to 255, so none is left to mark the voxels nobody annotated ({IGNORE_NAME})")
        names[ignore] = IGNORE_NAME
    training = [
        {"image": str(label.image), "label": str(_training_mask(label, ignore)), **({"patient_id": label.patient_id} if label.patient_id else {})}
        for label in labels
    ]
    document = {"training": training, "labels": {str(k): v for k, v in names.items()}}
    write_text_atomic(destination, json.dumps(document, indent=2))
    return destination


def same_grid(a: Volume, b: Volume, tolerance: float = GRID_TOLERANCE_MM) -> bool:
    """Whether ``a`` and ``b`` have the same shape, spacing, origin and direction (within ``tolerance``)."""
    return a.shape == b.shape and all(
        np.allclose(x, y, atol=tolerance) for x, y in ((a.spacing, b.spacing), (a.origin, b.origin), (a.direction, b.direction))
    )


def sole_series_folder(files: Sequence[Path]) -> Path | None:
    """The folder holding all of ``files`` and no other file (hidden files and DICOMDIR aside), else None."""
    if not files:
        return None
    folders = {Path(f).resolve().parent for f in files}
    if len(folders) != 1:
        return None
    folder = folders.pop()
    wanted = {Path(f).resolve() for f in files}
    present = {p.resolve() for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name not in _IGNORED_FILES}
    return folder if present == wanted and not any(p.is_dir() for p in folder.iterdir()) else None


def _training_mask(label: SavedLabel, ignore: int | None) -> Path:
    """The mask file a datalist names for ``label``: its mask when complete, else its training mask (written now)."""
    from medtl.data.images import read_image
    from medtl.export.nifti import write_nifti

    target = label.mask.parent / TRAINING_MASK_NAME
    if label.annotated.complete or ignore is None:
        target.unlink(missing_ok=True)  # left from when the label was partial: never read it by mistake
        return label.mask
    mask = read_image(label.mask)
    return write_nifti(Volume(with_ignore(mask.array, label.annotated, ignore), mask.spacing, mask.origin, mask.direction), target)


def _version_info_name(number: int) -> str:
    return f"label-{number:04d}.json"


def _keep_version(folder: Path) -> None:
    """Copy the mask (and record) in ``folder``, if any, to the next numbered version."""
    mask = folder / MASK_NAME
    if not mask.is_file():
        return
    versions = folder / VERSIONS_FOLDER
    numbers = [int(m.group(1)) for m in (_VERSION.match(p.name) for p in versions.glob("mask-*.nii.gz")) if m] if versions.is_dir() else []
    number = max(numbers, default=0) + 1
    if (folder / INFO_NAME).is_file():
        _copy_atomic(folder / INFO_NAME, versions / _version_info_name(number))
    _copy_atomic(mask, versions / f"mask-{number:04d}.nii.gz")


def _copy_atomic(source: Path, destination: Path) -> None:
    with atomic_path(destination) as tmp:
        shutil.copyfile(source, tmp)


def _read_info(path: Path) -> SavedLabel | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return SavedLabel(
            str(info["series_uid"]), str(info["study_uid"]), info.get("patient_id") or None, Path(info["image"]),
            path.parent / MASK_NAME, {int(k): str(v) for k, v in info.get("labels", {}).items()}, str(info.get("description", "")),
            Annotated.from_dict(info.get("annotated")),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name)

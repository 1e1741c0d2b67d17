"""MSD-style datalist JSON files: which images (and labels) a model trains and validates on.

Format (paths relative to the JSON file's folder, or absolute)::

    {"training":   [{"image": "img/a.nii.gz", "label": "mask/a.nii.gz", "patient_id": "P1"}, ...],
     "validation": [...],                       # optional; else a seeded patient-level split
     "classes":    ["upright", "rotated"],      # classification: class names, index order
     "labels":     {"0": "background", "1": "bone"},   # segmentation: mask value -> name ("ignore" last: not annotated)
     "modality":   "CT"}                        # optional: CT, MR, XR, OT... (or MSD {"0": "CT"})

``label`` is a class name (classification) or a mask file (segmentation); the task is inferred
from it or checked against the ``task`` argument. Every problem names the JSON file, the entry
(``training[3]``) and the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medtl.data.images import NIFTI_SUFFIXES, PICTURE_SUFFIXES
from medtl.data.sparse import Annotated, ignore_value, trained_labels
from medtl.errors import MedtlError
from medtl.learning_task import TASKS

SECTIONS = ("training", "validation")
_MASK_SUFFIXES = NIFTI_SUFFIXES + PICTURE_SUFFIXES + (".dcm",)


class DatalistError(MedtlError):
    """A datalist that cannot be used; the message names the file, the entry and the reason."""


@dataclass(frozen=True)
class Case:
    """One image with its label: a class name (classification) or a mask path (segmentation)."""

    image: Path
    label: str | Path
    patient_id: str | None = None
    entry: str = ""  # where it came from, e.g. "training[3]"
    annotated: Annotated | None = None
    """Segmentation: only these slices of the mask count, the rest is unannotated (one side of a split of one
    volume into slabs, :mod:`medtl.data.slabs`); None: the whole mask as it is."""

    @property
    def group(self) -> str:
        """The split unit: the patient, or the image itself when no patient is given."""
        return f"patient:{self.patient_id}" if self.patient_id else f"image:{self.image}"


@dataclass
class Datalist:
    """A parsed, validated datalist with absolute paths."""

    path: Path
    task: str
    training: list[Case]
    validation: list[Case] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)
    modality: str | None = None

    @property
    def cases(self) -> list[Case]:
        return self.training + self.validation

    @property
    def ignore_label(self) -> int | None:
        """The mask value of unannotated voxels (the label named ``ignore``), or None."""
        return ignore_value(self.labels)

    @property
    def trained_labels(self) -> dict[int, str]:
        """The segmentation labels a network outputs: ``labels`` without ``ignore``."""
        return trained_labels(self.labels)


def load_datalist(path: Path | str, task: str | None = None) -> Datalist:
    """Parse and validate the datalist at ``path``; ``task`` (if given) must match its labels."""
    path = Path(path).resolve()
    if task is not None and task not in TASKS:
        raise MedtlError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatalistError(f"{path}: datalist file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatalistError(f"{path}: not a readable JSON datalist ({exc})") from exc
    if not isinstance(document, dict):
        raise DatalistError(f"{path}: a datalist is a JSON object with a \"training\" list")
    raw = {section: _entries(document, section, path) for section in SECTIONS}
    if not raw["training"]:
        raise DatalistError(f"{path}: the \"training\" list is empty; add at least one {{\"image\": ..., \"label\": ...}} entry")
    task = _task(raw, task, path)
    base = path.parent
    cases = {section: [_case(entry, f"{section}[{i}]", task, base, path) for i, entry in enumerate(entries)] for section, entries in raw.items()}
    datalist = Datalist(path=path, task=task, training=cases["training"], validation=cases["validation"], modality=_modality(document, path))
    if task == "classification":
        datalist.classes = _classes(document, datalist.cases, path)
    else:
        datalist.labels = _labels(document, path)
    return datalist


def _entries(document: dict[str, Any], section: str, path: Path) -> list[dict[str, Any]]:
    entries = document.get(section, [])
    if not isinstance(entries, list):
        raise DatalistError(f"{path}: \"{section}\" must be a list of {{\"image\": ..., \"label\": ...}} objects")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "image" not in entry:
            raise DatalistError(f"{path}: {section}[{i}] must be an object with an \"image\" key")
        if "label" not in entry:
            raise DatalistError(f"{path}: {section}[{i}] ({entry['image']}) has no \"label\" (a class name, or a mask file for segmentation)")
        if not isinstance(entry["image"], str) or not isinstance(entry["label"], (str, int)):
            raise DatalistError(f"{path}: {section}[{i}]: \"image\" must be a path string and \"label\" a class name or a mask path")
    return entries


def _looks_like_mask(label: object) -> bool:
    return isinstance(label, str) and (label.lower().endswith(_MASK_SUFFIXES) or "/" in label or "\\" in label)


def _task(raw: dict[str, list[dict[str, Any]]], task: str | None, path: Path) -> str:
    kinds = [(f"{s}[{i}]", "segmentation" if _looks_like_mask(e["label"]) else "classification") for s, entries in raw.items() for i, e in enumerate(entries)]
    if task is None:
        first: dict[str, str] = {}
        for where, kind in kinds:
            first.setdefault(kind, where)
        if len(first) > 1:
            raise DatalistError(f"{path}: mixes mask-file labels ({first['segmentation']}) and class-name labels ({first['classification']}); use one kind")
        return next(iter(first))
    for where, kind in kinds:
        if kind != task and task == "segmentation":
            raise DatalistError(f"{path}: {where} has no mask: its \"label\" is a class name, but a segmentation case needs a mask file (NIfTI or PNG)")
        if kind != task:
            raise DatalistError(f"{path}: {where} has a mask file as \"label\", but a classification case needs a class name")
    return task


def _case(entry: dict[str, Any], where: str, task: str, base: Path, path: Path) -> Case:
    image = _existing(entry["image"], "image", where, base, path)
    label: str | Path
    if task == "segmentation":
        label = _existing(entry["label"], "label", where, base, path)
        if label.is_dir():
            raise DatalistError(f"{path}: {where} \"label\": {label} is a folder; a segmentation label is one mask file")
    else:
        label = str(entry["label"])
    patient = entry.get("patient_id")
    return Case(image=image, label=label, patient_id=str(patient) if patient not in (None, "") else None, entry=where)


def _existing(value: str, key: str, where: str, base: Path, path: Path) -> Path:
    resolved = (base / value).resolve()  # an absolute value replaces the base
    if not resolved.exists():
        raise DatalistError(f"{path}: {where} \"{key}\": file not found: {resolved}")
    return resolved


def _classes(document: dict[str, Any], cases: list[Case], path: Path) -> list[str]:
    declared = document.get("classes")
    if declared is None:
        return sorted({str(case.label) for case in cases})
    if not isinstance(declared, list) or not declared or len(set(map(str, declared))) != len(declared):
        raise DatalistError(f"{path}: \"classes\" must be a non-empty list of distinct class names")
    classes = [str(name) for name in declared]
    for case in cases:
        if case.label not in classes:
            raise DatalistError(f"{path}: {case.entry} has label {case.label!r}, which is not in \"classes\" {classes}")
    return classes


def _labels(document: dict[str, Any], path: Path) -> dict[int, str]:
    declared = document.get("labels", {"0": "background", "1": "foreground"})
    try:
        labels = {int(value): str(name) for value, name in dict(declared).items()}
    except (TypeError, ValueError):
        raise DatalistError(f"{path}: \"labels\" must map mask values to names, e.g. {{\"0\": \"background\", \"1\": \"bone\"}}") from None
    if 0 not in labels or sorted(labels) != list(range(len(labels))):
        raise DatalistError(f"{path}: \"labels\" must use mask values 0..N-1 with 0 the background, got {sorted(labels)}")
    try:
        ignore_value(labels)
    except MedtlError as error:
        raise DatalistError(f"{path}: \"labels\": {error}") from None
    return labels


def _modality(document: dict[str, Any], path: Path) -> str | None:
    modality = document.get("modality")
    if isinstance(modality, dict):  # MSD: {"0": "CT"}, one entry per channel
        values = set(modality.values())
        if len(values) != 1:
            raise DatalistError(f"{path}: multi-channel \"modality\" {modality} is not supported; give one modality")
        modality = values.pop()
    if modality is not None and not isinstance(modality, str):
        raise DatalistError(f"{path}: \"modality\" must be a string such as \"CT\" or \"MR\"")
    return modality.upper() if modality else None

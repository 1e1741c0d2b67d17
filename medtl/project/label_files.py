"""Masks into a project from files (NIfTI, DICOM SEG) and out of it as files (DICOM SEG, NIfTI, an MSD dataset).

Reading and writing the formats is :mod:`medtl.labels.mask_import` 's and :mod:`medtl.export.label_export` 's;
this module decides what goes in and out. An imported mask's labels join the project's by name (an
unnamed value, "label N", is the project's label N when there is one; a new name is a new label),
and replace the voxels of those labels in the reader's newest mask, as a new version. An export
writes each series' newest mask (one reader's, or whoever saved last) with the project's label
names and colours; files are named ``case_0001``..., never after a patient; de-identified, every
DICOM header follows the PS3.15 basic profile with pseudonyms shared across the export.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtl.data.sparse import IGNORE_NAME, Annotated, with_ignore
from medtl.errors import MedtlError
from medtl.project.project import Project
from medtl.project.records import IMPORT, MaskVersion
from medtl.project.training import defined_voxels

FORMATS = ("seg", "nifti", "msd")
_IGNORE_COLOUR = (128, 128, 128)


@dataclass(frozen=True)
class Imported:
    """An imported mask: the version it became and the project label each of the file's values went to."""

    version: MaskVersion
    values: dict[int, int]


@dataclass(frozen=True)
class Exported:
    """What an export wrote (files, or the dataset's ``dataset.json``) and what a user should know about it."""

    paths: tuple[Path, ...]
    notes: tuple[str, ...] = ()


def import_mask(project: Project, series_uid: str, path: Path | str, *, name: str | None = None, reader: str | None = None) -> Imported:
    """Import the mask at ``path`` (NIfTI, or a DICOM SEG file or folder) as labels of series ``series_uid``
    (``name``: the name of its one label) into ``reader`` 's (default: the project's user) mask; see the module."""
    from medtl.labels.mask_import import read_mask

    path = Path(path)
    volume = project.load_volume(series_uid)
    imported = read_mask(path, volume, name=name)
    if imported.names and max(imported.names) > 255:
        raise MedtlError(f"{path}: holds label values up to {max(imported.names)}; a project's labels are 1-255")
    values = _project_values(project, imported.names)
    current = project.mask(series_uid, reader)
    merged = project.load_mask(current).array if current is not None else np.zeros(volume.shape, np.uint8)
    merged[np.isin(merged, list(values.values()))] = 0
    for value, target in values.items():
        merged[imported.array == value] = target
    version = project.save_mask(
        series_uid, merged, volume, tool=IMPORT, reader=reader, annotated=Annotated.everything(),
        value=list(values.values()), detail=f"from {path.name}",
    )  # fmt: skip
    return Imported(version, values)


def _project_values(project: Project, names: dict[int, str]) -> dict[int, int]:
    """The project label each imported value goes to, defining the new ones."""
    by_name = {label.name.lower(): label.value for label in project.labels()}
    defined = set(by_name.values())
    values = {}
    for value, name in sorted(names.items()):
        if name == f"label {value}" and value in defined:
            values[value] = value
        elif name.lower() in by_name:
            values[value] = by_name[name.lower()]
        else:
            label = project.define_label(name, value=None if value in defined else value)
            by_name[label.name.lower()] = label.value
            defined.add(label.value)
            values[value] = label.value
    return values


def export_labels(project: Project, fmt: str, out: Path | str, *, deidentify: bool = False, reader: str | None = None) -> Exported:
    """Write every series' newest mask (``reader`` 's, or whoever saved last) as ``fmt`` (one of :data:`FORMATS`) into the
    new or empty folder ``out``; see the module. ``seg``: ``case_0001/seg.dcm`` per series (de-identified: with
    de-identified copies of its images in ``case_0001/images/``, which the SEG references); ``nifti``:
    ``case_0001.nii.gz`` and its label sidecar per series; ``msd``: a dataset in which a partly annotated mask marks
    unannotated voxels ``ignore``."""
    from medtl.export.deidentify import Deidentifier, write_deidentified
    from medtl.export.label_export import LabelInfo, MsdCase, export_msd, export_nifti, export_seg

    if fmt not in FORMATS:
        raise MedtlError(f"the export format is one of {', '.join(FORMATS)}, not {fmt!r}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MedtlError(f"{out}: already exists and is not an empty folder; choose a new folder for the export")
    masks = project.latest_masks(reader)
    if not masks:
        raise MedtlError(f"{project.folder}: no saved masks{f' by {reader}' if reader else ''} to export")
    labels = [LabelInfo(label.value, label.name, label.colour) for label in project.labels()]
    values = [label.value for label in labels]
    deidentifier = Deidentifier() if deidentify else None
    notes: list[str] = []
    partial = [uid for uid, version in masks.items() if not version.annotated.complete]
    if fmt == "msd" and partial and max(values, default=0) >= 255:
        raise MedtlError(f"{project.folder}: the labels use value 255, so none is left to mark the voxels nobody annotated ({IGNORE_NAME})")
    cases: list[MsdCase] = []
    written: list[Path] = []
    for number, (uid, version) in enumerate(masks.items(), start=1):
        case_id, record = f"case_{number:04d}", project.series_record(uid)
        mask = defined_voxels(project.load_mask(version).array, values)
        if fmt == "seg":
            if not record.files:
                notes.append(f"{case_id}: its image did not come from DICOM files, so it has no SEG (export it as nifti or msd)")
                continue
            written.append(export_seg(mask, labels, record.files, out / case_id / "seg.dcm", deidentifier=deidentifier))
            if deidentifier is not None:  # the originals cannot be shared: de-identified copies, the SEG references them
                written.extend(write_deidentified(record.files, out / case_id / "images", deidentifier))
            continue
        volume = project.load_volume(uid)
        if fmt == "nifti":
            written.append(export_nifti(mask, volume, labels, out / f"{case_id}.nii.gz", deidentify=deidentify))
        else:
            if partial:
                mask = with_ignore(mask, version.annotated, max(values, default=0) + 1)
            cases.append(MsdCase(case_id, volume, mask, record.files))
    if fmt == "msd":
        if partial:
            labels = [*labels, LabelInfo(max(values, default=0) + 1, IGNORE_NAME, _IGNORE_COLOUR)]
        modalities = sorted({project.series_record(uid).modality for uid in masks} - {""})
        if len(modalities) > 1:
            raise MedtlError(f"{project.folder}: the labelled series are of several modalities ({', '.join(modalities)}); an MSD dataset has one")
        written.append(export_msd(cases, labels, out, name=project.name, modality=modalities[0] if modalities else "OT", deidentifier=deidentifier))
    elif partial:
        notes.append(f"{len(partial)} series {'is' if len(partial) == 1 else 'are'} only partly annotated; their unannotated slices are written as background")
    return Exported(tuple(written), tuple(notes))

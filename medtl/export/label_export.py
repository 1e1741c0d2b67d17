"""Drawn labels leave medtl in standard forms: DICOM SEG, NIfTI with a label sidecar, and a Medical Segmentation Decathlon dataset.

- :func:`export_seg`: one DICOM Segmentation (highdicom, BINARY, algorithm type MANUAL) per series,
  one segment per label value present in the mask, with the label's name and display colour
  (CIELab, converted from its RGB), referencing the instances of the series it was drawn on.
- :func:`export_nifti`: the mask on its series' grid (``.nii``/``.nii.gz``, RAS affine) and a
  sidecar ``<name>.json`` with the labels' names and colours (and the series' UIDs, unless
  de-identified). :func:`medtl.labels.mask_import.read_mask` reads the names back from it.
- :func:`export_msd`: the layout of the Medical Segmentation Decathlon, which MONAI
  (``load_decathlon_datalist``, ``DecathlonDataset``) reads as it is and nnU-Net v2 converts
  (``nnUNetv2_convert_MSD_dataset``)::

      <out_dir>/dataset.json               name, modality {"0": "CT"}, labels {"0": "background", ...},
                                           numTraining, training [{"image": "./imagesTr/<case>.nii.gz", "label": ...}]
      <out_dir>/imagesTr/<case>.nii.gz     the image in modality units (HU for CT)
      <out_dir>/labelsTr/<case>.nii.gz     its labels 1..N (the label values in order), on the same grid
      <out_dir>/imagesTs/                  empty (no test cases)

  The dataset appears whole or not at all: it is written into a hidden folder beside ``out_dir``
  that is renamed into place at the end.

De-identification: a SEG is given a :class:`~medtl.export.deidentify.Deidentifier` (one per
export, so that every object of the export uses the same pseudonyms); NIfTI and MSD files carry
no DICOM header, and their de-identified form has no UIDs in the sidecar and pseudonymous case
ids, and is refused for images with burned-in annotation. No file name is made from a patient's
name, ID or birth date: case ids come from the caller (pseudonyms when de-identified).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medtl.atomic import write_text_atomic
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError

if TYPE_CHECKING:  # pragma: no cover
    from medtl.export.deidentify import Deidentifier

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".json"
MANUAL_DESCRIPTION = "medtl labels drawn by a person"
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_LABEL = 65535


@dataclass(frozen=True)
class LabelInfo:
    """A label as a user defined it: the mask value it paints, its name and its display colour (RGB, 0-255)."""

    value: int
    name: str
    colour: tuple[int, int, int]

    def __post_init__(self) -> None:
        if not 0 <= self.value <= _MAX_LABEL:
            raise MedtlError(f"label {self.name!r}: its value {self.value} is outside 0..{_MAX_LABEL}")
        if not self.name.strip():
            raise MedtlError(f"label {self.value}: it has no name")
        if len(self.colour) != 3 or not all(0 <= int(c) <= 255 for c in self.colour):
            raise MedtlError(f"label {self.name!r}: its colour {self.colour} is not three values 0..255 (red, green, blue)")


@dataclass(frozen=True)
class MsdCase:
    """One training case of an MSD export: an id (no PHI), the image, its mask ``[z, y, x]`` on the image's grid, and the
    DICOM files of the series (checked for burned-in annotation when de-identified; empty for an image not from DICOM)."""

    case_id: str
    volume: Volume
    mask: np.ndarray
    series_files: Sequence[Path]


def export_seg(mask: np.ndarray, labels: Sequence[LabelInfo], series_files: Sequence[Path], out: Path | str, *, deidentifier: Deidentifier | None = None) -> Path:
    """Write ``mask`` (``[z, y, x]`` label values on the grid of the series made of ``series_files``) as a DICOM SEG file
    ``out`` that references those instances; one MANUAL segment per label value present. ``deidentifier`` (one per export)
    applies the PS3.15 basic profile, with the pseudonymous UIDs the export's images get. Returns ``out``."""
    from medtl.dicom.series import load_series
    from medtl.export.dicom_seg import Segment, write_segments

    out = Path(out)
    by_value = _by_value(labels)
    source = load_series(series_files)
    _check_shape(mask, source, out)
    present = sorted(int(v) for v in np.unique(mask) if v != 0)
    unnamed = [value for value in present if value not in by_value]
    if unnamed:
        raise MedtlError(f"{out}: the mask holds values {unnamed} that no label names")
    if not present:
        raise MedtlError(f"{out}: the mask is empty (no labelled voxel); there is nothing to write as DICOM SEG")
    segments = [Segment(value, by_value[value].name, by_value[value].colour) for value in present]
    grid = Volume(_label_array(mask), source.spacing, source.origin, source.direction)
    for warning in write_segments(grid, segments, source, out, algorithm=None, description=MANUAL_DESCRIPTION, deidentify=deidentifier):
        log.warning("DICOM SEG: %s", warning)
    return out


def export_nifti(mask: np.ndarray, volume: Volume, labels: Sequence[LabelInfo], out: Path | str, *, deidentify: bool = False) -> Path:
    """Write ``mask`` (``[z, y, x]`` on ``volume``'s grid) as the NIfTI file ``out`` (``.nii`` or ``.nii.gz``) and the sidecar
    ``<name>.json`` beside it (labels' names and colours; the series' UIDs unless ``deidentify``). Returns ``out``."""
    from medtl.export.nifti import write_nifti

    out = Path(out)
    by_value = _by_value(labels)
    _check_shape(mask, volume, out)
    unnamed = sorted(int(v) for v in np.unique(mask) if v != 0 and int(v) not in by_value)
    if unnamed:
        raise MedtlError(f"{out}: the mask holds values {unnamed} that no label names")
    write_nifti(Volume(_label_array(mask), volume.spacing, volume.origin, volume.direction), out)
    document: dict[str, object] = {"labels": _label_list(by_value)}
    if not deidentify:
        document.update({key: str(volume.metadata[key]) for key in ("series_uid", "study_uid", "frame_of_reference_uid") if volume.metadata.get(key)})
    write_text_atomic(sidecar_path(out), json.dumps(document, indent=2))
    return out


def sidecar_path(nifti: Path) -> Path:
    """The label sidecar of a NIfTI file: ``mask.nii.gz`` -> ``mask.json``."""
    name = nifti.name
    stem = name[: -len(".nii.gz")] if name.endswith(".nii.gz") else name[: -len(".nii")] if name.endswith(".nii") else nifti.stem
    return nifti.with_name(stem + SIDECAR_SUFFIX)


def export_msd(
    cases: Sequence[MsdCase], labels: Sequence[LabelInfo], out_dir: Path | str, *, name: str, modality: str, deidentifier: Deidentifier | None = None
) -> Path:
    """Write ``cases`` as a Medical Segmentation Decathlon dataset in ``out_dir`` (new, or empty), named ``name``, of one
    ``modality`` channel ("CT", "MR", ...); see the module's description. The labels are numbered 1..N in the order of
    their values (nnU-Net wants consecutive labels), as ``dataset.json`` says. With ``deidentifier`` the case ids become
    its pseudonyms and images with burned-in annotation are refused. Returns the path of ``dataset.json``.

    nnU-Net v2's ``nnUNetv2_convert_MSD_dataset`` takes the task from the folder's name: call it ``TaskNN_Name`` (one
    underscore) for that converter."""
    from medtl.export.deidentify import refuse_burned_in
    from medtl.export.nifti import write_nifti

    out_dir = Path(out_dir)
    if not cases:
        raise MedtlError(f"{out_dir}: no case to export (no series has a label)")
    if not name.strip() or not modality.strip():
        raise MedtlError(f"{out_dir}: an MSD dataset needs a name and a modality")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise MedtlError(f"{out_dir}: already exists and is not an empty folder; choose a new folder for the dataset")
    by_value = _by_value(labels)
    named = [label.name for label in by_value.values()]
    if "background" in named or len(set(named)) < len(named):
        raise MedtlError(f"{out_dir}: the label names must differ from each other and from 'background' (nnU-Net tells labels by name)")
    consecutive = np.zeros(max(by_value, default=0) + 1, dtype=np.uint16 if len(by_value) > 255 else np.uint8)
    for number, value in enumerate(sorted(by_value), 1):
        consecutive[value] = number
    ids = _case_ids(cases, deidentifier, out_dir)
    for case, case_id in zip(cases, ids):
        _check_shape(case.mask, case.volume, Path(f"case {case_id}"))
        unnamed = sorted(int(v) for v in np.unique(case.mask) if v != 0 and int(v) not in by_value)
        if unnamed:
            raise MedtlError(f"{out_dir}: case {case_id}'s mask holds values {unnamed} that no label names")
        if deidentifier is not None:
            refuse_burned_in(case.series_files)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        training = []
        (building / "imagesTs").mkdir()  # no test cases, but nnU-Net's converter wants the folder
        for case, case_id in zip(cases, ids):
            image, label = f"imagesTr/{case_id}.nii.gz", f"labelsTr/{case_id}.nii.gz"
            write_nifti(Volume(case.volume.array, case.volume.spacing, case.volume.origin, case.volume.direction), building / image)
            write_nifti(Volume(consecutive[_label_array(case.mask)], case.volume.spacing, case.volume.origin, case.volume.direction), building / label)
            training.append({"image": f"./{image}", "label": f"./{label}"})
        names = {0: "background", **{int(consecutive[value]): label.name for value, label in by_value.items()}}
        document = {
            "name": name, "description": f"{name}, exported by medtl", "reference": "", "licence": "", "release": "",
            "tensorImageSize": "3D", "modality": {"0": modality}, "labels": {str(value): names[value] for value in sorted(names)},
            "numTraining": len(training), "numTest": 0, "training": training, "test": [],
        }  # fmt: skip
        write_text_atomic(building / "dataset.json", json.dumps(document, indent=2))
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        os.replace(building, out_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return out_dir / "dataset.json"


def _by_value(labels: Sequence[LabelInfo]) -> dict[int, LabelInfo]:
    """The labels other than the background by value; MedtlError when two share a value."""
    by_value: dict[int, LabelInfo] = {}
    for label in labels:
        if label.value in by_value:
            raise MedtlError(f"labels {by_value[label.value].name!r} and {label.name!r} share the value {label.value}")
        if label.value != 0:
            by_value[label.value] = label
    return by_value


def _label_list(by_value: dict[int, LabelInfo]) -> list[dict[str, object]]:
    return [{"value": value, "name": label.name, "colour": [int(c) for c in label.colour]} for value, label in sorted(by_value.items())]


def _check_shape(mask: np.ndarray, volume: Volume, where: Path) -> None:
    if mask.shape != volume.shape:
        raise MedtlError(f"{where}: the mask's {'×'.join(map(str, mask.shape))} voxels (z×y×x) are not its image's {'×'.join(map(str, volume.shape))}")
    if not np.issubdtype(mask.dtype, np.integer) and mask.dtype != np.bool_:
        raise MedtlError(f"{where}: the mask holds {mask.dtype} values, not integer labels")


def _label_array(mask: np.ndarray) -> np.ndarray:
    """``mask`` as uint8 when its values fit, else uint16 (NIfTI and SEG both take them)."""
    top = int(mask.max(initial=0))
    if int(mask.min(initial=0)) < 0 or top > _MAX_LABEL:
        raise MedtlError(f"mask values must lie in 0..{_MAX_LABEL}, not {int(mask.min(initial=0))}..{top}")
    return np.ascontiguousarray(mask, dtype=np.uint8 if top <= 255 else np.uint16)


def _case_ids(cases: Sequence[MsdCase], deidentifier: Deidentifier | None, out_dir: Path) -> list[str]:
    """The file-name ids of ``cases``: their own (checked), or pseudonyms of them when de-identified."""
    ids = []
    for case in cases:
        if deidentifier is not None:
            ids.append(f"case_{deidentifier.identifier(case.case_id).lower()}")
        elif _CASE_ID.match(case.case_id):
            ids.append(case.case_id)
        else:
            raise MedtlError(f"{out_dir}: the case id {case.case_id!r} is not a file name (letters, digits, '.', '_', '-'; at most 64)")
    repeated = sorted({case_id for case_id in ids if ids.count(case_id) > 1})
    if repeated:
        raise MedtlError(f"{out_dir}: two cases share the id {repeated[0]}")
    return ids

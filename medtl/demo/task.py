"""The demo's labelled task: a few axial slices of the sample study with their brain-mask labels.

The point of the demo is *few labels*: :data:`TRAINING_SLICES` labelled slices to train on, spread
over the brain, one per 10 mm slab, and a fixed validation set of :data:`VALIDATION_SLICES` slices
from the *other* slabs. ``patient_id`` is the slab, so no slab gives slices to both sides. All
slices still come from one (averaged) head, the MNI152 template, so the figures say how well a
network learns this anatomy from a handful of labelled slices, not how it generalises to new
subjects.

Written into ``out_dir``::

    images/z074.nii.gz   one axial slice of the DICOM series (MR, int16) on its own grid
    labels/z074.nii.gz   the brain mask on the same grid (uint8 0/1)
    datalist.json        "training" and "validation" lists (so the split is the one written here)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medtl.atomic import atomic_path, write_text_atomic
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.progress import CancelToken

TRAINING_SLICES = 8
VALIDATION_SLICES = 12
SLAB_SLICES = 10
"""Slices per slab (10 mm at the sample's 1 mm): the split unit, so neighbouring slices stay on one side."""
MIN_BRAIN_FRACTION = 0.05
"""A slab is used when its middle slice is at least this much brain (leaves out the skull vertex and the neck)."""
LABELS = {"0": "background", "1": "brain"}
GRID = 3
"""The demo predicts every third slice of the series (a 3 mm grid: a third of the time of all 189); the
validation slices lie on it, so their predictions come with it."""


@dataclass(frozen=True)
class DemoTask:
    """The written task: its datalist and which series slices (array ``z``) went where."""

    datalist: Path
    training_z: tuple[int, ...]
    validation_z: tuple[int, ...]
    slab_slices: int = SLAB_SLICES

    def to_dict(self) -> dict[str, Any]:
        return {
            "datalist": str(self.datalist),
            "labelled_training_slices": len(self.training_z),
            "validation_slices": len(self.validation_z),
            "training_z": list(self.training_z),
            "validation_z": list(self.validation_z),
            "slab_mm_slices": self.slab_slices,
        }


def choose_slices(brain_fraction: np.ndarray, training: int = TRAINING_SLICES, validation: int = VALIDATION_SLICES, grid: int = GRID) -> tuple[list[int], list[int]]:
    """``(training_z, validation_z)`` from the per-slice brain fraction of an axial series.

    Slabs of :data:`SLAB_SLICES` whose middle slice holds enough brain are the candidates;
    ``training`` of them, spread evenly from bottom to top, give their middle slice each. The
    validation slices come from the remaining slabs: slices on the prediction ``grid`` (every
    ``grid``-th slice, which the demo predicts) with enough brain, spread evenly.
    """
    def middle(slab: int) -> int:
        return slab * SLAB_SLICES + SLAB_SLICES // 2

    slabs = [s for s in range(len(brain_fraction) // SLAB_SLICES) if brain_fraction[middle(s)] >= MIN_BRAIN_FRACTION]
    if len(slabs) < training + 1:
        raise MedtlError(f"the sample study has only {len(slabs)} slabs with brain; the demo needs {training + 1}")
    picks = sorted({round(float(i)) for i in np.linspace(0, len(slabs) - 1, training)})
    training_slabs = [slabs[i] for i in picks]
    candidates = [
        z
        for s in slabs
        if s not in training_slabs
        for z in range(s * SLAB_SLICES, (s + 1) * SLAB_SLICES)
        if z % grid == 0 and brain_fraction[z] >= MIN_BRAIN_FRACTION
    ]
    keep = np.linspace(0, len(candidates) - 1, min(validation, len(candidates))).round().astype(int)
    return [middle(s) for s in training_slabs], sorted({candidates[i] for i in keep})


def build_demo_task(study_dir: Path, out_dir: Path, cancel: CancelToken | None = None, grid: int = GRID) -> DemoTask:
    """Write the task from the built sample study in ``study_dir`` (see :mod:`medtl.sample_study`) into ``out_dir``
    (validation slices on every ``grid``-th slice, see :func:`choose_slices`)."""
    from medtl.data.images import read_image
    from medtl.sample_study import DICOM_FOLDER, LABEL_FILE

    series = read_image(study_dir / DICOM_FOLDER)
    mask = read_image(study_dir / LABEL_FILE)
    if mask.shape != series.shape or not np.allclose(mask.affine_lps(), series.affine_lps(), atol=1e-3):
        raise MedtlError(f"{study_dir}: the brain mask is not on the series' grid; remove the folder so that it is built again")
    if int(np.argmax(np.abs(series.direction[:, 2]))) != 2:
        raise MedtlError(f"{study_dir}: the demo expects an axial series")
    brain = mask.array > 0
    training_z, validation_z = choose_slices(brain.reshape(brain.shape[0], -1).mean(axis=1), grid=grid)
    entries: dict[str, list[dict[str, str]]] = {"training": [], "validation": []}
    for section, zs in (("training", training_z), ("validation", validation_z)):
        for z in zs:
            if cancel is not None:
                cancel.raise_if_cancelled()
            entries[section].append(_write_pair(out_dir, z, series, brain))
    document = {
        "name": "medtl demo: brain in the MNI152 sample study",
        "modality": "MR",
        "labels": LABELS,
        **entries,
    }
    datalist = out_dir / "datalist.json"
    write_text_atomic(datalist, json.dumps(document, indent=1))
    return DemoTask(datalist, tuple(training_z), tuple(validation_z))


def series_slice(volume: Volume, z: int, array: np.ndarray | None = None) -> Volume:
    """Slice ``z`` of ``volume`` as a one-slice Volume on its own place in the world (``array``: other values on the grid)."""
    origin = volume.index_to_lps(np.array([[0.0, 0.0, float(z)]]))[0]
    values = (volume.array if array is None else array)[z : z + 1].copy()
    return Volume(values, volume.spacing, tuple(float(v) for v in origin), volume.direction.copy(), dict(volume.metadata) if array is None else {})


def _write_pair(out_dir: Path, z: int, series: Volume, brain: np.ndarray) -> dict[str, str]:
    import nibabel

    name = f"z{z:03d}"
    entry = {"image": f"images/{name}.nii.gz", "label": f"labels/{name}.nii.gz", "patient_id": f"slab{z // SLAB_SLICES:02d}"}
    for key, volume in (("image", series_slice(series, z)), ("label", series_slice(series, z, brain.astype(np.uint8)))):
        with atomic_path(out_dir / entry[key]) as tmp:
            nibabel.save(volume.to_nifti(), str(tmp))
    return entry

"""The demo's task: grey and white matter on one series of the sample study, with only a few axial slices annotated.

The series is the bundled sample study (the MNI152 template as a DICOM MR series, 1 mm). nilearn's grey-
and white-matter probability maps lie on the template's grid, so they are read onto the series' grid voxel
for voxel (:func:`on_series_grid`; the study's brain mask, written by :mod:`medtl.sample_study`, checks the
mapping) and turn into a tissue mask by the rule of the ``mni_tissue`` task (:func:`medtl.data.tasks.tissue_mask`).
For CPU time the volume is cropped to the brain (plus :data:`MARGIN_MM`) and, by default, every second voxel
in-plane is kept (1 mm slices of 2 x 2 mm pixels: :data:`DEFAULT_STRIDE`).

A *sparse task* is what a user who paints ``count`` axial slices in the app saves: one volume, those slices
labelled, every other voxel ``ignore`` (nnU-Net's convention, :mod:`medtl.data.sparse`), and a datalist with
one training item and no validation list (training holds out a slab of the annotated slices). ``seed`` moves
the slices. Written into ``out_dir``::

    images/series.nii.gz              the (cropped, strided) series, float32
    labels/reference.nii.gz           the whole tissue mask, 0 background, 1 grey matter, 2 white matter
    labels/k03-seed0.nii.gz           the sparse mask of 3 annotated slices, seed 0 (3 elsewhere: ignore)
    k03-seed0.json                    its datalist (its "annotated_axial_slices" name the slices)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtl.atomic import atomic_path, write_text_atomic
from medtl.data.tasks import MNI_TISSUE_LABELS
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.progress import CancelToken

DEFAULT_STRIDE = (2, 2)
"""Every how many voxels are kept (slices, in-plane): every second slice, row and column (2 mm voxels, as the ``mni_tissue`` task)."""
MARGIN_MM = 4.0
"""Kept around the brain when the series is cropped."""
MIN_TISSUE_FRACTION = 0.05
"""A slice can be annotated when at least this fraction of it is grey or white matter (not the vertex's last specks)."""
GRID_TOLERANCE = 1e-3
IMAGE_FILE = "images/series.nii.gz"
REFERENCE_FILE = "labels/reference.nii.gz"
IGNORE = max(map(int, MNI_TISSUE_LABELS))
TISSUES = {int(value): name for value, name in MNI_TISSUE_LABELS.items() if int(value) not in (0, IGNORE)}
"""The labels scored: grey and white matter."""


@dataclass(frozen=True)
class TissueVolume:
    """The series (float32) and its whole tissue mask (uint8: 0, 1 grey, 2 white) on one grid."""

    image: Volume
    reference: Volume
    stride: tuple[int, int]


@dataclass(frozen=True)
class SparseTask:
    """One sparse task written by :func:`write_sparse_task`."""

    count: int
    seed: int
    datalist: Path
    annotated: tuple[int, ...]

    @property
    def name(self) -> str:
        return task_name(self.count, self.seed)


def task_name(count: int, seed: int) -> str:
    return f"k{count:02d}-seed{seed}"


def on_series_grid(image: object, series: Volume) -> np.ndarray:
    """The values of a nibabel ``image`` at the voxels of ``series`` (``[z, y, x]``), whose grid must coincide with the
    image's (each series voxel centre is a voxel centre of the image: the same voxel size, axes flipped or swapped
    at most); nearest-neighbour resampling is then an exact copy."""
    import nibabel.processing

    to_image = np.linalg.inv(image.affine) @ series.affine_ras()  # type: ignore[attr-defined]
    rotation = np.abs(to_image[:3, :3])
    if not (np.allclose(to_image, np.rint(to_image), atol=GRID_TOLERANCE) and np.allclose(rotation.sum(axis=0), 1) and np.allclose(rotation.sum(axis=1), 1)):
        raise MedtlError("nilearn's MNI152 maps are not on the sample study's grid; remove the sample study folder so that it is built again")
    shape_xyz = tuple(reversed(series.shape))
    resampled = nibabel.processing.resample_from_to(image, (shape_xyz, series.affine_ras()), order=0)
    return np.ascontiguousarray(np.transpose(np.asanyarray(resampled.dataobj), (2, 1, 0)))


def tissue_volume(study_dir: Path, stride: tuple[int, int] = DEFAULT_STRIDE, cancel: CancelToken | None = None) -> TissueVolume:
    """The sample study's series with its tissue mask (see the module docstring), cropped and strided."""
    from medtl.data.images import read_image
    from medtl.data.tasks import cropped, tissue_mask
    from medtl.mni152 import load_brain_mask, load_map
    from medtl.sample_study import DICOM_FOLDER, LABEL_FILE

    series = read_image(study_dir / DICOM_FOLDER)
    brain = read_image(study_dir / LABEL_FILE)
    if brain.shape != series.shape or not np.allclose(brain.affine_lps(), series.affine_lps(), atol=GRID_TOLERANCE):
        raise MedtlError(f"{study_dir}: the brain mask is not on the series' grid; remove the folder so that it is built again")
    if int(np.argmax(np.abs(series.direction[:, 2]))) != 2:
        raise MedtlError(f"{study_dir}: the demo expects an axial series")
    if cancel is not None:
        cancel.raise_if_cancelled()
    mapped = {name: on_series_grid(image, series) for name, image in (
        ("brain", load_brain_mask()), ("grey", load_map("grey_matter")), ("white", load_map("white_matter")),
    )}  # fmt: skip
    if not np.array_equal(mapped["brain"] > 0, brain.array > 0):
        raise MedtlError(f"{study_dir}: nilearn's brain mask read onto the series differs from the study's; remove the folder so that it is built again")
    tissue = tissue_mask(mapped["grey"], mapped["white"])
    box = _crop_box(tissue > 0, series.spacing, stride)
    image, reference = (cropped(Volume(array, series.spacing, series.origin, series.direction), box) for array in (series.array.astype(np.float32), tissue))
    return TissueVolume(image, reference, stride)


def _crop_box(inside: np.ndarray, spacing: tuple[float, float, float], stride: tuple[int, int]) -> tuple[slice, slice, slice]:
    """``[z, y, x]`` slices (with steps) around ``inside`` plus :data:`MARGIN_MM`."""
    steps = (stride[0], stride[1], stride[1])
    margins = [int(np.ceil(MARGIN_MM / s)) for s in (spacing[2], spacing[1], spacing[0])]
    where = np.nonzero(inside)
    return tuple(  # type: ignore[return-value]
        slice(max(0, int(w.min()) - m), min(n, int(w.max()) + 1 + m), step) for w, m, n, step in zip(where, margins, inside.shape, steps)
    )


def choose_annotated(tissue_fraction: np.ndarray, count: int, seed: int) -> list[int]:
    """``count`` axial slices (indices) spread evenly over the slices holding tissue, each moved by up to a quarter of
    the spacing between them at random (``seed``): where a user would paint a few slices through the brain."""
    holding = np.flatnonzero(tissue_fraction >= MIN_TISSUE_FRACTION)
    if count < 1 or len(holding) < count:
        raise MedtlError(f"cannot annotate {count} slices: the volume has {len(holding)} slices with tissue")
    low, high = int(holding[0]), int(holding[-1])
    gap = (high - low) / count
    jitter = np.random.default_rng(seed).uniform(-0.25, 0.25, count) * gap
    chosen = [int(np.clip(round(low + (k + 0.5) * gap + shift), low, high)) for k, shift in enumerate(jitter)]
    if len(set(chosen)) < count:
        raise MedtlError(f"cannot annotate {count} distinct slices among the {high - low + 1} with tissue")
    return sorted(chosen)


def write_volume(volume: TissueVolume, out_dir: Path) -> None:
    """The series and its whole tissue mask, which every sparse task of ``out_dir`` points at."""
    _write_nifti(out_dir / IMAGE_FILE, volume.image)
    _write_nifti(out_dir / REFERENCE_FILE, volume.reference)


def write_sparse_task(volume: TissueVolume, out_dir: Path, count: int, seed: int) -> SparseTask:
    """The sparse task of ``count`` annotated axial slices (``seed`` moves them) in ``out_dir``, beside :func:`write_volume`'s files."""
    from medtl.data.sparse import Annotated, with_ignore

    reference = volume.reference.array
    fraction = (reference > 0).reshape(reference.shape[0], -1).mean(axis=1)
    annotated = choose_annotated(fraction, count, seed)
    name = task_name(count, seed)
    mask = with_ignore(reference, Annotated().add(0, annotated), IGNORE)
    label = f"labels/{name}.nii.gz"
    _write_nifti(out_dir / label, Volume(mask, volume.reference.spacing, volume.reference.origin, volume.reference.direction))
    document = {
        "name": f"medtl demo: grey and white matter, {count} annotated axial slices (seed {seed})",
        "modality": "MR",
        "labels": MNI_TISSUE_LABELS,
        "training": [{"image": IMAGE_FILE, "label": label, "patient_id": "mni152", "reference": REFERENCE_FILE}],
        "annotated_axial_slices": annotated,
    }
    datalist = out_dir / f"{name}.json"
    write_text_atomic(datalist, json.dumps(document, indent=1))
    return SparseTask(count, seed, datalist, tuple(annotated))


def _write_nifti(path: Path, volume: Volume) -> None:
    import nibabel

    with atomic_path(path) as tmp:
        nibabel.save(volume.to_nifti(), str(tmp))

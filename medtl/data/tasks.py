"""Small real-data tasks, built offline, for the project's tests and benchmarks.

``build_task(name, out_dir)`` writes image (and mask) files plus ``datalist.json`` into
``out_dir`` and returns the datalist's path. ``patient_id`` is the source volume, so a
patient-level split never shares a source between training and validation.

Tasks
-----
``orientation`` (classification, PNG): is a 2D slice shown upright or rotated 180 degrees?
    Each source slice, turned to the radiological display convention from its geometry
    (axial: anterior up, patient's right on the left; coronal/sagittal: superior up), given square
    pixels as a viewer shows it, and scaled to 8 bits (CT: window [-450, 1050] HU; MR: 0.5-99.5
    percentiles), is written twice: ``upright`` and ``rotated``. Sources, one patient each: 6
    one-slice CTs (3 head, neck, spine, abdomen) and 2 one-slice MRs (shoulder, abdomen), each shown
    whole and as ``ORIENTATION_CROPS`` seeded crops (55-85 % of each side, as a user zooms in); and 5
    brain MR volumes (the MNI152 template, the Colin27 head, ITK's whole-head T1 example, nibabel's
    ``anatomical.nii`` T1 and the first volume of its ``example4d.nii.gz`` EPI),
    ``ORIENTATION_SLICES_PER_PLANE`` slices of each plane from the middle half, chosen by ``seed``
    (``ORIENTATION_VALIDATION_SLICES_PER_PLANE`` of the held-out one).
    The validation list is fixed (:data:`ORIENTATION_VALIDATION`): a head CT and the Colin27 head,
    two whole patients whose anatomy and modality training shows in other patients (two more head
    CTs; another whole-head T1, ITK's, and three brain MRs without scalp): 56 items; training: 424
    items of 11 patients. Held-out patients whose anatomy training never shows are not "which way is
    up" but guesswork: with the abdominal MR and a skull-base CT held out (an earlier list), every
    network scored 0.4-0.7, and without ITK's T1 (no whole-head T1 in training: the MNI152 template
    is skull-stripped) the default network scored 0.875-0.98 on Colin27 from seed to seed. (pydicom's
    ``MR_small`` and ``emri_small`` are left out: their small crops show no anatomy that makes
    "upright" checkable, and ``emri_small`` has no geometry.) Orientation-sensitive: train it without
    flips (``default_for(..., orientation_sensitive=True)``); pictures have identity geometry, so
    ``orientation="LPS"`` or ``None`` keeps them as written.
``ct_bone`` (segmentation, NIfTI, CT in HU, labels background/bone): bone in real CT slices,
    two head CTs (skull vertex; skull base) plus neck, spine and abdomen. The mask is
    ``HU > 300``, cleaned with scikit-image (components under 3 mm^2 removed, holes under
    10 mm^2 filled): a reproducible reference, not an expert contour (contrast-filled vessels
    above 300 HU would count as bone). Files keep the DICOM geometry (one-slice NIfTI).
``mni_brain`` (segmentation, NIfTI, MR, labels background/brain): axial slices of the MNI152
    T1 template (2 mm) with nilearn's MNI152 brain mask. One template only, so ``patient_id``
    is a 10-slice (20 mm) slab: a split keeps neighbouring slices together, but all slices come
    from one (averaged) head, so scores are optimistic for new subjects. ``seed`` picks which
    of every second slice is used.
``mni_tissue`` (segmentation, NIfTI, MR, labels background/grey matter/white matter/ignore): sparse labels on
    one volume, the situation of a user who annotated a few slices of one patient. The MNI152 T1
    template (2 mm), cropped to the brain, with a tissue mask from nilearn's grey- and white-matter
    probability maps (tissue where the two sum to over 0.5, the likelier of the two), annotated on
    ``MNI_TISSUE_ANNOTATED`` axial slices evenly spread over the brain (``seed`` shifts them by up to
    two slices) and ``ignore`` everywhere else. Each entry's ``"reference"`` is the whole tissue
    mask, to score a model on the slices nobody annotated. :func:`write_mni_tissue` writes smaller
    (strided) or differently annotated versions.

Sources and licences
--------------------
- pydicom test files (pydicom, MIT licence): ``CT_small.dcm`` and ``MR_small.dcm`` (NEMA WG04
  sample images, downsized), ``J2K_pixelrep_mismatch.dcm`` (head CT, anonymised, pydicom
  issue 1149), ``bad_sequence.dcm`` (neck CT, anonymised, issue 1067), ``explicit_VR-UN.dcm``
  (abdominal CT from The Cancer Imaging Archive, Pancreas-CT, CC BY 3.0),
  ``examples_overlay.dcm`` (Siemens abdominal MR sample).
- pydicom-data (MIT licence): ``eCT_Supplemental.dcm`` (enhanced CT of a head, 2 frames),
  ``693_UNCI.dcm`` (head CT from the CQ500 data set, qure.ai,
  **CC BY-NC-SA 4.0: non-commercial**), ``MR2_UNCI.dcm`` (shoulder MR, NEMA WG04).
- Debian's ``mricron-data`` package (BSD-3-Clause per its copyright file): ``ch2.nii.gz``, the
  Colin27 single-subject T1 head (Holmes et al. 1998, Montreal Neurological Institute), at
  ``/usr/share/mricron/templates`` (``$MEDTL_COLIN27`` names another copy). Test and benchmark use
  only; medtl does not ship it.
- Debian's ``insighttoolkit5-examples`` package (Apache-2.0): ``KmeansTest_T1UCharRaw.nii.gz``, a
  whole-head T1 (2 x 3 x 2 mm) of ITK's examples, at ``ITK_T1_FILE`` (``$MEDTL_ITK_T1`` names another
  copy). Test and benchmark use only. (ITK's BrainWeb slices are left out: BrainWeb is simulated
  from the Colin27 head, which the task holds out.)
- nibabel's test data (MIT licence): ``anatomical.nii`` (a 2 mm T1 head) and ``example4d.nii.gz``
  (an EPI series), in ``nibabel.testing.data_path``.
- nilearn (BSD-3) bundled ICBM 2009a nonlinear symmetric MNI152 template and masks,
  © 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological Institute,
  McGill University; use, copy and distribution permitted with the copyright notice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medtl.atomic import atomic_path, write_text_atomic
from medtl.data.sparse import Annotated, with_ignore
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError

ORIENTATION_CLASSES = ("upright", "rotated")
CT_DISPLAY_HU = (-450.0, 1050.0)
BONE_HU = 300.0
BONE_MIN_AREA_MM2 = 3.0
BONE_MAX_HOLE_MM2 = 10.0
MNI_SLAB_SLICES = 10
MNI_TISSUE_ANNOTATED = 4
MNI_TISSUE_LABELS = {"0": "background", "1": "grey matter", "2": "white matter", "3": "ignore"}
MNI_TISSUE_MARGIN = 2
"""Voxels kept around the brain when the tissue volume is cropped."""
MNI_MIN_BRAIN_FRACTION = 0.02
ORIENTATION_CROPS = 3
ORIENTATION_CROP_FRACTION = (0.55, 0.85)
ORIENTATION_SLICES_PER_PLANE = 16
"""Slices of each plane of a training brain volume; a held-out one gives ``ORIENTATION_VALIDATION_SLICES_PER_PLANE``."""
ORIENTATION_VALIDATION_SLICES_PER_PLANE = 8
ORIENTATION_VALIDATION = ("693_UNCI", "colin27")
"""Patients of the orientation task's fixed validation list (see the module docstring)."""
_PLANES = ("axial", "coronal", "sagittal")  # the fixed axis of a [S, P, L] array


@dataclass(frozen=True)
class Source:
    """A real one-slice DICOM file from pydicom or pydicom-data."""

    file: str
    anatomy: str

    @property
    def patient_id(self) -> str:
        return self.file.removesuffix(".dcm")


CT_SOURCES = (
    Source("693_UNCI.dcm", "head"),
    Source("J2K_pixelrep_mismatch.dcm", "head"),
    Source("bad_sequence.dcm", "neck"),
    Source("CT_small.dcm", "spine"),
    Source("explicit_VR-UN.dcm", "abdomen"),
)
ORIENTATION_CT_SOURCES = CT_SOURCES + (Source("eCT_Supplemental.dcm", "head"),)
MR_SOURCES = (
    Source("MR2_UNCI.dcm", "shoulder"),
    Source("examples_overlay.dcm", "abdomen"),
)
COLIN27_FILE = Path("/usr/share/mricron/templates/ch2.nii.gz")
"""Where Debian's ``mricron-data`` package puts the Colin27 head; ``$MEDTL_COLIN27`` overrides it."""
ITK_T1_FILE = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz")
"""Where Debian's ``insighttoolkit5-examples`` package puts ITK's whole-head T1 example; ``$MEDTL_ITK_T1`` overrides it."""


def task_names() -> tuple[str, ...]:
    return tuple(_BUILDERS)


def build_task(name: str, out_dir: Path | str, seed: int = 0) -> Path:
    """Write task ``name`` (see the module docstring) into ``out_dir``; returns its ``datalist.json``."""
    if name not in _BUILDERS:
        raise MedtlError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")
    out_dir = Path(out_dir)
    document = _BUILDERS[name](out_dir, seed)
    datalist = out_dir / "datalist.json"
    write_text_atomic(datalist, json.dumps(document, indent=1))
    return datalist


def _build_orientation(out_dir: Path, seed: int) -> dict[str, Any]:
    lists: dict[str, list[dict[str, str]]] = {"training": [], "validation": []}
    for patient, description, picture in _orientation_pictures(seed):
        for label, image in zip(ORIENTATION_CLASSES, (picture, np.rot90(picture, 2))):
            relative = f"images/{patient}_{description}_{label}.png"
            _write_png(out_dir / relative, image)
            part = "validation" if patient in ORIENTATION_VALIDATION else "training"
            lists[part].append({"image": relative, "label": label, "patient_id": patient})
    return {"name": "orientation", "modality": "OT", "classes": list(ORIENTATION_CLASSES), **lists}


def _orientation_pictures(seed: int) -> Iterator[tuple[str, str, np.ndarray]]:
    """``(patient_id, description, uint8 picture [rows, columns] upright)``."""
    rng = np.random.default_rng(seed)
    for source in ORIENTATION_CT_SOURCES + MR_SOURCES:
        volume = _read_source(source.file)
        canonical = canonical_lps(volume)
        axis = int(np.argmin(canonical.shape))  # the one-slice axis names the plane
        picture = _to_uint8(_plane(canonical, canonical_spacing(volume), axis, 0), CT_DISPLAY_HU if source in ORIENTATION_CT_SOURCES else None)
        yield source.patient_id, f"{source.anatomy}-{_PLANES[axis]}", picture
        for crop in range(ORIENTATION_CROPS):
            yield source.patient_id, f"{source.anatomy}-{_PLANES[axis]}-crop{crop}", _random_crop(picture, rng)
    for patient, volume in _brain_mr_volumes():
        canonical, spacing = canonical_lps(volume), canonical_spacing(volume)
        count = ORIENTATION_VALIDATION_SLICES_PER_PLANE if patient in ORIENTATION_VALIDATION else ORIENTATION_SLICES_PER_PLANE
        for axis, size in enumerate(canonical.shape):
            middle = np.arange(size // 4, 3 * size // 4)
            for index in sorted(rng.choice(middle, min(count, middle.size), replace=False)):
                yield patient, f"brain-{_PLANES[axis]}{index}", _to_uint8(_plane(canonical, spacing, axis, int(index)), None)


def _brain_mr_volumes() -> Iterator[tuple[str, Volume]]:
    """``(patient_id, volume)`` of the orientation task's brain MR volumes (see the module docstring)."""
    import nibabel
    from nibabel.testing import data_path

    from medtl.data.images import nifti_to_volume

    yield "mni152", _mni_volume("template")
    for patient, default, variable, package in (
        ("colin27", COLIN27_FILE, "MEDTL_COLIN27", "mricron-data"),
        ("itk-t1", ITK_T1_FILE, "MEDTL_ITK_T1", "insighttoolkit5-examples"),
    ):
        path = Path(os.environ.get(variable) or default)
        if not path.is_file():
            raise MedtlError(f"{path} is not there: it comes with Debian's {package} package (apt-get install {package}), or set {variable} to a copy of {default.name}")
        yield patient, nifti_to_volume(nibabel.load(path), path)
    anatomical, epi = Path(data_path) / "anatomical.nii", Path(data_path) / "example4d.nii.gz"
    yield "nibabel-anatomical", nifti_to_volume(nibabel.load(anatomical), anatomical)
    yield "nibabel-example4d", nifti_to_volume(nibabel.load(epi).slicer[..., 0], epi)


def _random_crop(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A crop of ``ORIENTATION_CROP_FRACTION`` of each side at a random place."""
    fraction = rng.uniform(*ORIENTATION_CROP_FRACTION)
    rows, columns = (max(1, int(round(side * fraction))) for side in picture.shape)
    top = int(rng.integers(0, picture.shape[0] - rows + 1))
    left = int(rng.integers(0, picture.shape[1] - columns + 1))
    return picture[top : top + rows, left : left + columns]


def _build_ct_bone(out_dir: Path, seed: int) -> dict[str, Any]:
    del seed  # every bone-bearing CT slice is used
    entries = []
    for source in CT_SOURCES:
        volume = _read_source(source.file)
        mask = bone_mask(volume.array[0].astype(np.float32), volume.spacing[:2])
        entries.append(_write_pair(out_dir, source.patient_id, volume, mask[None].astype(np.uint8)))
    return {"name": "ct_bone", "modality": "CT", "labels": {"0": "background", "1": "bone"}, "training": entries}


def _build_mni_brain(out_dir: Path, seed: int) -> dict[str, Any]:
    template, mask = _mni_volume("template"), _mni_volume("brain_mask")
    brain = mask.array > 0
    entries = []
    for z in range(seed % 2, template.shape[0], 2):
        if brain[z].mean() < MNI_MIN_BRAIN_FRACTION:
            continue
        name = f"mni152-z{z:03d}"
        image = _slice(template, z)
        image.array = image.array.astype(np.float32)
        label = (brain[z : z + 1]).astype(np.uint8)
        entry = _write_pair(out_dir, name, image, label)
        entry["patient_id"] = f"mni152-slab{z // MNI_SLAB_SLICES}"
        entries.append(entry)
    return {"name": "mni_brain", "modality": "MR", "labels": {"0": "background", "1": "brain"}, "training": entries}


def write_mni_tissue(out_dir: Path | str, annotated: int = MNI_TISSUE_ANNOTATED, stride: int = 1, seed: int = 0) -> Path:
    """The ``mni_tissue`` task (see the module docstring) with ``annotated`` axial slices, every ``stride``-th voxel
    along each axis (a smaller volume); returns its ``datalist.json``."""
    out_dir = Path(out_dir)
    template, grey, white = (_mni_volume(kind) for kind in ("template", "grey_matter", "white_matter"))
    full = tissue_mask(grey.array, white.array)
    box = tuple(slice(max(0, int(where.min()) - MNI_TISSUE_MARGIN), int(where.max()) + 1 + MNI_TISSUE_MARGIN, stride) for where in np.nonzero(full))
    image, reference = cropped(template, box), cropped(Volume(full, template.spacing, template.origin, template.direction), box)
    image.array = image.array.astype(np.float32)
    depth = image.shape[0]
    shift = int(np.random.default_rng(seed).integers(-2, 3)) if seed else 0
    slices = sorted({int(np.clip(round((k + 1) * depth / (annotated + 1)) + shift, 0, depth - 1)) for k in range(annotated)})
    label = with_ignore(reference.array, Annotated().add(0, slices), max(map(int, MNI_TISSUE_LABELS)))
    entry = _write_pair(out_dir, "mni152-tissue", image, label)
    entry.update(patient_id="mni152", reference="labels/mni152-tissue-reference.nii.gz")
    _write_nifti(out_dir / entry["reference"], reference)
    document = {"name": "mni_tissue", "modality": "MR", "labels": MNI_TISSUE_LABELS, "training": [entry], "annotated_axial_slices": slices}
    datalist = out_dir / "datalist.json"
    write_text_atomic(datalist, json.dumps(document, indent=1))
    return datalist


def tissue_mask(grey: np.ndarray, white: np.ndarray) -> np.ndarray:
    """0 background, 1 grey matter, 2 white matter (uint8) from grey- and white-matter probability maps on one grid:
    tissue where the two sum to over 0.5, the likelier of the two."""
    return np.where(grey + white > 0.5, np.where(white > grey, 2, 1), 0).astype(np.uint8)


def cropped(volume: Volume, box: tuple[slice, ...]) -> Volume:
    """``volume.array[box]`` (``[z, y, x]`` slices with steps) on its own grid."""
    start = np.array([[float(box[2].start), float(box[1].start), float(box[0].start)]])
    steps = np.array([box[2].step, box[1].step, box[0].step], dtype=float)
    spacing = tuple(float(s) for s in np.asarray(volume.spacing) * steps)
    return Volume(volume.array[box].copy(), spacing, tuple(volume.index_to_lps(start)[0]), volume.direction.copy(), dict(volume.metadata))  # type: ignore[arg-type]


def bone_mask(hu: np.ndarray, pixel_spacing: tuple[float, float]) -> np.ndarray:
    """Bone in a 2D HU slice: ``hu > 300``, small specks removed and small holes filled (sizes in mm^2)."""
    from skimage import morphology

    pixel_area = float(pixel_spacing[0] * pixel_spacing[1])
    mask = morphology.remove_small_objects(hu > BONE_HU, max_size=int(round(BONE_MIN_AREA_MM2 / pixel_area)))
    return morphology.remove_small_holes(mask, max_size=int(round(BONE_MAX_HOLE_MM2 / pixel_area)))


def canonical_lps(volume: Volume) -> np.ndarray:
    """The array re-ordered to ``[S, P, L]`` order (z to superior, y to posterior, x to patient left).

    Each index axis goes to the world axis it is closest to, so oblique (e.g. gantry-tilted)
    slices are treated as the nearest plane, without resampling.
    """
    index_axes = _index_axes_of_world(volume)
    array_axis_of_index = {0: 2, 1: 1, 2: 0}  # the Volume array is [z, y, x]
    array = np.transpose(volume.array, [array_axis_of_index[index_axes[w]] for w in (2, 1, 0)])
    for position, w in enumerate((2, 1, 0)):
        if volume.direction[w, index_axes[w]] < 0:
            array = np.flip(array, axis=position)
    return array


def canonical_spacing(volume: Volume) -> tuple[float, float, float]:
    """The voxel size in mm along the axes of :func:`canonical_lps`'s array (S, P, L)."""
    index_axes = _index_axes_of_world(volume)
    return tuple(float(volume.spacing[index_axes[w]]) for w in (2, 1, 0))  # type: ignore[return-value]


def _index_axes_of_world(volume: Volume) -> dict[int, int]:
    """World axis (0 L, 1 P, 2 S) → the index axis (0 x, 1 y, 2 z) closest to it."""
    world = np.argmax(np.abs(volume.direction), axis=0)  # the world axis of index axes x, y, z
    if sorted(world.tolist()) != [0, 1, 2]:
        raise MedtlError(f"cannot name the planes of a volume with direction {volume.direction.round(3).tolist()}")
    return {int(w): index for index, w in enumerate(world)}


def _plane(canonical: np.ndarray, spacing: tuple[float, float, float], axis: int, index: int) -> np.ndarray:
    """Radiological display of one plane of a ``[S, P, L]`` array (axial, or coronal/sagittal with superior
    up) with square pixels, as a viewer shows it: the finer of the two in-plane spacings, by linear interpolation."""
    from skimage.transform import resize

    picture = np.take(canonical, index, axis=axis).astype(np.float64)
    picture = picture if axis == 0 else picture[::-1]
    rows, columns = (spacing[a] for a in range(3) if a != axis)
    pixel = min(rows, columns)
    shape = (max(1, round(picture.shape[0] * rows / pixel)), max(1, round(picture.shape[1] * columns / pixel)))
    return picture if shape == picture.shape else resize(picture, shape, order=1, preserve_range=True, anti_aliasing=False)


def _to_uint8(picture: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    values = picture.astype(np.float64)
    low, high = window if window is not None else np.percentile(values, (0.5, 99.5))
    return np.round(np.clip((values - low) / max(high - low, 1e-6), 0, 1) * 255).astype(np.uint8)


def _slice(volume: Volume, z: int) -> Volume:
    origin = volume.index_to_lps(np.array([[0.0, 0.0, float(z)]]))[0]
    return Volume(volume.array[z : z + 1].copy(), volume.spacing, tuple(origin), volume.direction.copy(), dict(volume.metadata))


def _write_pair(out_dir: Path, name: str, image: Volume, mask: np.ndarray) -> dict[str, Any]:
    """Write ``image`` and its ``mask`` (same grid) as NIfTI; the datalist entry."""
    label = Volume(mask, image.spacing, image.origin, image.direction)
    entry = {"image": f"images/{name}.nii.gz", "label": f"labels/{name}.nii.gz", "patient_id": name}
    for key, volume in (("image", image), ("label", label)):
        _write_nifti(out_dir / entry[key], volume)
    return entry


def _write_nifti(path: Path, volume: Volume) -> None:
    import nibabel

    with atomic_path(path) as tmp:
        nibabel.save(volume.to_nifti(), str(tmp))


def _write_png(path: Path, picture: np.ndarray) -> None:
    import skimage.io

    with atomic_path(path) as tmp:
        skimage.io.imsave(str(tmp), np.ascontiguousarray(picture), check_contrast=False)


def _read_source(name: str) -> Volume:
    import pydicom.data

    from medtl.data.images import read_image

    path = pydicom.data.get_testdata_file(name, download=False)
    if path is None:
        raise MedtlError(f"{name} is not installed; it comes with pydicom or the pydicom-data package (pip install pydicom-data)")
    return read_image(path)


def _mni_volume(kind: str) -> Volume:
    """The nilearn-bundled MNI152 ``template`` (T1) or ``brain_mask`` at 2 mm as a Volume."""
    from nilearn import datasets

    from medtl.data.images import nifti_to_volume

    loaders: dict[str, Callable[..., Any]] = {
        "template": datasets.load_mni152_template, "brain_mask": datasets.load_mni152_brain_mask,
        "grey_matter": datasets.load_mni152_gm_template, "white_matter": datasets.load_mni152_wm_template,
    }  # fmt: skip
    return nifti_to_volume(loaders[kind](resolution=2), f"nilearn MNI152 {kind}")


_BUILDERS: dict[str, Callable[[Path, int], dict[str, Any]]] = {
    "orientation": _build_orientation,
    "ct_bone": _build_ct_bone,
    "mni_brain": _build_mni_brain,
    "mni_tissue": lambda out_dir, seed: json.loads(write_mni_tissue(out_dir, seed=seed).read_text(encoding="utf-8")),
}

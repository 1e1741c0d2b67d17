"""A Volume (mask, heatmap, uncertainty map) as a NIfTI file on its world grid, written atomically."""

from __future__ import annotations

from pathlib import Path

from medtl.atomic import atomic_path
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError


def write_nifti(volume: Volume, destination: Path | str) -> Path:
    """Write ``volume`` to ``destination`` (``.nii`` or ``.nii.gz``; RAS affine, values and dtype as they are)."""
    import nibabel

    destination = Path(destination)
    if not destination.name.endswith((".nii", ".nii.gz")):
        raise MedtlError(f"{destination}: a NIfTI file name must end in .nii or .nii.gz")
    with atomic_path(destination) as tmp:
        nibabel.save(volume.to_nifti(), tmp)
    return destination

"""`Volume`: an image array in modality units on an explicit LPS world grid.

Conventions (the same as ITK/SimpleITK, so the two can be compared directly):

- ``array`` is indexed ``[z, y, x]`` (slice, row, column); RGB images add a trailing channel
  axis ``[z, y, x, 3]``. Values are in modality units (HU for CT) after rescale.
- ``spacing`` is ``(x, y, z)`` in mm: column spacing, row spacing, slice spacing.
- ``origin`` is the LPS position in mm of the centre of voxel ``[0, 0, 0]``.
- ``direction`` is a 3x3 matrix whose *columns* are the LPS unit vectors of the x (column),
  y (row) and z (slice) index axes.

Conversion to RAS happens only at the NIfTI boundary (:meth:`Volume.affine_ras`).

A Volume assembled from DICOM records where each of its slices came from
(:attr:`Volume.slice_sources`, one :class:`SliceSource` per slice), so that exports referencing the
source images (DICOM SEG) need not search the files again. A Volume derived from another one (a
subset of slices, a mask on its grid) does not inherit the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import nibabel
    from monai.data import MetaTensor

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class SliceSource:
    """Where one slice of a DICOM volume came from: its file, SOP Instance UID and, in a multi-frame file, frame (1-based)."""

    path: Path
    sop_instance_uid: str
    frame: int | None = None


@dataclass
class Volume:
    """A 3D (or single-slice 2D) image with its geometry and key metadata."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    interpolated_slices: tuple[int, ...] = ()
    slice_sources: tuple[SliceSource | None, ...] = ()  # DICOM: per slice z (None: interpolated); empty otherwise

    def __post_init__(self) -> None:
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if self.array.ndim not in (3, 4):
            raise ValueError(f"Volume array must be [z, y, x] or [z, y, x, c], got shape {self.array.shape}")
        if not all(math.isfinite(s) and s > 0 for s in self.spacing) or not all(map(math.isfinite, self.origin)):
            raise ValueError(f"Volume spacing must be positive and finite and its origin finite, got {self.spacing} and {self.origin}")
        if self.slice_sources and len(self.slice_sources) != self.array.shape[0]:
            raise ValueError(f"Volume has {self.array.shape[0]} slices but {len(self.slice_sources)} slice sources")

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(z, y, x)`` size of the grid."""
        return tuple(int(n) for n in self.array.shape[:3])  # type: ignore[return-value]

    @property
    def is_rgb(self) -> bool:
        return self.array.ndim == 4

    def affine_lps(self) -> np.ndarray:
        """4x4 matrix mapping an index ``(x, y, z, 1)`` (column, row, slice) to LPS mm."""
        affine = np.eye(4)
        affine[:3, :3] = self.direction * np.asarray(self.spacing)[None, :]
        affine[:3, 3] = self.origin
        return affine

    def affine_ras(self) -> np.ndarray:
        """4x4 matrix mapping an index ``(x, y, z, 1)`` to RAS mm (the NIfTI convention)."""
        return LPS_TO_RAS @ self.affine_lps()

    def index_to_lps(self, index_xyz: np.ndarray) -> np.ndarray:
        """World LPS positions (N, 3) of continuous indices (N, 3) given as (x, y, z)."""
        index_xyz = np.atleast_2d(np.asarray(index_xyz, dtype=float))
        homogeneous = np.c_[index_xyz, np.ones(len(index_xyz))]
        return (homogeneous @ self.affine_lps().T)[:, :3]

    def to_nifti(self) -> "nibabel.Nifti1Image":
        """A NIfTI image on the same world grid (data stored ``[x, y, z]``, RAS affine)."""
        import nibabel

        data = np.transpose(self.array, (2, 1, 0, 3) if self.is_rgb else (2, 1, 0))
        if self.is_rgb:
            data = data[:, :, :, None, :]  # NIfTI puts vector components on the 5th axis
        image = nibabel.Nifti1Image(data, self.affine_ras())  # a view: [x, y, z] Fortran order is NIfTI's on-disk order
        image.header.set_xyzt_units("mm")
        if self.is_rgb:
            image.header.set_intent("vector")  # so readers (ITK, ...) see one 3-component pixel per voxel
        image.set_qform(self.affine_ras(), code=1)
        image.set_sform(self.affine_ras(), code=1)
        return image

    def to_metatensor(self) -> "MetaTensor":
        """A MONAI ``MetaTensor`` shaped ``[C, x, y, z]`` with the RAS affine, as MONAI's loaders give."""
        import torch
        from monai.data import MetaTensor

        data = np.transpose(self.array, (3, 2, 1, 0) if self.is_rgb else (2, 1, 0))
        if not self.is_rgb:
            data = data[None]
        meta = {k: v for k, v in self.metadata.items() if isinstance(v, (str, int, float))}
        meta["space"] = "RAS"
        return MetaTensor(torch.from_numpy(np.ascontiguousarray(data)), affine=torch.as_tensor(self.affine_ras()), meta=meta)

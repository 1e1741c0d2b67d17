"""Read any supported training image or mask file into a :class:`~medtl.dicom.volume.Volume`.

Formats, chosen by the path:

- a folder, ``.dcm``, or a file without a known image extension: DICOM, through
  :func:`medtl.dicom.series.load_path` (one series; values in modality units, LPS geometry);
- ``.nii`` / ``.nii.gz``: NIfTI (2D or 3D) through nibabel. The RAS affine is converted to the
  Volume's LPS geometry exactly (``Volume.affine_ras()`` gives back the file's affine); sheared
  affines are refused rather than approximated;
- ``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``: one 2D picture through scikit-image, as a
  one-slice Volume with spacing 1 mm, origin 0 and identity direction (no real geometry). RGB
  stays RGB (``array [1, y, x, 3]``); an alpha channel is dropped. Whether RGB is kept or made
  grey is the preprocessing's decision (:class:`medtl.data.preprocessing.Preprocessing.channels`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medtl.dicom.volume import LPS_TO_RAS, Volume
from medtl.errors import MedtlError

if TYPE_CHECKING:  # pragma: no cover
    import nibabel

NIFTI_SUFFIXES = (".nii", ".nii.gz")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_ORTHONORMAL_TOLERANCE = 1e-4


class ImageReadError(MedtlError):
    """An image or mask file that cannot be read as a Volume; names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def image_format(path: Path | str) -> str:
    """``"dicom"``, ``"nifti"`` or ``"picture"`` for ``path`` (by its name; folders are DICOM)."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(PICTURE_SUFFIXES):
        return "picture"
    return "dicom"


def read_image(path: Path | str, series_uid: str | None = None) -> Volume:
    """Read an image or mask (DICOM series folder or file, NIfTI, PNG/JPEG/TIFF) as a Volume; ``series_uid``
    chooses the series of a DICOM folder that holds several (and is refused for other formats)."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "file not found")
    kind = image_format(path)
    if series_uid is not None and kind != "dicom":
        raise ImageReadError(path, f"a series UID chooses among DICOM series; this is a {kind} file")
    if kind == "nifti":
        return _read_nifti(path)
    if kind == "picture":
        return _read_picture(path)
    from medtl.dicom.series import load_path

    return load_path(path, series_uid=series_uid)


def _read_nifti(path: Path) -> Volume:
    import nibabel

    try:
        image = nibabel.load(str(path))
        return nifti_to_volume(image, path)
    except ImageReadError:
        raise
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise ImageReadError(path, f"not a readable NIfTI file ({exc})") from exc


def nifti_to_volume(image: nibabel.Nifti1Image, path: Path | str) -> Volume:
    """A nibabel image as a Volume (``path`` names it in errors); data scaled by the header's slope/intercept."""
    path = Path(path)
    data = np.asanyarray(image.dataobj)
    rgb = data.ndim == 5 and data.shape[3] == 1 and data.shape[4] in (3, 4)
    if rgb:
        data = data[:, :, :, 0, :3]
    else:
        while data.ndim > 3 and data.shape[-1] == 1:
            data = data[..., 0]
        if data.ndim == 2:
            data = data[:, :, None]
        if data.ndim != 3:
            raise ImageReadError(path, f"NIfTI with shape {data.shape} is not one 2D or 3D image (a time series?)")
    spacing, origin, direction = lps_geometry(image.affine, path)
    array = np.transpose(data, (2, 1, 0, 3) if rgb else (2, 1, 0))
    return Volume(np.ascontiguousarray(array), spacing, origin, direction, metadata={"source_format": "nifti"})


def lps_geometry(affine_ras: np.ndarray, path: Path) -> tuple[tuple[float, float, float], tuple[float, float, float], np.ndarray]:
    """``(spacing, origin, direction)`` in the Volume's LPS convention from a NIfTI RAS affine."""
    lps = LPS_TO_RAS @ np.asarray(affine_ras, dtype=float)  # the flip is its own inverse
    matrix = lps[:3, :3]
    spacing = np.linalg.norm(matrix, axis=0)
    if np.any(spacing <= 0) or not np.all(np.isfinite(lps)):
        raise ImageReadError(path, f"the NIfTI affine is degenerate: {affine_ras.tolist()}")
    direction = matrix / spacing[None, :]
    if not np.allclose(direction.T @ direction, np.eye(3), atol=_ORTHONORMAL_TOLERANCE):
        raise ImageReadError(path, "the NIfTI affine has shear (non-orthogonal axes), which medtl does not resample silently; resample the file to an orthogonal grid first")
    return tuple(float(s) for s in spacing), tuple(float(o) for o in lps[:3, 3]), direction  # type: ignore[return-value]


def _read_picture(path: Path) -> Volume:
    from PIL import Image

    try:
        with Image.open(path) as picture:
            if getattr(picture, "n_frames", 1) > 1:
                raise ImageReadError(path, f"picture with {picture.n_frames} pages is not one grey or RGB image (multi-page TIFF? convert it to NIfTI)")
            if picture.mode == "LA":  # grey with transparency: the grey (as RGBA loses its alpha below)
                picture = picture.convert("L")
            elif picture.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):  # palette and other colour spaces: RGB
                picture = picture.convert("RGB")
            data = np.asarray(picture)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:  # OSError: not a picture, cut short
        raise ImageReadError(path, f"not a readable picture ({exc})") from exc
    if data.ndim == 3 and data.shape[2] in (3, 4):
        data = data[:, :, :3]
    elif data.ndim != 2:
        raise ImageReadError(path, f"picture with shape {data.shape} is not one grey or RGB image (multi-page TIFF? convert it to NIfTI)")
    metadata = {"source_format": "picture", "modality": "OT"}
    return Volume(np.ascontiguousarray(data[None]), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3), metadata=metadata)

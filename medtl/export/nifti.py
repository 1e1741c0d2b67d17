"""A Volume (CT series, mask, heatmap, uncertainty map) as a NIfTI-1 file on its world grid, written atomically.

The file is written directly with numpy and gzip rather than through nibabel (whose import, with
what it pulls in, costs more than converting a small series). It holds what
``nibabel.save(volume.to_nifti(), path)`` writes, byte for byte before compression: a 348-byte
header (RAS qform and sform with code 1 "scanner", millimetres, no scaling: ``scl_slope`` 1 and
``scl_inter`` 0), the 4-byte empty extension flag, then the voxels, x fastest. ``.nii.gz`` files
are gzip level 1 (nibabel's default).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from medtl.atomic import atomic_path
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError

# The NIfTI-1 header (nifti1.h), little-endian.
HEADER_DTYPE = np.dtype(
    [
        ("sizeof_hdr", "<i4"), ("data_type", "S10"), ("db_name", "S18"), ("extents", "<i4"), ("session_error", "<i2"),
        ("regular", "S1"), ("dim_info", "u1"), ("dim", "<i2", (8,)), ("intent_p1", "<f4"), ("intent_p2", "<f4"),
        ("intent_p3", "<f4"), ("intent_code", "<i2"), ("datatype", "<i2"), ("bitpix", "<i2"), ("slice_start", "<i2"),
        ("pixdim", "<f4", (8,)), ("vox_offset", "<f4"), ("scl_slope", "<f4"), ("scl_inter", "<f4"), ("slice_end", "<i2"),
        ("slice_code", "u1"), ("xyzt_units", "u1"), ("cal_max", "<f4"), ("cal_min", "<f4"), ("slice_duration", "<f4"),
        ("toffset", "<f4"), ("glmax", "<i4"), ("glmin", "<i4"), ("descrip", "S80"), ("aux_file", "S24"),
        ("qform_code", "<i2"), ("sform_code", "<i2"), ("quatern_b", "<f4"), ("quatern_c", "<f4"), ("quatern_d", "<f4"),
        ("qoffset_x", "<f4"), ("qoffset_y", "<f4"), ("qoffset_z", "<f4"), ("srow_x", "<f4", (4,)), ("srow_y", "<f4", (4,)),
        ("srow_z", "<f4", (4,)), ("intent_name", "S16"), ("magic", "S4"),
    ]
)  # fmt: skip
assert HEADER_DTYPE.itemsize == 348
VOX_OFFSET = 352  # the header, then the 4-byte extension flag (no extensions)
# numpy dtype -> NIfTI datatype code: the types nibabel writes from a plain array (it refuses the others).
DATATYPE_CODES = {
    "uint8": 2, "int16": 4, "int32": 8, "float32": 16, "complex64": 32, "float64": 64,
    "int8": 256, "uint16": 512, "uint32": 768, "complex128": 1792,
}  # fmt: skip
_NIFTI_UNIT_MM = 2
_NIFTI_INTENT_VECTOR = 1007
_NIFTI_XFORM_SCANNER_ANAT = 1
_GZIP_LEVEL = 1


def write_nifti(volume: Volume, destination: Path | str) -> Path:
    """Write ``volume`` to ``destination`` (``.nii`` or ``.nii.gz``; RAS affine, values and dtype as they are)."""
    destination = Path(destination)
    if not destination.name.endswith((".nii", ".nii.gz")):
        raise MedtlError(f"{destination}: a NIfTI file name must end in .nii or .nii.gz")
    header = nifti_header(volume)
    voxels = _voxels_on_disk(volume)
    with atomic_path(destination) as tmp, open(tmp, "wb") as raw:
        gzipped = destination.name.endswith(".gz")
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=_GZIP_LEVEL, mtime=0) if gzipped else raw as out:
            out.write(header.tobytes() + bytes(VOX_OFFSET - HEADER_DTYPE.itemsize))
            out.write(voxels.reshape(-1).view(np.uint8))
    return destination


def nifti_header(volume: Volume) -> np.ndarray:
    """The NIfTI-1 header of ``volume`` (a 0-d array of :data:`HEADER_DTYPE`), as nibabel fills it."""
    dtype_name = volume.array.dtype.newbyteorder("=").name
    if dtype_name not in DATATYPE_CODES:
        raise MedtlError(f"cannot write {volume.array.dtype} voxels to NIfTI; convert them to one of {', '.join(DATATYPE_CODES)}")
    z, y, x = volume.shape
    header = np.zeros((), HEADER_DTYPE)
    header["sizeof_hdr"] = HEADER_DTYPE.itemsize
    header["dim"] = [5, x, y, z, 1, 3, 1, 1] if volume.is_rgb else [3, x, y, z, 1, 1, 1, 1]
    header["intent_code"] = _NIFTI_INTENT_VECTOR if volume.is_rgb else 0
    header["datatype"] = DATATYPE_CODES[dtype_name]
    header["bitpix"] = volume.array.dtype.itemsize * 8
    header["pixdim"] = 1.0
    header["vox_offset"] = VOX_OFFSET
    header["scl_slope"], header["scl_inter"] = 1.0, 0.0  # values as they are
    header["xyzt_units"] = _NIFTI_UNIT_MM
    header["magic"] = b"n+1"
    affine = volume.affine_ras()
    _set_qform(header, affine)
    header["sform_code"] = _NIFTI_XFORM_SCANNER_ANAT
    header["srow_x"], header["srow_y"], header["srow_z"] = affine[:3]
    return header


def _set_qform(header: np.ndarray, affine: np.ndarray) -> None:
    """Quaternion, offset, voxel sizes and qfac of ``affine``, computed as ``nibabel.Nifti1Header.set_qform`` does."""
    rzs = affine[:3, :3]
    zooms = np.sqrt(np.sum(rzs * rzs, axis=0))
    rotation = rzs / zooms
    qfac = 1 if np.linalg.det(rotation) > 0 else -1
    rotation[:, -1] *= qfac
    p, _, qs = np.linalg.svd(rotation)  # the nearest orthogonal matrix (polar decomposition): shears dropped
    header["qform_code"] = _NIFTI_XFORM_SCANNER_ANAT
    header["qoffset_x"], header["qoffset_y"], header["qoffset_z"] = affine[:3, 3]
    header["pixdim"][0] = qfac
    header["pixdim"][1:4] = zooms
    header["quatern_b"], header["quatern_c"], header["quatern_d"] = _quaternion(p @ qs)[1:]


def _quaternion(rotation: np.ndarray) -> np.ndarray:
    """``(w, x, y, z)`` of a rotation matrix, ``w >= 0`` (Bar-Itzhack's method, as ``nibabel.quaternions.mat2quat``)."""
    qxx, qyx, qzx, qxy, qyy, qzy, qxz, qyz, qzz = rotation.flat
    k = np.array(
        [
            [qxx - qyy - qzz, 0, 0, 0],
            [qyx + qxy, qyy - qxx - qzz, 0, 0],
            [qzx + qxz, qzy + qyz, qzz - qxx - qyy, 0],
            [qyz - qzy, qzx - qxz, qxy - qyx, qxx + qyy + qzz],
        ]
    ) / 3.0  # fmt: skip
    values, vectors = np.linalg.eigh(k)
    quaternion = vectors[[3, 0, 1, 2], np.argmax(values)]
    return -quaternion if quaternion[0] < 0 else quaternion


def _voxels_on_disk(volume: Volume) -> np.ndarray:
    """The voxels in NIfTI's order (x fastest, then y, z; RGB components slowest), little-endian, C-contiguous."""
    array = np.moveaxis(volume.array, 3, 0) if volume.is_rgb else volume.array
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))

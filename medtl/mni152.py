"""The MNI ICBM152 2009a templates that ship inside the nilearn package, read with nibabel alone.

nilearn bundles the T1 template and its grey- and white-matter probability maps at 1 mm. medtl reads
those files itself, scaled as nilearn's loaders scale them (``load_mni152_template(resolution=1)`` and
the like: float32, divided by the maximum; the brain mask: template above 0.2), so that the sample study
and the demo need none of nilearn's Python modules, nor scikit-learn and pandas, which nilearn imports
and the frozen build leaves out. Only the data files of the installed nilearn are used.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from medtl.errors import MedtlError

if TYPE_CHECKING:
    import nibabel

Map = Literal["template", "grey_matter", "white_matter"]
FILES: dict[Map, str] = {
    "template": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "grey_matter": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "white_matter": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
DATA_FOLDER = ("nilearn", "datasets", "data")
"""Where the files lie below a folder on ``sys.path``: in the installed nilearn package, and in the frozen build."""
BRAIN_THRESHOLD = 0.2
"""The brain mask is the scaled template above this (nilearn's ``load_mni152_brain_mask`` default)."""


def map_file(kind: Map) -> Path:
    """The file of one map, found below the folders on ``sys.path`` (without importing nilearn)."""
    name = FILES[kind]
    for entry in sys.path:
        candidate = Path(entry or ".", *DATA_FOLDER, name)
        if candidate.is_file():
            return candidate
    raise MedtlError(f"{name} (the MNI152 {kind.replace('_', ' ')}) is not installed; it comes with nilearn (pip install nilearn)")


def load_map(kind: Map) -> nibabel.Nifti1Image:
    """One map at 1 mm, float32 scaled to 0..1 by its maximum."""
    import nibabel

    path = map_file(kind)
    try:
        image = nibabel.load(path)
        data = np.asarray(image.get_fdata(dtype=np.float32), dtype=np.float32)
    except (OSError, ValueError, EOFError, nibabel.filebasedimages.ImageFileError) as error:
        raise MedtlError(f"{path}: cannot be read ({error}); reinstall nilearn") from error
    peak = float(data.max()) if data.size else 0.0
    if not np.isfinite(peak) or peak <= 0:
        raise MedtlError(f"{path}: holds no positive values; reinstall nilearn")
    return nibabel.Nifti1Image(data / np.float32(peak), image.affine)


def load_brain_mask() -> nibabel.Nifti1Image:
    """The brain mask at 1 mm: 1 where the scaled template is above :data:`BRAIN_THRESHOLD`, as int8."""
    import nibabel

    template = load_map("template")
    return nibabel.Nifti1Image((np.asarray(template.dataobj) > BRAIN_THRESHOLD).astype(np.int8), template.affine)

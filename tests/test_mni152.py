"""medtl reads nilearn's bundled MNI152 maps as nilearn's own loaders do, without importing nilearn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medtl.errors import MedtlError
from medtl.mni152 import load_brain_mask, load_map, map_file


@pytest.mark.parametrize(("kind", "loader"), [
    ("template", "load_mni152_template"), ("grey_matter", "load_mni152_gm_template"), ("white_matter", "load_mni152_wm_template"),
])  # fmt: skip
def test_each_map_equals_nilearns_own_loader(kind: str, loader: str) -> None:
    from nilearn import datasets

    theirs, ours = getattr(datasets, loader)(resolution=1), load_map(kind)  # type: ignore[arg-type]
    assert ours.shape == theirs.shape == (197, 233, 189)
    np.testing.assert_array_equal(ours.affine, theirs.affine)
    np.testing.assert_array_equal(np.asarray(ours.dataobj), theirs.get_fdata(dtype=np.float32))
    assert np.asarray(ours.dataobj).dtype == np.float32


def test_brain_mask_equals_nilearns() -> None:
    from nilearn.datasets import load_mni152_brain_mask

    theirs, ours = load_mni152_brain_mask(resolution=1), load_brain_mask()
    np.testing.assert_array_equal(ours.affine, theirs.affine)
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asarray(theirs.dataobj))
    assert 1_000_000 < int(np.asarray(ours.dataobj).sum()) < 3_000_000  # about 1.9 million 1 mm voxels of brain


def test_reading_the_maps_imports_neither_nilearn_nor_scikit_learn_nor_pandas() -> None:
    code = "import sys; from medtl.mni152 import load_map, load_brain_mask; load_map('grey_matter'); load_brain_mask(); " \
        "print(sorted(m for m in ('nilearn', 'sklearn', 'pandas') if m in sys.modules))"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True).stdout
    assert out.strip() == "[]"


def test_a_missing_map_names_the_file_and_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    with pytest.raises(MedtlError, match=r"mni_icbm152_wm_tal_nlin_sym_09a_converted\.nii\.gz .*white matter.* nilearn"):
        map_file("white_matter")


def test_a_corrupt_map_is_one_line_naming_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path.joinpath("nilearn", "datasets", "data")
    folder.mkdir(parents=True)
    (folder / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    with pytest.raises(MedtlError, match=r"mni_icbm152_t1_tal_nlin_sym_09a_converted\.nii\.gz: cannot be read .*reinstall nilearn"):
        load_map("template")

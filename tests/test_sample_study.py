"""The real-anatomy sample study: geometry against nibabel's affine, the mask's grid, reproducible bytes, the CLI."""

from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
import pytest

from medtl.cli import main
from medtl.dicom.series import load_path
from medtl.errors import MedtlError
from medtl.sample_study import DICOM_FOLDER, LABEL_FILE, build_sample_study

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sample_study(tmp_path_factory.mktemp("first") / "study")


def test_series_loads_on_the_template_grid_in_lps(study: Path) -> None:
    from nilearn.datasets import load_mni152_template

    volume = load_path(study / DICOM_FOLDER)
    assert volume.shape == (189, 233, 197)  # [z, y, x]
    assert volume.spacing == pytest.approx((1.0, 1.0, 1.0))
    assert volume.metadata["modality"] == "MR"
    template = load_mni152_template(resolution=1)
    nx, ny, _ = template.shape
    data = template.get_fdata()
    for i, j, k in [(0, 0, 0), (196, 232, 188), (50, 100, 120), (98, 116, 94), (150, 40, 60)]:
        expected = RAS_TO_LPS @ (template.affine @ [i, j, k, 1.0])[:3]
        # the series stores columns to the patient's left and rows to the back: the template's i and j reversed
        x, y, z = nx - 1 - i, ny - 1 - j, k
        assert volume.index_to_lps([x, y, z])[0] == pytest.approx(expected)
        assert volume.array[z, y, x] == round(data[i, j, k] * 255)  # same voxel, same value
    assert volume.array.max() > 200  # anatomy, not an empty frame


def test_mask_is_on_the_series_grid_and_covers_the_brain(study: Path) -> None:
    volume = load_path(study / DICOM_FOLDER)
    mask = nibabel.load(study / LABEL_FILE)
    assert mask.shape == (197, 233, 189)  # NIfTI [x, y, z]
    assert np.allclose(mask.affine, volume.affine_ras())
    labels = np.transpose(np.asarray(mask.dataobj), (2, 1, 0))  # -> [z, y, x] like the volume
    assert set(np.unique(labels)) == {0, 1}
    assert labels[94, 116, 98] == 1  # the centre of the head
    assert labels[0, 0, 0] == 0
    assert 1_000_000 < labels.sum() < 2_500_000  # a brain's worth of 1 mm voxels
    assert volume.array[labels == 1].mean() > 3 * max(volume.array[labels == 0].mean(), 1.0)


def test_a_rebuild_is_byte_identical(study: Path, tmp_path: Path) -> None:
    again = build_sample_study(tmp_path / "again")
    first = sorted((study / DICOM_FOLDER).iterdir())[0]
    assert first.name == "IM00001.dcm"
    assert (again / DICOM_FOLDER / first.name).read_bytes() == first.read_bytes()
    assert (again / LABEL_FILE).read_bytes() == (study / LABEL_FILE).read_bytes()
    assert [p.name for p in again.parent.iterdir()] == ["again"]  # the temporary build folder is gone


def test_build_refuses_an_existing_folder(tmp_path: Path) -> None:
    with pytest.raises(MedtlError, match="already exists"):
        build_sample_study(tmp_path)


def test_sample_study_cli_builds_once_then_reuses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_data_dir", lambda *args, **kwargs: str(tmp_path / "data"))
    assert main(["sample", "--study", "--path"]) == 0
    printed = capsys.readouterr()
    path = Path(printed.out.strip())
    assert path.is_dir() and path.parent == tmp_path / "data"
    assert len(list((path / DICOM_FOLDER).glob("*.dcm"))) == 189 and (path / LABEL_FILE).is_file()
    assert "building" in printed.err
    assert main(["sample", "--study", "--path"]) == 0
    again = capsys.readouterr()
    assert Path(again.out.strip()) == path and again.err == ""

"""`medtl convert` and the NIfTI / MetaTensor conversions of `Volume`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel
import numpy as np
import pytest

from medtl.cli import main
from medtl.dicom.volume import Volume
from tests.dicomgen import SeriesSpec, phantom, rotation, write_series

REPO = Path(__file__).resolve().parent.parent
DIRECTIONS = {
    "axial": np.eye(3),
    "flipped_x_y": np.diag([-1.0, -1.0, 1.0]),
    "flipped_z": np.diag([1.0, -1.0, -1.0]),
    "sagittal": np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float),
    "coronal": np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float),
    "oblique": rotation("x", 17) @ rotation("z", -33) @ rotation("y", 8),
}


def lps_of(index_xyz: np.ndarray, spacing: tuple[float, ...], origin: tuple[float, ...], direction: np.ndarray) -> np.ndarray:
    """The generator's truth: LPS of voxel centres given as (x, y, z) indices."""
    return np.asarray(origin) + (np.asarray(index_xyz, float) * spacing) @ direction.T


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_nifti_affine_maps_voxels_to_true_ras(name: str) -> None:
    direction, spacing, origin = DIRECTIONS[name], (0.7, 0.9, 2.5), (12.0, -40.0, 7.5)
    values = phantom((5, 6, 7))
    image = Volume(values, spacing, origin, direction).to_nifti()
    corners = np.array([[0, 0, 0], [6, 0, 0], [0, 5, 0], [0, 0, 4], [6, 5, 4], [3, 2, 1]])
    ras = nibabel.affines.apply_affine(image.affine, corners)
    np.testing.assert_allclose(ras * [-1, -1, 1], lps_of(corners, spacing, origin, direction), atol=1e-9)
    np.testing.assert_allclose(image.get_qform(), image.affine, atol=1e-6)  # the qform holds the same rotation
    data = np.asarray(image.dataobj)
    for x, y, z in corners:
        assert data[x, y, z] == values[z, y, x]


def test_metatensor_has_channel_first_xyz_and_ras_affine() -> None:
    volume = Volume(phantom((5, 6, 7)), (0.7, 0.9, 2.5), (1.0, 2.0, 3.0), DIRECTIONS["oblique"])
    tensor = volume.to_metatensor()
    assert tuple(tensor.shape) == (1, 7, 6, 5)
    np.testing.assert_allclose(tensor.affine.numpy(), volume.affine_ras())
    assert tensor[0, 6, 5, 4].item() == volume.array[4, 5, 6]


def test_convert_writes_the_series_on_its_world_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = phantom()
    spec = SeriesSpec(direction=DIRECTIONS["oblique"], spacing=(0.6, 0.8, 2.0))
    write_series(tmp_path / "dicom", values, spec)
    out = tmp_path / "out" / "ct.nii.gz"
    assert main(["convert", str(tmp_path / "dicom"), "-o", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{out}: 48 x 40 x 12 voxels, spacing 0.6 x 0.8 x 2 mm, orientation ")
    assert line.endswith("(oblique), int16 HU, 0 warning(s)")
    image = nibabel.load(out)
    np.testing.assert_array_equal(np.asarray(image.dataobj).transpose(2, 1, 0), values)
    index = np.array([[0, 0, 0], [47, 39, 11], [10, 20, 5]])
    ras = nibabel.affines.apply_affine(image.affine, index)
    np.testing.assert_allclose(ras * [-1, -1, 1], lps_of(index, spec.spacing, spec.origin, spec.direction), atol=1e-4)
    assert sorted(p.name for p in out.parent.iterdir()) == ["ct.nii.gz"]  # no temporary left


def test_axial_orientation_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_series(tmp_path / "dicom", phantom((3, 8, 8)))
    assert main(["convert", str(tmp_path / "dicom"), "-o", str(tmp_path / "a.nii")]) == 0
    assert "orientation LPS, " in capsys.readouterr().out  # x to the patient's left, y posterior, z superior; not oblique


def test_warnings_go_to_stderr_and_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_series(tmp_path / "dicom", phantom(), SeriesSpec(drop_slices=(5,)))
    assert main(["convert", str(tmp_path / "dicom"), "-o", str(tmp_path / "a.nii.gz")]) == 0
    captured = capsys.readouterr()
    assert "1 warning(s): 1 missing slice(s) at z = [5]" in captured.out and captured.out.count("\n") == 1
    assert "medtl convert: warning: 1 missing slice(s) at z = [5]" in captured.err


def test_several_series_without_choice_fail_listing_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_series(tmp_path / "a", phantom((2, 8, 8)), SeriesSpec(series_uid="1.2.3.4", series_description="first"))
    write_series(tmp_path / "b", phantom((3, 8, 8)), SeriesSpec(series_uid="1.2.3.5", series_description="second"))
    out = tmp_path / "x.nii.gz"
    assert main(["convert", str(tmp_path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds 2 image series" in err and "1.2.3.4  CT  'first'  2 instance(s)" in err and "1.2.3.5" in err
    assert err.startswith("medtl convert: error: --series: ")  # the engine names the setting, the CLI its flag
    assert "Traceback" not in err and not out.exists()
    assert main(["convert", str(tmp_path), "-o", str(out), "--series", "1.2.3.5"]) == 0
    assert nibabel.load(out).shape == (8, 8, 3)


def test_user_errors_exit_non_zero_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", str(tmp_path / "missing"), "-o", str(tmp_path / "x.nii.gz")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    write_series(tmp_path / "d", phantom((2, 8, 8)))
    assert main(["convert", str(tmp_path / "d"), "-o", str(tmp_path / "x.png")]) == 2
    assert "must end in .nii or .nii.gz" in capsys.readouterr().err
    same = {"series_uid": "1.2.9", "study_uid": "1.2.8"}
    write_series(tmp_path / "bad" / "axial", phantom((4, 8, 8)), SeriesSpec(**same))
    write_series(tmp_path / "bad" / "sagittal", phantom((1, 8, 8)), SeriesSpec(**same, direction=DIRECTIONS["sagittal"]))
    out = tmp_path / "bad.nii.gz"
    assert main(["convert", str(tmp_path / "bad"), "-o", str(out)]) == 2
    assert "localizer" in capsys.readouterr().err and not out.exists()


def test_convert_imports_no_torch_monai_qt_or_nibabel(tmp_path: Path) -> None:
    write_series(tmp_path / "d", phantom((3, 8, 8)))
    code = (
        "import sys\nfrom medtl.cli import main\n"
        f"assert main(['convert', {str(tmp_path / 'd')!r}, '-o', {str(tmp_path / 'o.nii.gz')!r}]) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'monai', 'PySide6', 'PyQt5', 'PyQt6', 'nibabel'))\n"
        "print('HEAVY', heavy)\n"
        "import importlib.util, os\n"
        "unused = ('requests', 'tqdm', 'PIL.ImageCms', 'pydicom.examples', 'pydicom.pixel_data_handlers.pylibjpeg_handler')\n"
        "ran = sorted(m for m in unused if m in sys.modules and not isinstance(sys.modules[m], importlib.util._LazyModule))\n"
        "print('UNUSED', ran)\n"
        "print('THREADS', len(os.listdir('/proc/self/task')) if os.path.isdir('/proc/self/task') else 1)\n"
        "print('BLAS', os.environ.get('OPENBLAS_NUM_THREADS'))\n"
        "from pydicom.pixels import get_decoder\nfrom pydicom.uid import JPEG2000Lossless\n"
        "print('J2K', get_decoder(JPEG2000Lossless).is_available)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env={"PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    assert "UNUSED []" in done.stdout  # pydicom's download, example, old pixel handler and colour-conversion modules never run
    assert "THREADS 1" in done.stdout  # numpy's BLAS started no thread pool to spin beside the reading
    assert "BLAS None" in done.stdout  # and the setting that kept it from doing so is not left behind
    assert "J2K True" in done.stdout  # in a process that goes on, pydicom's decoder plugins are all registered

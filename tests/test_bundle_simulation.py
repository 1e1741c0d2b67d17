"""The engine works with what the frozen build ships: without the modules it leaves out, with few torch sources.

``packaging/bundle_filter`` names the modules the bundle leaves out and the torch modules that keep their ``.py``
files. This runs the self-test, model export, classification prediction (Grad-CAM included), the annotation tools,
picture reading and the demo's data under ``tests/bundle_simulation.py``, which makes the left-out modules
unimportable and the other torch sources unreadable, as in the frozen build (``make package`` tests that itself).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.special
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))
import bundle_filter  # noqa: E402
import scipy_special_subset  # noqa: E402

SUBSET = [
    "tests/test_selftest.py", "tests/test_export_model.py", "tests/test_predict_classification.py", "tests/test_annotate_tools.py",
    "tests/test_data_images.py::test_tiff_and_jpeg", "tests/test_data_images.py::test_palette_grey_alpha_float_and_multipage_pictures",
    "tests/test_mni152.py::test_a_missing_map_names_the_file_and_the_package", "tests/test_training_metrics.py",
    "tests/test_case_results.py", "tests/test_predict_resample.py", "tests/test_prompt_clicks.py", "tests/test_geometry.py",
]  # fmt: skip


def test_only_the_modules_torch_reads_keep_their_source() -> None:
    modules = bundle_filter.torch_sources_kept(Path(torch.__file__).parent)
    kept = {name for name, source in modules.items() if source}
    assert {"torch._dynamo.config", "torch._inductor.config", "torch._functorch.config", "torch.utils._config_module"} <= kept
    assert {"torch.nn.functional", "torch.functional", "torch.nn.modules.rnn"} <= kept  # TorchScript overloads
    assert not {"torch.nn.modules.linear", "torch.optim.adamw", "torch.nn.modules.conv", "torch.utils.data.dataloader", "torch._tensor_str"} & kept
    assert {"torch.nn.modules.linear", "torch.optim.adamw"} <= set(modules)  # named, so that their package's setting does not apply
    assert 50 < len(kept) < 400 and len(modules) > 2000


def python(*args: str) -> subprocess.CompletedProcess[str]:
    """This Python, started in the repository root (offscreen Qt), with ``args``."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def test_the_engine_works_as_in_the_frozen_build() -> None:
    run = python("-m", "pytest", "-p", "tests.bundle_simulation", "-p", "no:cacheprovider", "-q", *SUBSET)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "as in the frozen build:" in run.stderr  # the plugin was active


def test_every_medtl_and_ui_module_imports_as_in_the_frozen_build() -> None:
    code = (
        "import importlib, pkgutil, tests.bundle_simulation, medtl, ui\n"
        "for package in (medtl, ui):\n"
        "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        if not module.name.endswith('__main__'):\n"
        "            importlib.import_module(module.name)\n"
    )
    run = python("-c", code)
    assert run.returncode == 0, run.stderr[-3000:]


def test_the_scipy_special_subset_gives_scipys_values() -> None:
    angles = np.concatenate([np.arange(-720.0, 721.0, 7.5), np.random.default_rng(0).uniform(-1e4, 1e4, 500), [1e-9, -1e-3, 1e6]])
    for mine, scipys in ((scipy_special_subset.cosdg, scipy.special.cosdg), (scipy_special_subset.sindg, scipy.special.sindg)):
        np.testing.assert_allclose(mine(angles), scipys(angles), rtol=0, atol=1e-15)
        right = np.arange(-720.0, 721.0, 90.0)
        assert np.array_equal(mine(right), scipys(right))  # exactly 0, 1 or -1, as the rotation matrix needs
        assert isinstance(mine(30.0), np.float64)
    with pytest.raises(AttributeError, match="erf is not in medtl's frozen build"):
        scipy_special_subset.erf  # noqa: B018


def test_the_runtime_hook_registers_every_substitute_and_ndimage_rotates_with_it() -> None:
    code = (
        "import runpy, sys\n"
        "runpy.run_path('packaging/rthook_substitutes.py')\n"
        "from scipy import ndimage\n"
        "import numpy as np\n"
        f"assert all(sys.modules[name].__name__ == module for name, module in {bundle_filter.SUBSTITUTES!r}.items())\n"
        "image = np.arange(20.0).reshape(4, 5)\n"
        "assert np.allclose(ndimage.rotate(image, 90), np.rot90(image), atol=1e-9)\n"
    )
    run = python("-c", f"import sys; sys.path.insert(0, 'packaging'); exec({code!r})")
    assert run.returncode == 0, run.stderr[-3000:]


def test_medtl_and_ui_use_no_part_of_scipy_but_ndimage() -> None:
    """The frozen build ships scipy.ndimage only (with the scipy.special subset); a lazy import elsewhere would fail there."""
    imported = set()
    for path in [*ROOT.joinpath("medtl").rglob("*.py"), *ROOT.joinpath("ui").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "scipy":
                imported |= {f"{node.module}.{alias.name}" if node.module == "scipy" else node.module for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names if alias.name.split(".")[0] == "scipy"}
    assert imported == {"scipy.ndimage"}, imported

"""The engine works with what the frozen build ships: without the modules it leaves out, with few torch sources.

``packaging/bundle_filter`` names the modules the bundle leaves out and the torch modules that keep their ``.py``
files. This runs the self-test, model export, classification prediction (Grad-CAM included), the annotation tools,
picture reading and the demo's data under ``tests/bundle_simulation.py``, which makes the left-out modules
unimportable and the other torch sources unreadable, as in the frozen build (``make package`` tests that itself).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))
import bundle_filter  # noqa: E402

SUBSET = [
    "tests/test_selftest.py", "tests/test_export_model.py", "tests/test_predict_classification.py", "tests/test_annotate_tools.py",
    "tests/test_data_images.py::test_tiff_and_jpeg", "tests/test_data_images.py::test_palette_grey_alpha_float_and_multipage_pictures",
    "tests/test_mni152.py::test_a_missing_map_names_the_file_and_the_package", "tests/test_training_metrics.py",
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

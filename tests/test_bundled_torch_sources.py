"""The frozen build ships torch's sources only where torch reads them; training, prediction, export and Grad-CAM work so.

``packaging/bundle_filter.torch_sources_kept`` picks the torch modules that keep their ``.py`` files in the bundle.
This runs the self-test, model export and classification prediction (Grad-CAM included) with every other torch
source unreadable (``tests/bundled_torch_sources.py``), as in the frozen build, where ``make package`` checks the rest.
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

SUBSET = ["tests/test_selftest.py", "tests/test_export_model.py", "tests/test_predict_classification.py"]


def test_only_the_modules_torch_reads_keep_their_source() -> None:
    modules = bundle_filter.torch_sources_kept(Path(torch.__file__).parent)
    kept = {name for name, source in modules.items() if source}
    assert {"torch._dynamo.config", "torch._inductor.config", "torch._functorch.config", "torch.utils._config_module"} <= kept
    assert {"torch.nn.functional", "torch.functional", "torch.nn.modules.rnn"} <= kept  # TorchScript overloads
    assert not {"torch.nn.modules.linear", "torch.optim.adamw", "torch.nn.modules.conv", "torch.utils.data.dataloader", "torch._tensor_str"} & kept
    assert {"torch.nn.modules.linear", "torch.optim.adamw"} <= set(modules)  # named, so that their package's setting does not apply
    assert 50 < len(kept) < 400 and len(modules) > 2000


def test_the_engine_works_with_only_the_bundled_torch_sources() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.bundled_torch_sources", "-p", "no:cacheprovider", "-q", *SUBSET],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "bundled torch sources only:" in run.stderr  # the plugin was active

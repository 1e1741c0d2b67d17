"""Every registry entry builds (2D and 3D), runs, and splits cleanly into backbone stages and head; ModelSpec validates."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from medtl.errors import MedtlError
from medtl.models.registry import ARCHITECTURES, stages_of
from medtl.models.spec import DEFAULT_CHOICES, ModelSpec, build_model, default_spec

TINY = {
    "unet": {"channels": (4, 8, 16, 32), "strides": (2, 2, 2), "num_res_units": 1},
    "attentionunet": {"channels": (4, 8, 16, 32), "strides": (2, 2, 2)},
    "basicunet": {"features": (4, 4, 8, 8, 16, 4)},
    "segresnet": {"init_filters": 8},
    "swinunetr": {"feature_size": 12, "depths": (1, 1, 1, 1)},
    **{f"resnet{depth}": {"widen_factor": 0.25} for depth in (10, 18, 34, 50, 101, 152)},
    **{f"densenet{depth}": {"init_features": 16, "growth_rate": 8} for depth in (121, 169)},
}
CASES = [(name, dims) for name, entry in ARCHITECTURES.items() for dims in entry.dims]


@pytest.mark.parametrize(("name", "dims"), CASES, ids=[f"{n}-{d}D" for n, d in CASES])
def test_every_entry_builds_runs_and_splits(name: str, dims: int) -> None:
    entry = ARCHITECTURES[name]
    if name == "swinunetr":
        pytest.importorskip("einops")
    model, report = build_model(ModelSpec(entry.task, name, dims, in_channels=2, num_outputs=3, arch_params=TINY.get(name, {})))
    assert report.new == list(model.state_dict()) and not report.loaded
    side = 64 if name == "swinunetr" else 32
    model.eval()
    with torch.no_grad():
        output = model(torch.zeros(1, 2, *([side] * dims)))
    expected = (1, 3) if entry.task == "classification" else (1, 3, *([side] * dims))
    assert tuple(output.shape) == expected
    names = [n for n, _ in model.named_parameters()]
    head = [n for n in names if entry.stage_of(n) is None]
    stages = stages_of(entry, model)
    assert head and len(head) < len(names), "both a head and a backbone"
    assert stages == list(range(len(stages))) and len(stages) >= 3
    assert entry.stage_of(names[0]) == 0, "the first parameter (input side) is in stage 0"


def test_spec_round_trips_through_json() -> None:
    spec = ModelSpec("classification", "resnet18", 3, 1, 4, "astra", "gradual", {"every": 3}, {"conv1_t_size": [3, 7, 7]})
    again = ModelSpec.from_json(spec.to_json())
    assert again == spec
    assert json.loads(spec.to_json())["strategy_params"] == {"every": 3}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"task": "detection"}, "task must be"),
        ({"architecture": "vgg16"}, "unknown architecture"),
        ({"architecture": "unet"}, "segmentation network"),
        ({"spatial_dims": 1}, "not 1D"),
        ({"num_outputs": 0}, "positive integer"),
        ({"strategy": "freeze_all"}, "unknown strategy"),
        ({"strategy": "last_k", "strategy_params": {"layers": 2}}, "takes k, backbone_lr_factor"),
        ({"strategy": "last_k", "strategy_params": {"k": 1.5}}, "must be an integer"),
        ({"strategy": "gradual", "strategy_params": {"every": 0}}, "at least 1"),
    ],
)
def test_invalid_spec_is_refused_on_creation(changes: dict, message: str) -> None:
    fields = {"task": "classification", "architecture": "resnet18", "spatial_dims": 2, **changes}
    with pytest.raises(MedtlError, match=message):
        ModelSpec(**fields)


def test_unknown_json_field_is_refused() -> None:
    with pytest.raises(MedtlError, match="unknown field"):
        ModelSpec.from_dict({"task": "classification", "architecture": "resnet18", "spatial_dims": 2, "pretrained": True})


def test_defaults_exist_for_every_task_and_dims() -> None:
    for task, dims in DEFAULT_CHOICES:
        spec = default_spec(task, dims)
        assert (spec.task, spec.spatial_dims) == (task, dims)


def test_models_command_lists_without_importing_torch() -> None:
    code = "import sys; from medtl.cli import main; main(['models']); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "efficientnet-lite0" in result.stdout and "swinunetr" in result.stdout and "licence" in result.stdout
    assert result.stdout.strip().endswith("False")

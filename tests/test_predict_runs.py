"""Run folders for the predict and export tests, written without the train CLI (and how broken ones are refused)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from medtl.data.preprocessing import Preprocessing, default_for
from medtl.errors import MedtlError
from medtl.inference.predictor import Predictor
from medtl.models.spec import ModelSpec, build_model
from medtl.training.config import TrainConfig
from medtl.training.run_folder import RunConfig, RunFolder
from medtl.training.run_summary import RunSummary
from tests.dicomgen import SeriesSpec, phantom, rotation, write_series

BONE_LABELS = {"0": "background", "1": "bone"}
SMALL_UNET = {"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 1}
OBLIQUE = rotation("z", 25) @ rotation("x", 15)


def write_run(run_dir: Path, spec: ModelSpec, preprocessing: Preprocessing, data: dict[str, Any], model: nn.Module | None = None) -> Path:
    """A run folder as the trainer leaves it: config.json, best_model.safetensors, summary.json."""
    if model is None:
        torch.manual_seed(0)
        model, _ = build_model(spec)
    folder = RunFolder(run_dir)
    folder.write_config(RunConfig(TrainConfig(task=spec.task), spec.to_dict(), preprocessing.to_dict(), data))
    folder.save_best_model(model.state_dict(), {"epoch": "1"})
    folder.write_summary(RunSummary(spec.task, 1, 0.0, "completed", "cpu", best_metric_name="none"))
    return run_dir


def segmentation_spec(spatial_dims: int = 2) -> ModelSpec:
    return ModelSpec("segmentation", "unet", spatial_dims, 1, 2, arch_params=SMALL_UNET)


def segmentation_preprocessing(spatial_dims: int = 2) -> Preprocessing:
    """medtl's CT defaults (3D: RAS, 1.5 x 1.5 x 2 mm), with a small 3D patch."""
    preprocessing = default_for("segmentation", "CT", spatial_dims)
    return dataclasses.replace(preprocessing, spatial_size=(32, 32, 16)) if spatial_dims == 3 else preprocessing


def segmentation_run(run_dir: Path, spatial_dims: int = 2) -> Path:
    """A small UNet with random weights and the CT bone labels."""
    return write_run(run_dir, segmentation_spec(spatial_dims), segmentation_preprocessing(spatial_dims), {"labels": BONE_LABELS})


def oblique_ct(folder: Path, **options: Any) -> Path:
    """The asymmetric phantom as an oblique, anisotropic CT series (12 x 40 x 48 voxels)."""
    write_series(folder, phantom((12, 40, 48)), SeriesSpec(spacing=(0.7, 0.9, 2.5), direction=OBLIQUE, **options))
    return folder


def test_a_run_folder_loads_with_its_labels_and_weights(tmp_path: Path) -> None:
    run = segmentation_run(tmp_path / "run")
    predictor = Predictor.from_run(run, device="cpu")
    assert predictor.labels == {0: "background", 1: "bone"} and predictor.roi_size is None
    saved = RunFolder(run).load_best_model()
    assert all(torch.equal(saved[name], tensor) for name, tensor in predictor.model.state_dict().items())


def test_a_run_without_weights_is_refused_by_name(tmp_path: Path) -> None:
    run = segmentation_run(tmp_path / "run")
    RunFolder(run).best_model_path.unlink()
    with pytest.raises(MedtlError, match=r"best_model\.safetensors"):
        Predictor.from_run(run)
    with pytest.raises(MedtlError, match=r"config\.json"):
        Predictor.from_run(tmp_path / "elsewhere")


def test_weights_of_another_network_are_refused(tmp_path: Path) -> None:
    other = dataclasses.replace(segmentation_spec(), arch_params={**SMALL_UNET, "channels": [4, 8, 16]})
    run = write_run(tmp_path / "run", other, segmentation_preprocessing(), {"labels": BONE_LABELS}, model=build_model(segmentation_spec())[0])
    with pytest.raises(MedtlError, match="do not fit"):
        Predictor.from_run(run)


def test_the_phantom_series_is_oblique_and_anisotropic(tmp_path: Path) -> None:
    from medtl.data.images import read_image

    volume = read_image(oblique_ct(tmp_path / "ct"))
    assert volume.shape == (12, 40, 48) and np.allclose(volume.spacing, (0.7, 0.9, 2.5)) and np.allclose(volume.direction, OBLIQUE, atol=1e-6)

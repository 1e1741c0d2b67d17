"""Model export: a MONAI bundle that medtl and MONAI read back, and TorchScript equal to the original."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser

from medtl.cli import main
from medtl.data.preprocessing import Preprocessing
from medtl.export.bundle import export_bundle
from medtl.export.torchscript import export_torchscript
from medtl.inference.predictor import Predictor
from medtl.models.spec import ModelSpec, build_model
from medtl.models.weights import BundleSource, parse_source
from medtl.training.run_folder import RunFolder
from tests.test_predict_runs import segmentation_preprocessing, segmentation_run, segmentation_spec, write_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return segmentation_run(tmp_path_factory.mktemp("runs") / "seg3d", spatial_dims=3)


def test_bundle_round_trips_through_medtl_weights(run: Path, tmp_path: Path) -> None:
    bundle = export_bundle(run, tmp_path / "bundle")
    assert {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()} == {"configs/metadata.json", "configs/inference.json", "models/model.pt"}
    assert isinstance(parse_source(str(bundle)), BundleSource)
    saved = RunFolder(run).load_best_model()
    loaded = BundleSource(bundle).state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)
    model, report = build_model(ModelSpec(**{**segmentation_spec(3).to_dict(), "weights": str(bundle)}))
    assert not report.new and not report.dropped
    original = Predictor.from_run(run, device="cpu").model
    x = torch.rand(1, 1, 32, 32, 16)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), original(x))


def test_bundle_configs_are_monai_readable(run: Path, tmp_path: Path) -> None:
    bundle = export_bundle(run, tmp_path / "bundle")
    metadata = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert metadata["network_data_format"]["outputs"]["pred"]["channel_def"] == {"0": "background", "1": "bone"}
    parser = ConfigParser()
    parser.read_config(bundle / "configs" / "inference.json")
    network = parser.get_parsed_content("network_def")
    network.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    assert type(network).__name__ == "UNet"
    transforms = [type(t).__name__ for t in parser.get_parsed_content("preprocessing").transforms]
    assert transforms[:3] == ["LoadVolumed", "Orientationd", "Spacingd"]
    assert Preprocessing.from_dict(parser.get_parsed_content("medtl::preprocessing")).spacing == (1.5, 1.5, 2.0)
    assert list(parser.get_parsed_content("inferer").roi_size) == [32, 32, 16]


def test_bundle_export_does_not_overwrite(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    assert main(["export", "--run", str(run), "--format", "bundle", "--out", str(tmp_path / "taken")]) == 2
    assert "already exists" in capsys.readouterr().err and (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    assert main(["export", "--run", str(run), "--format", "bundle", "--out", str(tmp_path / "new")]) == 0
    assert (tmp_path / "new" / "models" / "model.pt").is_file()


def test_torchscript_matches_the_original(run: Path, tmp_path: Path) -> None:
    result = export_torchscript(run, tmp_path / "model.ts")
    assert result.method in ("scripted", "traced") and result.max_abs_difference <= 1e-4
    extra = {"medtl.json": ""}
    scripted = torch.jit.load(str(result.path), _extra_files=extra)
    assert json.loads(extra["medtl.json"])["labels"] == {"0": "background", "1": "bone"}
    original = Predictor.from_run(run, device="cpu").model
    x = torch.rand(2, 1, 32, 32, 16)
    with torch.no_grad():
        assert torch.allclose(scripted(x), original(x), atol=1e-5)


def test_torchscript_cli(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--run", str(run), "--format", "torchscript", "--out", str(tmp_path / "model.ts")]) == 0
    assert "TorchScript" in capsys.readouterr().out and (tmp_path / "model.ts").is_file()


HOSTILE = ["$__import__('pathlib').Path('PWNED').touch()", "@network_def", "%configs/metadata.json#version", "kidney@left 5% $"]


def test_bundle_names_are_data_never_monai_expressions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    labels = {"0": "background", **{str(i + 1): name for i, name in enumerate(HOSTILE)}}
    spec = dataclasses.replace(segmentation_spec(3), num_outputs=len(labels))
    run = write_run(tmp_path / "run", spec, segmentation_preprocessing(3), {"labels": labels})
    bundle = export_bundle(run, tmp_path / "bundle")
    parser = ConfigParser()
    parser.read_config(bundle / "configs" / "inference.json")
    parser.read_meta(bundle / "configs" / "metadata.json")
    assert parser.get_parsed_content("medtl::labels") == labels
    assert parser.get_parsed_content("_meta_::network_data_format::outputs::pred::channel_def") == labels
    assert type(parser.get_parsed_content("network_def")).__name__ == "UNet"
    assert not (tmp_path / "PWNED").exists()

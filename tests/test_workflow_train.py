"""`medtl.workflow.train.train` on tiny real tasks: events instead of prints, the run folder, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medtl.errors import MedtlError
from medtl.training.events import EpochEnd, LogLine, StepProgress, TrainEvent
from medtl.training.run_folder import RunFolder
from medtl.workflow import defaults
from medtl.workflow.request import InvalidRequest
from medtl.workflow.train import TrainRequest, train

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="session")
def bone_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bone in 5 real CT slices (4 training, 1 validation), from pydicom's and pydicom-data's files."""
    from medtl.data.tasks import build_task

    return build_task("ct_bone", tmp_path_factory.mktemp("ct_bone"))


@pytest.fixture(scope="session")
def orientation_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Upright vs rotated CT and MR slices (200 training, 56 validation items)."""
    from medtl.data.tasks import build_task

    return build_task("orientation", tmp_path_factory.mktemp("orientation"))


def test_reports_through_events_only_and_never_overwrites_a_run(bone_task: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events: list[TrainEvent] = []
    result = train(TrainRequest(bone_task, "segmentation", tmp_path, model="unet", epochs=1), events.append)
    assert result.summary.stopped_because == "completed" and result.out_dir == tmp_path == result.summary.run_dir
    assert capsys.readouterr() == ("", "")  # the engine reports through events only
    messages = [e.message for e in events if isinstance(e, LogLine)]
    assert any(m.startswith("weights: random initialisation") for m in messages)
    assert any(m.startswith("data: 4 training and 1 validation cases") for m in messages)
    steps = [e for e in events if isinstance(e, StepProgress)]
    assert steps[0].steps_per_epoch == defaults.MIN_TRAIN_ITEMS_PER_EPOCH // 8  # 4 cases repeated to 32 items, batch 8
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1]
    load_report = json.loads((tmp_path / "load_report.json").read_text())
    assert load_report["loaded"] == [] and load_report["new"]
    assert len(RunFolder(tmp_path).read_metrics()) == 1
    with pytest.raises(InvalidRequest, match="already holds a training run; resume it") as refused:
        train(TrainRequest(bone_task, "segmentation", tmp_path, model="unet", epochs=1))
    assert refused.value.field == "out_dir" and "--" not in str(refused.value)  # the user's words, no CLI flag


def test_compare_scratch_needs_pretrained_weights(bone_task: Path, tmp_path: Path) -> None:
    with pytest.raises(MedtlError, match="no pretrained weights"):
        train(TrainRequest(bone_task, "segmentation", tmp_path, model="unet", epochs=1, compare_scratch=True))


def test_resume_without_a_run_is_refused(bone_task: Path, tmp_path: Path) -> None:
    with pytest.raises(MedtlError, match="nothing to resume"):
        train(TrainRequest(bone_task, "segmentation", tmp_path, resume=True))

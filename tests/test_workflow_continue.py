"""Training again from a finished run (``init_from``): its model and settings carry over, the new run names its parent,
and resuming needs only the run folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medtl.dicom.volume import Volume
from medtl.export.nifti import write_nifti
from medtl.training.events import EpochEnd, LogLine, TrainEvent
from medtl.training.run_folder import RunFolder, run_chain
from medtl.workflow.request import InvalidRequest
from medtl.workflow.train import TrainRequest, train
from tests.test_predict_classification import CLASSES, PREPROCESSING, SPEC, one_thread, picture, train_blob_detector
from tests.test_predict_runs import write_run

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

DISK_LABELS = {"0": "background", "1": "disk"}


def disk_datalist(folder: Path, labels: dict[str, str] | None = None, name: str = "datalist.json", count: int = 12) -> Path:
    """A bright disk on noise, 64 x 64 pixels of 1 mm: ``count`` cases, the last two for validation."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    rows, columns = np.mgrid[:64, :64]
    entries = []
    for i in range(count):
        radius = rng.uniform(6, 12)
        centre = rng.uniform(radius + 2, 62 - radius, 2)
        mask = ((rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 <= radius**2).astype(np.float32)
        image = rng.normal(100, 20, mask.shape) + 200 * mask
        for kind, array in (("image", image), ("mask", mask)):
            write_nifti(Volume(array[None].astype(np.float32), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)), folder / f"{kind}{i}.nii.gz")
        entries.append({"image": f"image{i}.nii.gz", "label": f"mask{i}.nii.gz", "patient_id": f"P{i}"})
    datalist = folder / name
    datalist.write_text(json.dumps({"training": entries[:-2], "validation": entries[-2:], "labels": labels or DISK_LABELS}))
    return datalist


def epochs_of(events: list[TrainEvent]) -> list[EpochEnd]:
    return [event for event in events if isinstance(event, EpochEnd)]


def messages(events: list[TrainEvent]) -> list[str]:
    return [event.message for event in events if isinstance(event, LogLine)]


@pytest.fixture(scope="module")
def disk_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return disk_datalist(tmp_path_factory.mktemp("disks"))


@pytest.fixture(scope="module")
def disk_run(disk_task: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[TrainEvent]]:
    """A small U-Net trained 3 epochs from scratch on the disks, and its events."""
    events: list[TrainEvent] = []
    with one_thread():
        result = train(TrainRequest(disk_task, "segmentation", tmp_path_factory.mktemp("runs") / "parent", model="unet", epochs=3), events.append)
    return result.out_dir, events


def test_training_again_starts_from_the_parents_model_and_names_it(disk_run: tuple[Path, list[TrainEvent]], tmp_path: Path) -> None:
    parent, parent_events = disk_run
    parent_summary = RunFolder(parent).read_summary()
    events: list[TrainEvent] = []
    with one_thread():
        result = train(TrainRequest(None, None, tmp_path / "child", init_from=parent, epochs=1), events.append)  # datalist and task: the parent's
    child = result.out_dir
    assert any("the same labels, so its output layer too" in message for message in messages(events))
    assert json.loads((child / "load_report.json").read_text())["new"] == []  # every tensor, the output layer included, is the parent's
    first = epochs_of(events)[0].metrics["mean_dice"]
    assert parent_summary.best_metric is not None and first >= parent_summary.best_metric - 0.05
    fresh_first = epochs_of(parent_events)[0].metrics["mean_dice"]  # the same network, data and seed, from random weights
    assert first > fresh_first + 0.2

    summary = json.loads((child / "summary.json").read_text())
    assert summary["parent_run"] == str(parent) and summary["pretrained_source"] == f"run:{parent}"
    assert result.summary.parent_run == str(parent)
    parent_config, child_config = RunFolder(parent).read_config(), RunFolder(child).read_config()
    assert child_config.preprocessing == parent_config.preprocessing and child_config.data["datalist"] == parent_config.data["datalist"]
    assert child_config.model["architecture"] == "unet" and child_config.train.epochs == 1 and parent_config.train.epochs == 3
    assert run_chain(child) == [child, parent]
    assert run_chain(parent) == [parent]

    results = RunFolder(child).read_case_results()  # the table's cases average to the run's validation figure
    assert [case.image.name for case in results.cases] == ["image10.nii.gz", "image11.nii.gz"]
    assert np.mean([case.dice["disk"] for case in results.cases]) == pytest.approx(summary["best_metric"], abs=1e-5)  # type: ignore[union-attr]


def test_more_labels_get_a_new_output_layer(disk_run: tuple[Path, list[TrainEvent]], disk_task: Path, tmp_path: Path) -> None:
    three_labels = disk_datalist(disk_task.parent, {**DISK_LABELS, "2": "ring"}, name="three_labels.json")
    events: list[TrainEvent] = []
    with one_thread():
        train(TrainRequest(three_labels, None, tmp_path / "child", init_from=disk_run[0], epochs=1), events.append)
    assert any("other labels (disk, ring), so a new output layer" in message for message in messages(events))
    report = json.loads((tmp_path / "child" / "load_report.json").read_text())
    assert sorted(report["new"]) == sorted(report["dropped"]) and len(report["new"]) < len(report["loaded"]) / 10  # only the output layers are new
    assert all("new head" in reason for reason in report["dropped"].values())
    assert json.loads((tmp_path / "child" / "config.json").read_text())["model"]["num_outputs"] == 3


def test_a_classifier_trained_again_keeps_what_it_learnt(tmp_path: Path) -> None:
    """A blob detector as parent; a copy of the same network with random weights as the baseline a fresh start gives."""
    rng = np.random.default_rng(1)
    entries = []
    for i in range(24):
        blob = i % 2 == 1
        write_nifti(Volume(picture(rng, tuple(rng.integers(6, 26, 2)) if blob else None)[None], (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)), tmp_path / f"{i}.nii.gz")
        entries.append({"image": f"{i}.nii.gz", "label": CLASSES[blob], "patient_id": f"P{i}"})
    datalist = tmp_path / "blobs.json"
    datalist.write_text(json.dumps({"training": entries[:16], "validation": entries[16:], "classes": CLASSES}))
    data = {"classes": CLASSES, "datalist": str(datalist)}
    with one_thread():
        trained = write_run(tmp_path / "trained", SPEC, PREPROCESSING, data, train_blob_detector())
        untrained = write_run(tmp_path / "untrained", SPEC, PREPROCESSING, data)
        first = {}
        for name, parent in (("trained", trained), ("untrained", untrained)):
            events: list[TrainEvent] = []
            train(TrainRequest(None, None, tmp_path / f"from_{name}", init_from=parent, epochs=1), events.append)
            first[name] = epochs_of(events)[0].metrics["balanced_accuracy"]
    assert first["trained"] >= 0.875 and first["trained"] > first["untrained"] + 0.2
    results = RunFolder(tmp_path / "from_trained").read_case_results()
    assert results.task == "classification" and len(results.cases) == 8 and results.roc and results.confusion_matrix


def test_what_training_again_refuses(disk_run: tuple[Path, list[TrainEvent]], disk_task: Path, tmp_path: Path) -> None:
    parent = disk_run[0]
    cases = [
        ({"init_from": tmp_path / "missing"}, "init_from", "no such run folder"),
        ({"init_from": parent, "model": "basicunet"}, "model", "keeps that run's network and weights; leave the model unset"),
        ({"init_from": parent, "task": "classification"}, "task", "is a segmentation run"),
        ({"init_from": parent, "resume": True}, "init_from", "a resumed run goes on from its own checkpoint"),
    ]
    for changes, field, message in cases:
        options = {"datalist": None, "task": None, "out_dir": tmp_path / "new", **changes}
        with pytest.raises(InvalidRequest, match=message) as refused:
            TrainRequest(**options)  # type: ignore[arg-type]
        assert refused.value.field == field and "--" not in str(refused.value)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((parent / "config.json").read_text())
    with pytest.raises(InvalidRequest, match="has not finished"):
        TrainRequest(disk_task, None, tmp_path / "new", init_from=unfinished)
    with pytest.raises(InvalidRequest, match="already holds a training run; resume it, or choose another output folder"):
        train(TrainRequest(None, None, parent, init_from=parent))


def test_resuming_needs_only_the_run_folder(disk_run: tuple[Path, list[TrainEvent]], tmp_path: Path) -> None:
    parent = disk_run[0]
    request = TrainRequest(None, None, parent, resume=True)
    assert request.task == "segmentation" and request.datalist == Path(RunFolder(parent).read_config().data["datalist"])
    with pytest.raises(InvalidRequest, match="nothing to resume") as refused:
        TrainRequest(None, None, tmp_path / "nothing", resume=True)
    assert refused.value.field == "resume"

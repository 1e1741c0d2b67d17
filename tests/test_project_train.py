"""`medtl train --project`: a network trains on a project's labels without a datalist, and the run is linked to the project."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medtl.cli import main
from medtl.data.sparse import Annotated
from medtl.dicom.series import load_series
from medtl.errors import InvalidRequest
from medtl.project import Project
from medtl.project.records import BRUSH
from medtl.workflow.train import PROJECT_DATA, TrainRequest, preview
from tests.dicomgen import SeriesSpec, phantom, write_series


def test_train_reads_its_data_straight_from_a_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "project"
    with Project.create(folder) as project:
        project.define_label("bright")
        for number in range(4):
            files = write_series(tmp_path / f"s{number}", phantom((4, 32, 32), seed=number), SeriesSpec(patient_id=f"P{number}", seed=number))
            project.add_dicom(files[0].parent)
            volume = load_series(files)
            mask = (volume.array > np.percentile(volume.array, 70)).astype(np.uint8)
            touched = Annotated().add(0, [1, 2]) if number % 2 else None  # two series partly annotated
            project.save_mask(volume.metadata["series_uid"], mask, volume, tool=BRUSH, touched=touched)
    run = tmp_path / "run"
    planned = preview(TrainRequest(None, None, run, model="unet", weights="none", project=folder))
    assert planned.architecture == "unet" and not run.exists()  # a preview writes nothing
    code = main(["train", "--project", str(folder), "--out", str(run), "--model", "unet", "--weights", "none", "--epochs", "1", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["project"] == str(folder) and config["data"]["datalist"] == str(run / PROJECT_DATA / "datalist.json")
    datalist = json.loads((run / PROJECT_DATA / "datalist.json").read_text())
    assert len(datalist["training"]) == 4 and datalist["labels"] == {"0": "background", "1": "bright", "2": "ignore"}
    with Project.open(folder, read_only=True) as project:
        assert [r.path for r in project.runs()] == [run] and project.history()[-1].tool == "training"


def test_a_project_is_an_alternative_to_a_datalist_not_an_addition(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="not a medtl project") as error:
        TrainRequest(None, None, tmp_path / "run", project=tmp_path)
    assert error.value.field == "project"
    Project.create(tmp_path / "p").close()
    with pytest.raises(InvalidRequest, match="not both"):
        TrainRequest(tmp_path / "dl.json", "segmentation", tmp_path / "run", project=tmp_path / "p")
    assert TrainRequest(None, None, tmp_path / "run", project=tmp_path / "p").task == "segmentation"

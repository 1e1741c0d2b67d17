"""Self-supervised pretraining: slices from real DICOM, views, the objective, the loop, the run folder as weights, and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import skimage.io
import torch
from pydicom.data import get_testdata_file

from medtl.cli import main
from medtl.models.registry import get_architecture
from medtl.models.spec import ModelSpec, build_model
from medtl.pretrain import pretrainer
from medtl.pretrain.objective import ObjectiveSettings, PretrainingNetwork, nt_xent, pretraining_loss
from medtl.pretrain.pretrainer import PretrainSettings
from medtl.pretrain.unlabelled import collect_unlabelled
from medtl.pretrain.views import ViewSettings, foreground_box, make_views
from medtl.progress import CancelToken
from medtl.training.events import StepProgress
from medtl.training.run_folder import RunFolder
from medtl.workflow import defaults
from medtl.workflow.pretrain import PretrainRequest, pretrain, pretrain_spec

SMALL = PretrainSettings(views=ViewSettings(crop_size=32), slices_per_series=16)
RUN_OPTIONS = {"epochs": 2, "device": "cpu", "batch_size": 8, "settings": SMALL}


@pytest.fixture(scope="module")
def study() -> Path:
    """The real MNI152 MR series as DICOM (built once per test session, in the isolated user folder)."""
    from medtl.sample_study import DICOM_FOLDER, sample_study_dir

    return sample_study_dir() / DICOM_FOLDER


@pytest.fixture(scope="module")
def run(study: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch pretraining run on the study."""
    out = tmp_path_factory.mktemp("pretrain") / "run"
    summary = pretrain(PretrainRequest((study,), out, **RUN_OPTIONS))  # type: ignore[arg-type]
    assert summary.stopped_because == "completed" and summary.epochs == 2
    return out


def test_slices_of_a_real_series_are_normalised_and_counted(study: Path) -> None:
    data = collect_unlabelled([study], slices_per_series=16)
    assert data.summary() == {"patients": 1, "volumes": 1, "slices": 16, "modalities": {"MR": 1}, "skipped_inputs": 0}
    first = data.slices[0]
    assert first.dtype == np.float16 and first.shape == (197, 233)  # [x, y] of an axial 197 x 233 slice
    assert 0.0 <= float(min(s.min() for s in data.slices)) and float(max(s.max() for s in data.slices)) <= 1.0
    assert all((s > 0.05).mean() >= 0.1 for s in data.slices)  # only slices with anatomy


def test_broken_inputs_are_reported_and_skipped(study: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    slices = collect_unlabelled([study], slices_per_series=2).slices
    for index, picture in enumerate(slices):
        skimage.io.imsave(folder / f"good{index}.png", (np.asarray(picture, np.float32).T * 255).astype(np.uint8), check_contrast=False)
    (folder / "broken.nii.gz").write_bytes(b"not a NIfTI file at all")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but cut short")
    ct = Path(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]
    (folder / "truncated.dcm").write_bytes(ct.read_bytes()[: ct.stat().st_size // 2])
    data = collect_unlabelled([folder, tmp_path / "missing"])
    reported = {problem.path.name: problem.reason for problem in data.problems}
    assert set(reported) == {"broken.nii.gz", "broken.png", "truncated.dcm", "missing"}, reported
    assert "NIfTI" in reported["broken.nii.gz"] and "picture" in reported["broken.png"] and reported["missing"] == "no such file or folder"
    assert data.volumes == 2 and len(data) == 2 and data.patients == 2  # the good pictures, one patient each


def test_views_are_reproducible_cut_out_and_without_flips() -> None:
    image = torch.zeros(64, 80)
    image[10:50, 20:70] = torch.linspace(0, 1, 50)  # a ramp: a flip would reverse it
    settings = ViewSettings(crop_size=32, rotate_degrees=0.0, intensity_scale=0.0, intensity_shift=0.0, noise_std=0.0, zoom_range=(1.0, 1.0))
    box = foreground_box(image.numpy())
    assert box == (10, 50, 23, 70)  # the ramp's first three columns are below 5 % of the range
    first = make_views([image] * 4, [box] * 4, settings, torch.Generator().manual_seed(3))
    again = make_views([image] * 4, [box] * 4, settings, torch.Generator().manual_seed(3))
    assert torch.equal(first.masked_a, again.masked_a) and torch.equal(first.view_b, again.view_b)
    assert first.masked_a.shape == first.clean_a.shape == first.mask_a.shape == (4, 1, 32, 32)
    assert 0.25 <= float(first.mask_a.mean()) <= 0.6
    visible = first.mask_a == 0
    assert torch.equal(first.masked_a[visible], first.clean_a[visible])  # no noise configured: only the cut-out differs
    rows = first.clean_a[:, 0]
    inside = rows[:, :, 1:] - rows[:, :, :-1]
    assert float(inside.min()) >= -1e-5  # the ramp still increases along the columns: not mirrored


def test_nt_xent_prefers_matching_pairs() -> None:
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(8, 16, generator=generator)
    matched = nt_xent(z, z + 0.01 * torch.randn(8, 16, generator=generator), 0.2)
    shuffled = nt_xent(z, z[torch.randperm(8, generator=generator)], 0.2)
    assert float(matched) < 0.25 and float(shuffled) > 2.0


def test_the_loss_decreases_on_fixed_data(study: Path) -> None:
    torch.manual_seed(0)
    spec = pretrain_spec("basicunet", on_gpu=False)
    backbone, _ = build_model(spec)
    net = PretrainingNetwork(backbone, get_architecture("basicunet"), 32)
    images = [torch.from_numpy(s.astype(np.float32)) for s in collect_unlabelled([study], slices_per_series=8).slices]
    views = make_views(images, [foreground_box(i.numpy()) for i in images], ViewSettings(crop_size=32), torch.Generator().manual_seed(1))
    optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3)
    history = []
    for _ in range(10):
        loss, parts = pretraining_loss(net, views, ObjectiveSettings())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append((float(loss.detach()), parts))
    (first, first_parts), (last, last_parts) = history[0], history[-1]
    assert last < 0.75 * first, history
    assert last_parts["contrastive"] < first_parts["contrastive"] and last_parts["reconstruction"] < 0.5 * first_parts["reconstruction"]


def test_the_run_is_a_weight_source_for_a_new_head(run: Path, study: Path) -> None:
    config = json.loads((run / "config.json").read_text())
    assert "contrastive" in config["pretraining"]["objective_text"]  # how it was pretrained, beside the run's settings
    assert RunFolder(run).read_config().model == config["model"]
    spec = ModelSpec.from_dict(config["model"])
    assert (spec.architecture, spec.spatial_dims, spec.weights) == ("basicunet", 2, None)
    assert spec.arch_params == json.loads(json.dumps(pretrain_spec("basicunet").arch_params))  # the CPU default for 2D segmentation
    assert [record["epoch"] for record in RunFolder(run).read_metrics()] == [1, 2]
    # Fine-tuning with three labels (pretraining had two outputs), as `medtl train --model basicunet --weights run:RUN` chooses it.
    chosen = defaults.choose_spec("segmentation", defaults.DataProfile("MR", 2, 1), 3, "basicunet", f"run:{run}")
    model, report = build_model(chosen)
    architecture = get_architecture("basicunet")
    assert report.backbone_fraction == 1.0 and not report.dropped
    assert report.loaded and all(architecture.stage_of(name) is not None for name in report.loaded)
    assert {"final_conv.weight", "final_conv.bias"} <= set(report.new)
    assert model.final_conv.out_channels == 3  # type: ignore[union-attr]
    # What the run says about itself: counts, never the patient.
    header = pydicom.dcmread(next(study.iterdir()), stop_before_pixels=True)
    card = (run / "model_card.md").read_text()
    summary = json.loads((run / "summary.json").read_text())  # the file as written, flat
    assert "self-supervised" in card and "patients: 1" in card and "2D slices used: 16" in card and "Intended use" in card
    assert summary["data"]["slices"] == 16 and summary["epochs"] == 2 and summary["seconds"] > 0
    for text in (card, json.dumps(summary), json.dumps(config)):
        assert str(header.PatientName) not in text and str(header.PatientID) not in text


def test_cancel_stops_within_a_step_and_resume_matches_an_uninterrupted_run(run: Path, study: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cancel = CancelToken()
    steps_after_cancel: list[StepProgress] = []

    def on_event(event: object) -> None:
        if isinstance(event, StepProgress):
            if cancel.cancelled:
                steps_after_cancel.append(event)
            elif (event.epoch, event.step) == (2, 1):
                cancel.cancel()

    stopped = pretrain(PretrainRequest((study,), out, **RUN_OPTIONS), on_event, cancel)  # type: ignore[arg-type]
    assert stopped.stopped_because == "cancelled" and stopped.epochs == 1 and not steps_after_cancel
    assert (out / "checkpoint.pt").is_file() and (out / "best_model.safetensors").is_file()
    resumed = pretrain(PretrainRequest((study,), out, resume=True, device="cpu"))
    assert resumed.stopped_because == "completed" and resumed.epochs == 2
    assert [record["epoch"] for record in RunFolder(out).read_metrics()] == [1, 2]
    interrupted, straight = RunFolder(out).load_best_model(), RunFolder(run).load_best_model()
    assert interrupted.keys() == straight.keys()
    assert all(torch.allclose(interrupted[name].float(), straight[name].float(), atol=1e-5) for name in straight)


def test_a_time_budget_plans_the_schedule_and_ends_the_run(study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrainer, "BUDGET_PLAN_STEPS", 3)
    ticks = iter(range(10**6))  # every clock reading is 1 s later: a step takes a few seconds
    lines: list[str] = []
    summary = pretrain(
        PretrainRequest((study,), tmp_path / "run", epochs=100, time_limit_minutes=0.5, device="cpu", batch_size=8, settings=SMALL),
        lambda event: lines.append(getattr(event, "message", "")), clock=lambda: float(next(ticks)),
    )  # fmt: skip
    planned = [line for line in lines if line.startswith("time budget: about")]
    assert len(planned) == 1, lines  # planned once, after the first steps (of two epochs: an epoch is two steps here)
    planned_steps = int(planned[0].split()[3])
    assert summary.stopped_because == "time_limit" and 3 <= summary.details["steps"] <= planned_steps + 1 < 20 and summary.epochs < 100


def test_cli_pretrains_and_prints_how_to_fine_tune(study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli run"
    options = ["--out", str(out), "--epochs", "1", "--device", "cpu", "--batch-size", "8", "--crop-size", "32", "--slices-per-series", "8", "--no-catalog"]
    assert main(["pretrain", str(study), *options]) == 0
    printed = capsys.readouterr()
    assert f"run folder: {out}" in printed.out and "--model basicunet --weights 'run:" in printed.out
    assert "epoch 1: train loss" in printed.err and "finished (completed)" in printed.err
    assert main(["pretrain", str(study), *options]) == 2
    assert "error: --out: " in (err := capsys.readouterr().err) and "already holds a run; resume it" in err
    assert main(["pretrain", str(tmp_path / "nothing"), "--out", str(tmp_path / "other"), "--device", "cpu"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"medtl pretrain: error: PATH: the input {tmp_path / 'nothing'} does not exist"
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    assert main(["pretrain", str(broken), "--out", str(tmp_path / "other"), "--device", "cpu"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("medtl pretrain: error: no usable images") and "picture" in error and "\n" not in error
    shutil.rmtree(out)


def test_train_fine_tunes_from_the_run_without_naming_the_model(run: Path, tmp_path: Path) -> None:
    """`medtl train --weights run:RUN` alone takes the run's architecture and settings, with a new head."""
    from medtl.data.tasks import build_task
    from medtl.workflow.train import TrainRequest, train

    datalist = build_task("mni_brain", tmp_path / "task")
    document = json.loads(datalist.read_text())
    document["training"] = document["training"][10:14] + document["training"][20:22]
    datalist.write_text(json.dumps(document))
    summary = train(TrainRequest(datalist, "segmentation", tmp_path / "ft", weights=f"run:{run}", epochs=1, device="cpu")).summary
    assert summary.stopped_because == "completed" and summary.pretrained_source == f"run:{run}"
    stored = ModelSpec.from_dict(RunFolder(tmp_path / "ft").read_config().model)
    assert stored.architecture == "basicunet" and stored.arch_params["features"] == list(pretrain_spec("basicunet").arch_params["features"])
    load_report = json.loads((tmp_path / "ft" / "load_report.json").read_text())
    assert load_report["backbone_fraction"] == 1.0 and "final_conv.weight" in load_report["new"]

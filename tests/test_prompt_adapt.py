""""Adapt to my labels" on real anatomy: LiteMedSAM fine-tuned on the putamina of 4 labelled axial slices of the Colin27 head
(AAL atlas, Debian's mricron-data, as tests/test_prompt.py uses), scored on 2 held-out slices.

The image encoder runs once per labelled slice (seconds on 2 CPU cores); training then costs only the decoder, for a few
tens of steps. One adapted run is shared by the module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from medtl.data.images import read_image
from medtl.dicom.volume import Volume
from medtl.errors import InvalidRequest
from medtl.models.medsam import load_prompt_model
from medtl.progress import CancelToken
from medtl.prompt.embedding import SliceKey
from medtl.prompt.engine import PromptModel
from medtl.prompt.preprocessing import window_for
from medtl.prompt.request import PromptRequest
from medtl.training.events import StepProgress, TrainEvent
from medtl.training.run_folder import RunFolder
from medtl.workflow.adapt import AdaptRequest, adapt, request_from_datalist
from tests.test_prompt import COLIN, bbox, dice
from tests.test_training_synthetic import one_thread  # noqa: F401 - autouse fixture: one thread is faster on 2 shared cores

PUTAMEN = (73, 74)  # AAL: left and right
IGNORE = 200
TRAINING = (66, 71, 76, 81)
HELD_OUT = (68, 79)
EPOCHS, STEPS, BATCH = 3, 5, 4  # 15 decoder steps of 4 prompts


def sparse_mask(folder: Path, labels: Sequence[int], slices: Sequence[int], values: Sequence[int] | None = None, ignore: int = IGNORE) -> tuple[Path, Path]:
    """(the Colin27 head, a mask on its grid holding ``labels`` of the AAL atlas (as ``values``, else as they are) on axial
    ``slices`` and ``ignore`` elsewhere)."""
    from medtl.export.nifti import write_nifti

    atlas = read_image(COLIN / "aal.nii.gz")
    mask = np.full(atlas.shape, ignore, dtype=np.uint8)
    for index in slices:
        mask[index] = 0
        for label, value in zip(labels, values or labels):
            mask[index][atlas.array[index] == label] = value
    path = folder / "labels.nii.gz"
    write_nifti(Volume(mask, atlas.spacing, atlas.origin, atlas.direction), path)
    return COLIN / "ch2.nii.gz", path


def request(folder: Path, out: str = "run", **settings: object) -> AdaptRequest:
    image, label = sparse_mask(folder, PUTAMEN, TRAINING + HELD_OUT)
    options = {"labels": PUTAMEN, "ignore": IGNORE, "held_out": HELD_OUT, "epochs": EPOCHS, "steps_per_epoch": STEPS, "batch_size": BATCH, "device": "cpu", **settings}
    return AdaptRequest(image, label, out_dir=folder / out, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    folder, threads = tmp_path_factory.mktemp("adapt"), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        adapt(request(folder))
    finally:
        torch.set_num_threads(threads)
    return folder / "run"


def test_the_run_folder_is_complete_and_names_its_slices(adapted: Path) -> None:
    run = RunFolder(adapted)
    for path in (run.config_path, run.metrics_path, run.checkpoint_path, run.best_model_path, run.summary_path, run.model_card_path):
        assert path.is_file(), path
    assert run.model_problem() is None
    config = json.loads(run.config_path.read_text())
    assert config["model"]["architecture"] == "medsam"
    summary = run.read_summary()
    assert summary.epochs == EPOCHS and summary.stopped_because == "completed"
    assert summary.details["training_slices"] == list(TRAINING) and summary.details["held_out_slices"] == list(HELD_OUT)
    assert len(run.read_metrics()) == EPOCHS
    assert "zero-shot" in run.model_card_path.read_text()


def test_adapting_does_not_make_the_held_out_slices_worse(adapted: Path) -> None:
    details = RunFolder(adapted).read_summary().details
    zero, tuned = details["zero_shot_dice"], details["adapted_dice"]
    assert 0.3 < zero < 0.8  # measured 0.51 (boxes jittered by up to 5 pixels)
    assert tuned >= zero + 0.1  # measured 0.82 after 15 steps of 4 prompts


def test_the_adapted_run_is_the_prompt_model(adapted: Path) -> None:
    model = PromptModel(load_prompt_model(f"run:{adapted}"))
    head = read_image(COLIN / "ch2.nii.gz").array
    truth = read_image(COLIN / "aal.nii.gz").array[HELD_OUT[0]] == PUTAMEN[0]
    embedding = model.embed(SliceKey("colin27", "axial", HELD_OUT[0]), head[HELD_OUT[0]], window_for(head, "MR"))
    mask = model.segment(embedding, PromptRequest(truth.shape, bbox(truth))).mask
    assert dice(mask, truth) >= 0.7  # measured 0.85
    bundled = PromptModel.load("medsam").network.state_dict()
    changed = [name for name, tensor in model.network.state_dict().items() if not np.array_equal(tensor.numpy(), bundled[name].numpy())]
    assert changed and all(name.startswith("mask_decoder.") for name in changed)


def test_a_cancelled_adaptation_resumes_to_the_uninterrupted_result(adapted: Path, tmp_path: Path) -> None:
    cancel = CancelToken()

    def cancel_in_epoch_2(event: TrainEvent) -> None:
        if isinstance(event, StepProgress) and event.epoch == 2 and event.step == 3:
            cancel.cancel()

    first = adapt(request(tmp_path), cancel_in_epoch_2, cancel)
    assert first.cancelled and first.epochs == 1
    with pytest.raises(InvalidRequest) as refused:
        request(tmp_path)
    assert refused.value.field == "out_dir"
    resumed = adapt(request(tmp_path, resume=True))
    assert resumed.stopped_because == "completed" and resumed.epochs == EPOCHS
    reference = RunFolder(adapted).load_best_model()
    again = RunFolder(tmp_path / "run").load_best_model()
    assert all(np.allclose(reference[name].numpy(), again[name].numpy(), atol=1e-5) for name in reference)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"labels": ()}, "labels"),
        ({"labels": (0,)}, "labels"),
        ({"labels": (IGNORE,)}, "labels"),
        ({"plane": "oblique"}, "plane"),
        ({"trains": "everything"}, "trains"),
        ({"time_limit_minutes": -1.0}, "time_limit_minutes"),
        ({"epochs": None}, "time_limit_minutes"),
        ({"image": Path("/nowhere/head.nii.gz")}, "image"),
        ({"resume": True}, "resume"),
    ],
)
def test_a_request_that_cannot_work_names_its_field(tmp_path: Path, settings: dict[str, object], field: str) -> None:
    image, label = sparse_mask(tmp_path, PUTAMEN, TRAINING)
    options = {"labels": PUTAMEN, "ignore": IGNORE, "epochs": 1, **settings}
    with pytest.raises(InvalidRequest) as error:
        AdaptRequest(options.pop("image", image), label, out_dir=tmp_path / "run", **options)  # type: ignore[arg-type]
    assert error.value.field == field


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [({"held_out": (50,)}, "held_out", "not labelled"), ({"held_out": TRAINING}, "held_out", "every labelled slice"), ({"labels": (99,)}, "labels", "no voxel")],
)
def test_labels_that_cannot_train_are_refused_before_anything_runs(tmp_path: Path, settings: dict[str, object], field: str, words: str) -> None:
    image, label = sparse_mask(tmp_path, PUTAMEN, TRAINING)
    with pytest.raises(InvalidRequest, match=words) as error:
        adapt(AdaptRequest(image, label, out_dir=tmp_path / "run", **{"labels": PUTAMEN, "ignore": IGNORE, "epochs": 1, **settings}))  # type: ignore[arg-type]
    assert error.value.field == field
    assert not (tmp_path / "run").exists()


def test_medtl_train_with_model_medsam_builds_the_request_from_the_datalist(tmp_path: Path) -> None:
    image, label = sparse_mask(tmp_path, PUTAMEN, TRAINING, values=(1, 2), ignore=3)
    labels = {"0": "background", "1": "putamen L", "2": "putamen R", "3": "ignore"}
    datalist = tmp_path / "dl.json"
    datalist.write_text(json.dumps({"training": [{"image": str(image), "label": str(label)}], "labels": labels}))
    built = request_from_datalist(datalist, tmp_path / "run", time_limit_minutes=3.0)
    assert (built.image, built.label, built.labels, built.ignore) == (image, label, (1, 2), 3)
    two = tmp_path / "two.json"
    two.write_text(json.dumps({"training": [{"image": str(image), "label": str(label)}] * 2, "labels": labels}))
    with pytest.raises(InvalidRequest, match="one image") as error:
        request_from_datalist(two, tmp_path / "run", epochs=1)
    assert error.value.field == "datalist"


def test_medtl_train_model_medsam_adapts_and_prints_both_dice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from medtl.cli import main

    image, label = sparse_mask(tmp_path, PUTAMEN, (71, 76), values=(1, 2), ignore=3)
    datalist = tmp_path / "dl.json"
    datalist.write_text(json.dumps({"training": [{"image": str(image), "label": str(label)}], "labels": {"0": "background", "1": "L", "2": "R", "3": "ignore"}}))
    assert main(["train", "--model", "medsam", "--datalist", str(datalist), "--out", str(tmp_path / "run"), "--epochs", "1", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "zero-shot" in printed and f"run:{tmp_path / 'run'}" in printed
    assert RunFolder(tmp_path / "run").read_summary().details["adapted_dice"] is not None
    assert main(["train", "--model", "medsam", "--weights", "none", "--datalist", str(datalist), "--out", str(tmp_path / "other"), "--epochs", "1"]) != 0
    assert "--weights" in capsys.readouterr().err


def test_bare_medtl_train_resume_continues_an_adaptation_with_its_stored_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from medtl.cli import main
    from medtl.workflow.train import TrainRequest, train

    image, label = sparse_mask(tmp_path, PUTAMEN, (66, 71, 76), values=(1, 2), ignore=3)
    datalist = tmp_path / "dl.json"
    datalist.write_text(json.dumps({"training": [{"image": str(image), "label": str(label)}], "labels": {"0": "background", "1": "L", "2": "R", "3": "ignore"}}))
    run, cancel = tmp_path / "run", CancelToken()

    def cancel_in_epoch_2(event: TrainEvent) -> None:
        if isinstance(event, StepProgress) and event.epoch == 2 and event.step == 3:
            cancel.cancel()

    first = train(TrainRequest(datalist, None, run, model="medsam", epochs=2, seed=3, device="cpu"), cancel_in_epoch_2, cancel)
    assert first.cancelled
    held_out = RunFolder(run).read_config().data["held_out"]
    assert main(["train", "--resume", str(run)]) == 0
    summary = RunFolder(run).read_summary()
    assert summary.stopped_because == "completed" and summary.epochs == 2 and [r["epoch"] for r in RunFolder(run).read_metrics()] == [1, 2]
    assert summary.details["held_out_slices"] == held_out and RunFolder(run).read_config().train.seed == 3
    assert f"run:{run}" in capsys.readouterr().out


def test_training_the_encoders_last_stage_starts_from_what_the_whole_encoder_makes() -> None:
    import torch

    from medtl.models.medsam import load_medsam
    from medtl.prompt.adapt import DECODER, DECODER_AND_ENCODER_LAST, AdaptedParts, cache_inputs, jittered_boxes, labelled_slices

    head, atlas = read_image(COLIN / "ch2.nii.gz").array, read_image(COLIN / "aal.nii.gz").array
    items = [item for item in labelled_slices(head, atlas, "axial", PUTAMEN[:1], None) if item.index == TRAINING[1]]
    medsam, window, boxes = load_medsam(), window_for(head, "MR"), jittered_boxes(items, 0)
    outputs = {}
    for trains in (DECODER, DECODER_AND_ENCODER_LAST):
        parts = AdaptedParts(medsam, trains).eval()
        cached = cache_inputs(medsam, items, window, trains, torch.device("cpu"))[items[0].index]
        with torch.no_grad():
            outputs[trains] = parts(cached[None], boxes)[0]
        trained = {name.split(".")[0] for name, parameter in parts.named_parameters() if parameter.requires_grad}
        assert trained == ({"mask_decoder"} if trains == DECODER else {"mask_decoder", "encoder_last"})
    assert torch.allclose(outputs[DECODER], outputs[DECODER_AND_ENCODER_LAST], atol=1e-3)

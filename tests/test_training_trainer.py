"""The Trainer on a tiny model and learnable synthetic data: events, run folder, cancel, resume, budget, OOM."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medtl.errors import MedtlError
from medtl.progress import CancelToken
from medtl.training.events import EpochEnd, Finished, LogLine, StepProgress, TrainEvent
from medtl.training.metrics import MetricAccumulator
from medtl.training.run_folder import RunFolder
from tests.test_training_synthetic import (
    FakeClock,
    TinyClassifier,
    build_classifier,
    loaders,
    make_trainer,
    one_thread,  # noqa: F401 - autouse fixture
    tiny_segmenter,
)

STEPS = 6  # 48 training samples in batches of 8


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


def without_times(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "elapsed_seconds")} for r in records]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    """An uninterrupted 4-epoch run that interrupted runs must reproduce (dropout: the RNG matters)."""
    run = RunFolder(tmp_path_factory.mktemp("reference"))
    make_trainer(run.path, model=build_classifier(dropout=0.2)).fit()
    return run


def test_fit_learns_emits_events_in_order_and_writes_the_run_folder(tmp_path: Path) -> None:
    events: list[TrainEvent] = []
    summary = make_trainer(tmp_path, epochs=6, on_event=events.append, model_spec_dict={"architecture": "mlp", "weights": {"source": "run:/x", "licence": "CC-BY-4.0"}}).fit()

    assert isinstance(events[0], LogLine) and "training on CPU" in events[0].message
    assert isinstance(events[-1], Finished) and events[-1].summary == summary
    body = [e for e in events[1:-1] if not isinstance(e, LogLine)]
    assert len(body) == 6 * (STEPS + 1)
    for epoch in range(1, 7):
        chunk = body[(epoch - 1) * (STEPS + 1) : epoch * (STEPS + 1)]
        assert [(e.epoch, e.step, e.steps_per_epoch) for e in chunk[:-1]] == [(epoch, s, STEPS) for s in range(1, STEPS + 1)]
        assert isinstance(chunk[-1], EpochEnd) and chunk[-1].epoch == epoch and "balanced_accuracy" in chunk[-1].metrics
    steps = [e for e in body if isinstance(e, StepProgress)]
    assert all(e.loss > 0 and e.eta_seconds is not None for e in steps)
    assert steps[-1].eta_seconds == 0

    run = RunFolder(tmp_path)
    records = run.read_metrics()
    assert [r["epoch"] for r in records] == list(range(1, 7))
    assert records[-1]["balanced_accuracy"] > records[0]["balanced_accuracy"] + 0.1  # it really learns
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert summary.best_metric == max(r["balanced_accuracy"] for r in records)
    assert summary.stopped_because == "completed" and summary.epochs == 6
    assert summary.pretrained_source == "run:/x"
    assert run.read_summary() == summary
    config = run.read_config()
    assert config.train.epochs == 6 and config.model["architecture"] == "mlp"
    card = run.model_card_path.read_text()
    assert "not for diagnosis" in card.replace("must not be used for diagnosis", "not for diagnosis") and "CC-BY-4.0" in card


def test_best_model_reloads_with_safetensors_and_scores_the_best_metric(tmp_path: Path) -> None:
    summary = make_trainer(tmp_path).fit()
    model = TinyClassifier()
    model.load_state_dict(RunFolder(tmp_path).load_best_model())
    accumulator = MetricAccumulator("classification")
    with torch.no_grad():
        for batch in loaders()[1]:
            accumulator.update(model(batch["image"]), batch["label"])
    assert accumulator.compute()["balanced_accuracy"] == pytest.approx(summary.best_metric)


def test_checkpoint_is_readable_with_weights_only(tmp_path: Path) -> None:
    make_trainer(tmp_path, epochs=1).fit()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "best_metric", "ranks", "config"} <= state.keys()
    assert state["epoch"] == 1 and state["config"]["epochs"] == 1


def test_resume_after_a_crash_reaches_the_uninterrupted_result(tmp_path: Path, reference: RunFolder) -> None:
    def crash_after_epoch_three(event: TrainEvent) -> None:
        if isinstance(event, EpochEnd) and event.epoch == 3:  # metrics line written, checkpoint not yet
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_trainer(tmp_path, model=build_classifier(dropout=0.2), on_event=crash_after_epoch_three).fit()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 2

    summary = make_trainer(tmp_path, model=build_classifier(seed=99, dropout=0.2)).fit(resume=True)
    run = RunFolder(tmp_path)
    assert_same_weights(run.load_checkpoint()["model"], reference.load_checkpoint()["model"])
    assert_same_weights(run.load_best_model(), reference.load_best_model())
    assert without_times(run.read_metrics()) == without_times(reference.read_metrics())
    assert summary.best_metric == reference.read_summary().best_metric


@pytest.mark.parametrize("cancel_at_step", [3, STEPS])  # mid-epoch, and during the validation after the last step
def test_cancel_stops_within_one_step_leaves_a_checkpoint_and_resumes_exactly(tmp_path: Path, reference: RunFolder, cancel_at_step: int) -> None:
    token = CancelToken()
    events: list[TrainEvent] = []

    def cancel_in_epoch_two(event: TrainEvent) -> None:
        events.append(event)
        if isinstance(event, StepProgress) and (event.epoch, event.step) == (2, cancel_at_step):
            token.cancel()

    summary = make_trainer(tmp_path, model=build_classifier(dropout=0.2), on_event=cancel_in_epoch_two, cancel=token).fit()
    last_step = [e for e in events if isinstance(e, StepProgress)][-1]
    assert (last_step.epoch, last_step.step) == (2, cancel_at_step)
    assert summary.stopped_because == "cancelled" and summary.epochs == 1
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["progress"]["step_in_epoch"] == cancel_at_step
    TinyClassifier().load_state_dict(state["model"])  # usable as it is

    make_trainer(tmp_path, model=build_classifier(seed=99, dropout=0.2)).fit(resume=True)
    run = RunFolder(tmp_path)
    assert_same_weights(run.load_checkpoint()["model"], reference.load_checkpoint()["model"])
    assert without_times(run.read_metrics()) == without_times(reference.read_metrics())


def test_resuming_a_finished_run_returns_its_summary(tmp_path: Path) -> None:
    summary = make_trainer(tmp_path, epochs=2).fit()
    events: list[TrainEvent] = []
    assert make_trainer(tmp_path, epochs=2, on_event=events.append).fit(resume=True) == summary
    assert not any(isinstance(e, StepProgress) for e in events)
    assert len(RunFolder(tmp_path).read_metrics()) == 2


def test_a_fresh_run_replaces_what_an_earlier_run_left(tmp_path: Path) -> None:
    make_trainer(tmp_path, epochs=3).fit()
    make_trainer(tmp_path, epochs=1).fit()
    assert [r["epoch"] for r in RunFolder(tmp_path).read_metrics()] == [1]


def ticking_classifier(clock: FakeClock) -> TinyClassifier:
    """Every forward (training or validation) takes one fake second."""

    def tick(_: torch.Tensor) -> None:
        clock.now += 1.0

    return build_classifier(on_forward=tick)


def test_time_budget_plans_the_schedule_from_the_first_epoch(tmp_path: Path) -> None:
    clock = FakeClock()
    events: list[TrainEvent] = []
    summary = make_trainer(tmp_path, model=ticking_classifier(clock), clock=clock, epochs=50, time_limit_minutes=0.5, on_event=events.append).fit()
    # First epoch: 6 training + 3 validation forwards = 9 s, so 3 epochs fit in 30 s.
    assert any(isinstance(e, LogLine) and e.message.startswith("time budget: 3 epoch(s)") for e in events)
    assert summary.epochs == 3 and summary.stopped_because == "time_limit"
    assert summary.seconds <= 30
    assert RunFolder(tmp_path).read_metrics()[-1]["lr"] == 0.0  # the cosine ended with the budget


def test_time_budget_stops_after_the_step_that_exceeds_it_and_validates(tmp_path: Path) -> None:
    clock = FakeClock()
    events: list[TrainEvent] = []

    def slow_step(event: TrainEvent) -> None:
        events.append(event)
        if isinstance(event, StepProgress) and (event.epoch, event.step) == (2, 2):
            clock.now += 100.0

    summary = make_trainer(tmp_path, model=ticking_classifier(clock), clock=clock, epochs=50, time_limit_minutes=1, on_event=slow_step).fit()
    last_step = [e for e in events if isinstance(e, StepProgress)][-1]
    assert (last_step.epoch, last_step.step) == (2, 2)
    assert summary.stopped_because == "time_limit" and summary.epochs == 2
    assert RunFolder(tmp_path).read_metrics()[-1]["balanced_accuracy"] is not None  # the last state was validated


def no_learning(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """A loss with zero gradients: with no weight decay the weights never change."""
    return logits.sum() * 0.0


def test_early_stopping_after_patience_validations_without_improvement(tmp_path: Path) -> None:
    summary = make_trainer(tmp_path, epochs=20, early_stopping_patience=2, loss_fn=no_learning).fit()
    assert summary.stopped_because == "early_stopping"
    assert summary.epochs == 3 and summary.best_epoch == 1


def test_epoch_hook_lines_are_logged(tmp_path: Path) -> None:
    model = build_classifier()
    first = model.body[1]
    initial = first.weight.detach().clone()
    frozen_weights: list[torch.Tensor] = []

    def hook(epoch: int) -> str | None:
        if epoch == 0:
            first.requires_grad_(False)
            return "froze stage body.1"
        if epoch == 2:
            frozen_weights.append(first.weight.detach().clone())
            first.requires_grad_(True)
            return "unfroze stage body.1"
        return None

    events: list[TrainEvent] = []
    make_trainer(tmp_path, model=model, epoch_hook=hook, on_event=events.append).fit()
    assert [e.message for e in events if isinstance(e, LogLine) and "stage" in e.message] == ["froze stage body.1", "unfroze stage body.1"]
    torch.testing.assert_close(frozen_weights[0], initial)
    assert not torch.equal(first.weight.detach(), initial)


def freeze_first_layer_until_epoch_two(model: TinyClassifier):  # noqa: ANN201
    def hook(epoch: int) -> str | None:
        if epoch in (0, 2):
            model.body[1].requires_grad_(epoch == 2)
            return f"{'unfroze' if epoch == 2 else 'froze'} stage body.1"
        return None

    return hook


def test_resume_replays_epoch_hooks_so_freezing_is_as_it_was(tmp_path: Path) -> None:
    model = build_classifier()
    make_trainer(tmp_path / "reference", model=model, epoch_hook=freeze_first_layer_until_epoch_two(model)).fit()

    def crash_after_epoch_two(event: TrainEvent) -> None:
        if isinstance(event, EpochEnd) and event.epoch == 2:
            raise KeyboardInterrupt

    model = build_classifier()
    with pytest.raises(KeyboardInterrupt):
        make_trainer(tmp_path / "run", model=model, epoch_hook=freeze_first_layer_until_epoch_two(model), on_event=crash_after_epoch_two).fit()
    model = build_classifier(seed=99)  # resumes after epoch 1, when body.1 was frozen
    make_trainer(tmp_path / "run", model=model, epoch_hook=freeze_first_layer_until_epoch_two(model)).fit(resume=True)
    assert_same_weights(RunFolder(tmp_path / "run").load_checkpoint()["model"], RunFolder(tmp_path / "reference").load_checkpoint()["model"])


def test_out_of_memory_halves_the_batch_and_keeps_the_effective_batch(tmp_path: Path) -> None:
    reference = make_trainer(tmp_path / "reference", epochs=2)
    reference.fit()
    raised = []

    def fail_once_on_big_batches(x: torch.Tensor) -> None:
        if x.shape[0] > 4 and not raised:
            raised.append(True)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    events: list[TrainEvent] = []
    trainer = make_trainer(tmp_path / "oom", model=build_classifier(on_forward=fail_once_on_big_batches), epochs=2, on_event=events.append)
    trainer.fit()
    assert any(isinstance(e, LogLine) and e.message.endswith("out of memory: retrying with batch 4") for e in events)
    assert len([e for e in events if isinstance(e, StepProgress)]) == 2 * STEPS  # the failed step was retried, not skipped
    # Two accumulated halves give the full batch's gradient, so the weights match the reference run.
    assert_same_weights(trainer.module.state_dict(), reference.module.state_dict())


def test_out_of_memory_at_batch_one_is_a_clear_error(tmp_path: Path) -> None:
    def always_fail(_: torch.Tensor) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(MedtlError, match="out of memory even for one image"):
        make_trainer(tmp_path, model=build_classifier(on_forward=always_fail)).fit()


def test_segmentation_learns_with_dice_ce(tmp_path: Path) -> None:
    summary = make_trainer(tmp_path, task="segmentation", epochs=6, lr=1e-2).fit()
    records = RunFolder(tmp_path).read_metrics()
    assert summary.best_metric_name == "mean_dice"
    assert records[-1]["mean_dice"] > 0.7 > records[0]["mean_dice"]
    assert records[-1]["hd95_voxels"] < records[0]["hd95_voxels"]



def test_sliding_window_validation_scores_like_whole_images(tmp_path: Path) -> None:
    model = tiny_segmenter()
    make_trainer(tmp_path / "trained", model=model, task="segmentation", epochs=3, lr=1e-2).fit()
    scores = {
        name: make_trainer(tmp_path / name, model=model, task="segmentation", epochs=1, weight_decay=0.0, loss_fn=no_learning, val_roi_size=roi).fit().best_metric
        for name, roi in (("whole", None), ("windows", (8, 8)))
    }
    assert scores["windows"] == pytest.approx(scores["whole"], abs=0.05)


def test_the_weights_licence_reaches_the_model_card_and_survives_a_resume(tmp_path: Path) -> None:
    def crash_after_epoch_two(event: TrainEvent) -> None:
        if isinstance(event, EpochEnd) and event.epoch == 2:
            raise KeyboardInterrupt

    spec = {"architecture": "mlp", "weights": "efficientnet-lite0"}
    with pytest.raises(KeyboardInterrupt):
        make_trainer(tmp_path, model_spec_dict=spec, weights_licence="Apache-2.0 (test)", on_event=crash_after_epoch_two).fit()
    assert RunFolder(tmp_path).read_config().weights_licence == "Apache-2.0 (test)"
    make_trainer(tmp_path, model_spec_dict=spec).fit(resume=True)  # rebuilt without the source weights
    card = (tmp_path / "model_card.md").read_text()
    assert "- source: efficientnet-lite0" in card and "- licence: Apache-2.0 (test)" in card


def test_a_full_disk_while_checkpointing_names_the_file_and_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    real_save = torch.save
    saves = []

    def save_until_the_disk_fills(obj: object, f: object, *args: object, **kwargs: object) -> None:
        saves.append(obj["epoch"])  # type: ignore[index]
        if len(saves) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    with pytest.raises(MedtlError, match=r"checkpoint\.pt: cannot write the checkpoint: no space left on the device; the previous checkpoint is kept\. .*resume the run"):
        make_trainer(tmp_path, epochs=6).fit()
    monkeypatch.setattr(torch, "save", real_save)
    kept = RunFolder(tmp_path).load_checkpoint()
    assert kept["epoch"] == 2 and not list(tmp_path.glob(".checkpoint*"))  # no temporary file left behind


def test_the_checkpoint_is_a_snapshot_of_its_epoch_although_training_goes_on_while_it_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    real_save = torch.save
    release = threading.Event()
    live: dict[int, dict[str, torch.Tensor]] = {}
    written: dict[int, dict[str, torch.Tensor]] = {}

    def slow_save(obj: dict, f: object, *args: object, **kwargs: object) -> None:
        if obj["epoch"] == 1:
            assert release.wait(30)  # epoch 2 trains meanwhile and changes the live weights
        written[obj["epoch"]] = obj["model"]
        real_save(obj, f, *args, **kwargs)

    def on_event(event: TrainEvent) -> None:
        if isinstance(event, EpochEnd):
            live[event.epoch] = {k: v.clone() for k, v in trainer.module.state_dict().items()}
            if event.epoch == 2:
                release.set()

    monkeypatch.setattr(torch, "save", slow_save)
    trainer = make_trainer(tmp_path, epochs=2, on_event=on_event)
    trainer.fit()
    assert_same_weights(written[1], live[1])
    assert not all(torch.equal(written[1][k], live[2][k]) for k in live[2])
    assert RunFolder(tmp_path).load_checkpoint()["epoch"] == 2


def test_time_budget_is_re_planned_when_later_epochs_are_faster_than_the_first(tmp_path: Path) -> None:
    clock = FakeClock()
    model = ticking_classifier(clock)
    first_epoch_extra = {"seconds": 20.0}  # e.g. the first epoch fills the cache

    def slow_first_epoch(event: TrainEvent) -> None:
        events.append(event)
        if isinstance(event, StepProgress) and (event.epoch, event.step) == (1, 1):
            clock.now += first_epoch_extra["seconds"]

    events: list[TrainEvent] = []
    summary = make_trainer(tmp_path, model=model, clock=clock, epochs=50, time_limit_minutes=1.0, on_event=slow_first_epoch).fit()
    # Epoch 1 takes 29 s (2 fit in 60 s); later epochs 9 s: after epoch 2 (38 s) two more fit.
    messages = [e.message for e in events if isinstance(e, LogLine)]
    assert any(m.startswith("time budget: 2 epoch(s)") for m in messages)
    assert any(m.startswith("time budget: re-planned to 4 epoch(s)") for m in messages)
    assert summary.epochs == 4 and summary.seconds <= 60
    assert RunFolder(tmp_path).read_metrics()[-1]["lr"] == 0.0  # the cosine still ends with the budget


def test_an_epoch_that_a_re_plan_makes_the_last_is_validated(tmp_path: Path) -> None:
    clock = FakeClock()

    def slow_third_epoch(event: TrainEvent) -> None:
        if isinstance(event, StepProgress) and (event.epoch, event.step) == (3, 1):
            clock.now += 5.0  # epoch 3 takes 11 s: with 4 s left no fourth epoch fits

    summary = make_trainer(
        tmp_path, model=ticking_classifier(clock), clock=clock, epochs=50, time_limit_minutes=0.5, validate_every=5, on_event=slow_third_epoch
    ).fit()
    records = RunFolder(tmp_path).read_metrics()
    assert summary.epochs == 3 and [r["epoch"] for r in records] == [1, 2, 3]
    assert "balanced_accuracy" not in records[1] and "balanced_accuracy" in records[2]  # the last epoch is scored


def test_a_checkpoint_of_an_older_format_is_refused_by_name_and_the_run_stays_readable(tmp_path: Path) -> None:
    summary = make_trainer(tmp_path, epochs=1).fit()
    run = RunFolder(tmp_path)
    state = run.load_checkpoint()
    run.save_checkpoint({**state, "format": 1})
    with pytest.raises(MedtlError, match=r"checkpoint\.pt: written by an older medtl and cannot be resumed; start a new run"):
        make_trainer(tmp_path, epochs=2).fit(resume=True)
    assert run.read_summary() == summary and run.read_config().train.epochs == 1


def test_the_time_budget_counts_the_set_up_and_stops_within_the_first_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Preparing data and probing the batch size took 57 of the 60 s: the run stops after the step that reaches the
    limit, inside the first epoch, checkpointed, and says why."""
    from medtl.training.supervised import SupervisedObjective

    clock = FakeClock()
    start = SupervisedObjective.start

    def slow_start(self: SupervisedObjective, *args: object) -> None:
        clock.now += 57.0
        start(self, *args)

    monkeypatch.setattr(SupervisedObjective, "start", slow_start)
    events: list[TrainEvent] = []
    summary = make_trainer(tmp_path, model=ticking_classifier(clock), clock=clock, epochs=50, time_limit_minutes=1, on_event=events.append).fit()
    steps = [e for e in events if isinstance(e, StepProgress)]
    assert [(e.epoch, e.step) for e in steps] == [(1, 1), (1, 2), (1, 3)]  # 57 s, then a second a step
    assert summary.stopped_because == "time_limit" and summary.epochs == 1
    assert RunFolder(tmp_path).load_checkpoint()["progress"]["stopped_because"] == "time_limit"
    assert any(isinstance(e, LogLine) and "time limit of 1 min reached" in e.message for e in events)
    assert not any(isinstance(e, LogLine) and "epoch(s) of about" in e.message for e in events)  # no plan that could not hold

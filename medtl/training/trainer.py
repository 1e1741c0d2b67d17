"""The Trainer: fits a model on a train loader, validates it, and keeps the run folder up to date.

Pure Python with events: it reports through ``on_event`` (see :mod:`medtl.training.events`) and
polls a :class:`~medtl.progress.CancelToken` before every step. A checkpoint is written atomically
after every epoch (and on cancel), so ``fit(resume=True)`` after a crash, a kill or a cancel
continues to the same result as a run that was never interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
from torch import nn
from torch.utils.data import DataLoader

from medtl.errors import MedtlError
from medtl.progress import CancelToken
from medtl.training import distributed
from medtl.training.background_writer import background_writes, snapshot
from medtl.training.config import TrainConfig
from medtl.training.device import is_out_of_memory, probe_micro_batch, release_memory, setup_device
from medtl.training.events import CANCELLED, COMPLETED, EARLY_STOPPING, TIME_LIMIT, EpochEnd, EventCallback, Finished, LogLine, StepProgress, TrainEvent
from medtl.training.losses import default_loss
from medtl.training.metrics import MetricAccumulator, label_spacing, primary_metric
from medtl.training.model_card import render_model_card
from medtl.training.reproducibility import capture_rng, restore_rng, seed_everything
from medtl.training.run_folder import RunConfig, RunFolder, weight_provenance
from medtl.training.run_summary import RunSummary
from medtl.training.schedule import WarmupCosine

log = logging.getLogger(__name__)

T = TypeVar("T")
Batch = dict[str, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class _Progress:
    """Where training stands; saved in every checkpoint next to the tensors."""

    planned_epochs: int
    micro_batch: int
    epoch: int = 0  # epochs finished (trained and, when due, validated)
    step_in_epoch: int = 0  # optimiser steps done in the unfinished epoch
    global_step: int = 0
    elapsed_seconds: float = 0.0
    epoch_start_seconds: float = 0.0
    loss_sum: float = 0.0  # summed over the images of the unfinished epoch
    loss_count: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    validations_since_best: int = 0
    stopped_because: str | None = None


class Trainer:
    """Fine-tunes ``model`` on ``train_loader`` and selects the best epoch on ``val_loader``.

    Loaders yield MONAI dict batches ``{"image": [B, C, ...], "label": ...}``: class indices [B]
    for classification, integer masks [B, 1, ...] for segmentation. ``param_groups`` (optimiser
    groups, e.g. a slower backbone) must cover every parameter, frozen ones included, so that an
    ``epoch_hook`` can unfreeze them; the hook gets the epoch index (from 0) before that epoch
    trains and returns a line to log when it changed something. ``clock`` (seconds) is injectable
    so that tests of the time budget need not sleep. Under ``torchrun`` (see
    :mod:`medtl.training.distributed`) every rank runs the same Trainer and only rank 0 writes.
    """

    def __init__(
        self,
        config: TrainConfig,
        model: nn.Module,
        train_loader: DataLoader,
        val_loader: DataLoader,
        run_dir: Path | str,
        *,
        loss_fn: LossFn | None = None,
        param_groups: list[dict[str, Any]] | None = None,
        epoch_hook: Callable[[int], str | None] | None = None,
        on_event: EventCallback | None = None,
        cancel: CancelToken | None = None,
        model_spec_dict: dict[str, Any] | None = None,
        preprocessing_dict: dict[str, Any] | None = None,
        data_summary_dict: dict[str, Any] | None = None,
        weights_licence: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.model = model
        self.run = RunFolder(run_dir)
        self.run_config = RunConfig(
            config, model_spec_dict or {}, preprocessing_dict or {}, data_summary_dict or {}, weights_licence
        )
        self.on_event = on_event
        self.cancel = cancel or CancelToken()
        self.clock = clock
        self._train_loader_given, self._val_loader_given = train_loader, val_loader
        self._loss_fn_given, self._param_groups, self._epoch_hook = loss_fn, param_groups, epoch_hook
        self.metric_name = primary_metric(config.task)

    # ----------------------------------------------------------------- public

    def fit(self, *, resume: bool = False) -> RunSummary:
        """Train until the epochs, the time budget, early stopping or a cancel end it; returns the summary.

        With ``resume`` the run continues from ``checkpoint.pt`` in the run folder (a finished run
        just returns its summary).
        """
        config = self.config
        self._ctx = ctx = distributed.current()
        self.setup = setup_device(self.model, config.device, config.amp, ctx.local_rank)
        self.module = self.model.to(self.setup.device)
        if self.setup.channels_last:
            self.module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # documented; missing from the stubs
        self.loss_fn = self._loss_fn_given or default_loss(config.task, config.class_weights)
        if isinstance(self.loss_fn, nn.Module):
            self.loss_fn.to(self.setup.device)
        self.train_loader = distributed.shard_loader(self._train_loader_given, ctx, config.seed)
        self.val_loader = distributed.shard_loader(self._val_loader_given, ctx, config.seed)
        self.steps_per_epoch = len(self.train_loader)
        if self.steps_per_epoch == 0 or len(self.val_loader) == 0:
            raise MedtlError("the training and the validation set each need at least one batch")

        batch_size = self.train_loader.batch_size or config.batch_size
        checkpoint = self.run.load_checkpoint() if resume else None
        if checkpoint is None:
            micro_batch = probe_micro_batch(self.module, self.loss_fn, self.train_loader, self.setup, batch_size)
            seed_everything(config.seed + ctx.rank)
            self.progress = _Progress(planned_epochs=config.epochs, micro_batch=micro_batch)
            if ctx.is_main:
                self.run.start_fresh(self.run_config)
        else:
            self.progress = _Progress(**checkpoint["progress"])
            if self.run_config.weights_licence is None:  # a resumed run is rebuilt without its source weights
                self.run_config = dataclasses.replace(self.run_config, weights_licence=self.run.read_config().weights_licence)
            if self.progress.stopped_because not in (None, CANCELLED):
                return self._finish()  # already finished; rewrite its summary in case the crash came before it
            self.progress.stopped_because = None
            if ctx.is_main:
                self.run.keep_metrics_through(self.progress.epoch)

        self.optimizer = torch.optim.AdamW(self._param_groups or self.module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        warmup = round(config.warmup_epochs * self.steps_per_epoch)
        self.schedule = WarmupCosine(self.optimizer, warmup, self.progress.planned_epochs * self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(self.setup.device.type, enabled=self.setup.uses_grad_scaler)
        self._epoch_rng: dict[str, Any] = {}  # RNG at the start of the current epoch, for an exact mid-epoch resume
        if checkpoint is not None:
            self._restore(checkpoint)
        self.net = distributed.wrap_model(self.module, ctx, self.setup.device)

        self._log(f"training on {self.setup.name}, mixed precision {self.setup.amp_label}, batch {batch_size} in steps of {self.progress.micro_batch}")
        self._fit_started, self._elapsed_before = self.clock(), self.progress.elapsed_seconds
        self._steps_this_fit, self._step_seconds_this_fit = 0, 0.0
        with background_writes() as self._writer:  # the last checkpoint is on disk before the summary says the run ended
            while self.progress.stopped_because is None:
                self._run_epoch()
                self._save_checkpoint()
        return self._finish()

    # ------------------------------------------------------------------ epochs

    def _run_epoch(self) -> None:
        """Train one epoch (or its rest), validate when due, record it, and decide whether to go on."""
        p = self.progress
        if not self._train_steps():
            p.stopped_because = CANCELLED
            return
        time_limited = p.stopped_because == TIME_LIMIT
        number = p.epoch + 1
        budget = self.config.time_limit_seconds
        due = time_limited or number % self.config.validate_every == 0 or number >= p.planned_epochs or (budget is not None and number == 1)
        metrics = self._validate() if due else {}
        if metrics is None:
            p.stopped_because = CANCELLED
            return
        if budget is not None:
            self._plan_for_budget(budget, number, self._elapsed() - p.epoch_start_seconds)
            if not metrics and number >= p.planned_epochs:  # the re-plan made this the last epoch: it is scored too
                metrics = self._validate()
                if metrics is None:
                    p.stopped_because = CANCELLED
                    return
        is_best = self._track_best(metrics, number)
        loss_count = self._ctx.sum([p.loss_sum, float(p.loss_count)])
        seconds = self._elapsed() - p.epoch_start_seconds
        record = {"epoch": number, "train_loss": loss_count[0] / max(1.0, loss_count[1]), "lr": self.schedule.lr, "seconds": seconds, "elapsed_seconds": self._elapsed(), **metrics}
        if self._ctx.is_main:
            self.run.append_metrics(record)
        self._emit(EpochEnd(number, record["train_loss"], metrics, is_best, seconds))
        p.epoch, p.step_in_epoch, p.loss_sum, p.loss_count = number, 0, 0.0, 0
        if p.stopped_because is None:
            if self.config.early_stopping_patience is not None and p.validations_since_best >= self.config.early_stopping_patience:
                p.stopped_because = EARLY_STOPPING
                self._log(f"early stopping: {self.metric_name} has not improved for {p.validations_since_best} validations")
            elif p.epoch >= p.planned_epochs:
                p.stopped_because = COMPLETED if p.planned_epochs == self.config.epochs else TIME_LIMIT

    def _train_steps(self) -> bool:
        """Run the epoch's remaining optimiser steps; False when cancelled. Sets ``TIME_LIMIT`` when the budget runs out."""
        p, ctx = self.progress, self._ctx
        batches = self._epoch_batches()
        self.module.train()
        budget = self.config.time_limit_seconds
        for batch in batches:
            if ctx.any(self.cancel.cancelled):
                return False
            started = self.clock()
            images, labels = batch["image"], batch["label"]
            loss = self._with_oom_retry(functools.partial(self._optimiser_step, images, labels), images.shape[0])
            seconds = self.clock() - started
            p.step_in_epoch += 1
            p.global_step += 1
            p.loss_sum += loss * images.shape[0]
            p.loss_count += images.shape[0]
            self._steps_this_fit += 1
            self._step_seconds_this_fit += seconds
            self._emit(StepProgress(p.epoch + 1, p.step_in_epoch, self.steps_per_epoch, loss, images.shape[0] * ctx.world_size / seconds if seconds > 0 else 0.0, self._eta()))
            if budget is not None and ctx.any(self._elapsed() >= budget):
                p.stopped_because = TIME_LIMIT
                self._log(f"time limit of {self.config.time_limit_minutes:g} min reached: validating the last state")
                break
        return True

    def _epoch_batches(self) -> Iterator[Batch]:
        """The epoch's batches from where it stands, with the RNG exactly as an uninterrupted run has it there."""
        p = self.progress
        distributed.set_epoch(self.train_loader, p.epoch)
        if p.step_in_epoch == 0:
            self._run_hook(p.epoch)
            self._epoch_rng = capture_rng()
            p.epoch_start_seconds = self._elapsed()
            return iter(self.train_loader)
        # Resuming mid-epoch: replay the loader's order from the epoch's start, then the RNG at the cancel.
        resumed_rng = capture_rng()
        restore_rng(self._epoch_rng)
        batches = iter(self.train_loader)
        for _ in range(p.step_in_epoch):
            next(batches)
        restore_rng(resumed_rng)
        return batches

    def _run_hook(self, epoch: int, *, quiet: bool = False) -> None:
        if self._epoch_hook is None:
            return
        message = self._epoch_hook(epoch)
        if message and not quiet:  # quiet replays happen before the model is wrapped
            self._log(message)
            if self._ctx.enabled:
                self.net = distributed.wrap_model(self.module, self._ctx, self.setup.device)

    def _plan_for_budget(self, budget: float, epochs_done: int, last_epoch_seconds: float) -> None:
        """Fit the cosine schedule to the epochs the budget holds. After the first epoch: at its pace; after each
        later one, re-planned from the time left at the last epoch's pace (the first epoch also caches data and
        warms up, and a busy machine changes the pace)."""
        p = self.progress
        elapsed = max(self._elapsed(), 1e-9)
        if epochs_done == 1:
            fit = math.floor(budget / elapsed)
        else:
            fit = epochs_done + math.floor(max(0.0, budget - elapsed) / max(last_epoch_seconds, 1e-9))
        planned = max(epochs_done, min(self.config.epochs, fit))
        if planned == p.planned_epochs and epochs_done > 1:
            return
        p.planned_epochs = planned
        self.schedule.replan(planned * self.steps_per_epoch)
        if epochs_done == 1:
            self._log(f"time budget: {planned} epoch(s) of about {elapsed:.0f} s fit in {self.config.time_limit_minutes:g} min")
        else:
            self._log(f"time budget: re-planned to {planned} epoch(s) at {last_epoch_seconds:.1f} s an epoch")

    def _track_best(self, metrics: dict[str, Any], epoch: int) -> bool:
        if not metrics:
            return False
        p = self.progress
        value = metrics.get(self.metric_name)
        if value is not None and (p.best_metric is None or value > p.best_metric):
            p.best_metric, p.best_epoch, p.validations_since_best = float(value), epoch, 0
            if self._ctx.is_main:
                self.run.save_best_model(self.module.state_dict(), {"epoch": str(epoch), "metric": self.metric_name, "value": repr(float(value))})
            return True
        p.validations_since_best += 1
        return False

    # ------------------------------------------------------------------- steps

    def _optimiser_step(self, images: torch.Tensor, labels: torch.Tensor, micro_batch: int) -> float:
        """One optimiser step over the batch in chunks of ``micro_batch`` (gradient accumulation); returns the mean loss."""
        total = images.shape[0]
        self.optimizer.zero_grad(set_to_none=True)
        loss_value = 0.0
        for start in range(0, total, micro_batch):
            x = self._images_to_device(images[start : start + micro_batch])
            y = labels[start : start + micro_batch].as_subclass(torch.Tensor).to(self.setup.device, non_blocking=True)
            last = start + micro_batch >= total
            no_sync = getattr(self.net, "no_sync", None)
            with contextlib.nullcontext() if last or no_sync is None else no_sync():
                with self.setup.autocast():
                    loss = self.loss_fn(self.net(x), y) * (x.shape[0] / total)
                self.scaler.scale(loss).backward()
            loss_value += float(loss.detach())
        if self.config.grad_clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.module.parameters(), self.config.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step()
        return loss_value

    def _with_oom_retry(self, work: Callable[[int], T], batch_size: int) -> T:
        """Run ``work(micro_batch)``; on out-of-memory free memory, halve the micro-batch and retry."""
        while True:
            micro = min(self.progress.micro_batch, batch_size)
            try:
                return work(micro)
            except Exception as error:  # noqa: BLE001 - anything but out-of-memory is re-raised
                if not is_out_of_memory(error):
                    raise
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler.is_enabled():  # forget a half-done step (unscale_ already called), keep the scale
                scale = self.scaler.state_dict()
                self.scaler = torch.amp.GradScaler(self.setup.device.type)
                self.scaler.load_state_dict(scale)
            release_memory(self.setup.device)
            if micro == 1:
                raise MedtlError(f"{self.setup.device.type.upper()} out of memory even for one image; choose a smaller model or patch size, or train on the CPU")
            self.progress.micro_batch = micro // 2
            self._log(f"{self.setup.device.type.upper()} out of memory: retrying with batch {micro // 2}")

    def _images_to_device(self, images: torch.Tensor) -> torch.Tensor:
        images = images.as_subclass(torch.Tensor).to(self.setup.device, non_blocking=True)
        if self.setup.channels_last and images.ndim == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    # -------------------------------------------------------------- validation

    def _validate(self) -> dict[str, Any] | None:
        """Metrics over the whole validation set (all ranks); ``None`` when cancelled.

        The global RNG is put back afterwards, so how often (and whether) validation runs never
        changes the training that follows, and a resume that repeats a cancelled validation is exact.
        """
        rng = capture_rng()
        accumulator = MetricAccumulator(self.config.task)
        self.module.eval()
        try:
            with torch.no_grad():
                for batch in self.val_loader:
                    if self._ctx.any(self.cancel.cancelled):
                        return None
                    images, labels = batch["image"], batch["label"]
                    logits = self._with_oom_retry(functools.partial(self._predict, images), images.shape[0])
                    spacing = label_spacing(labels) if self.config.task == "segmentation" else None
                    accumulator.update(logits, labels.as_subclass(torch.Tensor).to(logits.device), spacing)
        finally:
            self.module.train()
            restore_rng(rng)
        return accumulator.compute(self._ctx.gather, keep=distributed.unpadded_count(self.val_loader, self._ctx))

    def _predict(self, images: torch.Tensor, micro_batch: int) -> torch.Tensor:
        roi = self.config.val_roi_size
        outputs = []
        for start in range(0, images.shape[0], micro_batch):
            x = self._images_to_device(images[start : start + micro_batch])
            with self.setup.autocast():
                if roi is None:
                    outputs.append(self.module(x).float())
                else:
                    from monai.inferers import sliding_window_inference

                    outputs.append(cast(torch.Tensor, sliding_window_inference(x, roi, micro_batch, self.module)).float())
        return torch.cat(outputs)

    # --------------------------------------------------------- state and output

    def _save_checkpoint(self) -> None:
        """Write the whole training state (every rank's RNG included) atomically, in the background while the
        next epoch trains (see :mod:`medtl.training.background_writer`); rank 0 writes."""
        p = self.progress
        p.elapsed_seconds = self._elapsed()
        rngs = self._ctx.gather({"rng": capture_rng(), "epoch_rng": self._epoch_rng})
        if not self._ctx.is_main:
            return
        state = {
            "format": 1,
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": p.epoch,
            "best_metric": p.best_metric,
            "progress": dataclasses.asdict(p),
            "ranks": rngs,
            "config": self.config.to_dict(),
        }
        self._writer.submit(self.run.save_checkpoint, snapshot(state))

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        """Load a checkpoint's state; epoch hooks of past epochs are replayed so freezing is as it was."""
        p = self.progress
        for epoch in range(p.epoch + (1 if p.step_in_epoch else 0)):
            self._run_hook(epoch, quiet=True)
        self.module.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.schedule.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        ranks = checkpoint["ranks"]
        mine = ranks[self._ctx.rank % len(ranks)]
        restore_rng(mine["rng"])
        self._epoch_rng = mine["epoch_rng"]
        self._log(f"resumed after epoch {p.epoch}" + (f", step {p.step_in_epoch}" if p.step_in_epoch else ""))

    def _finish(self) -> RunSummary:
        p = self.progress
        source, _ = weight_provenance(self.run_config.model)
        summary = RunSummary(
            task=self.config.task, epochs=p.epoch, seconds=p.elapsed_seconds, stopped_because=p.stopped_because, device=self.setup.name,
            best_metric_name=self.metric_name, best_metric=p.best_metric, best_epoch=p.best_epoch, pretrained_source=source, run_dir=self.run.path,
        )  # fmt: skip
        if self._ctx.is_main:
            self.run.write_summary(summary)
            best = next((r for r in self.run.read_metrics() if r["epoch"] == p.best_epoch), {})
            self.run.write_model_card(render_model_card(self.run_config, summary, best))
        self._emit(Finished(summary))
        return summary

    def _elapsed(self) -> float:
        return self._elapsed_before + self.clock() - self._fit_started

    def _eta(self) -> float | None:
        if not self._steps_this_fit:
            return None
        remaining = self.progress.planned_epochs * self.steps_per_epoch - self.progress.global_step
        eta = max(0, remaining) * self._step_seconds_this_fit / self._steps_this_fit
        budget = self.config.time_limit_seconds
        return eta if budget is None else min(eta, max(0.0, budget - self._elapsed()))

    def _emit(self, event: TrainEvent) -> None:
        if self.on_event is not None and self._ctx.is_main:
            self.on_event(event)

    def _log(self, message: str) -> None:
        log.info(message)
        self._emit(LogLine(message))

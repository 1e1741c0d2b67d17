"""The Trainer: the one training loop. It runs an :class:`~medtl.training.objective.Objective` into a run folder.

What a job learns (its network, batches, loss, validation, saved model, summary details and model
card) is its objective's; the rest is the Trainer's: device and mixed precision, AdamW with a warm-up +
cosine schedule, the time budget, out-of-memory retries, validation when due, the best epoch and early
stopping, events through ``on_event`` (see :mod:`medtl.training.events`), a
:class:`~medtl.progress.CancelToken` polled before every step, and checkpoints. A checkpoint is
written atomically after every epoch (and on cancel), in the background while the next epoch trains,
so ``fit(resume=True)`` after a crash, a kill or a cancel continues to the same result as a run that was
never interrupted, also from inside an epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from medtl.errors import MedtlError
from medtl.progress import CancelToken
from medtl.training import distributed
from medtl.training.background_writer import background_writes, snapshot
from medtl.training.device import is_out_of_memory, release_memory, setup_device
from medtl.training.events import CANCELLED, COMPLETED, EARLY_STOPPING, TIME_LIMIT, EpochEnd, EventCallback, Finished, LogLine, StepProgress, TrainEvent
from medtl.training.objective import Objective
from medtl.training.reproducibility import capture_rng, restore_rng, seed_everything
from medtl.training.run_folder import RunConfig, RunFolder, weight_provenance
from medtl.training.run_summary import RunSummary
from medtl.training.schedule import WarmupCosine

log = logging.getLogger(__name__)

T = TypeVar("T")
CHECKPOINT_FORMAT = 2
_END = object()


@dataclass
class _Progress:
    """Where training stands; saved in every checkpoint next to the tensors."""

    planned_steps: int
    micro_batch: int
    epoch: int = 0  # epochs finished (trained and, when due, validated)
    step_in_epoch: int = 0  # optimiser steps done in the unfinished epoch
    global_step: int = 0
    elapsed_seconds: float = 0.0
    epoch_start_seconds: float = 0.0
    loss_sum: float = 0.0  # summed over the items of the unfinished epoch
    loss_count: int = 0
    part_sums: dict[str, float] = field(default_factory=dict)  # the objective's loss parts, likewise
    best_metric: float | None = None
    best_epoch: int | None = None
    validations_since_best: int = 0
    stopped_because: str | None = None


class Trainer:
    """Runs ``objective`` with the settings of ``run_config.train`` into ``run_dir``.

    ``run_config`` is what ``config.json`` records (with the objective's :meth:`~Objective.config_extra`).
    ``clock`` (seconds) is injectable so that tests of the time budget need not sleep. Under ``torchrun``
    (see :mod:`medtl.training.distributed`) every rank runs the same Trainer and only rank 0 writes.
    """

    def __init__(
        self,
        objective: Objective,
        run_config: RunConfig,
        run_dir: Path | str,
        *,
        on_event: EventCallback | None = None,
        cancel: CancelToken | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.objective, self.run_config, self.config = objective, run_config, run_config.train
        self.run = RunFolder(run_dir)
        self.on_event = on_event
        self.cancel = cancel or CancelToken()
        self.clock = clock

    # ----------------------------------------------------------------- public

    def fit(self, *, resume: bool = False) -> RunSummary:
        """Train until the epochs, the time budget, early stopping or a cancel end it; returns the summary.

        With ``resume`` the run continues from ``checkpoint.pt`` in the run folder (a finished run
        just returns its summary).
        """
        config, objective = self.config, self.objective
        self._fit_started, self._elapsed_before = self.clock(), 0.0  # the budget counts the set-up too: device, data, micro-batch probe
        self._ctx = ctx = distributed.current()
        self.setup = setup_device(objective.network, config.device, config.amp, ctx.local_rank)
        self.module = objective.network.to(self.setup.device)
        if self.setup.channels_last:
            self.module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # documented; missing from the stubs
        objective.start(self.setup, ctx)
        self.steps_per_epoch = objective.steps_per_epoch

        checkpoint = self._load_checkpoint() if resume else None
        if checkpoint is None:
            micro_batch = objective.first_micro_batch()
            seed_everything(config.seed + ctx.rank)
            self.progress = _Progress(planned_steps=config.epochs * self.steps_per_epoch, micro_batch=micro_batch)
            if ctx.is_main:
                self.run.start_fresh(self.run_config, objective.config_extra())
        else:
            self.progress = _Progress(**checkpoint["progress"])
            if self.run_config.weights_licence is None:  # a resumed run is rebuilt without its source weights
                self.run_config = dataclasses.replace(self.run_config, weights_licence=self.run.read_config().weights_licence)
            if self.progress.stopped_because not in (None, CANCELLED):
                return self._finish()  # already finished; rewrite its summary in case the crash came before it
            self.progress.stopped_because = None
            if ctx.is_main:
                self.run.keep_metrics_through(self.progress.epoch)

        self.optimizer = torch.optim.AdamW(objective.param_groups(), lr=config.lr, weight_decay=config.weight_decay)
        warmup = round(config.warmup_epochs * self.steps_per_epoch)
        self.schedule = WarmupCosine(self.optimizer, warmup, self.progress.planned_steps)
        self.scaler = torch.amp.GradScaler(self.setup.device.type, enabled=self.setup.uses_grad_scaler)
        self._epoch_rng: dict[str, Any] = {}  # RNG at the start of the current epoch, for an exact mid-epoch resume
        if checkpoint is not None:
            self._restore(checkpoint)
        self.net = distributed.wrap_model(self.module, ctx, self.setup.device)

        p, unit = self.progress, objective.unit
        parts = f", {p.micro_batch} at a time" if p.micro_batch < objective.batch_size else ""
        self._log(f"training on {self.setup.name}, mixed precision {self.setup.amp_label}, {self.steps_per_epoch} step(s) of {objective.batch_size} {unit}s an epoch{parts}")
        self._elapsed_before = p.elapsed_seconds
        self._steps_this_fit, self._step_seconds_this_fit, self._after_first_step = 0, 0.0, 0.0
        budgeted, plan_after = config.time_limit_seconds is not None, objective.plan_budget_after_steps
        self._plan_by_epochs = budgeted and plan_after is None
        self._step_plan_after = plan_after if budgeted and checkpoint is None else None  # a resumed run keeps its plan
        with background_writes() as self._writer:  # the last checkpoint is on disk before the summary says the run ended
            while p.stopped_because is None:
                self._run_epoch()
                self._save_checkpoint()
        return self._finish()

    # ------------------------------------------------------------------ epochs

    def _run_epoch(self) -> None:
        """Train one epoch (or its rest), validate when due, record it, and decide whether to go on."""
        p, budget = self.progress, self.config.time_limit_seconds
        if not self._train_steps():
            p.stopped_because = CANCELLED
            return
        number = p.epoch + 1
        validates = self.objective.metric_name is not None
        due = p.stopped_because == TIME_LIMIT or number % self.config.validate_every == 0 or p.global_step >= p.planned_steps or (self._plan_by_epochs and number == 1)
        metrics = self._validate() if validates and due else {}
        if metrics is None:
            p.stopped_because = CANCELLED
            return
        if budget is not None and self._plan_by_epochs:
            self._plan_epochs(budget, number, self._elapsed() - p.epoch_start_seconds)
            if validates and not metrics and p.global_step >= p.planned_steps:  # the re-plan made this the last epoch: it is scored too
                metrics = self._validate()
                if metrics is None:
                    p.stopped_because = CANCELLED
                    return
        is_best = self._track_best(metrics, number)
        if self._ctx.is_main:
            saved = self.objective.model_to_save(number, metrics, is_best)
            if saved is not None:
                self.run.save_best_model(*saved)
        totals = self._ctx.sum([p.loss_sum, float(p.loss_count), *p.part_sums.values()])
        count = max(1.0, totals[1])
        parts = {name: total / count for name, total in zip(p.part_sums, totals[2:])}
        seconds = self._elapsed() - p.epoch_start_seconds
        record = {"epoch": number, "train_loss": totals[0] / count, **parts, "lr": self.schedule.lr, "seconds": seconds, "elapsed_seconds": self._elapsed(), **metrics}
        if self._ctx.is_main:
            self.run.append_metrics(record)
        self._emit(EpochEnd(number, record["train_loss"], {**parts, **metrics}, is_best, seconds))
        p.epoch, p.step_in_epoch, p.loss_sum, p.loss_count, p.part_sums = number, 0, 0.0, 0, {}
        if p.stopped_because is None:
            if self.config.early_stopping_patience is not None and p.validations_since_best >= self.config.early_stopping_patience:
                p.stopped_because = EARLY_STOPPING
                self._log(f"early stopping: {self.objective.metric_name} has not improved for {p.validations_since_best} validations")
            elif p.global_step >= p.planned_steps:
                p.stopped_because = COMPLETED if p.planned_steps == self.config.epochs * self.steps_per_epoch else TIME_LIMIT

    def _train_steps(self) -> bool:
        """Run the epoch's remaining optimiser steps, up to the planned ones; False when cancelled. Sets
        ``TIME_LIMIT`` when the budget runs out."""
        p, ctx, objective = self.progress, self._ctx, self.objective
        batches = self._epoch_batches()
        self.module.train()
        budget = self.config.time_limit_seconds
        while not ctx.any(self.cancel.cancelled):  # before the next batch is drawn: drawing may use the RNG the checkpoint keeps
            batch = next(batches, _END)
            if batch is _END:
                return True
            started = self.clock()
            count = objective.count(batch)
            loss, parts = self._with_oom_retry(functools.partial(self._optimiser_step, batch, count), count)
            seconds = self.clock() - started
            p.step_in_epoch += 1
            p.global_step += 1
            p.loss_sum += loss * count
            p.loss_count += count
            for name, value in parts.items():
                p.part_sums[name] = p.part_sums.get(name, 0.0) + value * count
            self._steps_this_fit += 1
            self._step_seconds_this_fit += seconds
            if self._steps_this_fit == 1:
                self._after_first_step = self._elapsed()
            self._emit(StepProgress(p.epoch + 1, p.step_in_epoch, self.steps_per_epoch, loss, count * ctx.world_size / seconds if seconds > 0 else 0.0, self._eta()))
            if budget is not None and self._step_plan_after is not None and self._steps_this_fit >= self._step_plan_after:
                self._plan_steps(budget)
            if budget is not None and ctx.any(self._elapsed() >= budget):
                p.stopped_because = TIME_LIMIT
                self._log(f"time limit of {self.config.time_limit_minutes:g} min reached" + (": validating the last state" if objective.metric_name else ""))
                return True
            if p.global_step >= p.planned_steps:
                return True
        return False

    def _epoch_batches(self) -> Iterator[Any]:
        """The epoch's batches from where it stands, with the RNG exactly as an uninterrupted run has it there."""
        p = self.progress
        if p.step_in_epoch == 0:
            self._run_hook(p.epoch)
            self._epoch_rng = capture_rng()
            p.epoch_start_seconds = self._elapsed()
            return iter(self.objective.batches(p.epoch))
        # Resuming mid-epoch: replay the batches from the epoch's start, then the RNG at the cancel.
        resumed_rng = capture_rng()
        restore_rng(self._epoch_rng)
        batches = iter(self.objective.batches(p.epoch))
        for _ in range(p.step_in_epoch):
            next(batches)
        restore_rng(resumed_rng)
        return batches

    def _run_hook(self, epoch: int, *, quiet: bool = False) -> None:
        message = self.objective.epoch_hook(epoch)
        if message and not quiet:  # quiet replays happen before the model is wrapped
            self._log(message)
            if self._ctx.enabled:
                self.net = distributed.wrap_model(self.module, self._ctx, self.setup.device)

    def _plan_epochs(self, budget: float, epochs_done: int, last_epoch_seconds: float) -> None:
        """Fit the cosine schedule to the whole epochs the budget holds. After the first epoch: at its pace; after
        each later one, re-planned from the time left at the last epoch's pace (the first epoch also caches data
        and warms up, and a busy machine changes the pace)."""
        p = self.progress
        elapsed = max(self._elapsed(), 1e-9)
        if epochs_done == 1:
            fit = math.floor(budget / elapsed)
        else:
            fit = epochs_done + math.floor(max(0.0, budget - elapsed) / max(last_epoch_seconds, 1e-9))
        planned = max(epochs_done, min(self.config.epochs, fit))
        if planned * self.steps_per_epoch == p.planned_steps and epochs_done > 1:
            return
        self._replan(planned * self.steps_per_epoch)
        if p.stopped_because == TIME_LIMIT:
            return  # already said so
        if epochs_done == 1 and fit < 1:
            self._log(f"time budget: the first epoch took about {elapsed:.0f} s, more than the {self.config.time_limit_minutes:g} min; stopping after it")
        elif epochs_done == 1:
            self._log(f"time budget: {planned} epoch(s) of about {elapsed:.0f} s fit in {self.config.time_limit_minutes:g} min")
        else:
            self._log(f"time budget: re-planned to {planned} epoch(s) at {last_epoch_seconds:.1f} s an epoch")

    def _plan_steps(self, budget: float) -> None:
        """Fit the cosine schedule to the steps the time left holds at the pace of this run's steps since its first
        (all included: data, checkpoints, metrics; the set-up and the first step's one-time warm-up left out)."""
        self._step_plan_after = None
        p = self.progress
        per_step = max((self._elapsed() - self._after_first_step) / max(1, self._steps_this_fit - 1), 1e-9)
        left = math.floor(max(0.0, budget - self._elapsed()) / per_step)
        planned = max(p.global_step, min(self.config.epochs * self.steps_per_epoch, p.global_step + left))
        self._replan(planned)
        self._log(f"time budget: about {planned} steps ({planned / self.steps_per_epoch:.1f} epochs) of {per_step:.2f} s fit in {self.config.time_limit_minutes:g} min")

    def _replan(self, planned_steps: int) -> None:
        self.progress.planned_steps = planned_steps
        self.schedule.replan(planned_steps)

    def _track_best(self, metrics: dict[str, Any], epoch: int) -> bool:
        if not metrics:
            return False
        p = self.progress
        value = metrics.get(self.objective.metric_name or "")
        if value is not None and (p.best_metric is None or value > p.best_metric):
            p.best_metric, p.best_epoch, p.validations_since_best = float(value), epoch, 0
            return True
        p.validations_since_best += 1
        return False

    # ------------------------------------------------------------------- steps

    def _optimiser_step(self, batch: Any, count: int, micro_batch: int) -> tuple[float, dict[str, float]]:
        """One optimiser step over ``batch`` in parts of ``micro_batch`` (gradient accumulation); returns the mean
        loss and its mean parts."""
        objective = self.objective
        self.optimizer.zero_grad(set_to_none=True)
        pieces = objective.split(batch, micro_batch) if micro_batch < count else [batch]
        no_sync = getattr(self.net, "no_sync", None)
        loss_value = 0.0
        parts: dict[str, float] = {}
        for index, piece in enumerate(pieces):
            weight = objective.count(piece) / count
            last = index == len(pieces) - 1
            with contextlib.nullcontext() if last or no_sync is None else no_sync():
                with self.setup.autocast():
                    loss, named = objective.loss(self.net, piece)
                    loss = loss * weight
                self.scaler.scale(loss).backward()
            value = float(loss.detach())
            if not (math.isfinite(value) or self.scaler.is_enabled()):  # with fp16 loss scaling, the scaler skips such a step
                p = self.progress
                raise MedtlError(f"the training loss became {value} at epoch {p.epoch + 1}, step {p.step_in_epoch + 1}; try a lower learning rate")
            loss_value += value
            for name, part in named.items():
                parts[name] = parts.get(name, 0.0) + part * weight
        if self.config.grad_clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.module.parameters(), self.config.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step()
        return loss_value, parts

    def _with_oom_retry(self, work: Callable[[int], T], count: int) -> T:
        """Run ``work(micro_batch)``; on out-of-memory free memory, halve the micro-batch and retry (a batch the
        objective cannot split is an error at once)."""
        divisible, unit = self.objective.divisible, self.objective.unit
        while True:
            micro = min(self.progress.micro_batch, count) if divisible else count
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
            device = self.setup.device.type.upper()
            if not divisible:
                raise MedtlError(f"{device} out of memory for a batch of {count} {unit}s; choose a smaller batch or model, or train on the CPU")
            if micro == 1:
                raise MedtlError(f"{device} out of memory even for one {unit}; choose a smaller model or patch size, or train on the CPU")
            self.progress.micro_batch = micro // 2
            self._log(f"{device} out of memory: retrying with batch {micro // 2}")

    # -------------------------------------------------------------- validation

    def _validate(self) -> dict[str, Any] | None:
        """The objective's metrics over the whole validation set (all ranks); ``None`` when cancelled.

        The global RNG is put back afterwards, so how often (and whether) validation runs never
        changes the training that follows, and a resume that repeats a cancelled validation is exact.
        """
        objective = self.objective
        rng = capture_rng()
        scores = objective.scores()
        self.module.eval()
        try:
            with torch.no_grad():
                for batch in objective.validation_batches():
                    if self._ctx.any(self.cancel.cancelled):
                        return None
                    scores.update(batch, self._with_oom_retry(functools.partial(self._predict, batch), objective.count(batch)))
        finally:
            self.module.train()
            restore_rng(rng)
        return scores.compute()

    def _predict(self, batch: Any, micro_batch: int) -> Any:
        with self.setup.autocast():
            return self.objective.predict(self.module, batch, micro_batch)

    # --------------------------------------------------------- state and output

    def _load_checkpoint(self) -> dict[str, Any]:
        checkpoint = self.run.load_checkpoint()
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise MedtlError(f"{self.run.checkpoint_path}: written by an older medtl and cannot be resumed; start a new run (this one's metrics and model stay readable)")
        return checkpoint

    def _save_checkpoint(self) -> None:
        """Write the whole training state (every rank's RNG included) atomically, in the background while the
        next epoch trains (see :mod:`medtl.training.background_writer`); rank 0 writes."""
        p = self.progress
        p.elapsed_seconds = self._elapsed()
        rngs = self._ctx.gather({"rng": capture_rng(), "epoch_rng": self._epoch_rng})
        if not self._ctx.is_main:
            return
        state = {
            "format": CHECKPOINT_FORMAT,
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "objective": self.objective.extra_state(),
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
        self.objective.load_extra_state(checkpoint["objective"])
        ranks = checkpoint["ranks"]
        mine = ranks[self._ctx.rank % len(ranks)]
        restore_rng(mine["rng"])
        self._epoch_rng = mine["epoch_rng"]
        self._log(f"resumed after epoch {p.epoch}" + (f", step {p.step_in_epoch}" if p.step_in_epoch else ""))

    def _finish(self) -> RunSummary:
        p, objective = self.progress, self.objective
        source, _ = weight_provenance(self.run_config.model)
        summary = RunSummary(
            task=objective.task, epochs=p.epoch, seconds=p.elapsed_seconds, stopped_because=p.stopped_because, device=self.setup.name,
            best_metric_name=objective.metric_name, best_metric=p.best_metric, best_epoch=p.best_epoch, pretrained_source=source,
            details=objective.summary_details(self.run, p.global_step), run_dir=self.run.path,
        )  # fmt: skip
        if self._ctx.is_main:
            self.run.write_summary(summary)
            self.run.write_model_card(objective.model_card(self.run_config, summary, self.run))
        self._emit(Finished(summary))
        return summary

    def _elapsed(self) -> float:
        return self._elapsed_before + self.clock() - self._fit_started

    def _eta(self) -> float | None:
        if not self._steps_this_fit:
            return None
        remaining = self.progress.planned_steps - self.progress.global_step
        eta = max(0, remaining) * self._step_seconds_this_fit / self._steps_this_fit
        budget = self.config.time_limit_seconds
        return eta if budget is None else min(eta, max(0.0, budget - self._elapsed()))

    def _emit(self, event: TrainEvent) -> None:
        if self.on_event is not None and self._ctx.is_main:
            self.on_event(event)

    def _log(self, message: str) -> None:
        log.info(message)
        self._emit(LogLine(message))

"""Self-supervised pretraining from unlabelled images into a run folder that ``--weights run:RUN`` accepts.

:func:`medtl.workflow.pretrain.pretrain` (the job's entry point) collects the slices and runs the
:class:`Pretrainer`. The loop reuses the training engine's pieces: the run folder
(:class:`~medtl.training.run_folder.RunFolder`: atomic ``checkpoint.pt`` after every epoch and on
cancel, written by the :mod:`~medtl.training.background_writer` while the next epoch trains, ``metrics.jsonl``, ``summary.json``), its events (:mod:`medtl.training.events`, so the CLI's
progress bar and the app's curves work unchanged), device and mixed-precision setup, the warm-up +
cosine schedule, and the :class:`~medtl.progress.CancelToken`.

Reproducible and resumable: the slice order of an epoch and the views of a step are drawn from
generators seeded by ``(seed, epoch, step)``, so ``resume=True`` after a cancel, a kill or a crash
continues exactly where the checkpoint left off.

The run folder::

    config.json              "model": the ModelSpec (architecture, arch_params) fine-tuning rebuilds;
                             "train": the loop's settings; "data": counts; "pretraining": views and objective
    best_model.safetensors   the backbone after the last finished epoch, under the architecture's own names
                             (only registry stages: no head, no projector, no decoder)
    checkpoint.pt            everything needed to resume (backbone, projector, decoder, optimiser, schedule)
    metrics.jsonl            per epoch: train_loss, contrastive, reconstruction, lr, seconds
    summary.json, model_card.md
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from medtl.errors import MedtlError
from medtl.models.registry import get_architecture
from medtl.models.spec import ModelSpec
from medtl.pretrain.objective import ObjectiveSettings, PretrainingNetwork, pretraining_loss
from medtl.pretrain.unlabelled import UnlabelledSlices
from medtl.pretrain.views import ViewSettings, foreground_box, make_views
from medtl.progress import CancelToken
from medtl.training.background_writer import background_writes, snapshot
from medtl.training.config import TrainConfig
from medtl.training.events import CANCELLED, COMPLETED, TIME_LIMIT, EpochEnd, EventCallback, Finished, LogLine, StepProgress, TrainEvent
from medtl.training.run_folder import RunConfig, RunFolder
from medtl.training.run_summary import PRETRAINING_TASK, RunSummary

if TYPE_CHECKING:
    from medtl.training.device import DeviceSetup

BUDGET_PLAN_STEPS = 10
"""With a time budget, the schedule is planned to fill it from the pace of the first this-many steps (of any epochs)."""
OBJECTIVE_TEXT = "NT-Xent contrastive loss on pooled backbone features + masked L1 reconstruction through a light decoder"
INTENDED_USE = (
    "A starting point for fine-tuning (`medtl train --weights run:RUN --model ARCHITECTURE`), where a new head is "
    "trained on labelled data. It predicts nothing by itself. Research use only: not a medical device, not for "
    "diagnosis. Features learned from these inputs may not transfer to other scanners, sites or populations."
)


@dataclass(frozen=True)
class PretrainSettings:
    """What pretraining does beyond the usual training settings: views, objective and how many slices to take."""

    views: ViewSettings = field(default_factory=ViewSettings)
    objective: ObjectiveSettings = field(default_factory=ObjectiveSettings)
    slices_per_series: int = 32
    max_slices: int = 4000

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainSettings:
        try:
            return cls(ViewSettings(**data["views"]), ObjectiveSettings(**data["objective"]), data["slices_per_series"], data["max_slices"])
        except (KeyError, TypeError) as error:
            raise MedtlError(f"pretraining settings: missing or unknown field ({error})") from None


@dataclass
class _State:
    """Where pretraining stands; saved in every checkpoint."""

    planned_steps: int
    epoch: int = 0  # epochs finished
    step_in_epoch: int = 0
    global_step: int = 0
    elapsed_seconds: float = 0.0
    epoch_start_seconds: float = 0.0
    loss_sum: float = 0.0  # over the steps of the unfinished epoch
    contrastive_sum: float = 0.0
    reconstruction_sum: float = 0.0
    last_loss: float | None = None
    stopped_because: str | None = None


class Pretrainer:
    """The self-supervised loop over ``data``'s slices (see the module docstring).

    ``backbone`` is the registry network built from ``spec`` (built here when not given). ``clock``
    (seconds) is injectable so that tests of the time budget need not sleep.
    """

    def __init__(
        self,
        data: UnlabelledSlices,
        spec: ModelSpec,
        config: TrainConfig,
        settings: PretrainSettings,
        run_dir: Path | str,
        *,
        backbone: torch.nn.Module | None = None,
        on_event: EventCallback | None = None,
        cancel: CancelToken | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from medtl.models.spec import build_model

        if len(data) < 2:
            raise MedtlError("self-supervised pretraining needs at least two slices")
        self.data, self.spec, self.config, self.settings = data, spec, config, settings
        self.run = RunFolder(run_dir)
        self.on_event, self.cancel, self.clock = on_event, cancel or CancelToken(), clock
        backbone = backbone if backbone is not None else build_model(dataclasses.replace(spec, weights=None))[0]
        self.network = PretrainingNetwork(backbone, get_architecture(spec.architecture), settings.views.crop_size, settings.objective.projection_dim)
        self.images = [torch.from_numpy(image.astype(np.float32)) for image in data.slices]
        self.boxes = [foreground_box(image) for image in data.slices]
        self.batch = min(config.batch_size, len(data))
        self.steps_per_epoch = len(data) // self.batch

    # ----------------------------------------------------------------- public

    def fit(self, resume: bool = False) -> RunSummary:
        """Pretrain until the epochs, the time budget or a cancel end it; returns the summary."""
        from medtl.training.device import setup_device
        from medtl.training.schedule import WarmupCosine

        config = self.config
        self.setup: DeviceSetup = setup_device(self.network, config.device, config.amp)
        self.network.to(self.setup.device)
        checkpoint = self.run.load_checkpoint() if resume else None
        self.state = _State(**checkpoint["state"]) if checkpoint is not None else _State(planned_steps=config.epochs * self.steps_per_epoch)
        if self.state.stopped_because not in (None, CANCELLED):
            return self._finish()  # already finished: rewrite its summary in case a crash came before it
        self.state.stopped_because = None
        self.optimizer = torch.optim.AdamW(self.network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.schedule = WarmupCosine(self.optimizer, round(config.warmup_epochs * self.steps_per_epoch), self.state.planned_steps)
        self.scaler = torch.amp.GradScaler(self.setup.device.type, enabled=self.setup.uses_grad_scaler)
        if checkpoint is not None:
            self.network.load_state_dict(checkpoint["network"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            self.schedule.load_state_dict(checkpoint["scheduler"])
            self.scaler.load_state_dict(checkpoint["scaler"])
            self.run.keep_metrics_through(self.state.epoch)
            self._log(f"resumed after epoch {self.state.epoch}" + (f", step {self.state.step_in_epoch}" if self.state.step_in_epoch else ""))
        else:
            self._start_run_folder()
        self._log(f"pretraining on {self.setup.name}, mixed precision {self.setup.amp_label}, {self.steps_per_epoch} step(s) of {self.batch} slice pairs an epoch")
        self._fit_started, self._elapsed_before = self.clock(), self.state.elapsed_seconds
        self._step_seconds: list[float] = []
        self._needs_plan = checkpoint is None and config.time_limit_seconds is not None  # a resumed run keeps its plan
        with background_writes() as self._writer:  # the last checkpoint is on disk before the summary says the run ended
            while self.state.stopped_because is None:
                self._run_epoch()
                self._save_checkpoint()
        return self._finish()

    # ------------------------------------------------------------------ loop

    def _run_epoch(self) -> None:
        state, budget = self.state, self.config.time_limit_seconds
        if state.step_in_epoch == 0:
            state.epoch_start_seconds = self._elapsed()
        order = torch.randperm(len(self.images), generator=torch.Generator().manual_seed(_seed(self.config.seed, state.epoch)))
        self.network.train()
        while state.step_in_epoch < self.steps_per_epoch:
            if self.cancel.cancelled:
                state.stopped_because = CANCELLED
                return
            self._step(order[state.step_in_epoch * self.batch : (state.step_in_epoch + 1) * self.batch].tolist())
            if self._needs_plan and budget is not None and len(self._step_seconds) >= BUDGET_PLAN_STEPS:
                self._plan_for_budget(budget)
            if budget is not None and self._elapsed() >= budget:
                state.stopped_because = TIME_LIMIT
                self._log(f"time limit of {self.config.time_limit_minutes:g} min reached")
                break
            if state.global_step >= state.planned_steps:
                break
        self._end_epoch()

    def _step(self, indices: list[int]) -> None:
        state, device = self.state, self.setup.device
        started = self.clock()
        generator = torch.Generator().manual_seed(_seed(self.config.seed, state.epoch, state.step_in_epoch))
        views = make_views([self.images[i] for i in indices], [self.boxes[i] for i in indices], self.settings.views, generator)
        views = dataclasses.replace(views, **{name: getattr(views, name).to(device, non_blocking=True) for name in ("masked_a", "clean_a", "mask_a", "view_b")})
        self.optimizer.zero_grad(set_to_none=True)
        with self.setup.autocast():
            loss, parts = pretraining_loss(self.network, views, self.settings.objective)
        if not math.isfinite(float(loss.detach())):
            raise MedtlError(f"the pretraining loss became {float(loss.detach())} at epoch {state.epoch + 1}, step {state.step_in_epoch + 1}; try a lower learning rate")
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step()
        seconds = self.clock() - started
        self._step_seconds.append(seconds)
        state.step_in_epoch += 1
        state.global_step += 1
        state.loss_sum += float(loss.detach())
        state.contrastive_sum += parts["contrastive"]
        state.reconstruction_sum += parts["reconstruction"]
        state.last_loss = float(loss.detach())
        pairs_per_second = len(indices) / seconds if seconds > 0 else 0.0
        self._emit(StepProgress(state.epoch + 1, state.step_in_epoch, self.steps_per_epoch, state.last_loss, pairs_per_second, self._eta()))

    def _end_epoch(self) -> None:
        """Record the epoch (a budget may cut the last one short), keep its backbone, and decide whether to go on."""
        state = self.state
        steps = max(1, state.step_in_epoch)
        number = state.epoch + 1
        seconds = self._elapsed() - state.epoch_start_seconds
        parts = {"contrastive": state.contrastive_sum / steps, "reconstruction": state.reconstruction_sum / steps}
        record = {"epoch": number, "train_loss": state.loss_sum / steps, **parts, "lr": self.schedule.lr, "seconds": seconds, "elapsed_seconds": self._elapsed()}
        self.run.append_metrics(record)
        self.run.save_best_model(self.network.backbone_state(), {"epoch": str(number), "objective": "self-supervised: " + OBJECTIVE_TEXT})
        self._emit(EpochEnd(number, record["train_loss"], parts, False, seconds))
        state.epoch, state.step_in_epoch = number, 0
        state.loss_sum = state.contrastive_sum = state.reconstruction_sum = 0.0
        if state.stopped_because is None and state.global_step >= state.planned_steps:
            budget_cut = state.planned_steps < self.config.epochs * self.steps_per_epoch
            state.stopped_because = TIME_LIMIT if budget_cut else COMPLETED

    def _plan_for_budget(self, budget: float) -> None:
        """Fit the cosine schedule to the steps the budget holds at the pace of the first steps (all included:
        views, checkpoints, metrics), leaving out the first step's one-time warm-up."""
        self._needs_plan = False
        state = self.state
        per_step = max((self._elapsed() - self._step_seconds[0]) / max(1, len(self._step_seconds) - 1), 1e-9)
        state.planned_steps = max(state.global_step, min(self.config.epochs * self.steps_per_epoch, math.floor(budget / per_step)))
        self.schedule.replan(state.planned_steps)
        self._log(f"time budget: about {state.planned_steps} steps ({state.planned_steps / self.steps_per_epoch:.1f} epochs) of {per_step:.2f} s fit in {self.config.time_limit_minutes:g} min")

    # --------------------------------------------------------- state and output

    def _start_run_folder(self) -> None:
        preprocessing = {
            "intensity": "per volume, as fine-tuning's default for its modality (CT: HU window [-1000, 2000]; others: 0.5-99.5 percentiles), to [0, 1]",
            "slices": f"2D, along the stored slice axis, up to {self.settings.slices_per_series} per series",
            "channels": 1,
        }
        run_config = RunConfig(self.config, self.spec.to_dict(), preprocessing, self.data.summary())
        self.run.start_fresh(run_config, {"pretraining": {**self.settings.to_dict(), "objective_text": OBJECTIVE_TEXT}})

    def _save_checkpoint(self) -> None:
        """Write the whole pretraining state atomically, in the background while the next epoch trains."""
        self.state.elapsed_seconds = self._elapsed()
        state = {
            "format": 1,
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "state": dataclasses.asdict(self.state),
        }
        self._writer.submit(self.run.save_checkpoint, snapshot(state))

    def _finish(self) -> RunSummary:
        state = self.state
        last = self.run.read_metrics()[-1:] or [{}]
        details = {
            "architecture": self.spec.architecture,
            "objective": OBJECTIVE_TEXT,
            "steps": state.global_step,
            "final_loss": last[0].get("train_loss"),
            "contrastive": last[0].get("contrastive"),
            "reconstruction": last[0].get("reconstruction"),
            "data": self.data.summary(),
            "weights": f"run:{self.run.path}" if self.run.best_model_path.is_file() else None,
        }
        summary = RunSummary(PRETRAINING_TASK, state.epoch, state.elapsed_seconds, state.stopped_because, self.setup.name, details=details, run_dir=self.run.path)
        self.run.write_summary(summary)
        self.run.write_model_card(render_pretraining_card(self.spec, self.config, self.settings, summary))
        self._emit(Finished(summary))
        return summary

    def _elapsed(self) -> float:
        return self._elapsed_before + self.clock() - self._fit_started

    def _eta(self) -> float | None:
        if not self._step_seconds:
            return None
        remaining = max(0, self.state.planned_steps - self.state.global_step) * sum(self._step_seconds) / len(self._step_seconds)
        budget = self.config.time_limit_seconds
        return remaining if budget is None else min(remaining, max(0.0, budget - self._elapsed()))

    def _emit(self, event: TrainEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _log(self, message: str) -> None:
        self._emit(LogLine(message))


def _seed(*numbers: int) -> int:
    """A 63-bit seed for a generator, from the run's seed and where in the run it is."""
    return int(np.random.SeedSequence([abs(n) for n in numbers]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def fine_tune_command(spec: ModelSpec, weights: str) -> str:
    """The ``medtl train`` line that fine-tunes from these weights (a datalist and an output folder to fill in)."""
    return f"medtl train --datalist DL.json --task {spec.task} --model {spec.architecture} --weights {shlex.quote(weights)} --out FINE_TUNED"


def render_pretraining_card(spec: ModelSpec, config: TrainConfig, settings: PretrainSettings, summary: RunSummary) -> str:
    """``model_card.md`` of a pretraining run: what it is, from which inputs (counts only), how, and for what."""
    details = summary.details
    data = details["data"]
    modalities = ", ".join(f"{name}: {count}" for name, count in data["modalities"].items()) or "none"
    views, objective = settings.views, settings.objective

    def number(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    what = (
        "Backbone weights learned **without labels** (self-supervised) from the images listed below by count. "
        "`best_model.safetensors` holds only the backbone (the architecture's encoder stages, under its own tensor names); "
        "its head, the projector and the reconstruction decoder are not kept, so a fine-tuning run starts its head from random.\n"
    )
    inputs = (
        f"- patients: {data['patients']}\n- volumes / series / pictures: {data['volumes']}\n- 2D slices used: {data['slices']}\n"
        f"- modalities (volumes): {modalities}\n- inputs skipped as unreadable or empty: {data['skipped_inputs']}\n"
    )
    how = (
        f"{OBJECTIVE_TEXT}. Total loss = {objective.contrastive_weight:g} × NT-Xent (temperature {objective.temperature:g}, "
        f"projection {objective.projection_dim}) + {objective.reconstruction_weight:g} × L1 (cut-out pixels weight 1, visible {objective.visible_weight:g}).\n\n"
        f"Views: random {views.crop_size} px crops (zoom {views.zoom_range[0]:g}-{views.zoom_range[1]:g}, rotation ±{views.rotate_degrees:g}°, no flips), "
        f"intensity ×(1 ± {views.intensity_scale:g}) ± {views.intensity_shift:g}, noise σ ≤ {views.noise_std:g}; about {views.mask_fraction:.0%} of one view cut out.\n"
    )
    training = (
        f"- epochs: {summary.epochs} ({details['steps']} steps; stopped: {summary.stopped_because})\n- seconds: {number(summary.seconds)} on {summary.device}\n"
        f"- batch: {config.batch_size} slice pairs, AdamW lr {config.lr:g}, weight decay {config.weight_decay:g}, seed {config.seed}\n"
        f"- final epoch loss: {number(details['final_loss'])} (contrastive {number(details['contrastive'])}, reconstruction {number(details['reconstruction'])})\n"
    )
    model = (
        f"- architecture: {spec.architecture} ({spec.spatial_dims}D, {spec.in_channels} channel(s))\n- constructor arguments: `{json.dumps(spec.arch_params)}`\n"
        f"- use: `{fine_tune_command(spec, details.get('weights') or 'run:RUN')}`\n"
    )
    sections = (
        ("", f"# Model card: self-supervised {spec.spatial_dims}D {spec.architecture} backbone\n"),
        ("What this is", what),
        ("Intended use", INTENDED_USE + "\n"),
        ("Inputs (counts only; no names or identifiers are recorded)", inputs),
        ("Objective", how),
        ("Training", training),
        ("Model", model),
    )
    return "\n".join(f"## {title}\n\n{text}" if title else text for title, text in sections)

"""``Objective``: what one kind of training job learns; the :class:`~medtl.training.trainer.Trainer` runs it.

The Trainer owns all that jobs share: device and mixed precision, the optimiser and its warm-up +
cosine schedule, the time budget, background checkpoints and exact resume, early stopping, cancel,
events, out-of-memory retries, and the run folder's summary and model card. An objective says what is
particular to a job, and nothing else:

- what trains: ``network`` (the Trainer moves it to the device, makes it channels-last where that is
  faster, wraps it in DDP under torchrun and checkpoints it), ``param_groups`` and ``epoch_hook``
  (freezing strategies);
- its data: ``batches(epoch)`` from the epoch's start, in an order that depends only on the run's seed,
  the epoch and the global RNG (which the Trainer seeds, checkpoints and replays: that makes a resume
  exact); ``count`` (items in a batch) and, when ``divisible``, ``split`` (micro-batches for gradient
  accumulation and out-of-memory retries) and ``first_micro_batch`` (fitted to GPU memory);
- its training step: ``loss(net, batch)``, the loss to backpropagate and any parts to log (the Trainer
  calls it under autocast, and owns backward, clipping, loss scaling and the optimiser step);
- its validation: ``metric_name`` (``None``: it never validates), ``validation_batches``, ``predict``
  and ``scores``; the Trainer decides when, keeps the best and stops early;
- its output: ``model_to_save`` after an epoch, ``extra_state`` in the checkpoint, ``config_extra`` in
  ``config.json``, ``summary_details`` and ``model_card``.

Three objectives exist: :class:`~medtl.training.supervised.SupervisedObjective` (fine-tuning on labelled
``{"image", "label"}`` batches), :class:`~medtl.pretrain.pretrainer.PretrainingObjective` (contrastive +
masked reconstruction on pairs of views) and :class:`~medtl.prompt.adapt.AdaptObjective` ("Adapt to my
labels": LiteMedSAM's mask decoder, optionally with its image encoder's last stage, fine-tuned on
box prompts derived from labelled slices, whatever is frozen run once per slice in ``start`` and
cached). The last sets ``plan_budget_after_steps``: its set-up costs as much as many epochs, so a
time budget is planned in steps from the pace of its first few, not in whole epochs after the first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from medtl.training.device import DeviceSetup
    from medtl.training.distributed import DistContext
    from medtl.training.run_folder import RunConfig, RunFolder
    from medtl.training.run_summary import RunSummary

SavedModel = tuple[dict[str, torch.Tensor], dict[str, str]]
"""Tensors for ``best_model.safetensors`` and their string metadata."""


class Scores(Protocol):
    """Validation metrics accumulated batch by batch (see :meth:`Objective.scores`)."""

    def update(self, batch: Any, outputs: Any) -> None:
        """Add one validation batch and what :meth:`Objective.predict` gave for it."""

    def compute(self) -> dict[str, Any]:
        """The metrics over everything added (on every rank: over every rank's share)."""


class Objective(ABC):
    """What one job learns (see the module docstring). Set ``network``, ``task`` and, by :meth:`start`,
    ``steps_per_epoch`` and ``batch_size``; the defaults below suit a job that neither validates nor splits batches."""

    network: nn.Module
    task: str
    """What ``summary.json`` calls the job (:attr:`~medtl.training.run_summary.RunSummary.task`)."""
    steps_per_epoch: int
    batch_size: int
    unit: str = "image"
    """What :meth:`count` counts, in the Trainer's lines (``"image"``, ``"slice pair"``)."""
    divisible: bool = False
    """Whether a batch may train in parts (gradient accumulation; out-of-memory retries with smaller parts).
    A contrastive loss, whose negatives are the rest of the batch, may not."""
    metric_name: str | None = None
    """The validation metric that selects the best epoch and stops early (higher is better); ``None``: no validation."""

    @property
    def plan_budget_after_steps(self) -> int | None:
        """How a time budget is planned. ``None``: in whole epochs, after the first (its validation included)
        and again after each one; ``N``: once, in steps, from the pace of this run's first ``N`` steps (a run
        may then end inside an epoch)."""
        return None

    def start(self, setup: DeviceSetup, ctx: DistContext) -> None:
        """Called once ``network`` is on ``setup.device``: move the rest there, shard loaders over ``ctx``'s ranks."""

    def param_groups(self) -> Iterable[Any]:
        """The optimiser's parameter groups; they must cover every parameter, frozen ones included."""
        return self.network.parameters()

    def epoch_hook(self, epoch: int) -> str | None:
        """Called before ``epoch`` (from 0) trains, and replayed on resume; returns a line to log when it changed something."""
        return None

    def first_micro_batch(self) -> int:
        """The micro-batch a fresh run starts with (out-of-memory retries halve it)."""
        return self.batch_size

    @abstractmethod
    def batches(self, epoch: int) -> Iterable[Any]:
        """``epoch``'s training batches from its start; the same ones for the same seed and global RNG."""

    @abstractmethod
    def count(self, batch: Any) -> int:
        """How many items (:attr:`unit`) ``batch`` holds."""

    def split(self, batch: Any, size: int) -> Sequence[Any]:
        """``batch`` in parts of at most ``size`` items (only called when :attr:`divisible`)."""
        raise NotImplementedError

    @abstractmethod
    def loss(self, net: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The mean loss over ``batch`` through ``net`` (``network``, maybe DDP-wrapped), and named parts to log."""

    def validation_batches(self) -> Iterable[Any]:
        """The validation batches (only called when :attr:`metric_name` is set)."""
        raise NotImplementedError

    def predict(self, module: nn.Module, batch: Any, micro_batch: int) -> Any:
        """``module``'s outputs for a validation batch, ``micro_batch`` items at a time (under ``no_grad`` and autocast)."""
        raise NotImplementedError

    def scores(self) -> Scores:
        """An empty accumulator of the validation metrics."""
        raise NotImplementedError

    @abstractmethod
    def model_to_save(self, epoch: int, metrics: dict[str, Any], is_best: bool) -> SavedModel | None:
        """What ``best_model.safetensors`` becomes after ``epoch`` (from 1), or ``None`` to keep what it holds."""

    def extra_state(self) -> dict[str, Any]:
        """State of the objective's own to checkpoint beside the network's (tensors and plain types only)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Undo :meth:`extra_state` on resume."""

    def config_extra(self) -> dict[str, Any]:
        """Top-level entries this kind of run adds to ``config.json``."""
        return {}

    def summary_details(self, run: RunFolder, steps: int) -> dict[str, Any]:
        """What only this kind of job reports in ``summary.json`` (:attr:`RunSummary.details`)."""
        return {}

    @abstractmethod
    def model_card(self, config: RunConfig, summary: RunSummary, run: RunFolder) -> str:
        """``model_card.md`` for the run."""


def images_to_device(images: torch.Tensor, setup: DeviceSetup) -> torch.Tensor:
    """``images`` ``[B, C, ...]`` (a MONAI MetaTensor too) as a plain tensor on the device, channels-last where the network is."""
    images = images.as_subclass(torch.Tensor).to(setup.device, non_blocking=True)
    if setup.channels_last and images.ndim == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    return images

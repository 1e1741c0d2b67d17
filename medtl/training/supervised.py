"""``SupervisedObjective``: fine-tuning a network on labelled images, the :class:`~medtl.training.trainer.Trainer`'s usual job."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader

from medtl.errors import MedtlError
from medtl.training import distributed
from medtl.training.losses import default_loss
from medtl.training.metrics import MetricAccumulator, label_spacing, primary_metric
from medtl.training.model_card import render_model_card
from medtl.training.objective import Objective, SavedModel, images_to_device

if TYPE_CHECKING:
    from medtl.training.config import TrainConfig
    from medtl.training.device import DeviceSetup
    from medtl.training.distributed import DistContext
    from medtl.training.run_folder import RunConfig, RunFolder
    from medtl.training.run_summary import RunSummary

Batch = dict[str, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class SupervisedObjective(Objective):
    """Fits ``model`` on ``train_loader`` and scores it on ``val_loader`` with the task's metrics.

    Loaders yield MONAI dict batches ``{"image": [B, C, ...], "label": ...}``: class indices [B] for
    classification, integer masks [B, 1, ...] for segmentation. ``loss_fn`` defaults to the task's
    (:func:`~medtl.training.losses.default_loss`, with ``config.class_weights``). ``param_groups``
    (optimiser groups, e.g. a slower backbone) must cover every parameter, frozen ones included, so that
    ``epoch_hook`` can unfreeze them; the hook gets the epoch (from 0) before it trains and returns a line
    to log when it changed something. Validation uses sliding windows of ``config.val_roi_size`` when set;
    the best epoch by :func:`~medtl.training.metrics.primary_metric` is the run's model. ``ignore_label`` (sparse
    masks) is the mask value the validation metrics leave out (the loss is ``loss_fn``'s business).
    """

    divisible = True

    def __init__(
        self,
        config: TrainConfig,
        model: nn.Module,
        train_loader: DataLoader,
        val_loader: DataLoader,
        *,
        loss_fn: LossFn | None = None,
        param_groups: list[dict[str, Any]] | None = None,
        epoch_hook: Callable[[int], str | None] | None = None,
        ignore_label: int | None = None,
    ) -> None:
        self.config, self.network, self.task, self.ignore_label = config, model, config.task, ignore_label
        self.metric_name = primary_metric(config.task)
        self.train_loader, self.val_loader = train_loader, val_loader
        self.loss_fn = loss_fn or default_loss(config.task, config.class_weights)
        self._param_groups, self._epoch_hook = param_groups, epoch_hook

    def start(self, setup: DeviceSetup, ctx: DistContext) -> None:
        self.setup, self.ctx = setup, ctx
        if isinstance(self.loss_fn, nn.Module):
            self.loss_fn.to(setup.device)
        self.train_loader = distributed.shard_loader(self.train_loader, ctx, self.config.seed)
        self.val_loader = distributed.shard_loader(self.val_loader, ctx, self.config.seed)
        self.steps_per_epoch = len(self.train_loader)
        if self.steps_per_epoch == 0 or len(self.val_loader) == 0:
            raise MedtlError("the training and the validation set each need at least one batch")
        self.batch_size = self.train_loader.batch_size or self.config.batch_size

    def param_groups(self) -> Iterable[Any]:
        return self._param_groups or self.network.parameters()

    def epoch_hook(self, epoch: int) -> str | None:
        return None if self._epoch_hook is None else self._epoch_hook(epoch)

    def first_micro_batch(self) -> int:
        from medtl.training.device import probe_micro_batch

        return probe_micro_batch(self.network, self.loss_fn, self.train_loader, self.setup, self.batch_size)

    # ----------------------------------------------------------------- training

    def batches(self, epoch: int) -> Iterator[Batch]:
        distributed.set_epoch(self.train_loader, epoch)
        return iter(self.train_loader)

    def count(self, batch: Batch) -> int:
        return int(batch["image"].shape[0])

    def split(self, batch: Batch, size: int) -> list[Batch]:
        images, labels = batch["image"], batch["label"]
        return [{"image": images[start : start + size], "label": labels[start : start + size]} for start in range(0, images.shape[0], size)]

    def loss(self, net: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        labels = batch["label"].as_subclass(torch.Tensor).to(self.setup.device, non_blocking=True)
        return self.loss_fn(net(images_to_device(batch["image"], self.setup)), labels), {}

    # --------------------------------------------------------------- validation

    def validation_batches(self) -> DataLoader:
        return self.val_loader

    def predict(self, module: nn.Module, batch: Batch, micro_batch: int) -> torch.Tensor:
        images, roi = batch["image"], self.config.val_roi_size
        outputs = []
        for start in range(0, images.shape[0], micro_batch):
            x = images_to_device(images[start : start + micro_batch], self.setup)
            if roi is None:
                outputs.append(module(x).float())
            else:
                from monai.inferers import sliding_window_inference

                outputs.append(cast(torch.Tensor, sliding_window_inference(x, roi, micro_batch, module)).float())
        return torch.cat(outputs)

    def scores(self) -> _TaskScores:
        return _TaskScores(self.task, self.ctx, distributed.unpadded_count(self.val_loader, self.ctx), self.ignore_label)

    # ------------------------------------------------------------------- output

    def model_to_save(self, epoch: int, metrics: dict[str, Any], is_best: bool) -> SavedModel | None:
        if not is_best:
            return None
        return self.network.state_dict(), {"epoch": str(epoch), "metric": str(self.metric_name), "value": repr(float(metrics[self.metric_name]))}

    def summary_details(self, run: RunFolder, steps: int) -> dict[str, Any]:
        """The train/validation split, as the data summary in ``config.json`` names it."""
        split = run.read_config().data.get("split") if run.config_path.is_file() else None
        return {"split": split} if split else {}

    def model_card(self, config: RunConfig, summary: RunSummary, run: RunFolder) -> str:
        best = next((record for record in run.read_metrics() if record["epoch"] == summary.best_epoch), {})
        return render_model_card(config, summary, best)


class _TaskScores:
    """The task's metrics (:class:`~medtl.training.metrics.MetricAccumulator`), gathered from every rank; ``keep``
    leaves out the repeats a sharded loader pads with."""

    def __init__(self, task: str, ctx: DistContext, keep: int | None, ignore_label: int | None) -> None:
        self.accumulator, self.segmentation, self.ctx, self.keep = MetricAccumulator(task, ignore_label), task == "segmentation", ctx, keep

    def update(self, batch: Batch, outputs: torch.Tensor) -> None:
        labels = batch["label"]
        spacing = label_spacing(labels) if self.segmentation else None
        self.accumulator.update(outputs, labels.as_subclass(torch.Tensor).to(outputs.device), spacing)

    def compute(self) -> dict[str, Any]:
        return self.accumulator.compute(self.ctx.gather, keep=self.keep)

""""Adapt to my labels": fine-tune LiteMedSAM on labelled slices with box prompts derived from the masks (no Qt).

:class:`AdaptObjective` is an :class:`~medtl.training.objective.Objective`: the Trainer runs it like any
other job (budget, checkpoints, cancel, events, run folder). What trains is the mask decoder
(``decoder``), or the mask decoder plus the image encoder's last stage and its neck
(``decoder+encoder-last``); the prompt encoder and the rest of the image encoder stay frozen. Whatever
is frozen runs once per labelled slice when the job starts (:func:`cache_inputs`): the whole encoder's
embedding for ``decoder``, the input of its last stage for ``decoder+encoder-last``, so a training step
costs only what trains.

Each item is one label on one slice (:class:`LabelledSlice`): its prompt is the bounding box of the
label's mask there, each side moved by up to ``jitter`` pixels (drawn afresh every step from the global
RNG the Trainer seeds and checkpoints; for validation once, from the run's seed). The loss is Dice + BCE
on the decoder's 256×256 mask against the label in the encoder's frame, plus the squared error of the
decoder's predicted IoU (which propagation reads). Validation is the Dice of the box-prompted masks on
the held-out slices, on each slice's own grid, exactly as :class:`~medtl.prompt.engine.PromptModel`
makes them; the run's ``summary.json`` reports it beside the untouched model's (``zero_shot_dice``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medtl.models.medsam import INPUT_SIZE, LICENCE, channels_last, inference_encoder
from medtl.prompt.preprocessing import IntensityWindow, encoder_input, input_scale, mask_on_slice, resized_shape
from medtl.prompt.slicing import cut
from medtl.training.objective import Objective, SavedModel

if TYPE_CHECKING:
    from medtl.training.device import DeviceSetup
    from medtl.training.distributed import DistContext
    from medtl.training.run_folder import RunConfig, RunFolder
    from medtl.training.run_summary import RunSummary

DECODER = "decoder"
DECODER_AND_ENCODER_LAST = "decoder+encoder-last"
TRAINABLE = (DECODER, DECODER_AND_ENCODER_LAST)
TASK = "prompt adaptation"
METRIC = "mean_dice"
STEPS_PER_EPOCH = 10
BATCH_SIZE = 8
JITTER = 5
"""Pixels (of the slice) by which each side of a derived box moves, at most (the issue's measurements: 0–5)."""
MIN_PIXELS = 4
"""A label covering fewer pixels of a slice gives no item there (no box to draw)."""
PLAN_AFTER_STEPS = 3
_EMBEDDING_GRID = 64


@dataclass(frozen=True, eq=False)
class LabelledSlice:
    """Label ``label`` on slice ``index`` of the plane: the slice's ``pixels`` and the label's boolean ``mask``."""

    index: int
    label: int
    pixels: np.ndarray
    mask: np.ndarray

    @property
    def box(self) -> tuple[int, int, int, int]:
        """The mask's bounding box ``(x0, y0, x1, y1)`` (columns and rows included)."""
        rows, columns = np.flatnonzero(self.mask.any(axis=1)), np.flatnonzero(self.mask.any(axis=0))
        return int(columns[0]), int(rows[0]), int(columns[-1]), int(rows[-1])


def labelled_slices(image: np.ndarray, labels_volume: np.ndarray, plane: str, labels: Sequence[int], ignore: int | None) -> list[LabelledSlice]:
    """Every (slice, label) of ``plane`` where the slice is labelled (none of its voxels is ``ignore``) and the label covers
    at least :data:`MIN_PIXELS` pixels; slices of ``image`` and ``labels_volume`` (both ``[z, y, x]``) along ``plane``."""
    items = []
    for index in range(labels_volume.shape[("axial", "coronal", "sagittal").index(plane)]):
        annotation = cut(labels_volume, plane, index)
        if ignore is not None and (annotation == ignore).any():
            continue
        for label in labels:
            mask = annotation == label
            if mask.sum() >= MIN_PIXELS:
                items.append(LabelledSlice(index, int(label), np.ascontiguousarray(cut(image, plane, index)), mask))
    return items


def jittered_boxes(items: Sequence[LabelledSlice], jitter: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[B, 4]`` boxes in the encoder's frame: each item's box with each side moved by up to ``jitter`` slice pixels, kept
    inside the slice and non-empty (``generator``: ``None`` draws from the global RNG)."""
    offsets = torch.randint(-jitter, jitter + 1, (len(items), 4), generator=generator).tolist() if jitter else [[0] * 4] * len(items)
    boxes = []
    for item, offset in zip(items, offsets):
        rows, columns = item.mask.shape
        x0, y0, x1, y1 = (value + delta for value, delta in zip(item.box, offset))
        x0, y0 = min(max(0, x0), columns - 2), min(max(0, y0), rows - 2)
        x1, y1 = max(min(columns - 1, x1), x0 + 1), max(min(rows - 1, y1), y0 + 1)
        boxes.append([coordinate * input_scale(item.mask.shape) for coordinate in (x0, y0, x1, y1)])
    return torch.tensor(boxes, dtype=torch.float32)


def target_in_frame(mask: np.ndarray) -> torch.Tensor:
    """``[1, 256, 256]``: the mask resized as the encoder's input is (longest side 256) and padded with background."""
    rows, columns = resized_shape(mask.shape)
    resized = F.interpolate(torch.from_numpy(mask.astype(np.float32))[None, None], size=(rows, columns), mode="bilinear", align_corners=False)
    return F.pad((resized[0] > 0.5).float(), (0, INPUT_SIZE - columns, 0, INPUT_SIZE - rows))


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    return 2 * float((prediction & truth).sum()) / max(1, int(prediction.sum()) + int(truth.sum()))


class AdaptedParts(nn.Module):
    """What ``network`` is for the Trainer: the parts of a LiteMedSAM that run after the cache (shared with it, so
    training them trains the LiteMedSAM). ``forward(cached, boxes)`` gives the decoder's 256×256 logits and predicted IoU."""

    def __init__(self, medsam: nn.Module, trains: str) -> None:
        super().__init__()
        self.prompt_encoder, self.mask_decoder = medsam.prompt_encoder, medsam.mask_decoder
        encoder = medsam.image_encoder
        self.encoder_last = nn.ModuleDict({"stage": encoder.layers[-1], "neck": encoder.neck}) if trains == DECODER_AND_ENCODER_LAST else None
        for parameter in medsam.parameters():
            parameter.requires_grad_(False)
        trained = [self.mask_decoder] + ([self.encoder_last] if self.encoder_last is not None else [])
        for part in trained:
            for parameter in part.parameters():
                parameter.requires_grad_(True)

    def forward(self, cached: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = cached
        if self.encoder_last is not None:
            tokens = self.encoder_last["stage"](cached)
            features = self.encoder_last["neck"](tokens.view(tokens.shape[0], _EMBEDDING_GRID, _EMBEDDING_GRID, -1).permute(0, 3, 1, 2))
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes, masks=None)
        logits, iou = self.mask_decoder(
            image_embeddings=features, image_pe=self.prompt_encoder.get_dense_pe(), sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense, multimask_output=False,
        )  # fmt: skip
        return logits, iou


@torch.no_grad()
def cache_inputs(medsam: nn.Module, items: Sequence[LabelledSlice], window: IntensityWindow, trains: str, device: torch.device) -> dict[int, torch.Tensor]:
    """What the frozen encoder makes of each labelled slice, by slice index, once: the embedding ``[256, 64, 64]`` (``decoder``),
    or the tokens entering the encoder's last stage (``decoder+encoder-last``)."""
    encoder = inference_encoder(medsam)  # the frozen parts as PromptModel.embed runs them (the same outputs, faster)
    cached: dict[int, torch.Tensor] = {}
    for item in items:
        if item.index in cached:
            continue
        x = channels_last(encoder_input(item.pixels, window).to(device))
        if trains == DECODER:
            cached[item.index] = encoder(x)[0].contiguous()
            continue
        x = encoder.patch_embed(x)
        for layer in encoder.layers[:-1]:
            x = layer(x)
        cached[item.index] = x[0].contiguous()
    return cached


@dataclass(frozen=True, eq=False)
class PromptBatch:
    """Items (indices into the objective's lists) with their cached inputs ``[B, ...]``, boxes ``[B, 4]`` and targets ``[B, 1, 256, 256]``."""

    items: tuple[int, ...]
    cached: torch.Tensor
    boxes: torch.Tensor
    targets: torch.Tensor

    def part(self, start: int, stop: int) -> PromptBatch:
        return PromptBatch(self.items[start:stop], self.cached[start:stop], self.boxes[start:stop], self.targets[start:stop])


class AdaptObjective(Objective):
    """Fine-tunes ``medsam`` (a LiteMedSAM from :func:`medtl.models.medsam.load_medsam`) on ``training`` items and scores it on
    ``held_out`` ones (see the module docstring). ``seed`` fixes the validation boxes; the epoch's order and the training
    boxes follow the global RNG."""

    task = TASK
    unit = "prompt"
    divisible = True
    metric_name = METRIC

    def __init__(
        self,
        medsam: nn.Module,
        training: Sequence[LabelledSlice],
        held_out: Sequence[LabelledSlice],
        window: IntensityWindow,
        trains: str = DECODER,
        seed: int = 0,
        jitter: int = JITTER,
        batch_size: int = BATCH_SIZE,
        steps_per_epoch: int = STEPS_PER_EPOCH,
    ) -> None:
        if not training or not held_out:
            raise ValueError("adaptation needs labelled slices to train on and held-out ones to score")
        self.medsam, self.trains, self.window, self.seed, self.jitter = medsam, trains, window, seed, jitter
        self.training, self.held_out = list(training), list(held_out)
        self.network = AdaptedParts(medsam, trains)
        self.batch_size, self.steps_per_epoch = min(batch_size, len(self.training)), steps_per_epoch
        self._train_targets = torch.stack([target_in_frame(item.mask) for item in self.training])
        self._val_targets = torch.stack([target_in_frame(item.mask) for item in self.held_out])
        self._val_boxes = jittered_boxes(self.held_out, jitter, torch.Generator().manual_seed(seed))
        self.zero_shot: dict[str, Any] = {}

    @property
    def plan_budget_after_steps(self) -> int | None:
        """A time budget is planned in steps, from the pace of the first few: the set-up (the encoder over every labelled
        slice) costs as much as many epochs, and planning in whole epochs after the first would count it as an epoch's pace."""
        return PLAN_AFTER_STEPS

    def start(self, setup: DeviceSetup, ctx: DistContext) -> None:
        """Cache the frozen encoder's output for every slice, and score the untouched model (the zero-shot Dice)."""
        if ctx.enabled:
            from medtl.errors import MedtlError

            raise MedtlError("adapting LiteMedSAM runs in one process; start it without torchrun")
        self.setup = setup
        self.medsam.to(setup.device).eval()
        self._cache = cache_inputs(self.medsam, self.training + self.held_out, self.window, self.trains, setup.device)
        self.zero_shot = self.evaluate()

    # ----------------------------------------------------------------- training

    def batches(self, epoch: int) -> Iterator[PromptBatch]:
        order: list[int] = []
        while len(order) < self.steps_per_epoch * self.batch_size:
            order += torch.randperm(len(self.training)).tolist()
        for step in range(self.steps_per_epoch):
            chosen = tuple(order[step * self.batch_size : (step + 1) * self.batch_size])
            items = [self.training[i] for i in chosen]
            cached = torch.stack([self._cache[item.index] for item in items])
            yield PromptBatch(chosen, cached, jittered_boxes(items, self.jitter), self._train_targets[list(chosen)])

    def count(self, batch: PromptBatch) -> int:
        return len(batch.items)

    def split(self, batch: PromptBatch, size: int) -> list[PromptBatch]:
        return [batch.part(start, start + size) for start in range(0, len(batch.items), size)]

    def loss(self, net: nn.Module, batch: PromptBatch) -> tuple[torch.Tensor, dict[str, float]]:
        device = self.setup.device
        logits, predicted_iou = net(batch.cached, batch.boxes.to(device))
        logits, targets = logits.float(), batch.targets.to(device)
        probabilities = torch.sigmoid(logits)
        overlap = (probabilities * targets).sum(dim=(1, 2, 3))
        dice_loss = (1 - (2 * overlap + 1) / (probabilities.sum(dim=(1, 2, 3)) + targets.sum(dim=(1, 2, 3)) + 1)).mean()
        bce = F.binary_cross_entropy_with_logits(logits, targets)
        with torch.no_grad():
            masks = (logits > 0).float()
            intersection = (masks * targets).sum(dim=(1, 2, 3))
            iou = intersection / ((masks + targets).clamp(max=1).sum(dim=(1, 2, 3)).clamp(min=1))
        iou_loss = F.mse_loss(predicted_iou.float()[:, 0], iou)
        return dice_loss + bce + iou_loss, {"dice_loss": float(dice_loss.detach()), "bce": float(bce.detach()), "iou_loss": float(iou_loss.detach())}

    # --------------------------------------------------------------- validation

    def validation_batches(self) -> list[PromptBatch]:
        indices = range(len(self.held_out))
        return [
            PromptBatch(tuple(chunk), torch.stack([self._cache[self.held_out[i].index] for i in chunk]), self._val_boxes[list(chunk)], self._val_targets[list(chunk)])
            for chunk in (indices[start : start + self.batch_size] for start in range(0, len(self.held_out), self.batch_size))
        ]

    def predict(self, module: nn.Module, batch: PromptBatch, micro_batch: int) -> torch.Tensor:
        parts = [module(part.cached, part.boxes.to(self.setup.device))[0].float().cpu() for part in self.split(batch, micro_batch)]
        return torch.cat(parts)

    def scores(self) -> _HeldOutDice:
        return _HeldOutDice(self.held_out)

    def evaluate(self) -> dict[str, Any]:
        """The network's metrics on the held-out items now (what validation computes, and ``per_item``), without the Trainer."""
        scores = self.scores()
        with torch.no_grad():
            self.network.eval()
            for batch in self.validation_batches():
                scores.update(batch, self.predict(self.network, batch, self.batch_size))
            self.network.train()
        return {**scores.compute(), "per_item": scores.per_item}

    # ------------------------------------------------------------------- output

    def model_to_save(self, epoch: int, metrics: dict[str, Any], is_best: bool) -> SavedModel | None:
        if not is_best:
            return None
        return self.medsam.state_dict(), {"epoch": str(epoch), "metric": METRIC, "value": repr(float(metrics[METRIC])), "trains": self.trains}

    def config_extra(self) -> dict[str, Any]:
        return {"prompts": {"box": "bounding box of the label's mask on the slice", "jitter_pixels": self.jitter, "window": [self.window.low, self.window.high]}}

    def summary_details(self, run: RunFolder, steps: int) -> dict[str, Any]:
        """Zero-shot and adapted Dice on the held-out slices, per label and slice too, and which slices trained."""
        best = max((record for record in run.read_metrics() if record.get(METRIC) is not None), key=lambda record: record[METRIC], default={})
        return {
            "trains": self.trains,
            "steps": steps,
            "training_slices": sorted({item.index for item in self.training}),
            "held_out_slices": sorted({item.index for item in self.held_out}),
            "zero_shot_dice": self.zero_shot.get(METRIC),
            "adapted_dice": best.get(METRIC),
            "zero_shot_per_item": self.zero_shot.get("per_item"),
        }

    def model_card(self, config: RunConfig, summary: RunSummary, run: RunFolder) -> str:
        details = summary.details
        zero, adapted = details.get("zero_shot_dice"), details.get("adapted_dice")
        lines = [
            "# LiteMedSAM adapted to the user's labels",
            "",
            f"- Foundation model: LiteMedSAM, {LICENCE}",
            f"- What trained: {self.trains} (the rest frozen), {details.get('steps')} steps, {summary.epochs} epoch(s), stopped: {summary.stopped_because}",
            f"- Labels: {config.data.get('labels')} on {config.data.get('plane')} slices {details.get('training_slices')} of {config.data.get('image')}",
            f"- Prompts: the box of each label's mask, each side jittered by up to {self.jitter} pixels",
            f"- Held-out slices {details.get('held_out_slices')}: box-prompted Dice zero-shot {_text(zero)}, adapted {_text(adapted)}",
            "",
            "Use: `medtl prompt ... --model run:THIS_FOLDER`. Scored only on slices of the same image it learnt from.",
        ]
        return "\n".join(lines) + "\n"


def _text(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


class _HeldOutDice:
    """Dice of each held-out item's mask on its slice's own grid; ``mean_dice`` over the items."""

    def __init__(self, held_out: Sequence[LabelledSlice]) -> None:
        self.held_out = held_out
        self.per_item: list[dict[str, Any]] = []

    def update(self, batch: PromptBatch, outputs: torch.Tensor) -> None:
        for index, logits in zip(batch.items, outputs):
            item = self.held_out[index]
            value = dice(mask_on_slice(logits[None], item.mask.shape), item.mask)
            self.per_item.append({"slice": item.index, "label": item.label, "dice": value})

    def compute(self) -> dict[str, Any]:
        values = [entry["dice"] for entry in self.per_item]
        return {METRIC: float(np.mean(values)) if values else float("nan")}

"""The objective seam: a third objective defined here, shaped like fine-tuning a promptable (SAM-style) model,
is trained, cancelled and resumed exactly by the same Trainer. Its batches are not ``{"image", "label"}``
dicts and its network's forward takes cached image embeddings and box prompts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medtl.progress import CancelToken
from medtl.training.config import TrainConfig
from medtl.training.events import StepProgress, TrainEvent
from medtl.training.objective import Objective, SavedModel
from medtl.training.run_folder import RunConfig, RunFolder
from medtl.training.run_summary import RunSummary
from medtl.training.trainer import Trainer
from tests.test_training_synthetic import one_thread  # noqa: F401 - autouse fixture
from tests.test_training_trainer import assert_same_weights, without_times

CHANNELS, SIDE = 4, 8
TRAIN, VAL, BATCH = 24, 8, 6  # 4 steps an epoch


@dataclass(frozen=True)
class Prompted:
    """Cached image embeddings [B, C, h, w], box prompts [B, 4] (y0, x0, y1, x1 in pixels) and target masks [B, 1, h, w]."""

    embeddings: torch.Tensor
    boxes: torch.Tensor
    masks: torch.Tensor

    def __getitem__(self, index: Any) -> Prompted:
        return Prompted(*(getattr(self, f.name)[index] for f in fields(self)))


def prompted_slices(count: int, seed: int) -> Prompted:
    """Bright rectangles in noisy embeddings; the box prompt says which one to segment."""
    generator = torch.Generator().manual_seed(seed)
    corners = torch.randint(0, 4, (count, 2), generator=generator)
    boxes = torch.cat([corners, corners + torch.randint(3, 5, (count, 2), generator=generator)], dim=1)
    masks = torch.zeros(count, 1, SIDE, SIDE)
    for mask, (y0, x0, y1, x1) in zip(masks, boxes.tolist()):
        mask[0, y0:y1, x0:x1] = 1.0
    embeddings = torch.randn(count, CHANNELS, SIDE, SIDE, generator=generator) * 0.5 + masks
    return Prompted(embeddings, boxes.float(), masks)


def rasterise(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes [B, 4] as filled masks [B, 1, SIDE, SIDE]."""
    rows = torch.arange(SIDE, dtype=boxes.dtype).view(1, SIDE, 1)
    cols = torch.arange(SIDE, dtype=boxes.dtype).view(1, 1, SIDE)
    y0, x0, y1, x1 = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    return ((rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)).float().unsqueeze(1)


class PromptDecoder(nn.Module):
    """A prompt encoder (a box drawn and convolved) and a mask decoder over the embeddings and that map."""

    def __init__(self) -> None:
        super().__init__()
        self.prompt_encoder = nn.Conv2d(1, 4, 3, padding=1)
        self.mask_decoder = nn.Sequential(nn.Conv2d(CHANNELS + 4, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.2), nn.Conv2d(8, 1, 1))

    def forward(self, embeddings: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        return self.mask_decoder(torch.cat([embeddings, self.prompt_encoder(rasterise(boxes))], dim=1))


class DiceScores:
    def __init__(self) -> None:
        self.overlap = self.total = 0.0

    def update(self, batch: Prompted, outputs: torch.Tensor) -> None:
        predicted = (outputs > 0).float()
        self.overlap += float((predicted * batch.masks).sum())
        self.total += float(predicted.sum() + batch.masks.sum())

    def compute(self) -> dict[str, Any]:
        return {"mean_dice": 2 * self.overlap / max(self.total, 1e-9)}


class PromptObjective(Objective):
    """Trains the prompt encoder and mask decoder on cached embeddings; counts the prompts it has seen (extra state)."""

    task = "promptable segmentation"
    unit = "prompt"
    divisible = True
    metric_name = "mean_dice"

    def __init__(self, seed: int = 0) -> None:
        self.network, self.seed = PromptDecoder(), seed
        self.train, self.val = prompted_slices(TRAIN, seed=1), prompted_slices(VAL, seed=2)
        self.batch_size, self.steps_per_epoch = BATCH, TRAIN // BATCH
        self.prompts_seen = 0

    def batches(self, epoch: int) -> Iterator[Prompted]:
        order = torch.randperm(TRAIN, generator=torch.Generator().manual_seed(self.seed * 1000 + epoch))
        for start in range(0, TRAIN, BATCH):
            batch = self.train[order[start : start + BATCH]]
            jitter = torch.randint(-1, 2, batch.boxes.shape).float()  # the global RNG: the Trainer replays it on resume
            yield Prompted(batch.embeddings, (batch.boxes + jitter).clamp(0, SIDE), batch.masks)

    def count(self, batch: Prompted) -> int:
        return batch.masks.shape[0]

    def split(self, batch: Prompted, size: int) -> list[Prompted]:
        return [batch[start : start + size] for start in range(0, self.count(batch), size)]

    def loss(self, net: nn.Module, batch: Prompted) -> tuple[torch.Tensor, dict[str, float]]:
        self.prompts_seen += self.count(batch)
        logits = net(batch.embeddings, batch.boxes)
        bce = F.binary_cross_entropy_with_logits(logits, batch.masks)
        probabilities = torch.sigmoid(logits)
        dice = 1 - 2 * (probabilities * batch.masks).sum() / (probabilities.sum() + batch.masks.sum())
        return bce + dice, {"bce": float(bce.detach()), "dice_loss": float(dice.detach())}

    def validation_batches(self) -> list[Prompted]:
        return [self.val]

    def predict(self, module: nn.Module, batch: Prompted, micro_batch: int) -> torch.Tensor:
        return torch.cat([module(part.embeddings, part.boxes) for part in self.split(batch, micro_batch)])

    def scores(self) -> DiceScores:
        return DiceScores()

    def model_to_save(self, epoch: int, metrics: dict[str, Any], is_best: bool) -> SavedModel | None:
        return (self.network.state_dict(), {"epoch": str(epoch)}) if is_best else None

    def extra_state(self) -> dict[str, Any]:
        return {"prompts_seen": self.prompts_seen}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.prompts_seen = state["prompts_seen"]

    def summary_details(self, run: RunFolder, steps: int) -> dict[str, Any]:
        return {"prompts_seen": self.prompts_seen}

    def model_card(self, config: RunConfig, summary: RunSummary, run: RunFolder) -> str:
        return f"# Model card: prompt encoder and mask decoder\n\nBest Dice: {summary.best_text()}\n"


def prompt_trainer(run_dir: Path, init_seed: int = 0, **kwargs: Any) -> Trainer:
    torch.manual_seed(init_seed)
    config = TrainConfig(task="segmentation", epochs=4, lr=1e-2, warmup_epochs=0.5, batch_size=BATCH, device="cpu", early_stopping_patience=None)
    return Trainer(PromptObjective(), RunConfig(config, {"architecture": "prompt decoder"}), run_dir, **kwargs)


def test_a_third_objective_trains_cancels_and_resumes_exactly(tmp_path: Path) -> None:
    straight = prompt_trainer(tmp_path / "straight").fit()
    reference = RunFolder(tmp_path / "straight")
    records = reference.read_metrics()
    assert straight.stopped_because == "completed" and straight.best_metric_name == "mean_dice"
    assert records[-1]["mean_dice"] > records[0]["mean_dice"] and records[-1]["mean_dice"] > 0.8  # it learns
    assert {"bce", "dice_loss"} <= records[0].keys()  # the objective's loss parts are logged per epoch
    assert straight.details == {"prompts_seen": 4 * TRAIN} and reference.read_summary() == straight
    assert "Best Dice" in reference.model_card_path.read_text()

    token = CancelToken()

    def cancel_mid_epoch_two(event: TrainEvent) -> None:
        if isinstance(event, StepProgress) and (event.epoch, event.step) == (2, 2):
            token.cancel()

    cancelled = prompt_trainer(tmp_path / "run", on_event=cancel_mid_epoch_two, cancel=token).fit()
    assert cancelled.stopped_because == "cancelled" and cancelled.details == {"prompts_seen": TRAIN + 2 * BATCH}
    resumed = prompt_trainer(tmp_path / "run", init_seed=99).fit(resume=True)
    run = RunFolder(tmp_path / "run")
    assert_same_weights(run.load_checkpoint()["model"], reference.load_checkpoint()["model"])
    assert_same_weights(run.load_best_model(), reference.load_best_model())
    assert without_times(run.read_metrics()) == without_times(records)
    assert resumed.details == straight.details and resumed.best_metric == straight.best_metric

"""Tiny models and learnable synthetic data shared by the training tests (and checks that they are learnable)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

NUM_CLASSES = 3


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors train fastest on one thread, above all on a machine that other test runs share.

    Test modules import this fixture, which makes it apply to their tests too.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class FakeClock:
    """Seconds that pass only when the test says so (a model forward can advance it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def classification_samples(count: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """1×8×8 images; class ``c`` brightens row band ``c``, plus noise: easy but not trivial."""
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for index in range(count):
        label = index % NUM_CLASSES
        image = torch.randn(1, 8, 8, generator=generator)
        image[0, label * 2 : label * 2 + 3] += 0.7
        samples.append({"image": image, "label": torch.tensor(label)})
    return samples


def segmentation_samples(count: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """1×16×16 images with one bright square; its mask is label 1 on background 0."""
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(count):
        y, x, size = (int(v) for v in torch.randint(1, 9, (3,), generator=generator))
        size = max(3, size // 2 + 2)
        mask = torch.zeros(1, 16, 16, dtype=torch.long)
        mask[0, y : y + size, x : x + size] = 1
        image = mask.float() * 2.0 + torch.randn(1, 16, 16, generator=generator) * 0.5
        samples.append({"image": image, "label": mask})
    return samples


def loaders(task: str = "classification", batch_size: int = 8, train: int = 48, val: int = 24) -> tuple[DataLoader, DataLoader]:
    make = classification_samples if task == "classification" else segmentation_samples
    return (
        DataLoader(make(train, seed=1), batch_size=batch_size, shuffle=True),
        DataLoader(make(val, seed=2), batch_size=batch_size),
    )


class TinyClassifier(nn.Module):
    """An MLP without BatchNorm (so gradient accumulation matches a full batch exactly); dropout is optional."""

    def __init__(self, on_forward: Callable[[torch.Tensor], None] | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, NUM_CLASSES))
        self.on_forward = on_forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.on_forward is not None:
            self.on_forward(x)
        return self.body(x)


def tiny_segmenter() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))


def build_classifier(seed: int = 0, **kwargs: Any) -> TinyClassifier:
    torch.manual_seed(seed)
    return TinyClassifier(**kwargs)


def make_trainer(run_dir: Path, model: nn.Module | None = None, task: str = "classification", val_cases: int = 24, **kwargs: Any):  # noqa: ANN201
    """A Trainer of a SupervisedObjective on the synthetic data; keyword arguments go to TrainConfig unless the
    objective, the run's description or the Trainer take them."""
    from medtl.training.config import TrainConfig
    from medtl.training.run_folder import RunConfig
    from medtl.training.supervised import SupervisedObjective
    from medtl.training.trainer import Trainer

    objective_kwargs = {key: kwargs.pop(key) for key in ("loss_fn", "param_groups", "epoch_hook") if key in kwargs}
    trainer_kwargs = {key: kwargs.pop(key) for key in ("on_event", "cancel", "clock") if key in kwargs}
    described = [kwargs.pop(key, None) for key in ("model_spec_dict", "preprocessing_dict", "data_summary_dict", "weights_licence")]
    batch_size = kwargs.pop("batch_size", 8)
    config = TrainConfig(**{"task": task, "epochs": 4, "lr": 3e-3, "warmup_epochs": 0.5, "batch_size": batch_size, "early_stopping_patience": None, **kwargs})
    if model is None:
        model = build_classifier() if task == "classification" else tiny_segmenter()
    train_loader, val_loader = loaders(task, batch_size, val=val_cases)
    objective = SupervisedObjective(config, model, train_loader, val_loader, **objective_kwargs)
    run_config = RunConfig(config, described[0] or {}, described[1] or {}, described[2] or {}, described[3])
    return Trainer(objective, run_config, run_dir, **trainer_kwargs)


def test_synthetic_batches_have_the_documented_shapes() -> None:
    train_loader, _ = loaders("classification")
    batch = next(iter(train_loader))
    assert batch["image"].shape == (8, 1, 8, 8) and batch["label"].shape == (8,)
    train_loader, _ = loaders("segmentation")
    batch = next(iter(train_loader))
    assert batch["image"].shape == (8, 1, 16, 16) and batch["label"].shape == (8, 1, 16, 16)

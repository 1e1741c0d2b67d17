"""``TrainConfig``: every training setting, validated on creation, with a JSON round-trip."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from medtl.errors import MedtlError
from medtl.learning_task import TASKS

DEVICES = ("auto", "cpu", "cuda", "mps")
AMP_MODES = ("auto", "bf16", "fp16", "off")


@dataclass(frozen=True)
class TrainConfig:
    """Training settings. Times are in minutes, learning rates absolute.

    ``time_limit_minutes`` is a budget: the LR schedule is planned to end within it and training
    stops after the step that exceeds it. ``early_stopping_patience`` counts validations without
    improvement of the task's primary metric (``None``: never stop early). ``val_roi_size`` makes
    segmentation validation use sliding-window inference with that patch size. ``batch_size`` and
    ``num_workers`` are for whoever builds the DataLoaders; the Trainer takes the loaders' batches
    as they come. ``class_weights`` weight the default losses (see ``losses.balanced_class_weights``).
    """

    task: str = "classification"
    epochs: int = 50
    time_limit_minutes: float | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 16
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    early_stopping_patience: int | None = 10
    validate_every: int = 1
    num_workers: int = 0
    warmup_epochs: float = 1.0
    grad_clip_norm: float | None = None
    class_weights: tuple[float, ...] | None = None
    val_roi_size: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name, allowed in (("task", TASKS), ("device", DEVICES), ("amp", AMP_MODES)):
            if getattr(self, name) not in allowed:
                raise MedtlError(f"training setting {name}={getattr(self, name)!r} is not one of {', '.join(allowed)}")
        positive = {"epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size, "validate_every": self.validate_every}
        if self.time_limit_minutes is not None:
            positive["time_limit_minutes"] = self.time_limit_minutes
        for name, value in positive.items():
            if value <= 0:
                raise MedtlError(f"training setting {name}={value} must be positive")
        for name in ("weight_decay", "num_workers", "warmup_epochs"):
            if getattr(self, name) < 0:
                raise MedtlError(f"training setting {name}={getattr(self, name)} must not be negative")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise MedtlError("training setting early_stopping_patience must be at least 1 (or None to never stop early)")
        # JSON gives lists; keep tuples so the config stays hashable and comparable.
        for name in ("class_weights", "val_roi_size"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))

    @property
    def time_limit_seconds(self) -> float | None:
        return None if self.time_limit_minutes is None else self.time_limit_minutes * 60.0

    def to_dict(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MedtlError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))

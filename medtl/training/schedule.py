"""Cosine learning-rate schedule with linear warmup, re-plannable when a time budget sets the length."""

from __future__ import annotations

import math
from typing import Any

import torch


class WarmupCosine:
    """Sets every parameter group's ``lr`` to ``initial_lr * factor(step)``.

    ``factor`` rises linearly over ``warmup_steps`` then follows a half cosine to 0 at ``total_steps``.
    Each group keeps its own ``initial_lr``, so per-group rates (a slower backbone) keep their ratios.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> None:
        self.optimizer = optimizer
        self.warmup_steps = warmup_steps
        self.total_steps = max(1, total_steps)
        self.step_count = 0
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self._apply()

    def factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def replan(self, total_steps: int) -> None:
        """Make the cosine end at ``total_steps`` (e.g. once the first epoch has shown how long one takes)."""
        self.total_steps = max(1, total_steps)
        self._apply()

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {"warmup_steps": self.warmup_steps, "total_steps": self.total_steps, "step_count": self.step_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.warmup_steps = state["warmup_steps"]
        self.total_steps = state["total_steps"]
        self.step_count = state["step_count"]
        self._apply()

    def _apply(self) -> None:
        factor = self.factor(self.step_count)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor

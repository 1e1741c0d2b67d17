"""Self-supervised pretraining as an :class:`~medtl.training.objective.Objective`: what the one training loop learns
from unlabelled images, into a run folder that ``--weights run:RUN`` accepts.

:func:`medtl.workflow.pretrain.pretrain` (the job's entry point) collects the slices and runs a
:class:`~medtl.training.trainer.Trainer` with a :class:`PretrainingObjective`. The Trainer does what every
job needs (device and mixed precision, the warm-up + cosine schedule, the time budget, background
checkpoints and exact resume, cancel, events, ``summary.json``); the objective adds the views and the
loss (:mod:`~medtl.pretrain.views`, :mod:`~medtl.pretrain.objective`), keeps the backbone after every
epoch, and writes the pretraining model card.

Reproducible and resumable: the slice order of an epoch and the views of a step are drawn from
generators seeded by ``(seed, epoch, step)``. There is no validation, so a time budget is planned in
steps, once, from the pace of the first :data:`BUDGET_PLAN_STEPS`; the run may end inside an epoch.

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
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from medtl.errors import MedtlError
from medtl.models.registry import get_architecture
from medtl.models.spec import ModelSpec
from medtl.pretrain.objective import ObjectiveSettings, PretrainingNetwork, pretraining_loss
from medtl.pretrain.unlabelled import UnlabelledSlices
from medtl.pretrain.views import ViewSettings, foreground_box, make_views
from medtl.training.config import TrainConfig
from medtl.training.objective import Objective, SavedModel, images_to_device
from medtl.training.run_folder import RunConfig, RunFolder
from medtl.training.run_summary import PRETRAINING_TASK, RunSummary

if TYPE_CHECKING:
    from medtl.training.device import DeviceSetup
    from medtl.training.distributed import DistContext

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


@dataclass(frozen=True)
class SlicePairs:
    """One step's batch: which slices, and the seed of their views."""

    indices: list[int]
    seed: int


class PretrainingObjective(Objective):
    """Contrastive + masked reconstruction over ``data``'s slices (see the module docstring).

    ``backbone`` is the registry network built from ``spec`` (built here when not given); the projector
    and the decoder around it are new. A step is ``min(config.batch_size, slices)`` slice pairs, whole:
    the contrastive loss's negatives are the rest of the batch, so it is never split.
    """

    task = PRETRAINING_TASK
    unit = "slice pair"

    def __init__(self, data: UnlabelledSlices, spec: ModelSpec, config: TrainConfig, settings: PretrainSettings, *, backbone: nn.Module | None = None) -> None:
        from medtl.models.spec import build_model

        if len(data) < 2:
            raise MedtlError("self-supervised pretraining needs at least two slices")
        self.data, self.spec, self.config, self.settings = data, spec, config, settings
        backbone = backbone if backbone is not None else build_model(dataclasses.replace(spec, weights=None))[0]
        self.network = PretrainingNetwork(backbone, get_architecture(spec.architecture), settings.views.crop_size, settings.objective.projection_dim)
        self.images = [torch.from_numpy(image.astype(np.float32)) for image in data.slices]
        self.boxes = [foreground_box(image) for image in data.slices]
        self.batch_size = min(config.batch_size, len(data))
        self.steps_per_epoch = len(data) // self.batch_size

    @property
    def plan_budget_after_steps(self) -> int:
        return BUDGET_PLAN_STEPS

    def run_config(self) -> RunConfig:
        """What ``config.json`` records: the network, the loop's settings, how slices were taken, and counts."""
        preprocessing = {
            "intensity": "per volume, as fine-tuning's default for its modality (CT: HU window [-1000, 2000]; others: 0.5-99.5 percentiles), to [0, 1]",
            "slices": f"2D, along the stored slice axis, up to {self.settings.slices_per_series} per series",
            "channels": 1,
        }
        return RunConfig(self.config, self.spec.to_dict(), preprocessing, self.data.summary())

    def config_extra(self) -> dict[str, Any]:
        return {"pretraining": {**self.settings.to_dict(), "objective_text": OBJECTIVE_TEXT}}

    def start(self, setup: DeviceSetup, ctx: DistContext) -> None:
        self.setup = setup

    def batches(self, epoch: int) -> Iterator[SlicePairs]:
        order = torch.randperm(len(self.images), generator=torch.Generator().manual_seed(_seed(self.config.seed, epoch)))
        for step in range(self.steps_per_epoch):
            yield SlicePairs(order[step * self.batch_size : (step + 1) * self.batch_size].tolist(), _seed(self.config.seed, epoch, step))

    def count(self, batch: SlicePairs) -> int:
        return len(batch.indices)

    def loss(self, net: nn.Module, batch: SlicePairs) -> tuple[torch.Tensor, dict[str, float]]:
        generator = torch.Generator().manual_seed(batch.seed)
        views = make_views([self.images[i] for i in batch.indices], [self.boxes[i] for i in batch.indices], self.settings.views, generator)
        views = dataclasses.replace(views, **{name: images_to_device(getattr(views, name), self.setup) for name in ("masked_a", "clean_a", "mask_a", "view_b")})
        return pretraining_loss(net, views, self.settings.objective)

    def model_to_save(self, epoch: int, metrics: dict[str, Any], is_best: bool) -> SavedModel:
        """The backbone after every epoch."""
        return self.network.backbone_state(), {"epoch": str(epoch), "objective": "self-supervised: " + OBJECTIVE_TEXT}

    def summary_details(self, run: RunFolder, steps: int) -> dict[str, Any]:
        last = run.read_metrics()[-1:] or [{}]
        return {
            "architecture": self.spec.architecture,
            "objective": OBJECTIVE_TEXT,
            "steps": steps,
            "final_loss": last[0].get("train_loss"),
            "contrastive": last[0].get("contrastive"),
            "reconstruction": last[0].get("reconstruction"),
            "data": self.data.summary(),
            "weights": f"run:{run.path}" if run.best_model_path.is_file() else None,
        }

    def model_card(self, config: RunConfig, summary: RunSummary, run: RunFolder) -> str:
        return render_pretraining_card(self.spec, config.train, self.settings, summary)


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

"""``pretrain``: from a :class:`PretrainRequest` to a pretraining run folder; the entry point of ``medtl pretrain`` and the app's Pretrain panel.

It collects the unlabelled slices (:mod:`medtl.pretrain.unlabelled`), chooses the network
(:func:`pretrain_spec`) and runs the :class:`~medtl.training.trainer.Trainer` with a
:class:`~medtl.pretrain.pretrainer.PretrainingObjective`. The run folder it leaves is one that
``--weights run:RUN`` (the app: the Weights list) fine-tunes from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from medtl.models.registry import get_architecture
from medtl.models.spec import ModelSpec
from medtl.progress import CancelToken
from medtl.training.config import DEVICES, TrainConfig
from medtl.training.events import EventCallback, LogLine
from medtl.training.run_folder import RunFolder
from medtl.workflow.request import InvalidRequest, check_choice, check_epochs, check_positive_minutes

if TYPE_CHECKING:
    from medtl.dicom.catalog import Catalog
    from medtl.pretrain.pretrainer import PretrainSettings
    from medtl.training.run_summary import RunSummary

DEFAULT_MODEL = "basicunet"
"""The 2D segmentation default (:func:`medtl.workflow.defaults.choose_spec`): no pretrained weights fit it
offline, so it is where pretraining on one's own images has the most to give; its encoder is small and fast on a CPU."""
DEFAULT_EPOCHS = 50
_SETTINGS_STORED_ON_RESUME = {"model": "the model", "epochs": "the number of epochs", "time_limit_minutes": "the time limit"}


def _default_settings() -> PretrainSettings:
    from medtl.pretrain.pretrainer import PretrainSettings

    return PretrainSettings()


@dataclass(frozen=True)
class PretrainRequest:
    """One self-supervised pretraining job, validated on creation (:class:`~medtl.workflow.request.InvalidRequest`).

    ``paths`` are DICOM folders, NIfTI or picture files. Without ``epochs`` and a time budget,
    :data:`DEFAULT_EPOCHS`. ``resume`` continues the run in ``out_dir`` with its stored settings (the
    inputs must be given again: they are not stored, since paths may name patients).
    """

    paths: tuple[Path, ...]
    out_dir: Path
    model: str | None = None
    epochs: int | None = None
    time_limit_minutes: float | None = None
    device: str = "auto"
    resume: bool = False
    seed: int = 0
    batch_size: int = 32
    lr: float = 1e-3
    settings: PretrainSettings = field(default_factory=_default_settings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", tuple(Path(path) for path in self.paths))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if not self.paths:
            raise InvalidRequest("paths", "add at least one folder (or image file) of unlabelled images")
        missing = next((path for path in self.paths if not path.exists()), None)
        if missing is not None:
            raise InvalidRequest("paths", f"the input {missing} does not exist")
        if not str(self.out_dir).strip() or str(self.out_dir) == ".":
            raise InvalidRequest("out_dir", "choose an output folder for the run")
        check_choice("device", self.device, DEVICES, "the device")
        check_epochs("epochs", self.epochs)
        check_positive_minutes("time_limit_minutes", self.time_limit_minutes)
        if self.batch_size < 1:
            raise InvalidRequest("batch_size", f"the batch size must be at least 1, not {self.batch_size}")
        if not self.lr > 0:
            raise InvalidRequest("lr", f"the learning rate must be positive, not {self.lr:g}")
        if self.model is not None:
            _check_2d(self.model)

    def ignored_on_resume(self) -> list[str]:
        """The settings given that a resume ignores (the run's stored ones win), in words."""
        return [words for name, words in _SETTINGS_STORED_ON_RESUME.items() if getattr(self, name) is not None] if self.resume else []


def _check_2d(model: str) -> None:
    from medtl.errors import MedtlError

    try:
        architecture = get_architecture(model)
    except MedtlError as error:
        raise InvalidRequest("model", str(error)) from None
    if 2 not in architecture.dims:
        raise InvalidRequest("model", f"{model} is not a 2D network; pretraining learns 2D backbones from slices")


def pretrain_spec(model: str | None = None, on_gpu: bool = False) -> ModelSpec:
    """The 2D, one-channel network to pretrain: ``model`` (default :data:`DEFAULT_MODEL`) with the constructor
    arguments fine-tuning's default for its task would use on this device, so ``run:RUN`` fits that default."""
    from medtl.workflow import defaults

    name = model or DEFAULT_MODEL
    _check_2d(name)
    architecture = get_architecture(name)
    usual = defaults.choose_spec(architecture.task, defaults.DataProfile(None, 2, 1), 2, None, "none", None, on_gpu)
    spec = usual if usual.architecture == name else ModelSpec(architecture.task, name, 2)
    return defaults.from_scratch(spec)


def pretrain(
    request: PretrainRequest,
    on_event: EventCallback | None = None,
    cancel: CancelToken | None = None,
    *,
    catalog: Catalog | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunSummary:
    """Pretrain a backbone on the images of ``request`` into its output folder; returns the run's summary.

    ``catalog`` remembers scanned DICOM headers; ``clock`` (seconds) is injectable so that tests of
    the time budget need not sleep. Bad input raises :class:`~medtl.errors.MedtlError`; a cancel
    before training starts raises :class:`~medtl.progress.Cancelled`.
    """
    from medtl.models.spec import build_model
    from medtl.pretrain.pretrainer import PretrainingObjective
    from medtl.pretrain.unlabelled import collect_unlabelled, counts_text, problem_lines
    from medtl.training.device import select_device
    from medtl.training.reproducibility import seed_everything
    from medtl.training.trainer import Trainer

    out_dir = request.out_dir
    cancel = cancel or CancelToken()

    def emit(message: str) -> None:
        if on_event is not None:
            on_event(LogLine(message))

    if request.resume:
        spec, config, settings = _stored(out_dir)
        ignored = request.ignored_on_resume()
        if ignored:
            emit(f"resuming with the settings stored in {out_dir / 'config.json'}; {', '.join(ignored)} given now are ignored")
    else:
        run = RunFolder(out_dir)
        if run.checkpoint_path.exists() or run.summary_path.exists():
            raise InvalidRequest("out_dir", f"{out_dir}: already holds a run; resume it, or choose another output folder")
        spec = pretrain_spec(request.model, on_gpu=select_device(request.device).type != "cpu")
        budgeted = request.time_limit_minutes is not None
        config = TrainConfig(
            task=spec.task, epochs=request.epochs or (10_000 if budgeted else DEFAULT_EPOCHS), time_limit_minutes=request.time_limit_minutes,
            lr=request.lr, batch_size=request.batch_size, seed=request.seed, device=request.device, early_stopping_patience=None,
        )  # fmt: skip
        settings = request.settings
    data = collect_unlabelled(request.paths, slices_per_series=settings.slices_per_series, max_slices=settings.max_slices, catalog=catalog, cancel=cancel)
    emit(f"data: {counts_text(data)}")
    for line in problem_lines(data.problems):
        emit(line)
    cancel.raise_if_cancelled()
    seed_everything(config.seed)
    backbone, _ = build_model(spec)
    emit(f"model: {spec.architecture} backbone, {sum(p.numel() for p in backbone.parameters()) / 1e6:.1f} M parameters with its head; views {settings.views.crop_size} px")
    objective = PretrainingObjective(data, spec, config, settings, backbone=backbone)
    return Trainer(objective, objective.run_config(), out_dir, on_event=on_event, cancel=cancel, clock=clock).fit(resume=request.resume)


def _stored(out_dir: Path) -> tuple[ModelSpec, TrainConfig, PretrainSettings]:
    """The network, loop settings and pretraining settings a pretraining run folder was started with."""
    from medtl.pretrain.pretrainer import PretrainSettings

    folder = RunFolder(out_dir)
    if not folder.config_path.is_file():
        raise InvalidRequest("resume", f"{out_dir}: nothing to resume (no config.json); start a new run instead")
    config = folder.read_config()
    document = json.loads(folder.config_path.read_text(encoding="utf-8"))
    if "pretraining" not in document:
        raise InvalidRequest("resume", f"{out_dir}: a fine-tuning run, not a pretraining run; resume it as a fine-tuning run")
    return ModelSpec.from_dict(config.model), config.train, PretrainSettings.from_dict(document["pretraining"])


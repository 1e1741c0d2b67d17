"""``adapt``: "Adapt to my labels", from an :class:`AdaptRequest` to a run folder whose model is a prompt model.

It reads the image and its label mask (sparse masks: slices holding the ``ignore`` label are not
labelled), finds the labelled slices of the chosen labels along the plane, holds some out for scoring,
and runs :class:`~medtl.prompt.adapt.AdaptObjective` through the :class:`~medtl.training.trainer.Trainer`.
``config.json`` names the model ``medsam``, so ``load_prompt_model("run:RUN")`` (``medtl prompt --model
run:RUN``, the app's prompt tools) answers prompts with the adapted network. ``summary.json`` reports the
box-prompted Dice on the held-out slices before (``zero_shot_dice``) and after (``adapted_dice``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medtl.errors import MedtlError
from medtl.prompt.adapt import BATCH_SIZE, STEPS_PER_EPOCH
from medtl.progress import CancelToken
from medtl.training.config import DEVICES
from medtl.training.events import EventCallback, LogLine
from medtl.training.run_folder import RunFolder
from medtl.workflow.request import InvalidRequest, check_choice, check_epochs, check_positive_minutes

if TYPE_CHECKING:
    from medtl.prompt.adapt import LabelledSlice
    from medtl.training.run_summary import RunSummary

PLANES = ("axial", "coronal", "sagittal")
TRAINABLE = ("decoder", "decoder+encoder-last")
DEFAULT_EPOCHS = 1000
"""With a time limit, the budget ends the run long before this; without one, give ``epochs``."""
LR = 6e-4
"""With 2e-4 (and a whole epoch of warm-up) the putamen benchmark reached 0.787 after 10 steps; with this, 0.867."""
WARMUP_EPOCHS = 0.3
"""A 3-minute budget on a CPU holds 20-40 steps: a whole epoch (10 steps) of warm-up was half of them."""
HELD_OUT_FRACTION = 0.25


@dataclass(frozen=True)
class AdaptRequest:
    """Fine-tune LiteMedSAM on the labels of one image, validated on creation (:class:`InvalidRequest` names the field).

    ``image``: a NIfTI file or DICOM series folder; ``label``: its mask on the same grid (value ``ignore``, when
    given, marks unannotated voxels). ``labels``: the mask values to adapt to (each one its own box prompt).
    ``held_out``: slice indices scored and never trained on (``None``: a quarter of the labelled slices, at
    least one, chosen by ``seed``). ``trains``: ``decoder`` or ``decoder+encoder-last``. ``resume`` continues
    the run in ``out_dir``. An epoch is ``steps_per_epoch`` steps of ``batch_size`` prompts; the held-out
    slices are scored after each.
    """

    image: Path
    label: Path
    labels: tuple[int, ...]
    out_dir: Path
    plane: str = "axial"
    ignore: int | None = None
    held_out: tuple[int, ...] | None = None
    time_limit_minutes: float | None = None
    epochs: int | None = None
    trains: str = "decoder"
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    batch_size: int = BATCH_SIZE
    steps_per_epoch: int = STEPS_PER_EPOCH
    datalist: Path | None = None
    """The datalist the request came from (``medtl train --model medsam``), recorded so ``medtl train --resume RUN`` finds it."""

    def __post_init__(self) -> None:
        for name in ("image", "label", "out_dir"):
            object.__setattr__(self, name, Path(getattr(self, name)))
        if not str(self.out_dir).strip() or str(self.out_dir) == ".":
            raise InvalidRequest("out_dir", "choose an output folder for the run")
        for name, what in (("image", "the image (a NIfTI file or a DICOM series folder)"), ("label", "the label mask")):
            if not getattr(self, name).exists():
                raise InvalidRequest(name, f"{getattr(self, name)} does not exist; choose {what}")
        object.__setattr__(self, "labels", tuple(self.labels))
        if not self.labels:
            raise InvalidRequest("labels", "choose at least one label value to adapt to")
        if any(isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0 for value in self.labels):
            raise InvalidRequest("labels", f"label values are positive integers (0 is background), not {list(self.labels)}")
        if self.ignore is not None and self.ignore in self.labels:
            raise InvalidRequest("labels", f"{self.ignore} marks unannotated voxels; it cannot be a label to adapt to")
        if self.held_out is not None:
            object.__setattr__(self, "held_out", tuple(int(i) for i in self.held_out))
        check_choice("plane", self.plane, PLANES, "the plane")
        check_choice("trains", self.trains, TRAINABLE, "what trains")
        check_choice("device", self.device, DEVICES, "the device")
        check_epochs("epochs", self.epochs)
        for name in ("batch_size", "steps_per_epoch"):
            if getattr(self, name) < 1:
                raise InvalidRequest(name, f"the {name.replace('_', ' ')} must be at least 1, not {getattr(self, name)}")
        check_positive_minutes("time_limit_minutes", self.time_limit_minutes)
        if self.epochs is None and self.time_limit_minutes is None:
            raise InvalidRequest("time_limit_minutes", "give a time limit or a number of epochs")
        if not self.resume and (RunFolder(self.out_dir).checkpoint_path.exists() or RunFolder(self.out_dir).summary_path.exists()):
            raise InvalidRequest("out_dir", f"{self.out_dir}: already holds a training run; resume it, or choose another output folder")
        if self.resume and not RunFolder(self.out_dir).checkpoint_path.exists():
            raise InvalidRequest("resume", f"{self.out_dir}: nothing to resume (no checkpoint); start a new run instead")


def adapt(request: AdaptRequest, on_event: EventCallback | None = None, cancel: CancelToken | None = None) -> RunSummary:
    """Run ``request`` into its output folder; a cancelled run has a checkpoint and a summary that says so."""
    from medtl.models.medsam import ARCHITECTURE, LICENCE, load_medsam
    from medtl.prompt.adapt import AdaptObjective
    from medtl.prompt.preprocessing import window_for
    from medtl.training.config import TrainConfig
    from medtl.training.run_folder import RunConfig
    from medtl.training.trainer import Trainer

    cancel = cancel or CancelToken()
    volume, training, held_out = _labelled_data(request)
    window = window_for(volume.array, volume.metadata.get("modality"))
    _emit(on_event, f"adapting LiteMedSAM ({request.trains}) to labels {list(request.labels)}: {_count(training)} training and {_count(held_out)} held-out {request.plane} slice(s)")
    cancel.raise_if_cancelled()
    objective = AdaptObjective(load_medsam(), training, held_out, window, request.trains, request.seed, batch_size=request.batch_size, steps_per_epoch=request.steps_per_epoch)
    config = TrainConfig(
        task="segmentation", epochs=request.epochs or DEFAULT_EPOCHS, time_limit_minutes=request.time_limit_minutes, lr=LR, weight_decay=0.01,
        batch_size=objective.batch_size, seed=request.seed, device=request.device, early_stopping_patience=None, warmup_epochs=WARMUP_EPOCHS,
    )  # fmt: skip
    run_config = RunConfig(
        config,
        {"architecture": ARCHITECTURE, "weights": {"source": ARCHITECTURE, "licence": LICENCE}, "trains": request.trains},
        {"plane": request.plane},
        {
            "image": str(request.image), "label": str(request.label), "labels": list(request.labels), "ignore_label": request.ignore, "plane": request.plane,
            "held_out": sorted({item.index for item in held_out}), "steps_per_epoch": request.steps_per_epoch,
            **({"datalist": str(request.datalist)} if request.datalist is not None else {}),
        },
        LICENCE,
        "LiteMedSAM, the prompt model, adapted to the labels drawn",
    )
    return Trainer(objective, run_config, request.out_dir, on_event=on_event, cancel=cancel).fit(resume=request.resume)


def _labelled_data(request: AdaptRequest) -> tuple[Any, list[LabelledSlice], list[LabelledSlice]]:
    """The image, and its labelled items split into training and held-out ones (InvalidRequest where there are too few)."""
    from medtl.data.images import read_image
    from medtl.prompt.adapt import labelled_slices

    volume, mask = read_image(request.image), read_image(request.label)
    if volume.array.shape[:3] != mask.array.shape[:3]:
        raise MedtlError(f"{request.label}: the mask is {mask.array.shape[:3]} voxels but the image {request.image} is {volume.array.shape[:3]}; they must share one grid")
    labels_volume = np.asarray(mask.array)
    missing = [value for value in request.labels if not (labels_volume == value).any()]
    if missing:
        raise InvalidRequest("labels", f"{request.label} holds no voxel of label {', '.join(map(str, missing))}")
    items = labelled_slices(np.asarray(volume.array), labels_volume, request.plane, request.labels, request.ignore)
    indices = sorted({item.index for item in items})
    if len(indices) < 2:
        raise InvalidRequest("label", f"{request.label}: {len(indices)} labelled {request.plane} slice(s) show the labels; adapting needs at least two (one to learn from, one to score)")
    held = set(request.held_out) if request.held_out is not None else _default_held_out(indices, request.seed)
    unknown = sorted(held - set(indices))
    if unknown:
        raise InvalidRequest("held_out", f"{request.plane} slice(s) {unknown} are not labelled slices showing the labels; choose among {indices}")
    if held >= set(indices):
        raise InvalidRequest("held_out", "every labelled slice is held out; leave at least one to learn from")
    return volume, [item for item in items if item.index not in held], [item for item in items if item.index in held]


def _default_held_out(indices: Sequence[int], seed: int) -> set[int]:
    count = max(1, round(HELD_OUT_FRACTION * len(indices)))
    return {int(i) for i in np.random.default_rng(seed).choice(indices, size=count, replace=False)}


def _count(items: Sequence[LabelledSlice]) -> int:
    return len({item.index for item in items})


def _emit(on_event: EventCallback | None, message: str) -> None:
    if on_event is not None:
        on_event(LogLine(message))


def request_from_datalist(datalist_path: Path, out_dir: Path, **settings: Any) -> AdaptRequest:
    """The request ``medtl train --model medsam`` makes: the datalist's single segmentation case, every label but background and
    ``ignore`` (``settings``: the request's other fields). A resume continues with the run's stored settings (held-out slices,
    what trains, seed, batch and epoch size, time limit and epochs), as a resumed ``medtl train`` run does."""
    from medtl.data.datalist import load_datalist

    if settings.get("resume"):
        settings = {**settings, **_stored_settings(Path(out_dir))}

    datalist = load_datalist(datalist_path, "segmentation")
    if len(datalist.cases) != 1:
        raise InvalidRequest("datalist", f"{datalist.path}: adapting LiteMedSAM takes one image with its label mask; the datalist has {len(datalist.cases)} cases")
    case = datalist.cases[0]
    labels = tuple(value for value in datalist.trained_labels if value != 0)
    return AdaptRequest(case.image, Path(case.label), labels, out_dir, ignore=datalist.ignore_label, datalist=datalist.path, **settings)


def _stored_settings(run_dir: Path) -> dict[str, Any]:
    """The settings of the adaptation run in ``run_dir`` that its resume keeps (see :func:`request_from_datalist`)."""
    folder = RunFolder(run_dir)
    if not folder.checkpoint_path.exists():
        raise InvalidRequest("resume", f"{run_dir}: nothing to resume (no checkpoint); start a new run instead")
    config = folder.read_config()
    return {
        "held_out": tuple(config.data.get("held_out") or ()) or None, "trains": config.model.get("trains", "decoder"), "seed": config.train.seed,
        "batch_size": config.train.batch_size, "steps_per_epoch": config.data.get("steps_per_epoch", STEPS_PER_EPOCH), "plane": config.data.get("plane", "axial"),
        "time_limit_minutes": config.train.time_limit_minutes, "epochs": None if config.train.time_limit_minutes else config.train.epochs,
    }  # fmt: skip


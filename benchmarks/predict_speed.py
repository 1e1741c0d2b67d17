"""Issue 12's second target: a whole 256 x 256 x 100 series predicted with the default slice-wise model in ≤ 5 s on 2 cores.

Usage: python benchmarks/predict_speed.py [--repeat 3] [--profile] [--out DIR]

The model is the slice-wise default (``lite0-unet`` on ImageNet EfficientNet-Lite0) trained by ``medtl train`` for
one epoch (4 optimiser steps) on the ``mni_tissue`` task: speed does not depend on how well it learned, and
the run carries the stored preprocessing a user's run does. The series is the MNI152 T1 template at 1 mm
(nilearn's), 100 axial slices from its middle padded to 256 x 256, held in memory as the app holds the shown series.

Timed, on 2 CPU threads, alternating, ``--repeat`` times:

- ``engine``: what the app's "Predict with a trained run" does in its worker
  (``Predictor.from_run(run).predict(volume)``), from the call to the mask on the series' grid; ``predict``
  alone is timed as well (the run already loaded).
- ``plain``: the reference, the same network (the Predictor's module, already loaded) called directly on the
  slices in batches of 8 under ``torch.inference_mode``, channels-last, with the same volume-level intensity
  scaling (0.5-99.5 percentiles), and the argmax.

The figure is the median engine seconds (target ≤ 5 s) and engine / plain. ``--profile`` adds where the
engine's time goes (cProfile, cumulative, one call).

``--gui`` times the app itself instead (offscreen): the series open in the main window, "Predict with a trained
run" from the call until the overlay is on the series (``prediction_shown``), ``--repeat`` times, while a 10 ms
timer in the GUI thread measures how late the event loop runs (target: p99 ≤ 50 ms throughout).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from medtl.dicom.volume import Volume  # noqa: E402

WORK = REPO / "benchmarks" / "_work" / "predict_speed"
SHAPE = (100, 256, 256)
"""The series, ``[z, y, x]``."""
TARGET_SECONDS = 5.0
THREADS = 2
PLAIN_BATCH = 8


def trained_run(out: Path) -> Path:
    """A run of the slice-wise default on ``mni_tissue`` (one epoch), made once and kept."""
    from medtl.data.tasks import write_mni_tissue
    from medtl.training.run_folder import RunFolder
    from medtl.workflow.train import TrainRequest, train

    run_dir = out / "run"
    if not RunFolder(run_dir).best_model_path.is_file():
        train(TrainRequest(write_mni_tissue(out / "task"), "segmentation", run_dir, epochs=1))
    return run_dir


def series() -> Volume:
    """The 256 x 256 x 100 head series: MNI152 T1 at 1 mm, the middle 100 axial slices, padded in-plane."""
    from nilearn import datasets

    from medtl.data.images import nifti_to_volume

    template = nifti_to_volume(datasets.load_mni152_template(resolution=1), "nilearn MNI152 template (1 mm)")
    depth, rows, columns = template.shape
    first = (depth - SHAPE[0]) // 2
    array = np.zeros(SHAPE, np.float32)
    top, left = (SHAPE[1] - rows) // 2, (SHAPE[2] - columns) // 2
    array[:, top : top + rows, left : left + columns] = template.array[first : first + SHAPE[0]]
    origin = template.index_to_lps(np.array([[-left, -top, first]], dtype=float))[0]
    return Volume(array, template.spacing, tuple(origin), template.direction.copy(), {})


def engine(run_dir: Path, volume: Volume) -> tuple[np.ndarray, float, float]:
    """The app's call: ``(mask, seconds from the call to the mask, seconds of predict alone)``."""
    from medtl.inference.predictor import Predictor

    start = time.perf_counter()
    predictor = Predictor.from_run(run_dir)
    loaded = time.perf_counter()
    mask = predictor.predict(volume).mask.array
    end = time.perf_counter()
    return mask, end - start, end - loaded


def plain(model: torch.nn.Module, array: np.ndarray) -> tuple[np.ndarray, float]:
    """The network called directly on the slices: ``(mask [z, y, x], seconds)``. The slices are laid out as the run's
    LPS orientation lays out this series' (x by y, both reversed), so the network sees what it sees in the engine."""
    import torch

    start = time.perf_counter()
    with torch.inference_mode():
        volume = torch.from_numpy(array)
        low, high = torch.quantile(volume.flatten(), torch.tensor([0.005, 0.995]))
        slices = ((volume - low) / (high - low)).clamp_(0, 1).transpose(1, 2).flip(1, 2)[:, None]
        masks = [model(slices[z : z + PLAIN_BATCH].contiguous(memory_format=torch.channels_last)).argmax(dim=1) for z in range(0, len(slices), PLAIN_BATCH)]
        mask = torch.cat(masks).flip(1, 2).transpose(1, 2).to(torch.uint8).numpy()
    return mask, time.perf_counter() - start


def slice_gflop(model: torch.nn.Module) -> float:
    """The network's floating-point operations (10^9) on one 256 x 256 slice, as torch counts them (convolutions, matrix products)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.zeros(1, 1, *SHAPE[1:]))
    return counter.get_total_flops() / 1e9


GUI_P99_MS = 50.0


def gui(run_dir: Path, volume: Volume, repeat: int, out: Path) -> None:
    """The app's prediction, offscreen: seconds from "predict" to the overlay, and the GUI thread's timer lateness."""
    import os
    import tempfile

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from bench_viewer import lateness_timer
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings
    from PySide6.QtWidgets import QApplication

    from medtl.export.nifti import write_nifti
    from medtl.labels.store import LabelStore
    from ui.qt.main_window import MainWindow
    from ui.qt.settings import AppSettings

    app = QApplication.instance() or QApplication([])
    series_file = out / "series.nii.gz"
    if not series_file.exists():
        write_nifti(volume, series_file)
    with tempfile.TemporaryDirectory(prefix="bench-predict-gui-") as scratch:
        settings = AppSettings(QSettings(str(Path(scratch) / "settings.ini"), QSettings.Format.IniFormat))
        window = MainWindow(settings, label_store=LabelStore(Path(scratch) / "labels"))
        window.resize(1440, 900)
        window.show()

        def wait_for(signal: object, start: object) -> float:
            loop, clock = QEventLoop(), QElapsedTimer()
            signal.connect(loop.quit)  # type: ignore[attr-defined]
            clock.start()
            start()  # type: ignore[operator]
            loop.exec()
            signal.disconnect(loop.quit)  # type: ignore[attr-defined]
            return clock.elapsed() / 1000

        wait_for(window.series_shown, lambda: window.open_path(series_file))
        late: list[float] = []
        timer = lateness_timer(late)
        wait_for(window.prediction_shown, lambda: window.predict_with_run(run_dir))  # warm-up
        seconds = [wait_for(window.prediction_shown, lambda: window.predict_with_run(run_dir)) for _ in range(repeat)]
        timer.stop()
        window.close()
    del app
    p50, p99 = np.percentile(late, [50, 99])
    print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}\n")
    print("| app: predict → overlay shown, s, median (min) | GUI timer ticks | p50 late ms | p99 late ms | max late ms |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {statistics.median(seconds):.2f} ({min(seconds):.2f}) | {len(late)} | {p50:.1f} | {p99:.1f} | {max(late):.1f} |")
    print(f"\ntargets: overlay ≤ {TARGET_SECONDS:g} s {'met' if statistics.median(seconds) <= TARGET_SECONDS else 'missed'}; "
          f"GUI p99 ≤ {GUI_P99_MS:g} ms {'met' if p99 <= GUI_P99_MS else 'missed'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also profile one engine call")
    parser.add_argument("--gui", action="store_true", help="time the app's prediction and the GUI thread's lateness instead")
    parser.add_argument("--out", type=Path, default=WORK)
    args = parser.parse_args()
    import torch

    from medtl.inference.predictor import Predictor

    torch.set_num_threads(THREADS)
    run_dir = trained_run(args.out)
    volume = series()
    if args.gui:
        print(f"load before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", flush=True)
        gui(run_dir, volume, args.repeat, args.out)
        return
    model = Predictor.from_run(run_dir).model
    print(f"load before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", flush=True)
    engine(run_dir, volume), plain(model, volume.array)  # warm-up: first calls allocate and pick kernels
    totals, predicts, plains, agreement = [], [], [], []
    for _ in range(args.repeat):
        mask, total, predict = engine(run_dir, volume)
        reference, seconds = plain(model, volume.array)
        totals.append(total), predicts.append(predict), plains.append(seconds)
        agreement.append(float((mask == reference).mean()))
        print(f"engine {total:.2f} s (predict {predict:.2f} s), plain {seconds:.2f} s", flush=True)
    print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}\n")
    median = statistics.median
    print(f"{SHAPE[2]} x {SHAPE[1]} x {SHAPE[0]} series, {torch.get_num_threads()} threads, median of {args.repeat} (min):\n")
    print("| contender | seconds | / plain |\n|---|---:|---:|")
    print(f"| engine: Predictor.from_run + predict (the app's call) | {median(totals):.2f} ({min(totals):.2f}) | {median(totals) / median(plains):.2f} |")
    print(f"| engine: predict alone (run loaded) | {median(predicts):.2f} ({min(predicts):.2f}) | {median(predicts) / median(plains):.2f} |")
    print(f"| plain: the network on batches of {PLAIN_BATCH} slices, inference_mode | {median(plains):.2f} ({min(plains):.2f}) | 1.00 |")
    gflop = slice_gflop(model)
    print(f"\nthe network: {gflop:.2f} GFLOP a slice, {gflop * SHAPE[0]:.0f} GFLOP the series; plain ran at {gflop * SHAPE[0] / median(plains):.1f} GFLOP/s")
    print(f"target ≤ {TARGET_SECONDS:g} s: {'met' if median(totals) <= TARGET_SECONDS else 'missed'}; engine and plain masks agree on {min(agreement):.4f} of the voxels")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(engine, run_dir, volume)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
        print(text.getvalue())


if __name__ == "__main__":
    main()

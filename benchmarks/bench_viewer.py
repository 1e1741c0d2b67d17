"""Slice change to pixels painted in the viewer (against pyqtgraph doing the same), and GUI latency while training.

Usage: QT_QPA_PLATFORM=offscreen python benchmarks/bench_viewer.py [--slices 300] [--size 512] [--changes 200] [--results]

A 512x512x300 int16 CT-like volume (in memory) with one label overlay is shown in an 800x800
view. Each step moves one slice and repaints synchronously (`QWidget.repaint`), so the time covers
slice extraction, the window/level table, overlay blending, the QImage, the scaled draw and the
annotations. Timed per plane (axial: contiguous slices; coronal, sagittal: strided reformats).
Reference in the same run: pyqtgraph `ImageItem`s (image with levels, overlay through a colour
table) in a `GraphicsView` of the same size, also repainted synchronously. Reports the median and
the 95th percentile in ms and the ratio of medians.

Then the GUI thread's responsiveness while the fine-tune panel trains in its worker: the lateness of
a 10 ms timer, idle (the reference) and from Start on. `--results` writes both tables into
benchmarks/RESULTS.md under "## Viewer".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtGui import QPaintEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from medtl.dicom.volume import Volume  # noqa: E402
from medtl.render.colours import LABEL_PALETTE  # noqa: E402
from medtl.render.window import PRESETS  # noqa: E402
from ui.app import application  # noqa: E402
from ui.models.overlays import LabelLayer  # noqa: E402
from ui.models.view_plane import PlaneKind, ViewPlane  # noqa: E402
from ui.models.viewer_model import ViewerModel  # noqa: E402
from ui.qt.slice_view import SliceView  # noqa: E402

RESULTS = REPO / "benchmarks" / "RESULTS.md"
WORK = REPO / "benchmarks" / "_work"
VIEW_SIZE = 800
PROBE_MS = 10
TARGET_MS = 10.0


def test_volume(slices: int, size: int) -> tuple[Volume, np.ndarray]:
    """A CT-like int16 volume (air, soft-tissue cylinder, a bone blob, noise) and a two-label mask on its grid."""
    z, y, x = np.ogrid[:slices, :size, :size]
    rng = np.random.default_rng(0)
    values = np.full((slices, size, size), -1000, np.int16)
    values[:, (((x - size / 2) ** 2 + (y - size / 2) ** 2) < (size * 0.42) ** 2)[0]] = 40
    values[((x - size * 0.65) ** 2 + (y - size * 0.4) ** 2 + ((z - slices * 0.6) * 1.5) ** 2) < (size * 0.1) ** 2] = 700
    values += rng.integers(-20, 21, size=values.shape, dtype=np.int16)
    mask = np.zeros(values.shape, np.uint8)
    mask[:, (((x - size * 0.6) ** 2 + (y - size * 0.4) ** 2) < (size * 0.08) ** 2)[0]] = 1
    mask[((x - size * 0.35) ** 2 + (y - size * 0.55) ** 2 + ((z - slices / 2) * 2) ** 2) < (size * 0.12) ** 2] = 2
    metadata = {"kind": "classic", "units": "HU", "photometric": "MONOCHROME2", "modality": "CT"}
    return Volume(values, (0.7, 0.7, 1.0), (0.0, 0.0, 0.0), np.eye(3), metadata), mask


def timed(widget: Any, step: Callable[[int], None], changes: int) -> list[float]:
    """Milliseconds per call of ``step(i)`` for i in range(changes), after 5 warm-up calls; checks that each call painted."""
    if not QTest.qWaitForWindowExposed(widget):
        raise RuntimeError("the view was never exposed: nothing would be painted")
    painted = widget.paints
    for i in range(5):
        step(i)
    times = []
    for i in range(changes):
        start = time.perf_counter()
        step(i)
        times.append((time.perf_counter() - start) * 1000)
    if widget.paints - painted < changes:
        raise RuntimeError(f"only {widget.paints - painted} paints for {changes} slice changes")
    return times


class CountingSliceView(SliceView):
    """A SliceView that counts its paints (an event filter would do, but PySide6 6.12 mis-counts references of its bool result)."""

    paints = 0

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        super().paintEvent(event)
        self.paints += 1


def medtl_times(volume: Volume, mask: np.ndarray, kind: PlaneKind, changes: int) -> list[float]:
    model = ViewerModel(volume)
    model.set_window(PRESETS["CT abdomen"])
    model.add_layer(LabelLayer("labels", mask, opacity=0.5))
    view = CountingSliceView()
    view.resize(VIEW_SIZE, VIEW_SIZE)
    plane = ViewPlane.of_kind(kind, volume.direction)
    view.set_model(model, plane)
    view.show()
    count = model.slice_count(plane)

    def step(i: int) -> None:
        model.go_to_slice(plane, (count // 4 + i) % count)
        view.repaint()

    try:
        return timed(view, step, changes)
    finally:
        view.close()


def pyqtgraph_times(volume: Volume, mask: np.ndarray, kind: PlaneKind, changes: int) -> list[float]:
    import pyqtgraph as pg

    window = PRESETS["CT abdomen"]
    levels = (window.center - window.width / 2, window.center + window.width / 2)
    colours = np.zeros((256, 4), np.uint8)
    for label in (1, 2):
        colours[label] = (*LABEL_PALETTE[label - 1], 128)

    class CountingGraphicsView(pg.GraphicsView):
        paints = 0

        def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
            super().paintEvent(event)
            self.paints += 1

    view = CountingGraphicsView()
    view.resize(VIEW_SIZE, VIEW_SIZE)
    box = pg.ViewBox(lockAspect=True, invertY=True)
    view.setCentralItem(box)
    image, overlay = pg.ImageItem(axisOrder="row-major"), pg.ImageItem(axisOrder="row-major")
    box.addItem(image)
    box.addItem(overlay)
    plane = ViewPlane.of_kind(kind, volume.direction)
    count = plane.size(volume.shape)[2]
    view.show()

    def step(i: int) -> None:
        index = (count // 4 + i) % count
        image.setImage(plane.extract(volume.array, index), levels=levels, autoLevels=False)
        overlay.setImage(plane.extract(mask, index), lut=colours, levels=(0, 255), autoLevels=False)
        view.viewport().repaint()

    try:
        return timed(view, step, changes)
    finally:
        view.close()


def table(rows: dict[tuple[str, str], list[float]], shape: tuple[int, int, int]) -> str:
    z, y, x = shape
    setup = (
        f"{x}x{y}x{z} int16 volume, one label overlay (2 labels, 50 % opacity), CT abdomen window, {VIEW_SIZE}x{VIEW_SIZE} view, "
        f"offscreen, synchronous repaint per slice change; {platform.machine()}, load average {os.getloadavg()[0]:.1f}, "
        f"{time.strftime('%Y-%m-%d')}. Target: median ≤ {TARGET_MS:g} ms."
    )
    note = (
        "Each time covers the slice cut, window/level table, overlay blend, QImage and the scaled, annotated paint. "
        "Sagittal cuts are the slowest: each of their pixels lies in another cache line of the [z, y, x] array."
    )
    lines = [
        setup,
        "",
        "| plane | tool | median ms | p95 ms | median / pyqtgraph |",
        "|---|---|---|---|---|",
    ]
    for (plane, tool), times in rows.items():
        median = statistics.median(times)
        p95 = float(np.percentile(times, 95))
        ratio = median / statistics.median(rows[(plane, "pyqtgraph")])
        lines.append(f"| {plane} | {tool} | {median:.2f} | {p95:.2f} | {ratio:.2f} |")
    return "\n".join([*lines, "", note])


def latency_datalist(folder: Path) -> Path:
    """64 pictures (96 x 96) of a bar, upright or lying, as a two-class datalist (written once, cached)."""
    import skimage.io

    path = folder / "datalist.json"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for index in range(64):
        picture = np.zeros((96, 96), np.uint8)
        picture[10:86, 40 + index % 9 : 52 + index % 9] = 255
        rotated = index % 2 == 1
        skimage.io.imsave(folder / f"bar{index}.png", picture.T.copy() if rotated else picture, check_contrast=False)
        entries.append({"image": f"bar{index}.png", "label": "rotated" if rotated else "upright", "patient_id": f"P{index}"})
    path.write_text(json.dumps({"training": entries, "classes": ["upright", "rotated"], "modality": "OT"}))
    return path


def lateness_timer(late: list[float]) -> QTimer:
    """A started precise ``PROBE_MS`` timer in the GUI thread that appends to ``late`` how late (ms) each tick came."""
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer

    clock, previous = QElapsedTimer(), [0]

    def tick() -> None:
        now = clock.elapsed()
        late.append(max(0.0, now - previous[0] - PROBE_MS))
        previous[0] = now

    timer = QTimer(interval=PROBE_MS, timerType=Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    return timer


def probe_lateness(seconds: float, during: Callable[[], None] | None = None) -> list[float]:
    """Lateness (ms) of a 10 ms precise timer over ``seconds`` of event loop, after calling ``during`` (if given)."""
    from PySide6.QtCore import QEventLoop, QTimer

    late: list[float] = []
    loop = QEventLoop()
    if during is not None:
        during()
    timer = lateness_timer(late)
    QTimer.singleShot(round(seconds * 1000), loop.quit)
    loop.exec()
    timer.stop()
    return late


def training_latency(seconds: float) -> tuple[list[float], list[float], int]:
    """Timer lateness with the app idle, then while the fine-tune panel trains (resnet10 from scratch, CPU) in its
    worker; also how many training steps the run made meanwhile."""
    import tempfile

    from PySide6.QtCore import QSettings

    from medtl.training.events import StepProgress
    from ui.qt.settings import AppSettings
    from ui.qt.tasks import wait_for_tasks
    from ui.qt.training_panel import TrainingPanel

    idle = probe_lateness(seconds)
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as scratch:
        panel = TrainingPanel(AppSettings(QSettings(str(Path(scratch) / "settings.ini"), QSettings.Format.IniFormat)))
        panel.datalist.setText(str(latency_datalist(WORK / "latency_bars")))
        panel.out_dir.setText(str(Path(scratch) / "run"))
        panel.model_box.setCurrentText("resnet10")
        panel.weights_box.setCurrentIndex(1)
        panel.epochs.setValue(1000)
        panel.device_box.setCurrentText("cpu")
        steps = []
        panel.monitor.event_received.connect(lambda event: isinstance(event, StepProgress) and steps.append(event))
        training = probe_lateness(seconds, during=panel.start)
        panel.cancel()
        wait_for_tasks(120_000)
    return idle, training, len(steps)


def latency_table(idle: list[float], training: list[float], steps: int, seconds: float) -> str:
    def row(name: str, late: list[float]) -> str:
        p50, p99 = np.percentile(late, [50, 99])
        return f"| {name} | {len(late)} | {p50:.1f} | {p99:.1f} | {max(late):.1f} |"

    ratio = np.percentile(training, 99) / max(np.percentile(idle, 99), 0.1)
    setup = (
        f"GUI responsiveness while training: a {PROBE_MS} ms timer in the GUI thread, {seconds:g} s idle, then {seconds:g} s from Start "
        f"(torch import, data and model set-up included) while the fine-tune panel trains resnet10 from scratch on the CPU in its "
        f"worker ({steps} training steps relayed meanwhile). Target: p99 lateness ≤ 50 ms."
    )
    lines = [setup, "", "| GUI thread | timer ticks | p50 late ms | p99 late ms | max late ms |", "|---|---|---|---|---|"]
    lines += [row("idle", idle), row("training in the worker", training), "", f"p99 while training / p99 idle: {ratio:.1f}."]
    return "\n".join(lines)


def write_results(text: str) -> None:
    """Replace (or add) the "## Viewer" section of RESULTS.md, leaving other sections alone."""
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = f"## Viewer\n\n{text}\n"
    pattern = re.compile(r"## Viewer\n.*?(?=\n## |\Z)", re.DOTALL)
    updated = pattern.sub(lambda _: section.rstrip("\n"), current) if pattern.search(current) else current.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(updated if updated.endswith("\n") else updated + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="probe time, idle and while training")
    parser.add_argument("--results", action="store_true", help="write the tables into benchmarks/RESULTS.md")
    args = parser.parse_args()
    application()
    volume, mask = test_volume(args.slices, args.size)
    rows = {}
    for kind in PlaneKind:
        rows[(kind.value, "medtl")] = medtl_times(volume, mask, kind, args.changes)
        rows[(kind.value, "pyqtgraph")] = pyqtgraph_times(volume, mask, kind, args.changes)
    del volume, mask
    slice_changes = table(rows, (args.slices, args.size, args.size))
    print(slice_changes, flush=True)
    latency = latency_table(*training_latency(args.latency_seconds), args.latency_seconds)
    print(f"\n{latency}", flush=True)
    if args.results:
        write_results(f"{slice_changes}\n\n{latency}")


if __name__ == "__main__":
    main()
    # pyqtgraph's Python overrides of bool-returning Qt methods make PySide6 6.12 drop one reference to
    # False per call, which aborts the interpreter while it finalises ("bool_dealloc"); the results are out.
    os._exit(0)

"""Annotation tools on a 512 x 512 x 300 CT series: a brush stroke's repaint and a region grow, against plain
NumPy / scikit-image doing the same work in the same run.

Usage: python benchmarks/bench_annotate.py [--slices 300] [--size 512] [--runs 40] [--results]

Brush: what the app does per mouse-move event of a stroke (``SliceView._paint_at``): ``LabelEditor.paint`` (a 5 mm
disc joined to the previous point, through the plane's voxel mapping and the locked/hidden check) and
``ViewerModel.render`` of the slice (window/level, then the label overlay blended into the display pixels),
axial and sagittal (a strided reformat). Reference: the same disc written with a precomputed NumPy mask into the
slice, the slice windowed through a lookup table and the label blended with float arithmetic over the whole slice.
Target: ≤ 16 ms.

Region grow: a click with the growing tool (``LabelEditor.grow``, 2D on the slice and 3D within 40 mm) and the
repaint; reference: ``skimage.segmentation.flood`` on the same slice / box and a NumPy write, and the float repaint.
Target: ≤ 200 ms. Medians of ``--runs`` (grows: a third as many; each is undone, untimed, before the next), the app
and the reference run alternately so that both see the same load on a shared machine.
``--results`` appends the table to benchmarks/RESULTS.md under "## Issue 14: annotation tools".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from skimage.segmentation import flood  # noqa: E402

from medtl.data.sparse import Annotated  # noqa: E402
from medtl.dicom.volume import Volume  # noqa: E402
from medtl.render.colours import LABEL_PALETTE  # noqa: E402
from ui.models.view_plane import PlaneKind  # noqa: E402
from ui.models.viewer_model import ViewerModel  # noqa: E402

RESULTS = REPO / "benchmarks" / "RESULTS.md"
SPACING = (0.7, 0.7, 1.0)  # x, y, z mm
BRUSH_MM, GROW_MM, TOLERANCE = 5.0, 40.0, 30.0  # the organ (60 ± 15 HU) stands apart from the body (-20 ± 15 HU)
BRUSH_TARGET_MS, GROW_TARGET_MS = 16.0, 200.0


def ct_volume(slices: int, size: int) -> Volume:
    """Air, a soft-tissue body, an organ (HU 60) and bone, with noise."""
    z, y, x = np.ogrid[:slices, :size, :size]
    rng = np.random.default_rng(0)
    values = np.full((slices, size, size), -1000, np.int16)
    values[:, (((x - size / 2) ** 2 + (y - size / 2) ** 2) < (size * 0.42) ** 2)[0]] = -20
    organ = ((x - size * 0.4) ** 2 + (y - size * 0.5) ** 2 + ((z - slices / 2) * 1.4) ** 2) < (size * 0.15) ** 2
    values[organ] = 60
    values[:, (((x - size * 0.65) ** 2 + (y - size * 0.4) ** 2) < (size * 0.05) ** 2)[0]] = 700
    values += rng.integers(-15, 16, size=values.shape, dtype=np.int16)
    metadata = {"kind": "classic", "units": "HU", "photometric": "MONOCHROME2", "modality": "CT"}
    return Volume(values, SPACING, (0.0, 0.0, 0.0), np.eye(3), metadata)


Call = Callable[[int], object]


def paired_ms(app: Call, reference: Call, runs: int, app_after: Callable[[], object] = lambda: None, reference_after: Callable[[], object] = lambda: None) -> tuple[float, float]:
    """Median ms of ``app(i)`` and of ``reference(i)``, run alternately (so both see the same load on a shared
    machine) after 3 warm-ups each; the ``*_after`` calls (untimed) restore the state between runs."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(runs + 3):
        for call, after, timed in ((app, app_after, times[0]), (reference, reference_after, times[1])):
            start = time.perf_counter()
            call(i)
            if i >= 3:
                timed.append((time.perf_counter() - start) * 1000)
            after()
    return statistics.median(times[0]), statistics.median(times[1])


def reference_render(image: np.ndarray, label: np.ndarray, low: float, high: float) -> np.ndarray:
    """The plain way: window through a float ramp, blend the label's colours at 50 % with float arithmetic."""
    grey = np.clip((image.astype(np.float32) - low) * (255.0 / (high - low)), 0, 255)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    colours = np.zeros((256, 3), np.float32)
    colours[1 : 1 + len(LABEL_PALETTE)] = LABEL_PALETTE
    covered = label != 0
    rgb[covered] = rgb[covered] * 0.5 + colours[label[covered]] * 0.5
    rgba = np.empty((*image.shape, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = rgb.astype(np.uint8), 255
    return rgba


def brush_rows(model: ViewerModel, kind: PlaneKind, runs: int) -> tuple[float, float]:
    """(app ms, reference ms) per mouse-move event of a stroke across ``kind`` 's slice."""
    plane = next(p for p in model.patient_planes() if p.kind is kind)
    editor = model.editor
    assert editor is not None
    index = model.slice_index(plane)
    rows, columns, _ = plane.size(model.volume.shape)
    path = [(rows * 0.3 + 0.2 * rows * np.sin(i / 9), columns * 0.2 + (i * 3) % int(columns * 0.6)) for i in range(runs + 3)]

    def app(i: int) -> None:
        editor.paint(*path[i], model.volume.spacing)
        model.render(plane)

    label = plane.extract(editor.layer.mask, index)
    image = plane.extract(model.volume.array, index)
    width, height = plane.pixel_spacing(model.volume.spacing)
    reach_r, reach_c = int(np.ceil(BRUSH_MM / height)), int(np.ceil(BRUSH_MM / width))
    r, c = np.ogrid[-reach_r : reach_r + 1, -reach_c : reach_c + 1]
    disc = (r * height) ** 2 + (c * width) ** 2 <= BRUSH_MM**2
    window = model.window

    def reference(i: int) -> None:
        row, column = (int(round(v)) for v in path[i])
        area = label[row - reach_r : row + reach_r + 1, column - reach_c : column + reach_c + 1]
        area[disc[: area.shape[0], : area.shape[1]]] = 1
        reference_render(image, label, window.center - window.width / 2, window.center + window.width / 2)

    editor.begin(plane, index)
    timings = paired_ms(app, reference, runs)
    if editor.end() is None:
        raise RuntimeError("the brush painted nothing: the timing would mean nothing")
    return timings


def grow_rows(model: ViewerModel, in_3d: bool, runs: int) -> tuple[float, float, int]:
    """(app ms, reference ms, voxels grown) for a click in the organ of the axial slice."""
    plane = next(p for p in model.patient_planes() if p.kind is PlaneKind.AXIAL)
    editor = model.editor
    assert editor is not None
    editor.in_3d, editor.tolerance, editor.grow_radius_mm = in_3d, TOLERANCE, GROW_MM
    image, shape = model.volume.array, model.volume.shape
    index = shape[0] // 2
    row, column = shape[1] * 0.5, shape[2] * 0.4  # the organ's centre
    x, y, z = np.rint(plane.to_index(row, column, index, shape)).astype(int)
    seed = (int(z), int(y), int(x))  # the voxel the app seeds from
    grown = [0]

    def app(i: int) -> None:
        stroke = editor.grow(plane, index, row, column, image, plane.extract(image, index), model.volume.spacing)
        assert stroke is not None
        grown[0] = len(stroke.voxels)
        model.render(plane)

    label = editor.layer.mask
    spacing = model.volume.spacing[::-1]
    reach = [int(np.ceil(GROW_MM / s)) for s in spacing]
    window = model.window
    low, high = window.center - window.width / 2, window.center + window.width / 2

    found_voxels = [0]

    def reference(i: int) -> None:
        if in_3d:
            box = tuple(slice(max(s - r, 0), s + r + 1) for s, r in zip(seed, reach))
            found = flood(image[box].astype(np.float32), tuple(s - b.start for s, b in zip(seed, box)), tolerance=TOLERANCE)
            label[box][found] = 1
        else:
            box = tuple(slice(max(s - r, 0), s + r + 1) for s, r in zip(seed[1:], reach[1:]))
            found = flood(image[index][box].astype(np.float32), tuple(s - b.start for s, b in zip(seed[1:], box)), tolerance=TOLERANCE)
            label[index][box][found] = 1
        found_voxels[0] = int(found.sum())
        reference_render(image[index], label[index], low, high)

    app_ms, reference_ms = paired_ms(app, reference, runs, editor.undo, lambda: label.fill(0))
    if found_voxels[0] != grown[0]:
        raise RuntimeError(f"the app grew {grown[0]} voxels, the reference {found_voxels[0]}: not the same work")
    return app_ms, reference_ms, grown[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--results", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    volume = ct_volume(args.slices, args.size)
    model = ViewerModel(volume)
    model.edit_label(np.zeros(volume.shape, np.uint8), {1: "organ"}, dirty=False, annotated=Annotated())
    rows = []
    for kind in (PlaneKind.AXIAL, PlaneKind.SAGITTAL):
        app, ref = brush_rows(model, kind, args.runs)
        rows.append((f"brush stroke, one mouse move + repaint ({kind.value})", app, ref, BRUSH_TARGET_MS, ""))
    model.editor.undo()  # type: ignore[union-attr]
    for in_3d in (False, True):
        app, ref, voxels = grow_rows(model, in_3d, max(args.runs // 3, 5))
        rows.append((f"region grow + repaint ({'3D, 40 mm' if in_3d else '2D slice'})", app, ref, GROW_TARGET_MS, f"{voxels} voxels"))
    header = "| step | medtl ms | NumPy/scikit-image ms | medtl / reference | target | met | |\n|---|---:|---:|---:|---:|---|---|"
    lines = [f"| {name} | {app:.2f} | {ref:.2f} | {app / ref:.2f} | ≤ {target:g} ms | {'yes' if app <= target else 'no'} | {note} |" for name, app, ref, target, note in rows]
    table = "\n".join([header, *lines])
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other agents (load {load:.1f} at start)"
    setup = f"{args.size}x{args.size}x{args.slices} int16 CT, spacing {SPACING} mm; {machine}; median of {args.runs} (grows: {max(args.runs // 3, 5)})"
    print(setup)
    print(table)
    if args.results:
        with RESULTS.open("a") as results:
            results.write(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {setup}:\n\n{table}\n")


if __name__ == "__main__":
    main()

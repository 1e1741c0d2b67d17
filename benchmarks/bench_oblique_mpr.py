"""Oblique MPR: a new resampled slice (true patient-aligned plane) vs a grid plane of the same volume.

Usage: python benchmarks/bench_oblique_mpr.py

A 512 x 512 x 300 int16 volume (random values), tilted 20 degrees about x, with one label overlay. For
each patient plane: the median render time of 5 new slices (trilinear resampling of the image, nearest
voxel of the label, window/level and blend), the time to render the same slice again (cached cut),
and the median of 5 new slices of the corresponding grid plane (no resampling); prints the ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def median_ms(model, plane, repeats: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        model.step(plane, 1)
        started = time.perf_counter()
        model.render(plane)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def main() -> None:
    from medtl.dicom.volume import Volume
    from tests.dicomgen import rotation
    from ui.models.overlays import LabelLayer
    from ui.models.view_plane import PlaneKind, ViewPlane
    from ui.models.viewer_model import ViewerModel

    array = np.random.default_rng(0).integers(-1000, 1000, size=(300, 512, 512), dtype=np.int16)
    volume = Volume(array, (0.7, 0.7, 2.5), (0, 0, 0), rotation("x", 20), metadata={"kind": "classic"})
    model = ViewerModel(volume)
    started = time.perf_counter()
    planes = model.patient_planes()
    print(f"index maps for the three patient planes: {1000 * (time.perf_counter() - started):.0f} ms")
    mask = np.zeros(array.shape, np.uint8)
    mask[100:200, 200:300, 200:300] = 1
    model.add_layer(LabelLayer("mask", mask))
    print("| plane | resampled size | new slice ms | same slice again ms | grid plane ms | resampled / grid |")
    print("|---|---|---:|---:|---:|---:|")
    for plane in planes:
        new = median_ms(model, plane)
        started = time.perf_counter()
        model.render(plane)
        again = 1000 * (time.perf_counter() - started)
        grid = median_ms(model, ViewPlane.of_kind(PlaneKind(plane.kind.value), volume.direction))
        rows, columns, _ = plane.size(array.shape)
        print(f"| {plane.kind.value} | {rows} x {columns} | {new:.1f} | {again:.1f} | {grid:.1f} | {new / grid:.1f} |")


if __name__ == "__main__":
    main()

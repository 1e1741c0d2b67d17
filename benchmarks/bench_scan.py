"""Benchmark `medtl.dicom.scan` against a naive single-threaded pydicom loop over the same files.

Usage: python benchmarks/bench_scan.py [--series 50] [--slices 100] [--repeat 3]

Writes (once, cached under benchmarks/_work/) a folder of series x slices small CT files
(64x64, tests/dicomgen.py), then times, best of --repeat runs:
  reference  `pydicom.dcmread(path, stop_before_pixels=True)` on every file, one thread
  cold       `scan()` with a fresh, empty catalog (every header read; files in the OS page cache),
             with the default worker count (which depends on the load) and with 1 and 2 workers
  warm       `scan()` again, nothing changed (no file read): with the same Catalog object (an app
             refreshing its view: the catalog's in-memory copy) and with a new one (as after a
             restart: everything comes from SQLite)
and prints a table with files/s and the ratios. The load average is printed too: the machine may
be shared, and a busy one slows the pool most.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pydicom  # noqa: E402

from medtl.dicom.catalog import Catalog  # noqa: E402
from medtl.dicom.scan import default_workers, scan  # noqa: E402
from tests.dicomgen import SeriesSpec, phantom, write_series  # noqa: E402

WORK = REPO / "benchmarks" / "_work"


def dataset_folder(series: int, slices: int) -> Path:
    """The cached benchmark folder, written on first use (a marker file says it is complete)."""
    folder = WORK / f"scan_{series}x{slices}"
    marker = WORK / f"{folder.name}.complete"
    if marker.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    values = phantom((slices, 64, 64))
    for index in range(series):
        spec = SeriesSpec(patient_id=f"BENCH{index // 10:03d}", series_description=f"series {index}", seed=index)
        write_series(folder / f"patient{index // 10:03d}" / f"series{index:03d}", values, spec)
    marker.write_text("")
    return folder


Timing = tuple[float, float]  # wall seconds, CPU seconds of this process


def timings(run: Callable[[], object], repeat: int) -> list[Timing]:
    times = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def reference(files: list[Path]) -> None:
    for path in files:
        pydicom.dcmread(path, stop_before_pixels=True)


def measure(folder: Path, files: list[Path], series: int, repeat: int, scratch: Path) -> dict[str, Timing]:
    def cold(workers: int | None = None) -> None:
        result = scan(folder, catalog=Catalog(scratch / f"cold-{time.perf_counter_ns()}.sqlite"), workers=workers)
        assert result.files_read == result.files_seen and len(result.all_series()) == series

    def warm(catalog: Catalog) -> None:
        result = scan(folder, catalog=catalog)
        assert result.files_read == 0 and len(result.all_series()) == series

    runs = {"reference: pydicom.dcmread loop, 1 thread": min(timings(lambda: reference(files), repeat))}
    runs[f"medtl scan, cold, default ({default_workers(len(files))} worker(s) now)"] = min(timings(cold, repeat))
    runs["medtl scan, cold, workers=1 (this process)"] = min(timings(lambda: cold(workers=1), repeat))
    runs["medtl scan, cold, workers=2 (process pool)"] = min(timings(lambda: cold(workers=2), repeat))
    catalog = Catalog(scratch / "warm.sqlite")
    scan(folder, catalog=catalog)
    runs["medtl scan, warm, same Catalog (app refresh)"] = min(timings(lambda: warm(catalog), repeat))
    runs["medtl scan, warm, new Catalog (after restart)"] = min(timings(lambda: warm(Catalog(scratch / "warm.sqlite")), repeat))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = dataset_folder(args.series, args.slices)
    files = sorted(folder.rglob("*.dcm"))
    with tempfile.TemporaryDirectory() as scratch:
        runs = measure(folder, files, args.series, args.repeat, Path(scratch))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{len(files)} files ({args.series} series x {args.slices} slices, 64x64), {cpus} CPUs, load average {load}, best of {args.repeat}")
    print(f"| {'run':<46} | {'seconds':>8} | {'files/s':>9} | {'CPU µs/file':>11} |")
    print(f"|{'-' * 48}|{'-' * 9}:|{'-' * 10}:|{'-' * 12}:|")
    for name, (wall, cpu) in runs.items():
        print(f"| {name:<46} | {wall:8.3f} | {len(files) / wall:9.0f} | {cpu / len(files) * 1e6:11.0f} |")
    reference_s = runs["reference: pydicom.dcmread loop, 1 thread"][0]
    cold_s = min(wall for name, (wall, _) in runs.items() if "cold" in name)
    refresh_s, restart_s = runs["medtl scan, warm, same Catalog (app refresh)"][0], runs["medtl scan, warm, new Catalog (after restart)"][0]
    print(f"best cold vs reference: {reference_s / cold_s:.2f}x faster")
    print(f"warm vs best cold: {cold_s / refresh_s:.1f}x faster (same Catalog), {cold_s / restart_s:.1f}x faster (new Catalog)")
    print("(CPU µs/file counts this process only: the pool's workers are not in it)")


if __name__ == "__main__":
    main()

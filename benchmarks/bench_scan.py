"""Benchmark `medtl.dicom.scan` against a naive single-threaded pydicom loop over the same files.

Usage: python benchmarks/bench_scan.py [--series 50] [--slices 100] [--repeat 3]

Writes (once, cached under benchmarks/_work/) a folder of series x slices small CT files
(64x64, tests/dicomgen.py), then times, best of --repeat runs:
  reference  `pydicom.dcmread(path, stop_before_pixels=True)` on every file, one thread
  cold       `scan()` with a fresh, empty catalog (every header read; files in the OS page cache),
             in this process, with the default worker count (which depends on the load) and with
             1 and 2 workers
  warm       `scan()` again, nothing changed (no file read), with the same Catalog object (an app
             refreshing its view)
  restart    cold and warm again, each in a fresh Python process with a new Catalog object, as a
             user meets them: re-running `medtl scan`, reopening the app. The cold and warm runs
             alternate, so that a change in the machine's load hits both. Timed there:
               scan()  `Catalog(path)` + `scan()`, with medtl and pydicom imported before the clock
                       starts (the engine alone; the headline ratio)
               lazy    the same, but pydicom not imported beforehand: a cold scan imports it, a
                       warm one never needs it
               CLI     the whole `python -m medtl scan PATH --json` process (interpreter start,
                       imports, scan, printing), timed from outside
and prints a table with files/s and the ratios. The load average is printed too: the machine may
be shared, and a busy one slows the pool most.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from medtl.dicom.catalog import Catalog  # noqa: E402
from medtl.dicom.scan import default_workers, scan  # noqa: E402

WORK = REPO / "benchmarks" / "_work"
REFERENCE = "reference: pydicom.dcmread loop, 1 thread"
SAME_CATALOG = "medtl scan, warm, same Catalog (app refresh)"
RESTART_RUNS = {  # name: (child mode or None for the CLI, whether pydicom is imported before the clock starts)
    "scan()": ("scan", True),
    "lazy": ("scan", False),
    "CLI": (None, False),
}


def dataset_folder(series: int, slices: int) -> Path:
    """The cached benchmark folder, written on first use (a marker file says it is complete)."""
    from tests.dicomgen import SeriesSpec, phantom, write_series

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


Timing = tuple[float, float]  # wall seconds, CPU seconds of this process (nan: not measured)


def timings(run: Callable[[], object], repeat: int) -> list[Timing]:
    times = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def reference(files: list[Path]) -> None:
    import pydicom

    for path in files:
        pydicom.dcmread(path, stop_before_pixels=True)


def measure_in_process(folder: Path, files: list[Path], series: int, repeat: int, scratch: Path) -> dict[str, Timing]:
    def cold(workers: int | None = None) -> None:
        result = scan(folder, catalog=Catalog(scratch / f"cold-{time.perf_counter_ns()}.sqlite"), workers=workers)
        assert result.files_read == result.files_seen and len(result.all_series()) == series

    def warm(catalog: Catalog) -> None:
        result = scan(folder, catalog=catalog)
        assert result.files_read == 0 and len(result.all_series()) == series

    runs = {REFERENCE: min(timings(lambda: reference(files), repeat))}
    runs[f"medtl scan, cold, default ({default_workers(len(files))} worker(s) now)"] = min(timings(cold, repeat))
    runs["medtl scan, cold, workers=1 (this process)"] = min(timings(lambda: cold(workers=1), repeat))
    runs["medtl scan, cold, workers=2 (process pool)"] = min(timings(lambda: cold(workers=2), repeat))
    catalog = Catalog(scratch / "warm.sqlite")
    scan(folder, catalog=catalog)
    runs[SAME_CATALOG] = min(timings(lambda: warm(catalog), repeat))
    return runs


def child(folder: Path, catalog_path: Path, preimport: bool) -> None:
    """Run in a fresh process: time ``Catalog`` + ``scan()``, print seconds and files read as JSON."""
    if preimport:
        import medtl.dicom.header  # noqa: F401  (pydicom, as the cold scan imports it)
    started = time.perf_counter()
    result = scan(folder, catalog=Catalog(catalog_path))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "files_read": result.files_read, "files_seen": result.files_seen}))


def run_fresh(mode: str | None, preimport: bool, folder: Path, catalog_path: Path) -> tuple[float, int]:
    """Wall seconds (the child's own clock, or the whole process for the CLI) and files read."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if mode is None:
        command = [sys.executable, "-m", "medtl", "scan", str(folder), "--json", "--catalog", str(catalog_path)]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        return time.perf_counter() - started, json.loads(done.stdout)["files_read"]
    command = [sys.executable, __file__, "--child", str(folder), str(catalog_path)] + (["--preimport"] if preimport else [])
    report = json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
    return report["seconds"], report["files_read"]


def measure_restarts(folder: Path, files: int, repeat: int, scratch: Path) -> dict[str, dict[str, float]]:
    """Cold and warm in fresh processes, alternating; the best of ``repeat`` of each."""
    best: dict[str, dict[str, float]] = {}
    for name, (mode, preimport) in RESTART_RUNS.items():
        warm_catalog = scratch / f"restart-{mode}-{preimport}.sqlite"
        run_fresh(mode, preimport, folder, warm_catalog)  # what the warm runs find
        cold_s, warm_s = [], []
        for index in range(repeat):
            seconds, read = run_fresh(mode, preimport, folder, scratch / f"restart-cold-{name}-{index}.sqlite")
            assert read == files, read
            cold_s.append(seconds)
            seconds, read = run_fresh(mode, preimport, folder, warm_catalog)
            assert read == 0, read
            warm_s.append(seconds)
        best[name] = {"cold": min(cold_s), "warm": min(warm_s)}
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, type=Path, metavar=("FOLDER", "CATALOG"), help=argparse.SUPPRESS)
    parser.add_argument("--preimport", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, preimport=args.preimport)
        return
    folder = dataset_folder(args.series, args.slices)
    files = sorted(folder.rglob("*.dcm"))
    loads = [os.getloadavg()]
    with tempfile.TemporaryDirectory() as scratch:
        runs = measure_in_process(folder, files, args.series, args.repeat, Path(scratch))
        restarts = measure_restarts(folder, len(files), args.repeat, Path(scratch))
    loads.append(os.getloadavg())
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " -> ".join(", ".join(f"{value:.1f}" for value in values) for values in loads)
    print(f"{len(files)} files ({args.series} series x {args.slices} slices, 64x64), {cpus} CPUs, load average {load}, best of {args.repeat}")
    print(f"| {'run':<56} | {'seconds':>8} | {'files/s':>9} | {'CPU µs/file':>11} |")
    print(f"|{'-' * 58}|{'-' * 9}:|{'-' * 10}:|{'-' * 12}:|")
    for name, (wall, cpu) in runs.items():
        print(f"| {name:<56} | {wall:8.3f} | {len(files) / wall:9.0f} | {cpu / len(files) * 1e6:11.0f} |")
    for name, best in restarts.items():
        for kind in ("cold", "warm"):
            label = f"fresh process, {kind}, new Catalog, {name}"
            print(f"| {label:<56} | {best[kind]:8.3f} | {len(files) / best[kind]:9.0f} | {'':>11} |")
    cold_s = min(wall for name, (wall, _) in runs.items() if "cold" in name)
    print(f"best cold in this process vs reference: {runs[REFERENCE][0] / cold_s:.2f}x faster")
    print(f"warm, same Catalog vs best cold in this process: {cold_s / runs[SAME_CATALOG][0]:.1f}x faster")
    ratios = ", ".join(f"{best['cold'] / best['warm']:.1f}x ({name})" for name, best in restarts.items())
    print(f"warm vs cold, each in a fresh process with a new Catalog: {ratios}")
    print("(CPU µs/file counts this process only: the pool's workers are not in it)")


if __name__ == "__main__":
    main()

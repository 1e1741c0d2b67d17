"""Benchmark `medtl convert` against SimpleITK and a naive pydicom loop on one large CT series.

Usage: python benchmarks/bench_convert.py [--slices 300] [--size 512] [--levels 1,6] [--repeat 2] [--results]
       python benchmarks/bench_convert.py --startup [--runs 5] [--baseline DIR]

Writes (once, cached under benchmarks/_work/) a size x size x slices CT series (tests/dicomgen.py,
int16 stored, intercept -1024, shuffled file names), then runs each converter in its own
subprocess, best of --repeat, for ``.nii.gz`` at each of --levels (the same gzip level asked of
every writer, so the compression work compares like with like) and for uncompressed ``.nii``:

  medtl   what `medtl convert` runs, in process: load_path (scan + load_series) + write_nifti (atomic, fsync included)
  sitk    SimpleITK ImageSeriesReader (GetGDCMSeriesFileNames) + sitk.WriteImage
  naive   pydicom.dcmread of every file, sort by position, np.stack of rescaled float64 slices, nibabel.save

--startup times whole processes instead, on a small series (256x256x108) where start-up (imports)
dominates: `python -m medtl convert` against a SimpleITK script doing the same read and NIfTI write
(SITK_SCRIPT, which imports only SimpleITK), alternating, --runs of each after one warm-up of each,
for .nii and .nii.gz; prints min/median wall seconds, median CPU seconds and the ratios medtl / SimpleITK round
by round. --baseline DIR times another version's medtl package (e.g. `git archive main medtl | tar -x -C DIR`)
in the same rounds.

Peak RSS while loading = VmHWM after loading minus VmHWM after the imports (same process),
compared with the size of the loaded array. Prints a table; --results also writes it into
benchmarks/RESULTS.md under "## Convert".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "benchmarks" / "_work"
RESULTS = REPO / "benchmarks" / "RESULTS.md"

# Runs in a fresh interpreter: argv = tool, folder, output, gzip level. Prints one JSON line.
CHILD = r'''
import json, sys, time
tool, folder, output, level = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def hwm():
    text = open("/proc/self/status").read()
    return int(text.split("VmHWM:")[1].split()[0]) * 1024

import numpy as np, nibabel, nibabel.openers
nibabel.openers.Opener.default_compresslevel = level
if tool == "medtl":
    from medtl.dicom.series import load_path
    from medtl.export import nifti
    import medtl.dicom.scan, medtl.cli.convert_command
    nifti._GZIP_LEVEL = level
    base = hwm(); t0 = time.perf_counter()
    volume = load_path(folder)
    t1 = time.perf_counter(); peak = hwm()
    nifti.write_nifti(volume, output)
    array = volume.array
elif tool == "sitk":
    import SimpleITK as sitk
    base = hwm(); t0 = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    image = reader.Execute()
    t1 = time.perf_counter(); peak = hwm()
    sitk.WriteImage(image, output, useCompression=output.endswith(".gz"), compressionLevel=level)
    array = sitk.GetArrayViewFromImage(image)
else:
    import glob, pydicom
    base = hwm(); t0 = time.perf_counter()
    datasets = [pydicom.dcmread(p) for p in glob.glob(folder + "/*")]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    array = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in datasets])
    t1 = time.perf_counter(); peak = hwm()
    spacing = [float(v) for v in datasets[0].PixelSpacing] + [abs(float(datasets[1].ImagePositionPatient[2]) - float(datasets[0].ImagePositionPatient[2]))]
    nibabel.save(nibabel.Nifti1Image(array.transpose(2, 1, 0), np.diag([-spacing[1], -spacing[0], spacing[2], 1.0])), output)
t2 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "write_s": t2 - t1, "total_s": t2 - t0, "peak_bytes": peak - base,
                  "array_bytes": int(array.nbytes), "dtype": str(array.dtype)}))
'''


# The whole-process reference for --startup: argv = folder, output.
SITK_SCRIPT = r'''
import sys
import SimpleITK as sitk
reader = sitk.ImageSeriesReader()
reader.SetFileNames(reader.GetGDCMSeriesFileNames(sys.argv[1]))
sitk.WriteImage(reader.Execute(), sys.argv[2], useCompression=sys.argv[2].endswith(".gz"))
'''
STARTUP_SIZE, STARTUP_SLICES = 256, 108

NOTES = """
Notes:
- medtl's write is atomic (temporary file, fsync, rename); the other writers do not fsync.
- SimpleITK (GDCM) widens int16 + intercept to int32, so it writes twice the bytes; medtl keeps int16 because the values fit.
- SimpleITK's NIfTI writer ran alike whatever compressionLevel was asked (checked at 1 and 6), so both its .nii.gz rows are
  ITK's own compression; medtl's gzip 6 row (zlib's default level) is the like-with-like comparison for it. `medtl convert`
  writes gzip 1 (nibabel's default, which it used to write through).
- Decoding in a thread pool was measured slower than one thread (parsing holds the GIL) for uncompressed, JPEG 2000, JPEG-LS
  and RLE series on this 2-core machine, so medtl reads slices in one thread. Uncompressed pixel data is read straight from
  its offset in the file and viewed with numpy (no copy) when its stored bits fill the word; the rescale runs in place.
- Peak RSS while loading is the output array plus headers and one slice in flight (about 1.1x). An uncompressed enhanced
  multi-frame file is read frame by frame too (1.03x on a 200x512x512 Enhanced CT, measured once by hand); a compressed
  multi-frame file is held whole, compressed, while its frames decode.
- The machine was shared with other jobs (load average 4-7 on 2 cores): seconds vary by up to 2x between runs; the ratios
  within one run are what this table is for.
"""


def series_folder(size: int, slices: int) -> Path:
    """The cached benchmark series, written on first use (a marker file says it is complete)."""
    folder = WORK / f"convert_{size}x{size}x{slices}"
    marker = WORK / f"{folder.name}.complete"
    if marker.exists():
        return folder
    sys.path.insert(0, str(REPO))
    import numpy as np

    from tests.dicomgen import SeriesSpec, write_series

    shutil.rmtree(folder, ignore_errors=True)
    y, x = np.ogrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    body = np.where(x**2 + (y / 0.8) ** 2 < 0.8, 40.0, -1000.0)
    rng = np.random.default_rng(0)
    values = np.empty((slices, size, size), dtype=np.float32)
    for z in range(slices):
        values[z] = body + np.where((x - 0.3) ** 2 + y**2 < 0.05 * (1 + np.sin(z / 20)), 660.0, 0.0) + rng.integers(-20, 21, (size, size))
    write_series(folder, values, SeriesSpec(spacing=(0.7, 0.7, 1.0)))
    marker.write_text("")
    return folder


def run_child(tool: str, folder: Path, output: Path, level: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, tool, str(folder), str(output), str(level)],
        cwd=REPO, capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["file_bytes"] = output.stat().st_size
    return result


def best(tool: str, folder: Path, output: Path, level: int, repeat: int) -> dict:
    runs = [run_child(tool, folder, output, level) for _ in range(repeat)]
    return min(runs, key=lambda r: r["total_s"])


def table(rows: dict[tuple[str, str], dict]) -> str:
    lines = [
        "| output | tool | load s | write s | total s | total / SimpleITK | peak RSS loading / volume | dtype | file MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (suffix, tool), r in rows.items():
        ratio = r["total_s"] / rows[(suffix, "sitk")]["total_s"]
        lines.append(
            f"| {suffix} | {tool} | {r['load_s']:.2f} | {r['write_s']:.2f} | {r['total_s']:.2f} | {ratio:.2f} | "
            f"{r['peak_bytes'] / r['array_bytes']:.2f} | {r['dtype']} | {r['file_bytes'] / 1e6:.0f} |"
        )
    return "\n".join(lines)


def timed(command: list[str], pythonpath: Path = REPO) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, as the operating system accounts the finished process) of one run.

    It runs in ``pythonpath``, which `python -m` puts first on the module path.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=pythonpath, check=True, stdout=subprocess.DEVNULL, env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def startup(runs: int, baseline: Path | None = None) -> str:
    """Whole `medtl convert` processes against whole SimpleITK processes on a small series: a Markdown table.

    With ``baseline`` (a folder holding another version's ``medtl`` package) that version runs in the same rounds too.
    """
    folder = series_folder(STARTUP_SIZE, STARTUP_SLICES)
    out = WORK / "convert_out"
    out.mkdir(exist_ok=True)
    loads = [os.getloadavg()[0]]
    lines = [
        f"| output | medtl | wall s, min / median | CPU s, median | / SimpleITK wall, min / median ({runs} rounds) | / SimpleITK CPU, median |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for suffix in (".nii", ".nii.gz"):
        medtl = [sys.executable, "-m", "medtl", "convert", str(folder), "-o", str(out / f"medtl{suffix}")]
        commands = {"this tree": (medtl, REPO)}
        if baseline is not None:
            commands["baseline"] = (medtl, baseline)
        commands["SimpleITK"] = ([sys.executable, "-c", SITK_SCRIPT, str(folder), str(out / f"sitk{suffix}")], REPO)
        for command, path in commands.values():
            timed(command, path)  # warm-up: page cache, .pyc files
        rounds = [{name: timed(command, path) for name, (command, path) in commands.items()} for _ in range(runs)]
        loads.append(os.getloadavg()[0])
        for name in commands:
            wall = [r[name][0] for r in rounds]
            cpu = [r[name][1] for r in rounds]
            ratios = [r[name][0] / r["SimpleITK"][0] for r in rounds]
            cpu_ratios = [r[name][1] / r["SimpleITK"][1] for r in rounds]
            lines.append(
                f"| {suffix} | {name} | {min(wall):.3f} / {statistics.median(wall):.3f} | {statistics.median(cpu):.3f} | "
                f"{min(ratios):.2f} / {statistics.median(ratios):.2f} | {statistics.median(cpu_ratios):.2f} |"
            )
            print(lines[-1], flush=True)
    return (
        f"Whole processes, {STARTUP_SIZE}x{STARTUP_SIZE}x{STARTUP_SLICES} CT series: `python -m medtl convert` against a SimpleITK "
        f"script (ImageSeriesReader + WriteImage, importing only SimpleITK), one of each per round, one warm-up each; ratios "
        f"are taken round by round; load average (1 min) {', '.join(f'{load:.1f}' for load in loads)}; "
        f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d %H:%M')}.\n\n" + "\n".join(lines)
    )


def write_results(title: str, text: str) -> None:
    """Replace (or add) the "## {title}" section of RESULTS.md, leaving other sections alone."""
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = f"## {title}\n\n{text.strip()}\n"
    pattern = re.compile(rf"## {re.escape(title)}\n.*?(?=\n## |\Z)", re.S)
    updated = pattern.sub(lambda _: section, current) if pattern.search(current) else current.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(updated if updated.endswith("\n") else updated + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--levels", default="1,6", help="gzip levels to run, asked of every writer (nibabel's default is 1)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tools", default="medtl,sitk,naive")
    parser.add_argument("--results", action="store_true", help="write the table into benchmarks/RESULTS.md")
    parser.add_argument("--startup", action="store_true", help=f"whole processes on a {STARTUP_SIZE}x{STARTUP_SIZE}x{STARTUP_SLICES} series instead")
    parser.add_argument("--runs", type=int, default=5, help="--startup: runs of each command")
    parser.add_argument("--baseline", type=Path, metavar="DIR", help="--startup: also time the medtl package in DIR (another version)")
    args = parser.parse_args()
    if args.startup:
        text = startup(args.runs, args.baseline)
        print(text)
        if args.results:
            write_results("Convert start-up (small series)", text)
        return
    folder = series_folder(args.size, args.slices)
    out = WORK / "convert_out"
    out.mkdir(exist_ok=True)
    rows = {}
    outputs = [(f".nii.gz gzip {level}", ".nii.gz", int(level)) for level in args.levels.split(",")] + [(".nii", ".nii", 0)]
    for label, suffix, level in outputs:
        for tool in args.tools.split(","):
            rows[(label, tool)] = best(tool, folder, out / f"{tool}{suffix}", level, args.repeat)
            print(label, tool, json.dumps(rows[(label, tool)]), flush=True)
    text = (
        f"{args.size}x{args.size}x{args.slices} CT series (int16 stored, intercept -1024, uncompressed), "
        f"the same gzip level requested from every .nii.gz writer, best of {args.repeat}, each run in a fresh process; "
        f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}.\n\n" + table(rows) + "\n" + NOTES
    )
    print(text)
    if args.results:
        write_results("Convert", text)


if __name__ == "__main__":
    main()

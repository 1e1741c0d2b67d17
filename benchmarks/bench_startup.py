"""Start-up cost of `medtl scan` / `medtl convert`: they must not import torch or Qt.

Times, each as a whole process, best of N: bare `python -c pass`, `medtl scan --help`,
`medtl convert --help`, a real `medtl scan --no-catalog` of the bundled sample, and, as the
reference for what lazy imports save, `python -c "import torch, monai"`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 7


def best_of(command: list[str]) -> tuple[float, float]:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    from medtl.sample import sample_dicom_dir

    python = sys.executable
    medtl = [python, "-m", "medtl"]
    cases = {
        "python -c pass": [python, "-c", "pass"],
        "medtl scan --help": [*medtl, "scan", "--help"],
        "medtl convert --help": [*medtl, "convert", "--help"],
        "medtl scan SAMPLE --no-catalog": [*medtl, "scan", str(sample_dicom_dir()), "--no-catalog"],
        "reference: import torch, monai": [python, "-c", "import torch, monai"],
    }
    results = {name: best_of(command) for name, command in cases.items()}
    reference = results["reference: import torch, monai"][0]
    print("| command | best s | median s | best / import torch+monai |\n|---|---|---|---|")
    for name, (best, median) in results.items():
        print(f"| {name} | {best:.3f} | {median:.3f} | {best / reference:.2f} |")


if __name__ == "__main__":
    main()

"""Fuzz `medtl` with a large seeded corpus of mutated real DICOM (tests/dicomfuzz.py).

Usage: python benchmarks/bench_fuzz.py [--cases 2000] [--seed 1] [--seconds-per-case 60]

Every case (a real pydicom test file or a generated classic / enhanced CT series, with bytes flipped,
cut or inserted, a tag removed, or a value made NaN, infinite, huge, negative, zero or text) goes
through `scan` (with a catalog), the app's loader on every series found, `load_path` and
`medtl convert`, in a child process, each case under an alarm. Prints the outcomes (a volume: ok; a
one-line MedtlError: refused; anything else: failed) by source and by kind of damage, and each
failure. Exits 1 if any case failed or hung. The suite's tests/test_fuzz_dicom.py runs 80 cases.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.dicomfuzz import run_corpus  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds-per-case", type=int, default=60, help="a case running longer counts as a hang")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medtl-fuzz-") as root:
        result = run_corpus(Path(root), args.cases, args.seed, args.seconds_per_case, timeout=max(600, args.cases * 5))
    seconds = time.perf_counter() - started
    print(f"{len(result.outcomes)} of {args.cases} cases (seed {args.seed}) in {seconds:.0f} s: {dict(sorted(result.counts().items()))}")
    for label, key in (("source", "source"), ("kind of damage", "kind")):
        table: dict[str, Counter] = defaultdict(Counter)
        for outcome in result.outcomes:
            table[outcome[key]]["failed" if outcome["outcome"].startswith("FAIL") else outcome["outcome"]] += 1
        print(f"\n| {label} | ok | refused | failed |\n|---|---:|---:|---:|")
        for name, counts in sorted(table.items()):
            print(f"| {name} | {counts['ok']} | {counts['refused']} | {counts['failed']} |")
    for failure in result.failures:
        print(f"FAILED case {failure['case']} ({failure['source']}, {failure['detail']}): {failure['outcome']}")
    if result.hung:
        print(f"HUNG: {result.hung} did not finish")
    return 1 if result.failures or result.hung else 0


if __name__ == "__main__":
    raise SystemExit(main())

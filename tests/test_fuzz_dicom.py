"""Mutated real DICOM (tests/dicomfuzz.py): every case ends in a finite volume or a one-line MedtlError, never a
traceback, a hang or `medtl convert` exiting 0 with non-finite voxels. benchmarks/bench_fuzz.py runs a larger corpus."""

from __future__ import annotations

from pathlib import Path

from tests.dicomfuzz import GENERATED, KINDS, SEED_FILES, run_corpus

CASES = 100  # every source with every kind of damage once


def test_mutated_dicom_gives_a_volume_or_a_one_line_reason(tmp_path: Path) -> None:
    result = run_corpus(tmp_path, CASES, seed=17, seconds_per_case=20, timeout=300)
    assert result.hung is None, f"{result.hung} did not finish"
    assert len(result.outcomes) == CASES == len(SEED_FILES + GENERATED) * len(KINDS)
    assert not result.failures, "\n".join(f"case {f['case']} ({f['source']}, {f['detail']}): {f['outcome']}" for f in result.failures)
    counts = result.counts()
    assert counts["ok"] > 0 and counts["refused"] > 0  # the damage is neither all harmless nor all fatal
    assert {(o["source"], o["kind"]) for o in result.outcomes} == {(s, k) for s in SEED_FILES + GENERATED for k in KINDS}

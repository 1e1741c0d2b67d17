"""The same training under ``torchrun --nproc_per_node=2`` with gloo on the CPU.

Run by the test below as ``torchrun --standalone --nproc_per_node=2 tests/test_training_distributed.py RUN_DIR``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
VAL_CASES = 25  # odd: the second rank's shard is padded with a repeat, which must not be counted


def train_on_this_rank(run_dir: Path) -> None:
    """What every rank runs: join the group, fit, and leave its final weights beside the run folder."""
    import torch.distributed as dist

    from medtl.training.distributed import init_from_env
    from medtl.training.metrics import MetricAccumulator
    from tests.test_training_synthetic import loaders, make_trainer

    ctx = init_from_env()
    events: list = []
    trainer = make_trainer(run_dir, epochs=3, on_event=events.append, val_cases=VAL_CASES)
    trainer.fit()
    torch.save(trainer.module.state_dict(), run_dir.parent / f"weights_rank{ctx.rank}.pt")
    (run_dir.parent / f"events_rank{ctx.rank}.json").write_text(json.dumps(len(events)))
    if ctx.is_main:  # the final model on the whole validation set, in this one process
        accumulator = MetricAccumulator("classification")
        with torch.no_grad():
            for batch in loaders(val=VAL_CASES)[1]:
                accumulator.update(trainer.module(batch["image"]), batch["label"])
        (run_dir.parent / "single_process_metrics.json").write_text(json.dumps(accumulator.compute()))
    dist.destroy_process_group()


def test_two_gloo_processes_train_one_model(tmp_path: Path) -> None:
    from medtl.training.run_folder import RunFolder

    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(Path(__file__)), str(run_dir)]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]

    rank0, rank1 = (torch.load(tmp_path / f"weights_rank{r}.pt", weights_only=True) for r in (0, 1))
    for name in rank0:
        torch.testing.assert_close(rank0[name], rank1[name])  # DDP kept the replicas identical
    assert json.loads((tmp_path / "events_rank1.json").read_text()) == 0  # only rank 0 reports
    run = RunFolder(run_dir)
    records = run.read_metrics()
    assert [r["epoch"] for r in records] == [1, 2, 3]
    # Each rank validated half the set; the gathered metrics are those of the whole set, counted once.
    single = json.loads((tmp_path / "single_process_metrics.json").read_text())
    assert records[-1]["confusion_matrix"] == single["confusion_matrix"]
    assert sum(map(sum, single["confusion_matrix"])) == VAL_CASES
    assert run.read_summary().stopped_because == "completed"


if __name__ == "__main__":
    train_on_this_rank(Path(sys.argv[1]))

"""What the Results panel shows of a run (pure Python): its history (the runs it was trained again from, each with its
best figure), its per-case results or why it has none, and whether its validation figure is within-patient.

Everything is read from the run folders (:class:`~medtl.training.run_folder.RunFolder`,
:func:`~medtl.training.run_folder.run_chain`); a folder that cannot be read says so in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medtl.errors import MedtlError
from medtl.training.case_results import CaseResults
from medtl.training.run_folder import RunFolder, run_chain

WITHIN_PATIENT_NOTE = (
    "Validation is within-patient: slabs of the training patient's own volume were held out, so these figures are optimistic for new patients."
)
CHAIN_ARROW = " ← "


@dataclass(frozen=True)
class HistoryEntry:
    """One run of a history: its folder and its best figure in words (or why there is none)."""

    run_dir: Path
    best: str
    exists: bool = True

    def text(self) -> str:
        return f"{self.run_dir.name}: {self.best}"


def best_text(run_dir: Path) -> str:
    """``"mean_dice 0.8123 at epoch 4"``, or what the run folder lacks."""
    folder = RunFolder(run_dir)
    if not folder.path.is_dir():
        return "folder missing"
    if not folder.summary_path.is_file():
        return "not finished"
    try:
        summary = folder.read_summary()
    except MedtlError:
        return "summary unreadable"
    if summary.best_metric is None:
        return f"{summary.stopped_because or 'ended'} without a validation figure"
    return f"{summary.best_metric_name or 'metric'} {summary.best_text()}"


def run_history(run_dir: Path) -> list[HistoryEntry]:
    """The run and the runs it was trained again from, newest first, each with its best figure."""
    return [HistoryEntry(path, best_text(path), path.is_dir()) for path in run_chain(run_dir)]


def chain_text(history: list[HistoryEntry]) -> str:
    """``"run ← parent ← grandparent"`` (folder names)."""
    return CHAIN_ARROW.join(entry.run_dir.name for entry in history)


@dataclass(frozen=True)
class RunReview:
    """One run as the Results panel shows it: its per-case results (None, with the reason in ``problem``), and whether
    its validation was within one patient."""

    run_dir: Path
    best: str
    results: CaseResults | None
    problem: str | None = None
    within_patient: bool = False
    task: str | None = None


def review_run(run_dir: Path) -> RunReview:
    """Read ``run_dir`` 's per-case results and data record (its split)."""
    folder = RunFolder(run_dir)
    results, problem, split, task = None, None, "", None
    try:
        config = folder.read_config()
        split, task = str(config.data.get("split", "")), config.train.task
        results = folder.read_case_results()
    except MedtlError as error:
        problem = str(error)
    return RunReview(run_dir, best_text(run_dir), results, problem, is_within_patient(split), results.task if results else task)


def is_within_patient(split: str) -> bool:
    """Whether a data summary's ``split`` held out parts (slabs) of the training patient's own volumes."""
    return "slab" in split.lower()

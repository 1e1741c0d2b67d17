"""What the fine-tune panel asks the engine for besides its form: a default run folder, resuming a stopped run, and
training again from a finished run (pure Python: the panel binds it).

"Train again from this model" is a new run, in a new folder, that starts from the finished run's best model on the
current labels: :func:`train_again_request` is the one place that says how a request names that start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from medtl.training.events import CANCELLED, COMPLETED, EARLY_STOPPING, TIME_LIMIT
from medtl.training.run_folder import RunFolder
from medtl.workflow.train import TrainRequest

RUNS_FOLDER = "runs"
STAMP = "%Y-%m-%d_%H-%M-%S"


def default_runs_root() -> Path:
    """``runs`` in the per-user data folder (platformdirs' ``user_data_dir("medtl")``)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("medtl")) / RUNS_FOLDER


def default_run_dir(root: Path | None = None, now: datetime | None = None) -> Path:
    """A folder for a new run that does not exist yet: ``<root>/<date>_<time>`` (``-2``, ``-3``... within one second)."""
    root = root if root is not None else default_runs_root()
    stamp = (now or datetime.now()).strftime(STAMP)
    candidate, number = root / stamp, 2
    while candidate.exists():
        candidate, number = root / f"{stamp}-{number}", number + 1
    return candidate


@dataclass(frozen=True)
class RunOutcome:
    """How the panel's last run ended: its folder (the model's run, the pretrained arm of a comparison), the folder the
    request named, the datalist it trained on, its device, and why it stopped (a summary's ``stopped_because``; None: it
    failed)."""

    run_dir: Path
    out_dir: Path
    datalist: Path | None
    device: str
    stopped_because: str | None

    @property
    def resumable(self) -> bool:
        """Stopped before its end (cancelled, or out of time) with a checkpoint to go on from."""
        return self.stopped_because in (CANCELLED, TIME_LIMIT) and RunFolder(self.run_dir).checkpoint_path.is_file()

    @property
    def has_model(self) -> bool:
        """Ended with a best model that another run may start from."""
        return self.stopped_because in (COMPLETED, EARLY_STOPPING, TIME_LIMIT) and RunFolder(self.run_dir).best_model_path.is_file()


def resume_request(outcome: RunOutcome) -> TrainRequest:
    """Go on with the stopped run where it stopped, with everything stored in it (its datalist, task and settings)."""
    return TrainRequest(None, None, outcome.out_dir, resume=True)


def train_again_request(parent: RunOutcome, datalist: Path | None, out_dir: Path, project: Path | None = None) -> TrainRequest:
    """A new run into ``out_dir`` on ``datalist`` (the current labels; None: the parent's datalist, or ``project`` 's
    labels now when given), starting from ``parent`` 's best model (the engine's ``init_from``: its network, weights and
    settings, a new output layer when the labels changed); the task is the parent's."""
    return TrainRequest(datalist, None, out_dir, init_from=parent.run_dir, device=parent.device, project=project)

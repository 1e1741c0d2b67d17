"""The run folder: everything one training run leaves behind, written atomically and read back by the app.

::

    config.json             {"train": TrainConfig, "model": ModelSpec dict, "preprocessing": ..., "data": ...}
    load_report.json        which pretrained tensors were loaded, adapted, new and dropped
    case_results.json       the best model on each validation case (:class:`~medtl.training.case_results.CaseResults`)
    case_results.csv        the same cases as a table, for a spreadsheet
    metrics.jsonl           one JSON object per epoch, appended and flushed as training goes
    checkpoint.pt           the full training state (``torch.load(weights_only=True)`` reads it)
    best_model.safetensors  the weights with the best validation metric
    summary.json            task, best_metric_name, best_metric, epochs, seconds, pretrained_source, stopped_because
    model_card.md           data, split, metrics, source weights and licence, intended use
    split/                  a split within one patient: each side's masks (the other side's slices unannotated)
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medtl.atomic import atomic_path, in_words, write_text_atomic
from medtl.errors import MedtlError
from medtl.training.config import TrainConfig
from medtl.training.run_summary import PRETRAINING_TASK, RUN_PREFIX, RunSummary

if TYPE_CHECKING:
    from medtl.training.case_results import CaseResults


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by ``None`` (strict JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def _dumps(value: Any, **kwargs: Any) -> str:
    return json.dumps(jsonable(value), allow_nan=False, **kwargs)


def read_json(path: Path, when_missing: str) -> Any:
    """The JSON document in ``path``; a missing or damaged file is a MedtlError naming it (``when_missing`` says what to check)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MedtlError(f"{path}: missing; {when_missing}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MedtlError(f"{path}: not valid JSON ({error})") from None


def weight_provenance(model: dict[str, Any]) -> tuple[str | None, str | None]:
    """(source, licence) of the pretrained weights named by a ModelSpec dict's ``weights`` entry.

    ``weights`` is a string (the source) or a dict with ``source`` and ``licence`` (or ``license``).
    """
    weights = model.get("weights")
    if isinstance(weights, str):
        return weights, None
    if isinstance(weights, dict):
        return weights.get("source"), weights.get("licence") or weights.get("license")
    return None, None


NOT_METRICS = frozenset({"epoch", "train_loss", "lr", "seconds", "elapsed_seconds"})
"""Entries of a ``metrics.jsonl`` line that are not validation metrics."""


@dataclass(frozen=True)
class EpochCurves:
    """A run's per-epoch curves from ``metrics.jsonl``: points are ``(epoch, value)``."""

    train_loss: list[tuple[float, float]] = field(default_factory=list)
    metrics: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # name -> points; non-finite values left out


@dataclass(frozen=True)
class RunConfig:
    """What ``config.json`` holds."""

    train: TrainConfig
    model: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    weights_licence: str | None = None
    """The licence of the pretrained weights the run started from (``None``: from scratch or unknown)."""
    choice_reason: str | None = None
    """Why this network was chosen, as the user was told before Start."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": self.train.to_dict(), "model": self.model, "preprocessing": self.preprocessing, "data": self.data,
            "weights_licence": self.weights_licence, "choice_reason": self.choice_reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return cls(
            TrainConfig.from_dict(data["train"]), data.get("model") or {}, data.get("preprocessing") or {}, data.get("data") or {},
            data.get("weights_licence"), data.get("choice_reason"),
        )


class RunFolder:
    """Reads and writes one run folder. Writers are atomic, except ``metrics.jsonl`` which is appended."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def best_model_path(self) -> Path:
        return self.path / "best_model.safetensors"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def model_card_path(self) -> Path:
        return self.path / "model_card.md"

    @property
    def load_report_path(self) -> Path:
        return self.path / "load_report.json"

    @property
    def split_dir(self) -> Path:
        return self.path / "split"

    def write_load_report(self, report: dict[str, Any]) -> None:
        """``load_report.json``: which pretrained tensors were loaded, adapted, new and dropped (and why)."""
        write_text_atomic(self.load_report_path, _dumps(report, indent=1))

    @property
    def case_results_paths(self) -> tuple[Path, Path]:
        """``case_results.json`` (read back by :meth:`read_case_results`) and ``case_results.csv``."""
        return self.path / "case_results.json", self.path / "case_results.csv"

    def write_case_results(self, results: CaseResults) -> None:
        """The best model's results per validation case, as JSON and as a CSV table."""
        json_path, csv_path = self.case_results_paths
        write_text_atomic(json_path, _dumps(results.to_dict(), indent=1))
        write_text_atomic(csv_path, results.csv_text())

    def read_case_results(self) -> CaseResults:
        from medtl.training.case_results import CaseResults

        json_path = self.case_results_paths[0]
        data = read_json(json_path, "per-case results are written when a run finishes")
        try:
            return CaseResults.from_dict(data)
        except (KeyError, TypeError, ValueError) as error:
            raise MedtlError(f"{json_path}: not medtl case results (missing or invalid {error})") from None

    def model_problem(self) -> str | None:
        """Why this folder's model cannot be used (to predict with, rank with or train again from), in the user's
        words; ``None`` when the folder holds the best model of a finished training run."""
        from medtl.training.compare import ComparisonFolder

        comparison = ComparisonFolder(self.path)
        if not self.path.is_dir():
            return f"{self.path}: no such run folder; choose the folder of a finished training run"
        if not self.config_path.is_file() and comparison.is_comparison():
            arms = " or ".join(str(comparison.arm(name).path) for name in ("pretrained", "scratch"))
            return f"{self.path} holds two runs (pretrained and from scratch); choose one of them: {arms}"
        if not self.config_path.is_file():
            return f"{self.path}: not a training run folder (it has no config.json)"
        if not self.summary_path.is_file():
            return f"{self.path}: the run has not finished (no summary.json); resume it, or wait until it ends"
        try:
            task = self.read_summary().task
        except MedtlError as error:
            return str(error)
        if task == PRETRAINING_TASK:
            return f"{self.path}: a self-supervised pretraining run has no task model; fine-tune from its weights ({RUN_PREFIX}{self.path}) first"
        if not self.best_model_path.is_file():
            return f"{self.path}: the run has no trained model (it never finished a validation); resume it, or choose another run"
        return None

    def parent(self) -> Path | None:
        """The run whose model this run started from (its ``"run:PATH"`` weights in ``config.json``), if any."""
        if not self.config_path.is_file():
            return None
        config = self._read_json(self.config_path)
        source, _ = weight_provenance(config.get("model") or {} if isinstance(config, dict) else {})
        if source is None or not source.startswith(RUN_PREFIX):
            return None
        return Path(source.removeprefix(RUN_PREFIX)).expanduser()

    def _read_json(self, path: Path) -> Any:
        return read_json(path, f"is {self.path} a medtl run folder?")

    def start_fresh(self, config: RunConfig, extra: dict[str, Any] | None = None) -> None:
        """Write ``config.json`` and remove what an earlier run in this folder left (metrics, models, summary)."""
        for stale in (self.checkpoint_path, self.best_model_path, self.summary_path, self.model_card_path, self.metrics_path, *self.case_results_paths):
            stale.unlink(missing_ok=True)
        self.write_config(config, extra)

    def write_config(self, config: RunConfig, extra: dict[str, Any] | None = None) -> None:
        """``config`` plus ``extra`` top-level entries a kind of run adds (e.g. ``"pretraining"``); readers ignore them."""
        write_text_atomic(self.config_path, _dumps({**config.to_dict(), **(extra or {})}, indent=2))

    def read_config(self) -> RunConfig:
        try:
            return RunConfig.from_dict(self._read_json(self.config_path))
        except (KeyError, TypeError) as error:
            raise MedtlError(f"{self.config_path}: not a medtl run configuration (missing or invalid {error})") from None

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Add one epoch's line and push it to disk, so a crash loses at most the line being written."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(_dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete line of ``metrics.jsonl`` (a line cut short by a crash is skipped)."""
        if not self.metrics_path.exists():
            return []
        records = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def read_curves(self) -> EpochCurves:
        """The training loss and each validation metric per epoch, as far as ``metrics.jsonl`` goes."""
        curves = EpochCurves()
        for record in self.read_metrics():
            epoch = float(record["epoch"])
            curves.train_loss.append((epoch, float(record["train_loss"])))
            for name, value in record.items():
                if name not in NOT_METRICS and isinstance(value, (int, float)) and math.isfinite(value):
                    curves.metrics.setdefault(name, []).append((epoch, float(value)))
        return curves

    def keep_metrics_through(self, epoch: int) -> None:
        """Drop lines of epochs after ``epoch`` (written after the checkpoint a resume starts from)."""
        kept = "".join(_dumps(record) + "\n" for record in self.read_metrics() if record["epoch"] <= epoch)
        write_text_atomic(self.metrics_path, kept)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """``state`` must hold only tensors and plain Python types, so that it loads with ``weights_only=True``.

        A failed write (a full disk) raises :class:`MedtlError` naming the file (:func:`_save`); the previous checkpoint is kept.
        """
        import torch

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:  # through Python, so that a full disk is an OSError behind torch's RuntimeError
                torch.save(state, handle)

        _save(self.checkpoint_path, "checkpoint", write)

    def load_checkpoint(self) -> dict[str, Any]:
        import torch

        if not self.checkpoint_path.exists():
            raise MedtlError(f"{self.checkpoint_path}: no checkpoint to resume from")
        try:
            return torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unpickling failure means a damaged or foreign file
            raise MedtlError(f"{self.checkpoint_path}: cannot be read as a medtl checkpoint ({error})") from None

    def save_best_model(self, state_dict: dict[str, Any], metadata: dict[str, str]) -> None:
        """Save weights as safetensors; tensors are copied to contiguous CPU storage (tied weights become copies).

        A failed write (a full disk) raises :class:`MedtlError` naming the file (:func:`_save`); the previous best model is kept.
        """
        from safetensors.torch import save_file

        tensors = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in state_dict.items()}
        _save(self.best_model_path, "best model", lambda tmp: save_file(tensors, str(tmp), metadata=metadata))

    def load_best_model(self) -> dict[str, Any]:
        from safetensors.torch import load_file

        if not self.best_model_path.exists():
            raise MedtlError(f"{self.best_model_path}: missing; the run never finished a validation")
        return load_file(str(self.best_model_path))

    def write_summary(self, summary: RunSummary) -> None:
        write_text_atomic(self.summary_path, _dumps(summary.to_dict(), indent=2))

    def read_summary(self) -> RunSummary:
        data = self._read_json(self.summary_path)
        try:
            return RunSummary.from_dict(data, run_dir=self.path)
        except MedtlError as error:
            raise MedtlError(f"{self.summary_path}: {error}") from None

    def write_model_card(self, text: str) -> None:
        write_text_atomic(self.model_card_path, text)


def _save(path: Path, what: str, write: Callable[[Path], None]) -> None:
    """Write ``path`` atomically with ``write(temporary path)``; a failure (a full disk, a read-only folder) is a MedtlError
    that names ``path``, says why in words, that the previous file is kept and that the run can be resumed."""
    from safetensors import SafetensorError

    existed = path.exists()
    try:
        with atomic_path(path) as tmp:
            write(tmp)
    except (OSError, RuntimeError, SafetensorError) as error:  # torch reports a full disk as a RuntimeError, safetensors as a SafetensorError
        kept = f"the previous {what} is kept" if existed else f"no {what} was saved before"
        resume = "Once the file can be written again, resume the run: it goes on from its last checkpoint"
        raise MedtlError(f"{path}: cannot write the {what}: {_why(error, path.parent)}; {kept}. {resume}") from None


def _why(error: BaseException, folder: Path) -> str:
    """Why a write failed, in words: from the OSError behind ``error`` or the OS error number in its text, else its text."""
    cause: BaseException | None = error
    while cause is not None:
        worded = re.search(r"os error (\d+)", str(cause))  # as safetensors words it
        number = getattr(cause, "errno", None) or (int(worded[1]) if worded else None)
        if number:
            return in_words(OSError(number, os.strerror(number)), folder)
        cause = cause.__cause__ or cause.__context__
    return str(error)


def run_chain(run_dir: Path | str) -> list[Path]:
    """A run and the runs it started from, newest first: ``[run, parent, grandparent, ...]``.

    The chain ends at a run that started from other weights (or from none), or at a parent folder
    that no longer exists (listed last, so that a history can say it is gone).
    """
    chain = [Path(run_dir)]
    seen = {chain[0].resolve()}
    while (parent := RunFolder(chain[-1]).parent()) is not None and parent.resolve() not in seen:
        chain.append(parent)
        seen.add(parent.resolve())
    return chain

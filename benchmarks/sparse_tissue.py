"""Shared by the sparse-label benchmarks on the ``mni_tissue`` volume (:func:`medtl.data.tasks.write_mni_tissue`).

- :func:`annotate`: the task with a chosen set of axial slices annotated (``ignore`` elsewhere), as a user who
  labelled exactly those slices would have it.
- :func:`train_steps`: one ``medtl train`` run (:func:`medtl.workflow.train.train`) for a number of epochs,
  counting its optimiser steps. One volume is one training case repeated to
  :data:`~medtl.workflow.defaults.MIN_TRAIN_ITEMS_PER_EPOCH` items an epoch, whatever the number of annotated
  slices, so equal epochs are equal steps; the count is reported so a table shows it. A run it finished before is
  reused, so a benchmark stopped part-way goes on where it stopped.
- :func:`unannotated_dice`: what a user wants from the model: the Dice of the whole volume's prediction (the
  app's :class:`~medtl.inference.predictor.Predictor`) against the full tissue mask on the slices nobody
  annotated, pooled over those slices, per tissue and averaged.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TISSUES = {1: "grey matter", 2: "white matter"}
STEPS_FILE = "benchmark_steps.json"
"""In a run folder :func:`train_steps` made: the optimiser steps the run took and the seconds the job took."""


def annotate(datalist: Path, slices: Iterable[int], out_dir: Path) -> Path:
    """A copy of the ``mni_tissue`` task at ``datalist`` with exactly ``slices`` (axial) annotated, written into
    ``out_dir`` (the image is shared); returns its datalist."""
    import nibabel

    from medtl.data.images import read_image
    from medtl.data.sparse import Annotated, ignore_value, with_ignore

    document = json.loads(datalist.read_text())
    entry = dict(document["training"][0])
    reference = read_image(datalist.parent / entry["reference"])
    chosen = sorted({int(z) for z in slices})
    ignore = ignore_value({int(value): name for value, name in document["labels"].items()})
    reference.array = with_ignore(reference.array, Annotated().add(0, chosen), ignore)
    out_dir.mkdir(parents=True, exist_ok=True)
    nibabel.save(reference.to_nifti(), str(out_dir / "label.nii.gz"))
    entry.update(image=str((datalist.parent / entry["image"]).resolve()), label="label.nii.gz", reference=str((datalist.parent / entry["reference"]).resolve()))
    out = out_dir / "datalist.json"
    out.write_text(json.dumps({**document, "training": [entry], "annotated_axial_slices": chosen}, indent=1))
    return out


def annotated_slices(datalist: Path) -> list[int]:
    return list(json.loads(datalist.read_text())["annotated_axial_slices"])


def depth(datalist: Path) -> int:
    """The number of axial slices of the task's volume."""
    from medtl.data.images import read_image

    document = json.loads(datalist.read_text())
    return int(read_image(datalist.parent / document["training"][0]["image"]).shape[0])


@dataclass(frozen=True)
class StepRun:
    """A finished run: its folder, summary, the optimiser steps it took and the wall seconds of the whole job."""

    run_dir: Path
    summary: Any
    steps: int
    seconds: float


def train_steps(datalist: Path, run_dir: Path, epochs: int, seed: int, weights: str | None = None, init_from: Path | None = None) -> StepRun:
    """``medtl train`` with nothing chosen but ``weights`` (None: the default) or ``init_from``, for ``epochs``. A run
    this function finished before in ``run_dir`` is taken as it is (its steps and seconds are kept in :data:`STEPS_FILE`),
    so a benchmark stopped part-way goes on where it stopped."""
    import time

    from medtl.training.events import StepProgress
    from medtl.training.run_folder import RunFolder
    from medtl.workflow.train import TrainRequest, train

    record = run_dir / STEPS_FILE
    if record.is_file():
        done = json.loads(record.read_text())
        return StepRun(run_dir, RunFolder(run_dir).read_summary(), done["steps"], done["seconds"])
    steps = 0

    def count(event: object) -> None:
        nonlocal steps
        steps += isinstance(event, StepProgress)

    start = time.perf_counter()
    result = train(TrainRequest(datalist, "segmentation", run_dir, weights=weights, epochs=epochs, seed=seed, init_from=init_from), on_event=count)
    seconds = time.perf_counter() - start
    record.write_text(json.dumps({"steps": steps, "seconds": seconds}))
    return StepRun(run_dir, result.summary, steps, seconds)


def tissue_dice(predicted: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Dice per tissue (pooled over every voxel given) and their mean."""
    scores = {name: float(2 * ((predicted == value) & (reference == value)).sum() / ((predicted == value).sum() + (reference == value).sum())) for value, name in TISSUES.items()}
    return {**scores, "mean": float(np.mean(list(scores.values())))}


def predicted_mask(run_dir: Path, datalist: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(prediction, reference)``: the run's mask of the task's whole volume (the app's Predictor) and the full tissue mask."""
    from medtl.data.images import read_image
    from medtl.inference.predictor import Predictor

    entry = json.loads(datalist.read_text())["training"][0]
    predicted = Predictor.from_run(run_dir, device="cpu").predict(datalist.parent / entry["image"]).mask.array
    return predicted, read_image(datalist.parent / entry["reference"]).array


def unannotated_dice(run_dir: Path, datalist: Path, annotated: Sequence[int] | None = None) -> dict[str, float]:
    """Dice per tissue (and their mean) of the run's prediction on the axial slices outside ``annotated`` (default: the
    slices the datalist annotates)."""
    predicted, reference = predicted_mask(run_dir, datalist)
    hidden = np.setdiff1d(np.arange(reference.shape[0]), annotated_slices(datalist) if annotated is None else list(annotated))
    return tissue_dice(predicted[hidden], reference[hidden])


def spread(values: Sequence[float]) -> str:
    """``mean ± standard deviation (min-max)`` of a few seeds' figures."""
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {deviation:.3f} ({min(values):.3f}-{max(values):.3f})"

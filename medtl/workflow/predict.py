"""Prediction as one job: a :class:`PredictRequest` in, one typed outcome per input out.

:func:`predict` loads the run once and yields, input by input and in the request's order, a
:class:`PredictedInput` (the prediction, and the stem its files are named with) or a
:class:`FailedInput` (the reason, in the user's words); the other inputs go on after a failure. It
writes nothing: the caller writes each prediction with
:func:`medtl.export.prediction_outputs.write_prediction_outputs` (with the request's ``seg`` variant's
Deidentifier, one for the whole job) and can then let it go, so memory
holds one input's volumes at a time. ``medtl predict`` is this job on the command line.

Importing this module imports nothing heavy; :func:`predict` imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from medtl.errors import MedtlError
from medtl.export.prediction_outputs import SEG_VARIANTS, SegVariant, output_names
from medtl.inference.prediction import UNCERTAINTY_METHODS, Prediction
from medtl.progress import Cancelled, CancelToken, ProgressCallback
from medtl.training.config import DEVICES
from medtl.workflow.request import InvalidRequest, check_choice

DEFAULT_BATCH_SIZE = 8


@dataclass(frozen=True)
class PredictRequest:
    """What to predict with and on, validated on creation (:class:`~medtl.workflow.request.InvalidRequest` names the field).

    ``run_dir`` is the folder of a finished training run (read when the job starts); ``inputs`` are
    DICOM series folders or files, NIfTI or PNG/JPEG/TIFF images; ``out_dir`` is where the caller
    writes the outputs (None: nowhere, e.g. the app only shows them); ``series_uid`` chooses the
    series of a DICOM folder that holds several; ``uncertainty`` is ``"tta"`` (test-time flips),
    ``"mc"`` (MC dropout) or None; ``batch_size`` counts slices or windows per forward pass; ``seg`` is the
    DICOM SEG the caller writes for a DICOM input: ``"pacs"`` (with the source's patient and study, to go
    back to the PACS) or ``"shared"`` (de-identified, to leave the hospital;
    :func:`~medtl.export.prediction_outputs.seg_deidentifier` gives the export its Deidentifier).
    """

    run_dir: Path
    inputs: tuple[Path, ...]
    out_dir: Path | None = None
    series_uid: str | None = None
    uncertainty: str | None = None
    device: str = "auto"
    batch_size: int = DEFAULT_BATCH_SIZE
    seg: SegVariant = "pacs"

    def __post_init__(self) -> None:
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        object.__setattr__(self, "inputs", tuple(Path(path) for path in self.inputs))
        if self.out_dir is not None:
            object.__setattr__(self, "out_dir", Path(self.out_dir))
        if not self.inputs:
            raise InvalidRequest("inputs", "give at least one image to predict on")
        missing = [path for path in self.inputs if not path.exists()]
        if missing:
            raise InvalidRequest("inputs", f"{missing[0]}: no such file or folder")
        if self.batch_size < 1:
            raise InvalidRequest("batch_size", f"the batch size must be at least 1, not {self.batch_size}")
        if self.out_dir is not None and self.out_dir.exists() and not self.out_dir.is_dir():
            raise InvalidRequest("out_dir", f"{self.out_dir}: is a file, not a folder to write the results into")
        if self.series_uid is not None and not self.series_uid.strip():
            raise InvalidRequest("series_uid", "the series UID must not be empty")
        if self.uncertainty is not None:
            check_choice("uncertainty", self.uncertainty, UNCERTAINTY_METHODS, "the uncertainty method")
        check_choice("device", self.device, DEVICES, "the device")
        check_choice("seg", self.seg, SEG_VARIANTS, "the DICOM SEG variant")


@dataclass(frozen=True, eq=False)
class PredictedInput:
    """An input and its prediction; ``name`` is the stem of its output files, ``model_name`` the run's architecture."""

    input: Path
    name: str
    prediction: Prediction
    model_name: str


@dataclass(frozen=True)
class FailedInput:
    """An input that could not be predicted on, and why (a message naming the file); ``field`` is the request field
    the reason is about (``"series_uid"`` when a folder holds several series), if any."""

    input: Path
    name: str
    reason: str
    field: str | None = None


InputOutcome: TypeAlias = PredictedInput | FailedInput


def predict(request: PredictRequest, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Iterator[InputOutcome]:
    """Predict on each of ``request.inputs`` with the run's best model, yielding each input's outcome as it is done.

    A problem with the run or the uncertainty method (for this model) raises MedtlError before the
    first outcome; cancelling raises :class:`~medtl.progress.Cancelled`.
    """
    from medtl.inference.predictor import Predictor

    predictor = Predictor.from_run(request.run_dir, device=request.device, batch_size=request.batch_size)
    predictor.check_uncertainty(request.uncertainty)
    for path, name in zip(request.inputs, output_names(request.inputs)):
        try:
            prediction = predictor.predict(path, progress, cancel, request.uncertainty, request.series_uid)
        except Cancelled:
            raise
        except MedtlError as error:
            yield FailedInput(path, name, str(error), getattr(error, "field", None))
            continue
        yield PredictedInput(path, name, prediction, predictor.spec.architecture)


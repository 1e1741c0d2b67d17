"""`medtl predict --run RUN INPUT... --out DIR`: apply a trained run to images.

Segmentation: ``DIR/<name>.nii.gz`` (the mask on the input's grid), plus ``DIR/<name>.seg.dcm`` for
DICOM input (``--seg pacs``, the default: with the source's patient and study; ``--seg shared``:
de-identified) and ``DIR/<name>_uncertainty.nii.gz`` with ``--uncertainty``. Classification:
``DIR/predictions.csv`` (``input``, ``predicted``, ``p_<class>``..., ``uncertainty`` with
``--uncertainty``), ``DIR/<name>_heatmap.nii.gz`` and ``DIR/<name>_heatmap.png`` (middle slice), and
``DIR/<name>_slices.csv`` when a 2D model saw several slices (:mod:`medtl.export.prediction_outputs`).
An input that fails is reported in one line and the others go on; the exit status is then 2. No file
name holds the patient's name, ID or birth date (``<name>`` is then ``series_`` and a digest).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from medtl.export.deidentify import Deidentifier
    from medtl.export.prediction_outputs import PredictionOutputs
    from medtl.inference.prediction import Prediction
    from medtl.workflow.predict import InputOutcome

HELP = "predict with a trained run: masks (NIfTI, DICOM SEG) or class probabilities with Grad-CAM heatmaps"
FLAGS = {
    "run_dir": "--run", "out_dir": "--out", "series_uid": "--series", "uncertainty": "--uncertainty", "device": "--device", "batch_size": "--batch-size",
    "seg": "--seg",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="DICOM series folders or files, NIfTI, PNG/JPEG/TIFF images")
    parser.add_argument("--run", type=Path, required=True, metavar="RUN", help="the run folder of a finished training")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="the folder to write the results into")
    parser.add_argument("--series", metavar="SERIES_UID", help="the series to use when a DICOM INPUT folder holds several (DICOM inputs only)")
    parser.add_argument("--uncertainty", choices=("tta", "mc"), help="also estimate uncertainty: test-time flips (tta) or MC dropout (mc)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="where the network runs (default: auto)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="slices or windows per forward pass (default: 8)")
    parser.add_argument(
        "--seg", choices=("pacs", "shared"), default="pacs",
        help="the DICOM SEG written for DICOM input: pacs (default) carries the source's patient name, ID, birth date and study, "
        "for a SEG that goes back to the PACS; shared is de-identified (DICOM PS3.15 basic confidentiality profile: no name, "
        "ID or birth date, pseudonymous UIDs and IDs, dates shifted, private tags removed), for a SEG that leaves the hospital",
    )


def run(args: argparse.Namespace) -> int:
    from medtl.cli.scan_command import TerminalProgress
    from medtl.export.prediction_outputs import PREDICTIONS_CSV, classification_row, seg_deidentifier, write_predictions_csv
    from medtl.inference.prediction import ClassificationPrediction
    from medtl.workflow.predict import PredictRequest, predict

    request = PredictRequest(args.run, tuple(args.inputs), args.out, args.series, args.uncertainty, args.device, args.batch_size, args.seg)
    deidentify = seg_deidentifier(request.seg)  # one for the whole job: pseudonyms agree across its inputs
    progress = TerminalProgress() if sys.stderr.isatty() else None
    rows: list[dict[str, str]] = []
    failures = 0
    for outcome in predict(request, progress):
        if progress is not None:
            progress.clear()
        outputs = _write(outcome, args.out, deidentify)
        if isinstance(outputs, str):
            print(f"medtl predict: error: {outputs}", file=sys.stderr)
            failures += 1
            continue
        for warning in outputs.warnings:
            print(f"medtl predict: warning: {warning}", file=sys.stderr)
        print(_summary(outcome.prediction, outputs))
        if isinstance(outcome.prediction, ClassificationPrediction):
            rows.append(classification_row(outcome.prediction))
    if rows:
        write_predictions_csv(args.out / PREDICTIONS_CSV, rows)
        print(f"{args.out / PREDICTIONS_CSV}: {len(rows)} prediction(s)")
    return 2 if failures else 0


def _write(outcome: InputOutcome, out: Path, deidentify: Deidentifier | None) -> PredictionOutputs | str:
    """The files written for an input's prediction, or why there are none (the input's failure, or the writer's)."""
    from medtl.errors import MedtlError
    from medtl.export.prediction_outputs import write_prediction_outputs
    from medtl.workflow.predict import FailedInput

    if isinstance(outcome, FailedInput):
        flag = FLAGS.get(outcome.field or "")
        return f"{flag}: {outcome.reason}" if flag else outcome.reason
    try:
        return write_prediction_outputs(outcome.prediction, out, outcome.name, outcome.model_name, deidentify)
    except MedtlError as error:
        return str(error)


def _summary(prediction: Prediction, outputs: PredictionOutputs) -> str:
    """One line on stdout per input: label volumes and the files written, or the predicted class."""
    from medtl.inference.prediction import SegmentationPrediction

    if isinstance(prediction, SegmentationPrediction):
        volumes = ", ".join(f"{label} {mm3:.1f} mm³" for label, mm3 in prediction.volumes_mm3.items())
        certainty = f", uncertainty {prediction.uncertainty:.3f}" if prediction.uncertainty is not None else ""
        return f"{prediction.source_path}: {volumes}{certainty} -> {', '.join(path.name for path in outputs.files)}"
    return f"{prediction.source_path}: {prediction.predicted} (p={float(prediction.probabilities.max()):.3f})"

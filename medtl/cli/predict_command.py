"""`medtl predict --run RUN INPUT... --out DIR`: apply a trained run to images.

Segmentation: ``DIR/<name>.nii.gz`` (the mask on the input's grid), plus ``DIR/<name>.seg.dcm`` for
DICOM input and ``DIR/<name>_uncertainty.nii.gz`` with ``--uncertainty``. Classification:
``DIR/predictions.csv`` (``input``, ``predicted``, ``p_<class>``..., ``uncertainty`` with
``--uncertainty``), ``DIR/<name>_heatmap.nii.gz`` and ``DIR/<name>_heatmap.png`` (middle slice), and
``DIR/<name>_slices.csv`` when a 2D model saw several slices. An input that fails is reported in one
line and the others go on; the exit status is then 2.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from medtl.inference.predictor import Prediction, Predictor

HELP = "predict with a trained run: masks (NIfTI, DICOM SEG) or class probabilities with Grad-CAM heatmaps"
_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".dcm", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="DICOM series folders or files, NIfTI, PNG/JPEG/TIFF images")
    parser.add_argument("--run", type=Path, required=True, metavar="RUN", help="the run folder of a finished training")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="the folder to write the results into")
    parser.add_argument("--series", metavar="SERIES_UID", help="the series to use when a DICOM INPUT folder holds several (DICOM inputs only)")
    parser.add_argument("--uncertainty", choices=("tta", "mc"), help="also estimate uncertainty: test-time flips (tta) or MC dropout (mc)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="where the network runs (default: auto)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="slices or windows per forward pass (default: 8)")


def run(args: argparse.Namespace) -> int:
    from medtl.cli.scan_command import TerminalProgress
    from medtl.errors import MedtlError
    from medtl.inference.predictor import Predictor

    missing = [path for path in args.inputs if not path.exists()]
    if missing:
        raise MedtlError(f"{missing[0]}: no such file or folder")
    if args.batch_size < 1:
        raise MedtlError(f"--batch-size must be at least 1, not {args.batch_size}")
    predictor = Predictor.from_run(args.run, device=args.device, batch_size=args.batch_size)
    predictor.check_uncertainty(args.uncertainty)
    progress = TerminalProgress() if sys.stderr.isatty() else None
    rows: list[dict[str, str]] = []
    failures = 0
    for path, name in zip(args.inputs, output_names(args.inputs)):
        try:
            prediction = predictor.predict(path, progress=progress, uncertainty=args.uncertainty, series_uid=args.series)
            if progress is not None:
                progress.clear()
            if prediction.task == "segmentation":
                _write_segmentation(prediction, predictor, name, args.out)
            else:
                rows.append(_write_classification(prediction, name, args.out))
        except MedtlError as error:
            if progress is not None:
                progress.clear()
            print(f"medtl predict: error: {error}", file=sys.stderr)
            failures += 1
    if predictor.spec.task == "classification" and rows:
        _write_csv(args.out / "predictions.csv", rows)
        print(f"{args.out / 'predictions.csv'}: {len(rows)} prediction(s)")
    return 2 if failures else 0


def output_names(paths: list[Path]) -> list[str]:
    """A distinct file-name stem per input: the file name without its image suffix, or the folder name."""
    names: list[str] = []
    for path in paths:
        base = path.resolve().name
        suffix = next((s for s in _IMAGE_SUFFIXES if base.lower().endswith(s)), "")
        base = base[: len(base) - len(suffix)] if path.is_file() and suffix else base
        name, count = base or "image", 1
        while name in names:
            count += 1
            name = f"{base}_{count}"
        names.append(name)
    return names


def _write_segmentation(prediction: Prediction, predictor: Predictor, name: str, out: Path) -> None:
    from medtl.data.images import image_format
    from medtl.export.dicom_seg import write_dicom_seg
    from medtl.export.nifti import write_nifti

    assert prediction.mask is not None and prediction.source_path is not None
    written = [write_nifti(prediction.mask, out / f"{name}.nii.gz")]
    if prediction.uncertainty_map is not None:
        written.append(write_nifti(prediction.uncertainty_map, out / f"{name}_uncertainty.nii.gz"))
    if image_format(prediction.source_path) == "dicom":
        destination = out / f"{name}.seg.dcm"
        for warning in write_dicom_seg(prediction.mask, prediction.labels, prediction.source, destination, predictor.spec.architecture):
            print(f"medtl predict: warning: {destination}: {warning}", file=sys.stderr)
        written.append(destination)
    volumes = ", ".join(f"{label} {mm3:.1f} mm³" for label, mm3 in prediction.volumes_mm3.items())
    certainty = f", uncertainty {prediction.uncertainty:.3f}" if prediction.uncertainty is not None else ""
    print(f"{prediction.source_path}: {volumes}{certainty} -> {', '.join(p.name for p in written)}")


def _write_classification(prediction: Prediction, name: str, out: Path) -> dict[str, str]:
    from medtl.export.nifti import write_nifti
    from medtl.export.overlay import write_overlay_png

    assert prediction.probabilities is not None and prediction.heatmap is not None
    write_nifti(prediction.heatmap, out / f"{name}_heatmap.nii.gz")
    write_overlay_png(prediction.source, prediction.heatmap, out / f"{name}_heatmap.png")
    if prediction.slice_probabilities is not None and len(prediction.slice_probabilities) > 1:
        _write_csv(out / f"{name}_slices.csv", [{"slice": str(z), **_probability_columns(prediction.classes, p)} for z, p in enumerate(prediction.slice_probabilities)])
    row = {"input": str(prediction.source_path), "predicted": prediction.predicted, **_probability_columns(prediction.classes, prediction.probabilities)}
    if prediction.uncertainty is not None:
        row["uncertainty"] = f"{prediction.uncertainty:.6f}"
    print(f"{prediction.source_path}: {prediction.predicted} (p={float(prediction.probabilities.max()):.3f})")
    return row


def _probability_columns(classes: list[str], probabilities: object) -> dict[str, str]:
    return {f"p_{name}": f"{float(p):.6f}" for name, p in zip(classes, probabilities)}  # type: ignore[call-overload]


def _write_csv(destination: Path, rows: list[dict[str, str]]) -> None:
    from medtl.atomic import write_text_atomic

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(destination, buffer.getvalue())

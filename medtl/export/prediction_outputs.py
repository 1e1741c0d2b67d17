"""A prediction's files, named after its input: what ``medtl predict`` writes (and the app exports).

For an input whose outputs are named ``NAME`` (:func:`output_names`), in the folder ``OUT``:

- segmentation: ``OUT/NAME.nii.gz`` (the mask on the input's grid), ``OUT/NAME_uncertainty.nii.gz``
  (with uncertainty) and ``OUT/NAME.seg.dcm`` (when the input was loaded from DICOM): for the PACS
  (the source's patient and study) or to be shared (de-identified, :data:`SEG_VARIANTS`);
- classification: ``OUT/NAME_heatmap.nii.gz`` and ``OUT/NAME_heatmap.png`` (middle slice), and
  ``OUT/NAME_slices.csv`` (``slice``, ``p_<class>``...) when a 2D model saw several slices. Each
  input is also one row of ``OUT/predictions.csv`` (:func:`classification_row`,
  :func:`write_predictions_csv`: ``input``, ``predicted``, ``p_<class>``..., ``uncertainty``).

A name that holds the patient's name, ID or birth date (a DICOM folder named after the patient) is
replaced by ``series_`` and a digest (:func:`phi_free_name`). Every file is written atomically.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from medtl.atomic import write_text_atomic
from medtl.inference.prediction import ClassificationPrediction, Prediction, SegmentationPrediction

if TYPE_CHECKING:  # pragma: no cover
    from medtl.dicom.volume import Volume
    from medtl.export.deidentify import Deidentifier

PREDICTIONS_CSV = "predictions.csv"
SegVariant = Literal["pacs", "shared"]
SEG_VARIANTS: tuple[SegVariant, ...] = ("pacs", "shared")
"""Which DICOM SEG is written: ``pacs`` carries the source's patient and study modules (a SEG that goes
back to the PACS); ``shared`` is de-identified (PS3.15 basic profile, :mod:`medtl.export.deidentify`)."""
_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".dcm", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass(frozen=True)
class PredictionOutputs:
    """The files written for one prediction, in the order written, and warnings, each naming its file."""

    files: tuple[Path, ...]
    warnings: tuple[str, ...] = ()


def output_names(paths: Sequence[Path]) -> list[str]:
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


def seg_deidentifier(seg: SegVariant) -> Deidentifier | None:
    """What de-identifies one export's DICOM SEGs of variant ``seg``: a new Deidentifier for ``shared``, None for ``pacs``."""
    if seg not in SEG_VARIANTS:
        raise ValueError(f"the DICOM SEG variant must be one of {', '.join(SEG_VARIANTS)}, not {seg!r}")
    from medtl.export.deidentify import Deidentifier

    return Deidentifier() if seg == "shared" else None


def write_prediction_outputs(
    prediction: Prediction, out_dir: Path | str, name: str, model_name: str, deidentify: Deidentifier | None = None
) -> PredictionOutputs:
    """Write ``prediction``'s files into ``out_dir`` with the stem ``name`` (:func:`phi_free_name` of it); ``model_name``
    names the algorithm in DICOM SEG; ``deidentify`` (one per export, :func:`seg_deidentifier`) makes the SEG one to share.

    The classification row of ``predictions.csv`` is not written here (:func:`classification_row`).
    """
    out_dir, name = Path(out_dir), phi_free_name(name, prediction.source)
    if isinstance(prediction, SegmentationPrediction):
        return _write_segmentation(prediction, out_dir, name, model_name, deidentify)
    return _write_classification(prediction, out_dir, name)


def export_prediction(prediction: Prediction, out_dir: Path | str, name: str, model_name: str, seg: SegVariant = "pacs") -> PredictionOutputs:
    """One prediction's complete export (the app's *Export prediction*): its files (a DICOM SEG of variant ``seg``), and
    for a classification its one-row ``predictions.csv``, as ``medtl predict`` writes them for one input."""
    outputs = write_prediction_outputs(prediction, out_dir, name, model_name, seg_deidentifier(seg))
    if isinstance(prediction, SegmentationPrediction):
        return outputs
    table = write_predictions_csv(Path(out_dir) / PREDICTIONS_CSV, [classification_row(prediction)])
    return PredictionOutputs((*outputs.files, table), outputs.warnings)


def phi_free_name(name: str, source: Volume) -> str:
    """``name``, unless it holds the patient's name, ID or birth date as the first DICOM file of ``source`` records
    them (or that file cannot be read to tell): then ``series_`` and a digest of the series UID and ``name``."""
    where = next((where for where in source.slice_sources if where is not None), None)
    if where is None:
        return name
    import pydicom

    from medtl.export.deidentify import patient_identity, phi_found

    try:
        identity = patient_identity(pydicom.dcmread(where.path, stop_before_pixels=True))
        if not phi_found(name.encode(), identity):
            return name
    except Exception:  # noqa: BLE001 - whatever stops the check, the name is not shown to be free of PHI
        pass
    return "series_" + hashlib.sha256(f"{source.metadata.get('series_uid', '')}/{name}".encode()).hexdigest()[:12]


def _write_segmentation(prediction: SegmentationPrediction, out_dir: Path, name: str, model_name: str, deidentify: Deidentifier | None) -> PredictionOutputs:
    from medtl.export.nifti import write_nifti

    files = [write_nifti(prediction.mask, out_dir / f"{name}.nii.gz")]
    if prediction.uncertainty_map is not None:
        files.append(write_nifti(prediction.uncertainty_map, out_dir / f"{name}_uncertainty.nii.gz"))
    warnings: list[str] = []
    if any(prediction.source.slice_sources):  # loaded from DICOM
        from medtl.export.dicom_seg import write_dicom_seg

        destination = out_dir / f"{name}.seg.dcm"
        written = write_dicom_seg(prediction.mask, dict(prediction.labels), prediction.source, destination, model_name, deidentify)
        warnings += [f"{destination}: {warning}" for warning in written]
        files.append(destination)
    return PredictionOutputs(tuple(files), tuple(warnings))


def _write_classification(prediction: ClassificationPrediction, out_dir: Path, name: str) -> PredictionOutputs:
    from medtl.export.nifti import write_nifti
    from medtl.export.overlay import write_overlay_png

    files = [write_nifti(prediction.heatmap, out_dir / f"{name}_heatmap.nii.gz")]
    files.append(write_overlay_png(prediction.source, prediction.heatmap, out_dir / f"{name}_heatmap.png"))
    slices = prediction.slice_probabilities
    if slices is not None and len(slices) > 1:
        files.append(out_dir / f"{name}_slices.csv")
        write_predictions_csv(files[-1], [{"slice": str(z), **_probability_columns(prediction.classes, p)} for z, p in enumerate(slices)])
    return PredictionOutputs(tuple(files))


def classification_row(prediction: ClassificationPrediction) -> dict[str, str]:
    """The prediction's row of ``predictions.csv``: ``input``, ``predicted``, ``p_<class>``..., ``uncertainty`` (when estimated)."""
    row = {"input": str(prediction.source_path), "predicted": prediction.predicted, **_probability_columns(prediction.classes, prediction.probabilities)}
    if prediction.uncertainty is not None:
        row["uncertainty"] = f"{prediction.uncertainty:.6f}"
    return row


def write_predictions_csv(destination: Path | str, rows: Sequence[Mapping[str, str]]) -> Path:
    """Write ``rows`` (all with the first row's columns) as CSV at ``destination``, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(destination, buffer.getvalue())
    return Path(destination)


def _probability_columns(classes: Sequence[str], probabilities: np.ndarray) -> dict[str, str]:
    return {f"p_{name}": f"{float(p):.6f}" for name, p in zip(classes, probabilities)}

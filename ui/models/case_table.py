"""`CaseTable`: a run's per-case results as the rows of a sortable table (pure Python; the Results panel shows it).

Segmentation: one row per case and foreground label (case, label, Dice, HD95); classification: one row per case
(case, true class, predicted class, the probability of the predicted class), misclassified rows marked. Sorting
puts rows without a value (an undefined Dice or HD95) last in either direction, as
:meth:`~medtl.training.case_results.CaseResults.sorted_by` does. The classification summaries (confusion matrix,
ROC AUC per class) are given as text and rows too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medtl.training.case_results import CaseResults, ClassificationCase, SegmentationCase

Value = str | float | None
MISSING = "—"


@dataclass(frozen=True)
class CaseRow:
    """One row: the case's image, its cells, and whether the model got the case wrong (classification)."""

    image: Path
    values: tuple[Value, ...]
    wrong: bool = False


def case_name(image: Path) -> str:
    """The name a case goes by in the table: its file name, or a DICOM folder's name after its parent's
    (``98892001/CT5N``, ``sample-study-v1/dicom``: a series folder alone is often just ``dicom``)."""
    if image.parent.name and image.is_dir():
        return f"{image.parent.name}/{image.name}"
    return image.name or str(image)


class CaseTable:
    """The rows of ``results``, in their stored order until :meth:`sort` orders them."""

    def __init__(self, results: CaseResults) -> None:
        self.results = results
        if results.task == "segmentation":
            self.headers: tuple[str, ...] = ("case", "label", "Dice", f"HD95 {results.distance_unit}")
            self.decimals: tuple[int | None, ...] = (None, None, 3, 1)
        else:
            self.headers = ("case", "true", "predicted", "probability")
            self.decimals = (None, None, None, 3)
        self.rows = [row for case in results.cases for row in _rows(case, results.names)]

    def text(self, row: int, column: int) -> str:
        value, decimals = self.rows[row].values[column], self.decimals[column]
        if value is None:
            return MISSING
        return f"{value:.{decimals}f}" if isinstance(value, float) and decimals is not None else str(value)

    def sort(self, column: int, descending: bool = False) -> None:
        """Order the rows by ``column`` (text case-insensitively); rows without a value there come last."""
        known = [row for row in self.rows if row.values[column] is not None]
        missing = [row for row in self.rows if row.values[column] is None]
        known.sort(key=lambda row: _key(row.values[column]), reverse=descending)
        self.rows = known + missing


def _key(value: Value) -> str | float:
    return value.lower() if isinstance(value, str) else float(value)  # type: ignore[arg-type]


def _rows(case: SegmentationCase | ClassificationCase, names: tuple[str, ...]) -> list[CaseRow]:
    name = case_name(case.image)
    if isinstance(case, SegmentationCase):
        return [CaseRow(case.image, (name, label, case.dice.get(label), case.hd95.get(label))) for label in names]
    probability = case.probabilities.get(case.predicted)
    return [CaseRow(case.image, (name, case.true_class, case.predicted, probability), wrong=not case.correct)]


def confusion_rows(results: CaseResults) -> list[tuple[str, tuple[int, ...]]]:
    """The confusion matrix as (true class, counts per predicted class) rows; empty for segmentation."""
    return list(zip(results.names, results.confusion_matrix))


def auc_text(results: CaseResults) -> str:
    """``"ROC AUC: cat 0.93, dog 0.88; macro 0.90"`` (with two classes, the second class's curve), or ``""``."""
    if not results.roc:
        return "ROC AUC: undefined (the validation cases are all of one class)" if results.task == "classification" else ""
    per_class = ", ".join(f"{curve.positive_class} {curve.auc:.3f}" for curve in results.roc)
    macro = f"; macro {results.auc:.3f}" if results.auc is not None and len(results.roc) > 1 else ""
    return f"ROC AUC: {per_class}{macro}"

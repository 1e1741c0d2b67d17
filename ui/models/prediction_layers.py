"""Overlay layers and a one-line summary for an engine `Prediction` (mask, Grad-CAM heatmap, uncertainty map)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from medtl.errors import MedtlError
from medtl.inference.prediction import ClassificationPrediction, SegmentationPrediction
from ui.models.overlays import PREDICTION_PALETTE, HeatmapLayer, LabelLayer, OverlayLayer

if TYPE_CHECKING:  # pragma: no cover
    from medtl.inference.prediction import Prediction

PREDICTION_OPACITY = 0.35  # under the label being edited (0.6): a prediction shows, the strokes on it show more
GRADCAM_FLOOR = 0.2  # Grad-CAM below this (of its case maximum) stays transparent: only the evidence is coloured
UNCERTAINTY_FLOOR = 0.05  # below this normalised entropy the map stays transparent: only doubt is coloured
UNCERTAINTY_OPACITY = 0.5
UNCERTAINTY_COLORMAP = "inferno"  # a heat map: dark red (some doubt) to pale yellow (none of the classes is favoured)
UNCERTAINTY_METHODS = {"tta": "TTA", "mc": "MC dropout"}
"""The uncertainty the app asks for, in order of preference (TTA: test-time flips, as the checkbox says), and their names."""


NO_UNCERTAINTY = "shown without uncertainty: this model was trained without flips and has no dropout, so neither TTA nor MC dropout can estimate it"


def choose_uncertainty(check: Callable[[str], None]) -> tuple[str | None, str | None]:
    """The first of :data:`UNCERTAINTY_METHODS` that ``check`` (a predictor's ``check_uncertainty``) accepts, or None
    and :data:`NO_UNCERTAINTY` when the model allows none."""
    for method in UNCERTAINTY_METHODS:
        try:
            check(method)
            return method, None
        except MedtlError:
            continue
    return None, NO_UNCERTAINTY


def prediction_layers(prediction: Prediction, run_name: str, uncertainty: str | None = None) -> list[OverlayLayer]:
    """The layers to show for ``prediction`` (on its source volume's grid), bottom first; ``uncertainty`` names the
    method that made its uncertainty map, if any."""
    layers: list[OverlayLayer] = []
    if isinstance(prediction, SegmentationPrediction):
        names = {value: name for value, name in sorted(prediction.labels.items()) if value != 0}
        mask = prediction.mask.array.astype(np.uint8, copy=False)
        layers.append(LabelLayer(f"{run_name}: {', '.join(names.values()) or 'mask'}", mask, names=names, opacity=PREDICTION_OPACITY, palette=PREDICTION_PALETTE))
    if isinstance(prediction, ClassificationPrediction):
        heatmap = HeatmapLayer(f"{run_name}: Grad-CAM ({prediction.predicted})", prediction.heatmap.array, vmin=GRADCAM_FLOOR, vmax=1.0)
        layers.append(heatmap)
    if isinstance(prediction, SegmentationPrediction) and prediction.uncertainty_map is not None:
        method = f" ({UNCERTAINTY_METHODS[uncertainty]})" if uncertainty in UNCERTAINTY_METHODS else ""
        values = prediction.uncertainty_map.array
        layers.append(
            HeatmapLayer(f"{run_name}: uncertainty{method}", values, vmin=UNCERTAINTY_FLOOR, vmax=1.0, colormap=UNCERTAINTY_COLORMAP, opacity=UNCERTAINTY_OPACITY)
        )
    return layers


def prediction_summary(prediction: Prediction) -> str:
    """What the prediction says, in one line (class probabilities, or label volumes)."""
    if isinstance(prediction, ClassificationPrediction):
        ranked = sorted(zip(prediction.classes, prediction.probabilities), key=lambda item: -item[1])
        text = f"Predicted {prediction.predicted}: " + ", ".join(f"{name} {p:.0%}" for name, p in ranked)
    else:
        text = "Segmented: " + (", ".join(f"{name} {mm3 / 1000:.1f} ml" for name, mm3 in prediction.volumes_mm3.items()) or "nothing")
    if prediction.uncertainty is not None:
        text += f" (uncertainty {prediction.uncertainty:.2f})"
    return text

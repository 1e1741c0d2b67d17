"""What a trained run says about one image: a :class:`SegmentationPrediction` or a :class:`ClassificationPrediction`.

Both are frozen and live on the input's own grid: every Volume they hold has exactly the shape,
spacing, origin and direction of ``source`` (the input image).
:class:`~medtl.inference.predictor.Predictor` makes them; :mod:`medtl.export.prediction_outputs`
writes them. Importing this module imports neither torch nor MONAI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import numpy as np

from medtl.dicom.volume import Volume

UNCERTAINTY_METHODS = ("tta", "mc")  # test-time flips, MC dropout: medtl.inference.uncertainty


@dataclass(frozen=True, eq=False)
class SegmentationPrediction:
    """A mask of label values on the input's grid, with each label's volume.

    ``mask`` is uint8 (uint16 beyond 256 labels); ``labels`` maps its values to names (0 is the
    background); ``volumes_mm3`` is the volume of each named label in mm³, background excluded.
    With uncertainty, ``uncertainty_map`` is the per-voxel normalised predictive entropy in [0, 1]
    (float32) and ``uncertainty`` its mean over the predicted foreground (None when nothing was found).
    """

    source: Volume
    source_path: Path | None
    labels: Mapping[int, str]
    mask: Volume
    volumes_mm3: Mapping[str, float]
    uncertainty: float | None = None
    uncertainty_map: Volume | None = None


@dataclass(frozen=True, eq=False)
class ClassificationPrediction:
    """Class probabilities for the case, with a Grad-CAM heatmap of the predicted class on the input's grid.

    ``probabilities`` is ``(classes,)``; for a 2D model that saw several slices it is the mean of
    ``slice_probabilities`` ``(slices, classes)``. ``heatmap`` is float32 in [0, 1]. With
    uncertainty, ``uncertainty`` is the normalised predictive entropy of the case probabilities and
    ``probability_std`` ``(classes,)`` their standard deviation over samples.
    """

    source: Volume
    source_path: Path | None
    classes: tuple[str, ...]
    probabilities: np.ndarray
    heatmap: Volume
    slice_probabilities: np.ndarray | None = None
    uncertainty: float | None = None
    probability_std: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        for name in ("probabilities", "slice_probabilities", "probability_std"):  # read-only copies
            if getattr(self, name) is not None:
                array = np.array(getattr(self, name))
                array.setflags(write=False)
                object.__setattr__(self, name, array)
        if self.probabilities.shape != (len(self.classes),):
            raise ValueError(f"{len(self.classes)} classes need probabilities of shape ({len(self.classes)},), not {self.probabilities.shape}")

    @property
    def predicted(self) -> str:
        """The name of the most probable class."""
        return self.classes[int(np.argmax(self.probabilities))]


Prediction: TypeAlias = SegmentationPrediction | ClassificationPrediction
"""One image's prediction, of either task: tell them apart with ``isinstance``."""

"""Maximum intensity projections for the fourth pane of the 2×2 layout.

:class:`ProjectionPlane` is a :class:`ViewPlane` whose cut is the maximum through the whole
volume along its normal, laid out on screen as the plane of its kind (a coronal MIP: left on the
right, inferior down). The fourth pane is a *coronal* MIP: the overview PET and CT-angiography
readers use, in which high-uptake or contrast-filled structures and the whole extent of a
segmentation show in one image (label layers are projected too), and clicking moves the
crosshair to that point in the three planes.

Projections are cached (:class:`ui.models.cut_cache.CutCache`) with the version of their array (the label
being edited changes), and the image's projection is made in a worker the first time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ui.models.view_plane import ViewPlane


@dataclass(frozen=True)
class ProjectionPlane(ViewPlane):
    """The maximum through the whole volume along ``normal`` (one 'slice')."""

    projection: ClassVar[bool] = True
    computed: ClassVar[bool] = True

    def extract(self, array: np.ndarray, index: int, nearest: bool = False) -> np.ndarray:
        """The projection of ``array`` ([z, y, x] or [z, y, x, c]) as ``[row, column(, c)]``; ``index`` is ignored."""
        projected = np.expand_dims(array.max(axis=2 - self.normal), 2 - self.normal)
        return super().extract(projected, 0)

"""`CutCache`: the cuts of planes that compute them (projections, resampled oblique planes), kept until they change.

A grid plane's cut is a numpy view and costs nothing; a computed cut costs tens of milliseconds,
and every view repaints whenever the crosshair moves. The cache keeps, per plane and array, the
last cut with the slice and array version it was made for (planes are compared by value: a layout
made again finds the projection it made before; resampled planes by identity).
"""

from __future__ import annotations

import numpy as np

from ui.models.view_plane import ViewPlane


class CutCache:
    def __init__(self) -> None:
        self._entries: dict[tuple[ViewPlane, int], tuple[np.ndarray, int, int, np.ndarray]] = {}  # (plane, array id) -> entry

    def cached(self, plane: ViewPlane, array: np.ndarray, index: int, version: int = 0) -> np.ndarray | None:
        entry = self._entries.get((plane, id(array)))
        if entry is None or entry[0] is not array or entry[1:3] != (index, version):
            return None
        return entry[3]

    def get(self, plane: ViewPlane, array: np.ndarray, index: int, version: int = 0, nearest: bool = False) -> np.ndarray:
        """The cut of ``array`` at slice ``index`` of ``plane`` (made now unless cached at this slice and version)."""
        cut = self.cached(plane, array, index, version)
        if cut is None:
            cut = np.ascontiguousarray(plane.extract(array, index, nearest))
            self._entries[(plane, id(array))] = (array, index, version, cut)
        return cut

    def keep_only(self, planes: list[ViewPlane], arrays: list[np.ndarray]) -> None:
        """Forget the cuts of planes and arrays no longer shown."""
        kept = {id(a) for a in arrays}
        self._entries = {key: entry for key, entry in self._entries.items() if key[0] in planes and key[1] in kept}

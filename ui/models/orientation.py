"""Orientation letters (L/R, A/P, S/I) for directions in the DICOM patient system (LPS)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (negative, positive) letter of each LPS axis: +x is patient Left, +y Posterior, +z Superior.
AXIS_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))
MINOR_COMPONENT = 0.25  # a component this large (|cos| of the angle) adds its letter: "LP" for an oblique edge


def direction_label(vector: np.ndarray) -> str:
    """Letters of the patient directions ``vector`` points to, strongest first ("L", "LA", "SPR", ...)."""
    vector = np.asarray(vector, dtype=float)
    norm = float(np.linalg.norm(vector))
    if norm == 0:
        raise ValueError("a direction must not be the zero vector")
    vector = vector / norm
    order = np.argsort(-np.abs(vector), kind="stable")
    letters = [AXIS_LETTERS[axis][int(vector[axis] > 0)] for axis in order if abs(vector[axis]) >= MINOR_COMPONENT]
    return "".join(letters)


@dataclass(frozen=True)
class EdgeLabels:
    """The patient direction at each edge of a displayed image."""

    left: str
    right: str
    top: str
    bottom: str


def edge_labels(screen_right: np.ndarray, screen_down: np.ndarray) -> EdgeLabels:
    """Labels for an image whose column axis points to ``screen_right`` and row axis to ``screen_down`` (LPS)."""
    right, down = np.asarray(screen_right, float), np.asarray(screen_down, float)
    return EdgeLabels(direction_label(-right), direction_label(right), direction_label(-down), direction_label(down))

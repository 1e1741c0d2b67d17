"""Sparse labels: masks where only some slices (or regions) were annotated.

medtl follows nnU-Net v2's convention, so the same files train in nnU-Net: a label named
``ignore`` (:data:`IGNORE_NAME`), which must be the highest label value, marks voxels nobody
annotated. Training and validation never count those voxels, neither as background nor as
anything else; a network trained on such a datalist has one output per label *except* ``ignore``.

Which slices a user annotated is recorded per axis of the stored ``[z, y, x]`` array
(:class:`Annotated`); :func:`with_ignore` turns a mask plus that record into the mask that a
datalist points at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from medtl.errors import MedtlError

IGNORE_NAME = "ignore"
AXES = ("axial", "coronal", "sagittal")
"""Names of the axes of a stored ``[z, y, x]`` array, in that order (for an axial acquisition)."""


def ignore_value(labels: Mapping[int, str]) -> int | None:
    """The value of the ``ignore`` label, or None; raises :class:`MedtlError` when it is not the highest value."""
    values = [value for value, name in labels.items() if name.strip().lower() == IGNORE_NAME]
    if not values:
        return None
    if len(values) > 1 or values[0] != max(labels):
        raise MedtlError(f'the label "{IGNORE_NAME}" must be the single highest label value (as in nnU-Net), not {sorted(values)} of {sorted(labels)}')
    return values[0]


def trained_labels(labels: Mapping[int, str]) -> dict[int, str]:
    """``labels`` without ``ignore``: the network's outputs."""
    ignore = ignore_value(labels)
    return {value: name for value, name in labels.items() if value != ignore}


@dataclass(frozen=True)
class Annotated:
    """The slices a user annotated (drew, erased or accepted), per array axis (0: z, 1: y, 2: x).

    ``complete`` means every voxel was annotated (an imported or fully drawn mask).
    """

    slices: tuple[frozenset[int], frozenset[int], frozenset[int]] = field(default_factory=lambda: (frozenset(), frozenset(), frozenset()))
    complete: bool = False

    @classmethod
    def everything(cls) -> Annotated:
        return cls(complete=True)

    def add(self, axis: int, indices: Iterable[int]) -> Annotated:
        """A copy with ``indices`` along ``axis`` marked annotated."""
        slices = list(self.slices)
        slices[axis] = slices[axis] | {int(i) for i in indices}
        return Annotated((slices[0], slices[1], slices[2]), self.complete)

    def count(self) -> int:
        """How many slices are annotated (all axes together)."""
        return sum(len(s) for s in self.slices)

    def voxels(self, shape: tuple[int, int, int]) -> np.ndarray:
        """A boolean ``shape`` array: True where a voxel lies in an annotated slice."""
        if self.complete:
            return np.ones(shape, dtype=bool)
        annotated = np.zeros(shape, dtype=bool)
        for axis, indices in enumerate(self.slices):
            inside = [i for i in indices if 0 <= i < shape[axis]]
            if inside:
                index: list[object] = [slice(None)] * 3
                index[axis] = inside
                annotated[tuple(index)] = True
        return annotated

    def to_dict(self) -> dict[str, object]:
        return {"complete": self.complete, **{name: sorted(s) for name, s in zip(AXES, self.slices)}}

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None) -> Annotated:
        """Inverse of :meth:`to_dict`; None (a label saved before slices were recorded) means complete."""
        if data is None:
            return cls.everything()
        slices = tuple(frozenset(int(i) for i in data.get(name, []) or []) for name in AXES)  # type: ignore[union-attr]
        return cls((slices[0], slices[1], slices[2]), bool(data.get("complete", False)))


def with_ignore(mask: np.ndarray, annotated: Annotated, ignore: int) -> np.ndarray:
    """``mask`` with every voxel outside the annotated slices set to ``ignore``."""
    out = np.array(mask, dtype=np.uint8, copy=True)
    out[~annotated.voxels(out.shape)] = ignore
    return out

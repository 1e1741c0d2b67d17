"""`LabelEditor`: brush and eraser painting on an editable :class:`LabelLayer`, with per-stroke undo and redo.

A brush dab covers a disc of screen pixels of the view's plane; the plane maps them to the voxels
it shows there (:meth:`ViewPlane.voxel_indices`: exact for grid planes, the nearest voxel for the
resampled planes of oblique series), so painting in any view writes the voxels under the pointer.
A stroke keeps the voxels it changed (flat indices, values before and after), the voxels the user
drew on, and the record of annotated slices before and after; the undo history is bounded in bytes:
the oldest strokes are forgotten first.

Nothing the user drew is replaced without asking: :meth:`LabelEditor.accept` merges a prediction
into the label as one undoable step, filling only the voxels the user has not drawn on (brushed or
erased, or labelled in the mask the editor started from).

The editor records which slices the user annotated (:class:`~medtl.data.sparse.Annotated`): a brush
or eraser stroke on a grid plane marks its slice along that plane's array axis (axial: axis 0 of a
``[z, y, x]`` array acquired axially); accepting a prediction marks everything (the user took the
prediction as the label everywhere). A stroke on a resampled plane of an oblique series marks no
slice: it cuts through many array slices without annotating any of them whole, so its voxels count
for training only where a grid view annotated their slice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from medtl.data.sparse import Annotated
from ui.models.overlays import LabelLayer
from ui.models.view_plane import ViewPlane

UNDO_BYTES = 64 * 2**20  # undo history kept per label (a stroke over a whole 512 x 512 slice takes ~2.6 MB)
BRUSH_RANGE_MM = (0.5, 100.0)


class Tool(Enum):
    """What a left drag in a view does."""

    NAVIGATE = "navigate"  # move the crosshair
    BRUSH = "brush"
    ERASER = "eraser"
    BOX = "box"  # AI box: drag a box, click to include, Shift+click to exclude (ui.qt.prompt_tool)


_NO_VOXELS = np.zeros(0, dtype=np.intp)


@dataclass(frozen=True)
class Stroke:
    """The voxels one stroke changed (flat indices into the ``[z, y, x]`` mask), their values before and after, the
    voxels the user drew on (``drawn``: every voxel under the brush or eraser; none for an accepted prediction), and
    the annotated slices before and after."""

    voxels: np.ndarray
    before: np.ndarray
    after: np.ndarray
    drawn: np.ndarray = field(default_factory=lambda: _NO_VOXELS)
    annotated: tuple[Annotated, Annotated] = field(default_factory=lambda: (Annotated(), Annotated()))

    @property
    def nbytes(self) -> int:
        return self.voxels.nbytes + self.before.nbytes + self.after.nbytes + self.drawn.nbytes


@dataclass
class LabelEditor:
    """Edits ``layer.mask`` in place; ``names`` maps label values to names (value 0 is the background)."""

    layer: LabelLayer
    names: dict[int, str] = field(default_factory=lambda: {1: "label 1"})
    value: int = 1
    radius_mm: float = 4.0
    dirty: bool = False
    edits: int = 0  # counts strokes, undos and redos: a save records the count it saw
    revision: int = 0  # counts every change of the mask, dabs included (views cache their cuts by it)
    undo_bytes: int = UNDO_BYTES
    annotated: Annotated = field(default_factory=Annotated)  # the slices the user annotated
    _drawn: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint16))  # per voxel: strokes (kept or redone) that drew on it
    _undo: list[Stroke] = field(default_factory=list)
    _redo: list[Stroke] = field(default_factory=list)
    _open: tuple[ViewPlane, int] | None = None  # the plane and slice of the stroke being painted
    _dabs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (voxels, values before) of each dab
    _last: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not self.layer.mask.flags.c_contiguous:
            raise ValueError("an edited label mask must be C-contiguous")
        self._drawn = (self.layer.mask != 0).astype(np.uint16)  # what the label holds already is the user's

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def set_radius(self, radius_mm: float) -> None:
        self.radius_mm = float(min(max(radius_mm, BRUSH_RANGE_MM[0]), BRUSH_RANGE_MM[1]))

    def begin(self, plane: ViewPlane, index: int) -> None:
        """Start a stroke on slice ``index`` of ``plane``."""
        self.end()
        self._open, self._dabs, self._last = (plane, index), [], None

    def paint(self, row: float, column: float, spacing_xyz: tuple[float, float, float], erase: bool = False) -> None:
        """Paint (or erase) a disc of :attr:`radius_mm` at (``row``, ``column``) of the open stroke's slice, joined to the
        previous point so a fast drag leaves no gaps."""
        if self._open is None:
            return
        plane, index = self._open
        mask = self.layer.mask
        flat, size = mask.reshape(-1), plane.size(mask.shape)[:2]
        width, height = plane.pixel_spacing(spacing_xyz)
        start = self._last or (row, column)
        distance_mm = np.hypot((row - start[0]) * height, (column - start[1]) * width)
        steps = max(1, int(np.ceil(distance_mm / max(self.radius_mm / 2, 1e-3))))
        for t in np.linspace(0.0, 1.0, steps + 1)[1 if self._last else 0 :]:
            rows, columns = disc(start[0] + t * (row - start[0]), start[1] + t * (column - start[1]), self.radius_mm, (height, width), size)
            voxels = plane.voxel_indices(rows, columns, index, mask.shape)
            self._dabs.append((voxels, flat[voxels]))
            flat[voxels] = 0 if erase else self.value
        self._last = (row, column)
        self.revision += 1
        if not erase:
            self.layer.colors.setdefault(self.value, self.layer.colour_of(self.value))

    def end(self) -> Stroke | None:
        """Close the open stroke; it becomes one undo step if it changed the label, marked a slice, or drew on a voxel
        not drawn on before (an eraser stroke over background says "nothing here": that is annotating too)."""
        if self._open is None:
            return None
        (plane, index), dabs, self._open, self._dabs = self._open, self._dabs, None, []
        if not dabs:
            return None
        voxels, first = np.unique(np.concatenate([v for v, _ in dabs]), return_index=True)
        before = np.concatenate([b for _, b in dabs])[first]  # each voxel's value before its first dab
        after = self.layer.mask.reshape(-1)[voxels]
        changed = before != after
        axis = annotated_axis(plane)
        annotated = self.annotated if axis is None else self.annotated.add(axis, [index])
        if not changed.any() and annotated == self.annotated and self._drawn.reshape(-1)[voxels].all():
            return None
        return self._record(Stroke(voxels[changed], before[changed], after[changed], voxels, (self.annotated, annotated)))

    def accept(self, values: np.ndarray, names: dict[int, str]) -> Stroke | None:
        """Merge a prediction ``values`` (``[z, y, x]`` on the label's grid) into the label as one undo step: it fills
        every voxel the user has not drawn on; the voxels the user drew keep their value. ``names`` name its values
        (they replace the placeholder names "label N"). The whole label counts as annotated afterwards."""
        self.end()
        if values.shape != self.layer.mask.shape:
            raise ValueError(f"the prediction has shape {values.shape}, the label {self.layer.mask.shape}")
        for value, name in names.items():
            if value != 0 and self.names.get(value, f"label {value}") == f"label {value}":
                self.names[value] = name
        flat, new = self.layer.mask.reshape(-1), np.asarray(values, dtype=np.uint8).reshape(-1)
        voxels = np.flatnonzero((self._drawn.reshape(-1) == 0) & (flat != new))
        for value in np.unique(new[voxels]):
            if value:
                self.layer.colors.setdefault(int(value), self.layer.colour_of(int(value)))
        if not len(voxels) and self.annotated.complete:
            return None
        stroke = Stroke(voxels, flat[voxels], new[voxels], _NO_VOXELS, (self.annotated, Annotated.everything()))
        flat[voxels] = stroke.after
        self.revision += 1
        return self._record(stroke)

    @property
    def last_stroke(self) -> Stroke | None:
        """The newest undo step."""
        return self._undo[-1] if self._undo else None

    def fill(
        self, voxels: np.ndarray, axis: int, indices: list[int], restore: tuple[np.ndarray, np.ndarray] | None = None, extending: Stroke | None = None
    ) -> Stroke | None:
        """Set ``voxels`` (flat indices) to :attr:`value` as one undo step that marks ``indices`` of array ``axis`` annotated
        (an AI prompt's mask on its slice). ``restore`` (sorted voxels, values) first puts back what an earlier prompt
        replaced (a refined prompt replaces its result); with ``extending`` (the newest undo step), that step is kept and
        this becomes part of it (the next slice of a propagation)."""
        self.end()
        flat = self.layer.mask.reshape(-1)
        kept, kept_after, drawn, annotated = _NO_VOXELS, flat[:0], np.unique(voxels), self.annotated
        folded = extending is not None and self.last_stroke is extending
        if folded:
            assert extending is not None
            self._undo.pop()
            flat[extending.voxels] = extending.before
            self._drawn.reshape(-1)[extending.drawn] -= 1
            self.annotated = extending.annotated[0]
            kept, kept_after, drawn, annotated = extending.voxels, extending.after, np.union1d(extending.drawn, drawn), extending.annotated[1]
        restored, restored_values = restore if restore is not None else (_NO_VOXELS, flat[:0])
        region = np.union1d(np.union1d(kept, restored), voxels)
        before = flat[region]
        after = before.copy()
        after[np.searchsorted(region, restored)] = restored_values
        after[np.searchsorted(region, kept)] = kept_after
        after[np.searchsorted(region, voxels)] = self.value
        changed = before != after
        annotated = annotated.add(axis, indices)
        if not folded and not changed.any() and annotated == self.annotated:
            return None
        flat[region[changed]] = after[changed]
        self.layer.colors.setdefault(self.value, self.layer.colour_of(self.value))
        self.revision += 1
        return self._record(Stroke(region[changed], before[changed], after[changed], drawn, (self.annotated, annotated)))

    def _record(self, stroke: Stroke) -> Stroke:
        """``stroke`` (already applied to the mask) becomes the newest undo step."""
        self._drawn.reshape(-1)[stroke.drawn] += 1
        self.annotated = stroke.annotated[1]
        self._undo.append(stroke)
        self._redo.clear()
        while sum(s.nbytes for s in self._undo) > self.undo_bytes and len(self._undo) > 1:
            self._undo.pop(0)
        self.dirty, self.edits = True, self.edits + 1
        return stroke

    def undo(self) -> bool:
        return self._move(self._undo, self._redo, undo=True)

    def redo(self) -> bool:
        return self._move(self._redo, self._undo, undo=False)

    def _move(self, source: list[Stroke], target: list[Stroke], undo: bool) -> bool:
        self.end()
        if not source:
            return False
        stroke = source.pop()
        self.layer.mask.reshape(-1)[stroke.voxels] = stroke.before if undo else stroke.after
        drawn = self._drawn.reshape(-1)
        if undo:
            drawn[stroke.drawn] -= 1
        else:
            drawn[stroke.drawn] += 1
        self.annotated = stroke.annotated[0 if undo else 1]
        target.append(stroke)
        self.dirty, self.edits, self.revision = True, self.edits + 1, self.revision + 1
        return True

    def saved(self, edits: int) -> None:
        """The mask as it was after ``edits`` edits has been stored: clean unless it was edited since."""
        self.dirty = self.edits != edits


def annotated_axis(plane: ViewPlane) -> int | None:
    """The ``[z, y, x]`` array axis whose slices a stroke on ``plane`` annotates; None for a resampled (oblique) plane."""
    return None if plane.computed else 2 - plane.normal


def disc(row: float, column: float, radius_mm: float, pixel_mm: tuple[float, float], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the pixels of an image of ``shape`` whose centres lie within ``radius_mm`` of (``row``, ``column``);
    ``pixel_mm`` is (row height, column width). Always at least the pixel under the point, if inside."""
    height, width = pixel_mm
    reach_r, reach_c = int(np.ceil(radius_mm / height)), int(np.ceil(radius_mm / width))
    centre_r, centre_c = round(row), round(column)
    r = np.arange(max(centre_r - reach_r, 0), min(centre_r + reach_r + 1, shape[0]))
    c = np.arange(max(centre_c - reach_c, 0), min(centre_c + reach_c + 1, shape[1]))
    if not len(r) or not len(c):
        return r, c
    inside = ((r[:, None] - row) * height) ** 2 + ((c[None, :] - column) * width) ** 2 <= radius_mm**2
    if 0 <= centre_r < shape[0] and 0 <= centre_c < shape[1]:
        inside[centre_r - r[0], centre_c - c[0]] = True
    rows, columns = np.nonzero(inside)
    return rows + r[0], columns + c[0]

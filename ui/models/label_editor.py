"""`LabelEditor`: brush, eraser, lasso, threshold brush, region growing and slice interpolation on an editable
:class:`LabelLayer` (the tools of :mod:`medtl.annotate`), with an undo and redo history of up to 1000 steps that keeps
each step's diff (a bounding box with its values before and after), bounded in bytes.

A brush dab covers a disc of screen pixels of the view's plane; the plane maps them to the voxels
it shows there (:meth:`ViewPlane.voxel_indices`: exact for grid planes, the nearest voxel for the
resampled planes of oblique series), so painting in any view writes the voxels under the pointer.
A stroke keeps the voxels it changed (flat indices, values before and after), the voxels the user
drew on, and the record of annotated slices before and after; the oldest strokes are forgotten first.
Locked labels are never changed by any tool; hidden ones (not shown) are not painted over.

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

from medtl.annotate import Change, History, Protection, Region, interpolate, write
from medtl.annotate.change import EMPTY_REGION, label_counts
from medtl.annotate.footprints import ball, band, disc, grown, polygon
from medtl.data.sparse import Annotated
from ui.models.overlays import LabelLayer
from ui.models.view_plane import ViewPlane

UNDO_BYTES = 256 * 2**20  # undo history kept per label: 100 steps fit while they average under 2.6 MB (a whole 512 x 512 slice: 0.8 MB)
UNDO_STEPS = 1000
BRUSH_RANGE_MM = (0.5, 100.0)

__all__ = ["BRUSH_RANGE_MM", "LabelEditor", "LabelTable", "Stroke", "Tool", "annotated_axis", "disc"]


class Tool(Enum):
    """What a left drag in a view does."""

    NAVIGATE = "navigate"  # move the crosshair
    BRUSH = "brush"
    ERASER = "eraser"
    LASSO = "lasso"  # drag around a region: it fills when released
    THRESHOLD = "threshold"  # a brush that paints only pixels within the intensity band
    GROW = "grow"  # click: the connected region of similar intensity
    BOX = "box"  # AI box: drag a box, click to include, Shift+click to exclude (ui.qt.prompt_tool)


PAINTING_TOOLS = (Tool.BRUSH, Tool.ERASER, Tool.THRESHOLD)  # a drag paints dabs along its path

_NO_VOXELS = np.zeros(0, dtype=np.intp)


@dataclass(frozen=True)
class LabelTable:
    """The label definitions at one moment: names, colours, hidden and locked values (a delete restores them)."""

    names: tuple[tuple[int, str], ...]
    colours: tuple[tuple[int, tuple[int, int, int]], ...]
    hidden: frozenset[int]
    locked: frozenset[int]


@dataclass(frozen=True)
class Stroke:
    """One undo step: the voxels it changed (``change``: a box with its values before and after), the voxels the user drew
    on (``drawn``: every voxel under the brush or eraser; none for an accepted prediction), the annotated slices before
    and after, for a deleted label the label table before and after, and the tool that made it (for an audit log)."""

    shape: tuple[int, ...]
    change: Change | None
    drawn: Region = EMPTY_REGION
    annotated: tuple[Annotated, Annotated] = field(default_factory=lambda: (Annotated(), Annotated()))
    table: tuple[LabelTable, LabelTable] | None = None
    tool: str = ""  # what made it: brush, eraser, threshold (with " 3D" for a ball), lasso, grow, interpolate, delete, accept, prompt

    @property
    def voxels(self) -> np.ndarray:
        """Flat indices (sorted) of the voxels it changed."""
        return self.change.voxels(self.shape) if self.change is not None else _NO_VOXELS

    @property
    def before(self) -> np.ndarray:
        return self.change.values()[0] if self.change is not None else np.zeros(0, np.uint8)

    @property
    def after(self) -> np.ndarray:
        return self.change.values()[1] if self.change is not None else np.zeros(0, np.uint8)

    @property
    def nbytes(self) -> int:
        return (self.change.nbytes if self.change is not None else 0) + self.drawn.nbytes


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
    locked: set[int] = field(default_factory=set)  # label values no tool changes
    in_3d: bool = False  # the brush and eraser paint balls, region growing grows in 3D
    band: tuple[float, float] = (-100.0, 300.0)  # the threshold tool's intensity range (HU for CT)
    tolerance: float = 60.0  # region growing: how far from the clicked value a voxel may lie
    grow_radius_mm: float = 40.0  # region growing reaches at most this far from the click along each axis
    counts: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64))  # voxels per label value
    _drawn: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint16))  # per voxel: strokes (kept or redone) that drew on it
    _history: History[Stroke] = field(default_factory=History)
    _open: tuple[ViewPlane, int] | None = None  # the plane and slice of the stroke being painted
    _dabs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (voxels, values before) of each dab
    _last: tuple[float, float] | None = None
    _tool: str = ""  # the open stroke's tool

    def __post_init__(self) -> None:
        if not self.layer.mask.flags.c_contiguous:
            raise ValueError("an edited label mask must be C-contiguous")
        self._drawn = (self.layer.mask != 0).astype(np.uint16)  # what the label holds already is the user's
        self.counts = label_counts(self.layer.mask)
        self._history = History(UNDO_STEPS, self.undo_bytes)

    @property
    def hidden(self) -> set[int]:
        """Label values not shown (the layer's set): no tool paints over them."""
        return self.layer.hidden

    @property
    def protection(self) -> Protection:
        return Protection(frozenset(self.locked), frozenset(self.hidden))

    @property
    def can_undo(self) -> bool:
        return self._history.can_undo

    @property
    def can_redo(self) -> bool:
        return self._history.can_redo

    def set_radius(self, radius_mm: float) -> None:
        self.radius_mm = float(min(max(radius_mm, BRUSH_RANGE_MM[0]), BRUSH_RANGE_MM[1]))

    # --- strokes: brush, eraser, threshold brush ----------------------------------------------

    def begin(self, plane: ViewPlane, index: int) -> None:
        """Start a stroke on slice ``index`` of ``plane``."""
        self.end()
        self._open, self._dabs, self._last = (plane, index), [], None

    def paint(self, row: float, column: float, spacing_xyz: tuple[float, float, float], erase: bool = False, image: np.ndarray | None = None) -> None:
        """Paint (or erase) a disc of :attr:`radius_mm` (a ball with :attr:`in_3d`) at (``row``, ``column``) of the open
        stroke's slice, joined to the previous point so a fast drag leaves no gaps. With ``image`` (the volume's
        ``[z, y, x]`` values) only voxels whose value lies within :attr:`band` are painted (the threshold tool)."""
        if self._open is None:
            return
        plane, index = self._open
        mask = self.layer.mask
        flat, value = mask.reshape(-1), 0 if erase else self.value
        width, height = plane.pixel_spacing(spacing_xyz)
        start = self._last or (row, column)
        distance_mm = np.hypot((row - start[0]) * height, (column - start[1]) * width)
        steps = max(1, int(np.ceil(distance_mm / max(self.radius_mm / 2, 1e-3))))
        for t in np.linspace(0.0, 1.0, steps + 1)[1 if self._last else 0 :]:
            voxels = self._dab(plane, index, start[0] + t * (row - start[0]), start[1] + t * (column - start[1]), spacing_xyz)
            keep = self.protection.writable(flat[voxels], value)
            if image is not None:
                keep &= band(image.reshape(-1)[voxels], *self.band)
            voxels = voxels[keep]
            self._dabs.append((voxels, flat[voxels]))
            flat[voxels] = value
        self._last = (row, column)
        self._tool = ("eraser" if erase else "threshold" if image is not None else "brush") + (" 3D" if self.in_3d else "")
        self.revision += 1
        if not erase:
            self.layer.colors.setdefault(self.value, self.layer.colour_of(self.value))

    def _dab(self, plane: ViewPlane, index: int, row: float, column: float, spacing_xyz: tuple[float, float, float]) -> np.ndarray:
        """Flat indices of the voxels under one dab: a disc on the slice, or a ball around its voxel."""
        shape = self.layer.mask.shape
        if not self.in_3d:
            width, height = plane.pixel_spacing(spacing_xyz)
            rows, columns = disc(row, column, self.radius_mm, (height, width), plane.size(shape))
            return plane.voxel_indices(rows, columns, index, shape)
        x, y, z = plane.to_index(row, column, index, shape)
        box, inside = ball((z, y, x), self.radius_mm, (spacing_xyz[2], spacing_xyz[1], spacing_xyz[0]), shape)
        return np.ravel_multi_index(tuple(c + b.start for c, b in zip(np.nonzero(inside), box)), shape)

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
        annotated = self._annotating(plane, [index])
        if not changed.any() and annotated == self.annotated and self._drawn.reshape(-1)[voxels].all():
            return None
        change = Change.applied(self.layer.mask, voxels[changed], before[changed])
        return self._record(Stroke(self.layer.mask.shape, change, Region.of_voxels(self.layer.mask.shape, voxels), (self.annotated, annotated), tool=self._tool))

    def _annotating(self, plane: ViewPlane, indices: list[int]) -> Annotated:
        """The annotated slices once ``indices`` of ``plane`` are annotated too."""
        axis = annotated_axis(plane)
        return self.annotated if axis is None else self.annotated.add(axis, indices)

    # --- one-click tools: lasso, region growing, interpolation ------------------------------

    def lasso(self, plane: ViewPlane, index: int, points: list[tuple[float, float]], erase: bool = False) -> Stroke | None:
        """Fill (or erase) the region inside the closed path through ``points`` ((row, column) of slice ``index``)."""
        self.end()
        if len(points) < 3:
            return None
        path = np.asarray(points, float)
        rows, columns = polygon(path[:, 0], path[:, 1], plane.size(self.layer.mask.shape))
        return self._set(plane.voxel_indices(rows, columns, index, self.layer.mask.shape), 0 if erase else self.value, plane, [index], "lasso")

    def threshold_box(self, plane: ViewPlane, index: int, corners: tuple[float, float, float, float], image: np.ndarray) -> Stroke | None:
        """Paint the pixels of slice ``index`` inside the box with ``corners`` (row0, column0, row1, column1) whose
        ``image`` (``[z, y, x]``) values lie within :attr:`band`."""
        self.end()
        shape = self.layer.mask.shape
        n_rows, n_columns, _ = plane.size(shape)
        r0, r1 = sorted((min(max(round(corners[0]), 0), n_rows - 1), min(max(round(corners[2]), 0), n_rows - 1)))
        c0, c1 = sorted((min(max(round(corners[1]), 0), n_columns - 1), min(max(round(corners[3]), 0), n_columns - 1)))
        rows, columns = np.mgrid[r0 : r1 + 1, c0 : c1 + 1]
        voxels = plane.voxel_indices(rows.ravel(), columns.ravel(), index, shape)
        return self._set(voxels[band(image.reshape(-1)[voxels], *self.band)], self.value, plane, [index], "threshold box")

    def grow(
        self, plane: ViewPlane, index: int, row: float, column: float, image: np.ndarray, cut: np.ndarray, spacing_xyz: tuple[float, float, float]
    ) -> Stroke | None:
        """Paint the region connected to the clicked pixel whose values lie within :attr:`tolerance` of its value, up to
        :attr:`grow_radius_mm` away: on the slice (``cut``: its values as shown, ``[rows, columns]``), or with :attr:`in_3d`
        through the volume (``image``: ``[z, y, x]``)."""
        self.end()
        shape = self.layer.mask.shape
        rows, columns, _ = plane.size(shape)
        seed = (round(row), round(column))
        if not (0 <= seed[0] < rows and 0 <= seed[1] < columns):
            return None
        if self.in_3d:
            x, y, z = np.rint(plane.to_index(row, column, index, shape)).astype(int)
            spacing = (spacing_xyz[2], spacing_xyz[1], spacing_xyz[0])
            box, inside = grown(image, (z, y, x), self.tolerance, tuple(int(np.ceil(self.grow_radius_mm / s)) for s in spacing))
            return self._set_region(Region(box, inside), self.value, plane, [], "grow 3D")  # type: ignore[arg-type]
        width, height = plane.pixel_spacing(spacing_xyz)
        reach = (int(np.ceil(self.grow_radius_mm / height)), int(np.ceil(self.grow_radius_mm / width)))
        box, inside = grown(cut, seed, self.tolerance, reach)
        found_rows, found_columns = np.nonzero(inside)
        return self._set(plane.voxel_indices(found_rows + box[0].start, found_columns + box[1].start, index, shape), self.value, plane, [index], "grow")

    def interpolate(self, axis: int, spacing_xyz: tuple[float, float, float]) -> Stroke | None:
        """Fill the slices along array ``axis`` between annotated slices of each shown, unlocked label, by signed-distance
        interpolation of the two nearest ones (only background is filled); the filled slices count as annotated."""
        self.end()
        values = [v for v in self.names if v not in self.locked and v not in self.hidden and self.counts[v]]
        keys = None if self.annotated.complete or len(self.annotated.slices[axis]) < 2 else self.annotated.slices[axis]
        spacing = (spacing_xyz[2], spacing_xyz[1], spacing_xyz[0])
        change = interpolate(self.layer.mask, axis, values, spacing, self.protection, keys)
        if change is None:
            return None
        changed = change.before != change.after
        filled = np.flatnonzero(changed.any(axis=tuple(a for a in range(3) if a != axis))) + change.box[axis].start
        self.revision += 1
        return self._record(Stroke(self.layer.mask.shape, change, Region(change.box, changed), (self.annotated, self.annotated.add(axis, filled.tolist())), tool="interpolate"))

    def _set(self, voxels: np.ndarray, value: int, plane: ViewPlane, indices: list[int], tool: str) -> Stroke | None:
        """Set the flat ``voxels`` to ``value`` (see :meth:`_set_region`)."""
        return self._set_region(Region.of_voxels(self.layer.mask.shape, voxels), value, plane, indices, tool)

    def _set_region(self, region: Region, value: int, plane: ViewPlane, indices: list[int], tool: str) -> Stroke | None:
        """Set the voxels of ``region`` that :attr:`protection` allows to ``value``, as one undo step (made by ``tool``)
        annotating ``indices`` of ``plane``."""
        mask = self.layer.mask
        where = region.mask & self.protection.writable(mask[region.box], value)
        annotated = self._annotating(plane, indices)
        change = write(mask, region.box, where, value)
        if change is None and annotated == self.annotated and self._drawn[region.box][where].all():
            return None
        if value:
            self.layer.colors.setdefault(value, self.layer.colour_of(value))
        self.revision += 1
        return self._record(Stroke(mask.shape, change, Region(region.box, where), (self.annotated, annotated), tool=tool))

    # --- label definitions ---------------------------------------------------------------------

    def table(self) -> LabelTable:
        """The label definitions now."""
        return LabelTable(tuple(self.names.items()), tuple(self.layer.colors.items()), frozenset(self.hidden), frozenset(self.locked))

    def _set_table(self, table: LabelTable) -> None:
        """Make ``table`` the label definitions (in place: the layer shares the dicts and the set)."""
        self.names.clear()
        self.names.update(table.names)
        self.layer.colors.clear()
        self.layer.colors.update(table.colours)
        self.hidden.clear()
        self.hidden.update(table.hidden)
        self.locked.clear()
        self.locked.update(table.locked)
        if self.value not in self.names and self.names:
            self.value = min(self.names)

    def delete_label(self, value: int) -> Stroke | None:
        """Remove label ``value``: its voxels become background and its definition goes, as one undo step (undo brings
        both back). A locked label is not deleted."""
        self.end()
        if value not in self.names or value in self.locked:
            return None
        before_table = self.table()
        flat = self.layer.mask.reshape(-1)
        voxels = np.flatnonzero(flat == value) if self.counts[value] else _NO_VOXELS
        flat[voxels] = 0
        change = Change.applied(self.layer.mask, voxels, np.full(len(voxels), value, np.uint8))
        del self.names[value]
        self.layer.colors.pop(value, None)
        self.hidden.discard(value)
        if self.value == value and self.names:
            self.value = min(self.names)
        self.revision += 1
        return self._record(Stroke(self.layer.mask.shape, change, EMPTY_REGION, (self.annotated, self.annotated), (before_table, self.table()), "delete"))

    # --- predictions and prompts ---------------------------------------------------------------

    def accept(self, values: np.ndarray, names: dict[int, str]) -> Stroke | None:
        """Merge a prediction ``values`` (``[z, y, x]`` on the label's grid) into the label as one undo step: it fills
        every voxel the user has not drawn on; the voxels the user drew keep their value, so do the slices the user
        annotated (background included: an annotated slice is the user's answer for all of it), and locked labels are
        kept. ``names`` name its values (they replace the placeholder names "label N"). The whole label counts as
        annotated afterwards, and the slices the user annotated stay recorded."""
        self.end()
        if values.shape != self.layer.mask.shape:
            raise ValueError(f"the prediction has shape {values.shape}, the label {self.layer.mask.shape}")
        for value, name in names.items():
            if value != 0 and self.names.get(value, f"label {value}") == f"label {value}":
                self.names[value] = name
        flat, new = self.layer.mask.reshape(-1), np.asarray(values, dtype=np.uint8).reshape(-1)
        voxels = np.flatnonzero((self._drawn.reshape(-1) == 0) & (flat != new) & ~self._annotated_voxels().reshape(-1))
        if self.locked:
            locked = np.zeros(256, bool)
            locked[sorted(self.locked)] = True
            voxels = voxels[~locked[flat[voxels]] & ~locked[new[voxels]]]
        for found in np.flatnonzero(np.bincount(new[voxels], minlength=256)[1:]) + 1:
            self.layer.colors.setdefault(int(found), self.layer.colour_of(int(found)))
        if not len(voxels) and self.annotated.complete:
            return None
        before = flat[voxels]
        flat[voxels] = new[voxels]
        self.revision += 1
        return self._record(Stroke(self.layer.mask.shape, Change.applied(self.layer.mask, voxels, before), EMPTY_REGION, (self.annotated, Annotated(self.annotated.slices, complete=True)), tool="accept"))

    def _annotated_voxels(self) -> np.ndarray:
        """True on the slices the user annotated (kept through an accepted prediction, which makes the rest of the
        label count as annotated too, so a newer prediction replaces an older one everywhere else)."""
        annotated = np.zeros(self.layer.mask.shape, bool)
        for axis, indices in enumerate(self.annotated.slices):
            if indices:
                index: list[slice | list[int]] = [slice(None)] * 3
                index[axis] = sorted(indices)
                annotated[tuple(index)] = True
        return annotated

    @property
    def painting(self) -> bool:
        """A stroke is being painted (begun, not yet ended)."""
        return self._open is not None

    @property
    def last_stroke(self) -> Stroke | None:
        """The newest undo step."""
        return self._history.newest

    def fill(
        self, voxels: np.ndarray, axis: int, indices: list[int], restore: tuple[np.ndarray, np.ndarray] | None = None, extending: Stroke | None = None
    ) -> Stroke | None:
        """Set ``voxels`` (flat indices) to :attr:`value` as one undo step that marks ``indices`` of array ``axis`` annotated
        (an AI prompt's mask on its slice); voxels of locked labels are kept. ``restore`` (sorted voxels, values) first
        puts back what an earlier prompt replaced (a refined prompt replaces its result); with ``extending`` (the newest
        undo step), that step is kept and this becomes part of it (the next slice of a propagation)."""
        self.end()
        mask = self.layer.mask
        flat = mask.reshape(-1)
        kept, kept_after, drawn, annotated = _NO_VOXELS, flat[:0], _unique(voxels), self.annotated
        folded = extending is not None and self.last_stroke is extending
        if folded:
            assert extending is not None
            self._history.pop()
            self._undo_effects(extending)
            kept, kept_after, drawn, annotated = extending.voxels, extending.after, np.union1d(extending.drawn.voxels(mask.shape), drawn), extending.annotated[1]
        restored, restored_values = restore if restore is not None else (_NO_VOXELS, flat[:0])
        voxels = _unique(voxels)
        voxels = voxels[self.protection.writable(flat[voxels], self.value, over_hidden=True)]
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
        change = Change.applied(mask, region[changed], before[changed])
        return self._record(Stroke(mask.shape, change, Region.of_voxels(mask.shape, drawn), (self.annotated, annotated), tool="prompt"))

    # --- history -------------------------------------------------------------------------------

    def _record(self, stroke: Stroke) -> Stroke:
        """``stroke`` (already applied to the mask) becomes the newest undo step."""
        stroke.drawn.count_into(self._drawn, 1)
        if stroke.change is not None:
            self.counts += stroke.change.counts()
        self.annotated = stroke.annotated[1]
        self._history.push(stroke)
        self.dirty, self.edits = True, self.edits + 1
        return stroke

    def _undo_effects(self, stroke: Stroke) -> None:
        """Take back what ``stroke`` did to the mask, the drawn voxels, the counts, the annotated slices and the table."""
        if stroke.change is not None:
            stroke.change.revert(self.layer.mask)
            self.counts -= stroke.change.counts()
        stroke.drawn.count_into(self._drawn, -1)
        self.annotated = stroke.annotated[0]
        if stroke.table is not None:
            self._set_table(stroke.table[0])

    def undo(self) -> bool:
        self.end()
        stroke = self._history.undo()
        if stroke is None:
            return False
        self._undo_effects(stroke)
        self._moved()
        return True

    def redo(self) -> bool:
        self.end()
        stroke = self._history.redo()
        if stroke is None:
            return False
        if stroke.change is not None:
            stroke.change.apply(self.layer.mask)
            self.counts += stroke.change.counts()
        stroke.drawn.count_into(self._drawn, 1)
        self.annotated = stroke.annotated[1]
        if stroke.table is not None:
            self._set_table(stroke.table[1])
        self._moved()
        return True

    def _moved(self) -> None:
        self.dirty, self.edits, self.revision = True, self.edits + 1, self.revision + 1

    def saved(self, edits: int) -> None:
        """The mask as it was after ``edits`` edits has been stored: clean unless it was edited since."""
        self.dirty = self.edits != edits


def annotated_axis(plane: ViewPlane) -> int | None:
    """The ``[z, y, x]`` array axis whose slices a stroke on ``plane`` annotates; None for a resampled (oblique) plane."""
    return None if plane.computed else 2 - plane.normal


def _unique(voxels: np.ndarray) -> np.ndarray:
    """The sorted distinct values of ``voxels`` (by sorting: numpy's hashing ``unique`` is ~20x slower on flat indices)."""
    ordered = np.sort(voxels)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if len(ordered) else ordered

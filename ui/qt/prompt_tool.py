"""`PromptTool`: the AI box tool (LiteMedSAM) in the viewer: box and click prompts, embeddings ahead, propagation.

While the box tool is active, the shown slice's image embedding is computed in a worker as soon as
the slice is shown, then its neighbours' (±1, then ±2), one at a time, into medtl's :class:`EmbeddingCache`
(per series, plane and slice): a prompt on a slice already seen runs only the decoder, on the GUI
thread (tens of milliseconds). A prompt drawn before its slice is ready waits for it ("preparing the
AI model for this slice…"). The model itself loads once, lazily, in a worker; a missing or altered
model is said in the status bar and the Problems panel, and no prompt touches the label.

A box's mask goes into the active label value as one undoable step (:meth:`LabelEditor.fill`); each
click on the same slice refines that prompt and replaces its result, again as one step. Propagate
runs :func:`medtl.prompt.propagation.propagate` from the shown slice's mask of the active value in a
worker; each slice's mask is shown as it arrives, the whole propagation is one undo step, and
stopping it keeps what arrived.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from medtl.progress import CancelToken, ProgressCallback
from medtl.prompt.embedding import EmbeddingCache, SliceKey
from medtl.prompt.preprocessing import IntensityWindow, window_for
from medtl.prompt.request import Point, PromptRequest
from medtl.prompt.slicing import cut
from ui.models.label_editor import Stroke, Tool
from ui.models.prompt_marks import PromptMarks, earlier_values, engine_plane, mask_voxels, slice_box, slice_point
from ui.models.view_plane import ViewPlane
from ui.models.viewer_model import ViewerModel
from ui.qt.tasks import TaskGroup
from ui.qt.viewer_widget import ViewerWidget

if TYPE_CHECKING:  # pragma: no cover - the engine imports torch
    from medtl.prompt.engine import PromptModel
    from medtl.prompt.propagation import PropagatedSlice

MODEL_SOURCE = "medsam"
PROBLEM_WHERE = "AI box tool (LiteMedSAM)"
PREPARING = "preparing the AI model for this slice…"
AHEAD = (1, -1, 2, -2)  # the neighbours embedded after the shown slice: one step either way is ready after ~1 s, two after ~3 s
_NOTHING = (np.zeros(0, np.intp), np.zeros(0, np.uint8))


@dataclass
class _Prompt:
    """The prompt being refined: on slice ``key``, the engine box and clicks, and the undo step holding its result."""

    key: SliceKey
    axis: int
    box: tuple[float, float, float, float]
    marks: PromptMarks
    points: list[Point] = field(default_factory=list)
    stroke: Stroke | None = None
    earlier: tuple[np.ndarray, np.ndarray] = field(default_factory=lambda: _NOTHING)  # the values its results replaced


class PromptTool(QObject):
    """Drives LiteMedSAM for the series in ``viewer``; reports through its signals (the main window shows them)."""

    status = Signal(str)
    problem = Signal(str, str)  # where, message
    progress = Signal(int, int, str)
    idle = Signal()
    prompted = Signal(object)  # the Stroke a prompt made (or None when it changed nothing)
    embedded = Signal(object)  # SliceKey: an embedding is ready
    propagation_arrived = Signal(int)  # the slice index whose mask just arrived
    propagation_ended = Signal(int)  # how many slices it added

    def __init__(self, viewer: ViewerWidget, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.cache = EmbeddingCache()
        self.model: PromptModel | None = None
        self.load_error: str | None = None
        self.active = False
        self.prompt: _Prompt | None = None
        self._tasks = TaskGroup(self)
        self._viewer_model: ViewerModel | None = None
        self._series = ""
        self._series_count = 0
        self._windows: dict[str, IntensityWindow] = {}  # per series, for modalities windowed by percentiles
        self._embedding: SliceKey | None = None  # being computed
        self._wanted: list[tuple[SliceKey, np.ndarray]] = []  # to embed next, first first
        self._waiting = False  # the current prompt waits for its slice's embedding
        self._after_load: list[Any] = []  # what to do once the model has loaded
        self._arrivals: queue.SimpleQueue[PropagatedSlice] = queue.SimpleQueue()
        self._propagation: Stroke | None = None
        self._propagation_axis = 0
        self._propagated = 0
        viewer.tool_changed.connect(self._tool_changed)
        viewer.prompt_box.connect(self.box)
        viewer.prompt_point.connect(self.point)

    # --- following the viewer ---------------------------------------------------------------

    def set_model(self, model: ViewerModel | None) -> None:
        """Follow the shown series (a new series gets a new cache key: never its UIDs)."""
        if self._viewer_model is not None:
            self._viewer_model.changed.disconnect(self.schedule)
        self._viewer_model, self.prompt, self._wanted, self._waiting = model, None, [], False
        self._series_count += 1
        self._series = f"series-{self._series_count}"
        self._show_marks()
        if model is not None:
            model.changed.connect(self.schedule)
        self.schedule()

    def _tool_changed(self, tool: Tool) -> None:
        self.active = tool is Tool.BOX
        if self.active:
            self.load_error = None  # choosing the tool again tries the model again
            if self._viewer_model is not None and engine_plane(self.viewer.active_view.plane) is None:  # type: ignore[arg-type]
                self.status.emit("The AI box tool works on axial, coronal and sagittal views of the image grid, not on resampled ones")
        else:
            self._wanted = []
        self.schedule()

    def schedule(self) -> None:
        """Embed the shown slice, then its neighbours, one at a time (nothing while propagating: it embeds its own)."""
        model, view = self._viewer_model, self.viewer.active_view
        if not self.active or model is None or view.plane is None or "propagate" in self._tasks.running:
            return
        if not self._ensure_model(self.schedule):
            return
        shown = self._slice(model, view.plane, model.slice_index(view.plane))
        if shown is None:
            return
        wanted = [shown] + [s for s in (self._slice(model, view.plane, shown[0].index + d) for d in AHEAD) if s is not None]
        pending = [w for w in self._wanted if self.prompt is not None and w[0] == self.prompt.key and self._waiting]
        self._wanted = [w for w in pending + wanted if not self._cached(w[0])]
        self._embed_next()

    def _slice(self, model: ViewerModel, plane: ViewPlane, index: int) -> tuple[SliceKey, np.ndarray] | None:
        engine = engine_plane(plane)
        if engine is None or not 0 <= index < model.slice_count(plane):
            return None
        name = engine[0]
        return SliceKey(self._series, name, index), cut(model.volume.array, name, index)

    def _window(self) -> IntensityWindow | None:
        """The encoder's window: CT the viewer's current one, else percentiles of the volume (None until computed)."""
        model = self._viewer_model
        assert model is not None
        if _modality(model).upper() == "CT":
            return window_for(model.volume.array, "CT", (model.window.center, model.window.width))
        return self._windows.get(self._series)

    def _window_call(self) -> Any:
        """A function, for a worker, giving the window (and remembering a computed one for this series)."""
        model, series, known = self._viewer_model, self._series, self._window()
        assert model is not None

        def window() -> IntensityWindow:
            if known is not None:
                return known
            computed = window_for(model.volume.array, _modality(model))
            self._windows[series] = computed
            return computed

        return window

    def _cached(self, key: SliceKey) -> bool:
        window = self._window()
        return window is not None and self.cache.get(key, window) is not None

    def _embed_next(self) -> None:
        if self._embedding is not None or not self._wanted or self.model is None:
            return
        (key, pixels), self._wanted = self._wanted[0], self._wanted[1:]
        if self._cached(key):
            self._embedding_ready(key)
            return
        self._embedding = key
        prompt_model, window = self.model, self._window_call()
        self._tasks.start(
            "embed", lambda _progress, _cancel: prompt_model.embed(key, pixels, window()),
            done=lambda _embedding: self._embedded(key), failed=self._embedding_failed, cancelled=self._embedding_cancelled,
        )  # fmt: skip

    def _embedded(self, key: SliceKey) -> None:
        self._embedding = None
        self._embedding_ready(key)
        self._embed_next()

    def _embedding_ready(self, key: SliceKey) -> None:
        self.embedded.emit(key)
        if self._waiting and self.prompt is not None and self.prompt.key == key:
            self._run_prompt()

    def _embedding_cancelled(self) -> None:
        self._embedding = None

    def _embedding_failed(self, message: str) -> None:
        self._embedding, self._waiting = None, False
        self._report_problem(f"The AI model could not read this slice: {message}", message)

    # --- the model ---------------------------------------------------------------------------

    def _ensure_model(self, then: Any) -> bool:
        """True when the model is loaded; else start loading it (once) and call ``then`` when it has."""
        if self.model is not None:
            return True
        if self.load_error is not None:
            return False
        if then not in self._after_load:
            self._after_load.append(then)
        if "load" not in self._tasks.running:
            cache = self.cache

            def load(_progress: ProgressCallback, _cancel: CancelToken) -> PromptModel:
                from medtl.prompt.engine import PromptModel

                return PromptModel.load(MODEL_SOURCE, cache)

            self.status.emit("loading the AI model (LiteMedSAM)…")
            self._tasks.start("load", load, done=self._loaded, failed=self._load_failed)
        return False

    def _loaded(self, model: PromptModel) -> None:
        self.model = model
        self.status.emit("AI model ready: drag a box around a structure")
        then, self._after_load = self._after_load, []
        for call in then:
            call()

    def _load_failed(self, message: str) -> None:
        self.load_error, self._after_load, self._waiting = message, [], False
        self._report_problem(f"The AI box tool cannot work: {message}", message)

    def _report_problem(self, status: str, message: str) -> None:
        self.problem.emit(PROBLEM_WHERE, message)
        self.status.emit(status)

    # --- prompts -----------------------------------------------------------------------------

    def box(self, plane: ViewPlane, index: int, box: tuple[float, float, float, float]) -> None:
        """A box dragged on slice ``index`` of ``plane`` (image coordinates ``(row0, column0, row1, column1)``): a new prompt."""
        model = self._viewer_model
        engine = engine_plane(plane)
        if model is None or model.editor is None or engine is None:
            return
        name, axis = engine
        self.prompt = _Prompt(SliceKey(self._series, name, index), axis, slice_box(plane, index, model.volume.shape, box), PromptMarks(plane, index, box))
        self._show_marks()
        self._run_prompt()

    def point(self, plane: ViewPlane, index: int, row: float, column: float, include: bool) -> None:
        """A click on slice ``index`` of ``plane``: refines the box drawn there (include or exclude the spot)."""
        model, prompt = self._viewer_model, self.prompt
        if model is None or prompt is None or prompt.marks.plane != plane or prompt.marks.index != index:
            self.status.emit("Draw a box around the structure first; then click to add to it, Shift+click to take away")
            return
        x, y = slice_point(plane, index, model.volume.shape, row, column)
        prompt.points.append(Point(x, y, include))
        prompt.marks.points.append((row, column, include))
        self._show_marks()
        self._run_prompt()

    def _run_prompt(self) -> None:
        """Run the current prompt if its slice's embedding is ready; else wait for it."""
        model, prompt = self._viewer_model, self.prompt
        if model is None or prompt is None or model.editor is None:
            return
        if not self._ensure_model(self._run_prompt):
            self.status.emit(PREPARING if self.load_error is None else f"The AI box tool cannot work: {self.load_error}")
            return
        window = self._window()
        embedding = None if window is None else self.cache.get(prompt.key, window)
        if embedding is None:
            self._waiting = True
            self.status.emit(PREPARING)
            pixels = cut(model.volume.array, prompt.key.plane, prompt.key.index)
            self._wanted = [(prompt.key, pixels)] + [w for w in self._wanted if w[0] != prompt.key]
            self._embed_next()
            return
        self._waiting = False
        x0, y0, x1, y1 = prompt.box
        if x1 <= x0 or y1 <= y0:
            self.status.emit("The box is too small: drag it around the whole structure")
            return
        result = self.model.segment(embedding, PromptRequest(embedding.shape, prompt.box, tuple(prompt.points)))  # type: ignore[union-attr]
        voxels = mask_voxels(prompt.axis, prompt.key.index, result.mask, model.volume.shape)
        editor = model.editor
        if prompt.stroke is None or editor.last_stroke is not prompt.stroke:  # its last result is gone (undone): start afresh
            prompt.earlier = _NOTHING
        stroke = editor.fill(voxels, prompt.axis, [prompt.key.index], restore=prompt.earlier)
        if stroke is not None:
            prompt.stroke, prompt.earlier = stroke, earlier_values(prompt.earlier, stroke.voxels, stroke.before)
        model.layer_changed()
        self.status.emit(
            f"AI mask: {len(voxels)} pixels (model's confidence {result.predicted_iou:.2f}); click to add, Shift+click to take away, "
            "Ctrl+Z undoes, Propagate carries it to the next slices"
        )
        self.prompted.emit(stroke)

    def _show_marks(self) -> None:
        marks = self.prompt.marks if self.prompt is not None else None
        for view in self.viewer.views:
            view.set_prompt_marks(marks)

    # --- propagation -------------------------------------------------------------------------

    def propagate(self) -> None:
        """Carry the shown slice's mask of the active label value through the neighbouring slices, in a worker."""
        model, view = self._viewer_model, self.viewer.active_view
        if model is None or model.editor is None or view.plane is None or "propagate" in self._tasks.running:
            return
        engine = engine_plane(view.plane)
        if engine is None:
            self.status.emit("Propagate works on axial, coronal and sagittal views of the image grid")
            return
        name, axis = engine
        index = model.slice_index(view.plane)
        start = cut(model.editor.layer.mask, name, index) == model.editor.value
        if not start.any():
            self.status.emit(f"Nothing to propagate: slice {index + 1} holds no {model.editor.names.get(model.editor.value, 'label')}")
            return
        if not self._ensure_model(self.propagate):
            return
        ahead = self._tasks.running.get("embed")
        if ahead is not None:  # the embeddings ahead: propagation makes its own
            ahead.cancel()
        self._embedding, self._wanted, self._propagation_axis = None, [], axis
        prompt_model, window, volume, series, arrivals = self.model, self._window_call(), model.volume.array, self._series, self._arrivals
        self._propagation, self._propagated = None, 0

        def run(progress: ProgressCallback, cancel: CancelToken) -> None:
            from medtl.prompt.propagation import propagate

            for done, reached in enumerate(propagate(prompt_model, volume, name, index, start, window(), series, cancel=cancel), 1):  # type: ignore[arg-type]
                arrivals.put(reached)
                progress(done, 0, f"propagating: {name} slice {reached.index + 1}")
                if cancel.cancelled:
                    break

        self.progress.emit(0, 0, "propagating…")
        self._tasks.start(
            "propagate", run, progress=self._arrived, done=lambda _none: self._propagation_done("done"),
            failed=lambda message: self._propagation_done(f"stopped: {message}"), cancelled=lambda: self._propagation_done("stopped"),
        )  # fmt: skip

    def _arrived(self, done: int = 0, total: int = 0, message: str = "") -> None:
        """Put the slices that arrived into the label (one undo step for the whole propagation)."""
        model = self._viewer_model
        if message:
            self.progress.emit(done, total, message)
        while not self._arrivals.empty():
            reached = self._arrivals.get()
            if model is None or model.editor is None:
                continue
            axis = self._propagation_axis
            voxels = mask_voxels(axis, reached.index, reached.mask, model.volume.shape)
            self._propagation = model.editor.fill(voxels, axis, [reached.index], extending=self._propagation) or self._propagation
            self._propagated += 1
            model.layer_changed()
            self.propagation_arrived.emit(reached.index)

    def _propagation_done(self, how: str) -> None:
        self._arrived()
        self.idle.emit()
        count = self._propagated
        self.status.emit(f"Propagation {how}: {count} slice{'s' if count != 1 else ''} added (Ctrl+Z undoes all of them)")
        self.propagation_ended.emit(count)

    def cancel(self) -> None:
        """Stop the propagation (what arrived stays) and the embeddings ahead."""
        self._tasks.cancel_all()


def _modality(model: ViewerModel) -> str:
    return model.label.modality or str(model.volume.metadata.get("modality", ""))

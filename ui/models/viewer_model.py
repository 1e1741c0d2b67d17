"""`ViewerModel`: the display state of one loaded series, shared by every view of it (pure Python).

It holds the volume, the window/level and inversion, the overlay layers and the cursor (the
crosshair point, a voxel index that also selects the slice each plane shows), and renders a
plane of it to RGB pixels. Widgets observe :attr:`ViewerModel.changed` and repaint.

The label being edited is always the top layer, so a prediction shown later lies under the edits.
A projection (the MIP pane) has its own window, made from the projection's values: the maxima of a
volume sit far above most of its voxels, so the slices' window would show the MIP flat white.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtl.dicom.records import PatientInfo, SeriesInfo, StudyInfo
from medtl.data.sparse import Annotated
from medtl.dicom.volume import Volume
from medtl.render.window import PRESETS, GreyMapper, WindowLevel, auto_window, percentile_range
from ui.models.cut_cache import CutCache
from ui.models.dicom_date import format_dicom_date
from ui.models.events import Event
from ui.models.label_editor import LabelEditor
from ui.models.orientation import EdgeLabels, edge_labels
from ui.models.overlays import LabelLayer, OverlayLayer, composite
from ui.models.view_plane import PlaneKind, ViewPlane
from ui.models.world_plane import WorldGrid, WorldPlane, is_oblique

PLACED_KINDS = {"classic", "enhanced"}  # volumes whose grid is placed in the patient; others get no orientation letters
ANONYMOUS = "Anonymised"
EDITED_OPACITY = 0.6  # the label being edited: above the predictions' 0.35, so that strokes stand out on them
PROJECTION_PERCENTILES = (5.0, 99.5)
"""A projection's window spans these percentiles of its pixels above its minimum (the background outside the body)."""


def window_text(window: WindowLevel) -> str:
    """``"W 317 L 61"``: whole numbers, except for windows narrower than 10 (3 significant digits)."""
    if window.width >= 10:
        return f"W {window.width:.0f} L {window.center:.0f}"
    return f"W {window.width:.3g} L {window.center:.3g}"


def projection_window(values: np.ndarray) -> WindowLevel:
    """A window for a projection's pixels ``values``: :data:`PROJECTION_PERCENTILES` of those above the minimum."""
    values = np.asarray(values)
    floor = values.min() if values.size else 0
    inside = values[values > floor]
    low, high = percentile_range(inside if inside.size else values.reshape(-1), PROJECTION_PERCENTILES)
    return WindowLevel(high - low, (high + low) / 2)


@dataclass(frozen=True)
class SeriesLabel:
    """What the corner text says about a series (holds PHI: never log it)."""

    patient_name: str = ""
    patient_id: str = ""
    study_date: str = ""
    study_description: str = ""
    series_description: str = ""
    series_number: int | None = None
    modality: str = ""

    @classmethod
    def of(cls, patient: PatientInfo, study: StudyInfo, series: SeriesInfo) -> SeriesLabel:
        return cls(
            patient.patient_name, patient.patient_id, study.study_date, study.description,
            series.description, series.series_number, series.modality,
        )  # fmt: skip


@dataclass(frozen=True)
class PixelInfo:
    """The voxel under a screen point: its index (x, y, z), value in modality units, and LPS position (mm)."""

    index: tuple[int, int, int]
    value: float | tuple[float, ...]
    units: str
    lps: tuple[float, float, float] | None

    def __str__(self) -> str:
        value = ", ".join(f"{v:g}" for v in self.value) if isinstance(self.value, tuple) else f"{self.value:g}"
        text = f"({self.index[0]}, {self.index[1]}, {self.index[2]})  {value} {self.units}".rstrip()
        if self.lps is not None:
            text += "   LPS ({:.1f}, {:.1f}, {:.1f}) mm".format(*self.lps)
        return text


@dataclass(frozen=True)
class CornerText:
    top_left: list[str]
    top_right: list[str]
    bottom_left: list[str]
    bottom_right: list[str]


def follow(previous: ViewerModel | None, model: ViewerModel | None, on_change: Callable[[], None]) -> ViewerModel | None:
    """Move ``on_change`` from ``previous``'s :attr:`ViewerModel.changed` to ``model``'s; returns ``model`` (a panel's
    ``set_model``: ``self._model = follow(self._model, model, self.refresh)``)."""
    if previous is not None:
        previous.changed.disconnect(on_change)
    if model is not None:
        model.changed.connect(on_change)
    return model


class ViewerModel:
    """Display state of one series; every setter emits :attr:`changed`."""

    def __init__(self, volume: Volume, label: SeriesLabel | None = None, files: Sequence[Path] = ()) -> None:
        self.volume = volume
        self.label = label or SeriesLabel(patient_id=str(volume.metadata.get("patient_id", "")))
        self.files = tuple(files)  # the DICOM files the volume was loaded from
        self.changed = Event()
        self.layers: list[OverlayLayer] = []
        self.editor: LabelEditor | None = None  # the label being drawn or corrected, if any
        self.cuts = CutCache()
        self._patient_planes: list[ViewPlane] | None = None
        self.background = float(np.min(volume.array)) if volume.array.size else 0.0  # outside the volume in resampled views
        self.anonymised = False
        self.invert = False
        self.has_geometry = volume.metadata.get("kind") in PLACED_KINDS
        self._monochrome1 = volume.metadata.get("photometric") == "MONOCHROME1"
        self._mapper = None if volume.is_rgb else GreyMapper(volume.array.dtype)
        self._projection_mapper = None if volume.is_rgb else GreyMapper(volume.array.dtype)  # its own table: views alternate
        self.initial_window = self._stored_window() or (WindowLevel(255, 127.5) if volume.is_rgb else auto_window(volume.array))
        self.window = self.initial_window
        self.projection_windows: dict[ViewPlane, WindowLevel] = {}  # the window of each projection shown, once made
        self.cursor = np.array([(n - 1) // 2 for n in reversed(volume.shape)], dtype=int)  # x, y, z

    # --- display settings --------------------------------------------------------------------

    def set_window(self, window: WindowLevel, plane: ViewPlane | None = None) -> None:
        """Set the slices' window, or the window of the projection ``plane``."""
        if plane is not None and plane.projection:
            self.projection_windows[plane] = window
        else:
            self.window = window
        self.changed.emit()

    def window_of(self, plane: ViewPlane) -> WindowLevel:
        """The window ``plane`` is shown with: its own for a projection (once made), else the slices' window."""
        return self.projection_windows.get(plane, self.window) if plane.projection else self.window

    def apply_preset(self, name: str) -> None:
        self.set_window(PRESETS[name])

    def auto_window(self) -> None:
        self.set_window(auto_window(self.volume.array))

    def set_invert(self, invert: bool) -> None:
        self.invert = invert
        self.changed.emit()

    def set_anonymised(self, anonymised: bool) -> None:
        self.anonymised = anonymised
        self.changed.emit()

    def reset(self) -> None:
        """The window stored in the series (or the automatic one), no inversion, cursor at the centre."""
        self.window, self.invert = self.initial_window, False
        self.projection_windows.clear()
        self.cursor = np.array([(n - 1) // 2 for n in reversed(self.volume.shape)], dtype=int)
        self.changed.emit()

    # --- cursor and slices -------------------------------------------------------------------

    def patient_planes(self) -> list[ViewPlane]:
        """Axial, coronal and sagittal planes: grid planes when the volume is aligned with the patient axes, else
        resampled true patient planes (~50 ms to make for 512 x 512 x 300: the loading worker makes them first).
        RGB images and volumes one voxel thin keep their grid planes."""
        if self._patient_planes is None:
            volume = self.volume
            if not is_oblique(volume.direction) or volume.is_rgb or not self.has_geometry or min(volume.shape) < 2:
                self._patient_planes = [ViewPlane.of_kind(kind, volume.direction) for kind in PlaneKind]
            else:
                grid = WorldGrid.of(volume)
                self._patient_planes = [WorldPlane.through(kind, grid, self.background) for kind in PlaneKind]
        return self._patient_planes

    def set_cursor(self, xyz: np.ndarray) -> None:
        """Move the crosshair to the voxel nearest the continuous index ``xyz``."""
        upper = np.array(list(reversed(self.volume.shape))) - 1
        cursor = np.clip(np.rint(np.asarray(xyz, dtype=float)), 0, upper).astype(int)
        if not np.array_equal(cursor, self.cursor):
            self.cursor = cursor
            self.changed.emit()

    def slice_index(self, plane: ViewPlane) -> int:
        return plane.slice_of(self.cursor, self.volume.shape)

    def slice_count(self, plane: ViewPlane) -> int:
        return plane.size(self.volume.shape)[2]

    def step(self, plane: ViewPlane, delta: int) -> None:
        """Move ``delta`` slices through ``plane`` (clamped at the ends; a projection has no slices to move through).
        A resampled plane's slices may be thinner than the voxels: then move on until the crosshair's voxel changes."""
        if plane.projection or not delta:
            return
        start = self.cursor.copy()
        for attempt in range(1, 5):
            self.go_to_slice(plane, self.slice_index(plane) + delta * attempt)
            if not np.array_equal(self.cursor, start):
                return

    def go_to_slice(self, plane: ViewPlane, index: int) -> None:
        if plane.projection:
            return
        index = min(max(index, 0), self.slice_count(plane) - 1)
        self.set_cursor(plane.at_slice(self.cursor, index, self.volume.shape))

    # --- layers ------------------------------------------------------------------------------

    def add_layer(self, layer: OverlayLayer) -> None:
        """Put ``layer`` on top of the others, but under the label being edited."""
        if layer.array.shape != self.volume.shape:
            raise ValueError(f"layer {layer.name!r} has shape {layer.array.shape}, the volume {self.volume.shape}")
        edited = self.editor.layer if self.editor is not None else None
        self.layers.insert(self.layers.index(edited) if edited in self.layers else len(self.layers), layer)
        self.changed.emit()

    def remove_layer(self, layer: OverlayLayer) -> None:
        self.layers.remove(layer)
        if self.editor is not None and self.editor.layer is layer:
            self.editor = None
        self.changed.emit()

    def edit_label(
        self, mask: np.ndarray, names: dict[int, str], name: str = "label (editable)", dirty: bool = True, annotated: Annotated | None = None
    ) -> LabelEditor:
        """Make a copy of ``mask`` the editable label layer (replacing the previous one), on top of the others;
        ``annotated``: the slices annotated in it (None: every slice, as for a whole mask handed in)."""
        if self.editor is not None and self.editor.layer in self.layers:
            self.layers.remove(self.editor.layer)
        names = {value: text for value, text in names.items() if value != 0} or {1: "label 1"}
        layer = LabelLayer(name, np.array(mask, dtype=np.uint8, copy=True), names=names, opacity=EDITED_OPACITY)
        self.editor = LabelEditor(layer, names, value=min(names), dirty=dirty, annotated=annotated if annotated is not None else Annotated.everything())
        self.layers.append(layer)
        self.changed.emit()
        return self.editor

    def layer_changed(self) -> None:
        """Call after changing a layer's display settings (visibility, opacity, colours, style)."""
        self.changed.emit()

    # --- rendering ---------------------------------------------------------------------------

    def render(self, plane: ViewPlane) -> np.ndarray:
        """The current slice of ``plane`` as display pixels with the overlays blended: uint8 ``[rows, columns, 4]``
        in B, G, R, A order, C-contiguous (``QImage.Format_RGB32``; see :mod:`medtl.render.window`).
        A projection not made yet (:meth:`prepare_projection`) renders black."""
        index = 0 if plane.projection else self.slice_index(plane)  # a projection's cut is the same at any depth
        if plane.computed:
            values = self.cuts.cached(plane, self.volume.array, index) if plane.projection else self.cuts.get(plane, self.volume.array, index)
            if values is None:
                rows, columns, _ = plane.size(self.volume.shape)
                return np.full((rows, columns, 4), (0, 0, 0, 255), np.uint8)
            cuts = [
                self.cuts.get(plane, layer.array, index, self._version(layer), nearest=isinstance(layer, LabelLayer)) for layer in self.layers
            ]
        else:
            values = plane.extract(self.volume.array, index)
            cuts = [plane.extract(layer.array, index) for layer in self.layers]
        if self._mapper is None:
            pixels = self._colour_pixels(values)
        else:
            if plane.projection and plane not in self.projection_windows:
                self.projection_windows[plane] = projection_window(values)
            mapper = self._projection_mapper if plane.projection and self._projection_mapper is not None else self._mapper
            mapper.set_window(self.window_of(plane), self.invert != self._monochrome1)
            pixels = mapper(values)
        bgra = pixels.view(np.uint8).reshape(*pixels.shape, 4)
        return composite(bgra, self.layers, cuts)

    def prepare_projection(self, plane: ViewPlane) -> None:
        """Make the image's projection through ``plane`` (~0.1 s for 512 x 512 x 300: call it in a worker)."""
        self.cuts.get(plane, self.volume.array, 0)

    def forget_cuts(self, planes: list[ViewPlane]) -> None:
        """Keep computed cuts only for ``planes`` (the ones shown) and the arrays still shown."""
        self.cuts.keep_only(planes, [self.volume.array, *(layer.array for layer in self.layers)])

    def _version(self, layer: OverlayLayer) -> int:
        """How often ``layer`` 's values have changed (only the edited label changes)."""
        return self.editor.revision if self.editor is not None and self.editor.layer is layer else 0

    def pixel_at(self, plane: ViewPlane, row: float, column: float) -> PixelInfo | None:
        """The voxel shown at (``row``, ``column``) of ``plane``'s current slice; None outside the image."""
        xyz = np.rint(plane.to_index(row, column, self.slice_index(plane), self.volume.shape)).astype(int)
        if np.any(xyz < 0) or np.any(xyz >= np.array(list(reversed(self.volume.shape)))):
            return None
        voxel = self.volume.array[xyz[2], xyz[1], xyz[0]]
        value = tuple(float(v) for v in voxel) if self.volume.is_rgb else float(voxel)
        lps = tuple(float(v) for v in self.volume.index_to_lps(xyz)[0]) if self.has_geometry else None
        return PixelInfo((int(xyz[0]), int(xyz[1]), int(xyz[2])), value, str(self.volume.metadata.get("units", "")), lps)  # type: ignore[arg-type]

    def edge_labels(self, plane: ViewPlane) -> EdgeLabels | None:
        """Orientation letters at the image edges; None for images not placed in the patient (CR, DX, SC)."""
        return edge_labels(*plane.screen_vectors(self.volume.direction)) if self.has_geometry else None

    def corner_text(self, plane: ViewPlane) -> CornerText:
        label = self.label
        number = "" if label.series_number is None else f"#{label.series_number} "
        patient = [ANONYMOUS] if self.anonymised else [label.patient_name or "(no name)", label.patient_id]
        study = [label.study_description] if self.anonymised else [format_dicom_date(label.study_date), label.study_description]
        return CornerText(
            top_left=[line for line in patient + study if line],
            top_right=[
                f"{label.modality} {number}{label.series_description}".strip(),
                plane.title if self.has_geometry else "2D image",
            ],
            bottom_left=[
                "whole volume" if plane.projection else f"Slice {self.slice_index(plane) + 1}/{self.slice_count(plane)}",
                window_text(self.window_of(plane)) + (" inverted" if self.invert else ""),
            ],
            bottom_right=["{:.2f} x {:.2f} mm".format(*plane.pixel_spacing(self.volume.spacing))],
        )

    def _stored_window(self) -> WindowLevel | None:
        metadata = self.volume.metadata
        if "window_width" in metadata and "window_center" in metadata and metadata["window_width"] > 0:
            return WindowLevel(metadata["window_width"], metadata["window_center"])
        return None

    def _colour_pixels(self, rgb: np.ndarray) -> np.ndarray:
        """Display pixels of an RGB slice ``[h, w, 3]`` (8-bit as is; wider scaled to the volume's maximum)."""
        if rgb.dtype != np.uint8:
            rgb = (rgb.astype(np.float32) * (255.0 / max(float(self.volume.array.max()), 1.0))).astype(np.uint8)
        if self.invert:
            rgb = 255 - rgb
        channels = [rgb[..., c].astype(np.uint32) for c in range(3)]
        return (channels[0] << 16) | (channels[1] << 8) | channels[2] | np.uint32(0xFF000000)

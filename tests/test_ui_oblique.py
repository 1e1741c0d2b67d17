"""True patient planes for oblique series: the 1×3 views are resampled on L/P/S-aligned planes, and one world point
shows at the same place in all three."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QMessageBox

from medtl.dicom.series import load_series
from medtl.dicom.volume import Volume
from tests.dicomgen import SeriesSpec, rotation, write_series
from tests.test_ui_labels import drag, screen_point, shown_window, temporary_settings
from tests.test_ui_window import open_and_show, send_mouse
from ui.models.view_plane import PlaneKind, ViewPlane
from ui.models.viewer_model import ViewerModel
from ui.models.world_plane import WorldPlane, is_oblique
from ui.qt.viewer_widget import Layout

SHAPE = (14, 40, 48)
TILT = rotation("x", 20) @ rotation("z", 15)


def ramp() -> np.ndarray:
    """A linear function of the index (trilinear interpolation reproduces it exactly)."""
    z, y, x = np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij")
    return (x + 3 * y + 7 * z - 500).astype(np.float32)


@pytest.fixture(scope="module")
def oblique_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("oblique")
    write_series(folder, ramp(), SeriesSpec(direction=TILT, spacing=(0.9, 0.9, 2.5)))
    return folder


@pytest.fixture(scope="module")
def volume(oblique_folder: Path) -> Volume:
    return load_series(sorted(oblique_folder.iterdir()))


def lps_of(volume: Volume, xyz: np.ndarray) -> np.ndarray:
    return volume.index_to_lps(xyz)[0]


def test_oblique_series_get_resampled_patient_planes(volume: Volume) -> None:
    model = ViewerModel(volume)
    assert is_oblique(volume.direction) and not is_oblique(np.diag([1.0, -1.0, 1.0]))
    planes = model.patient_planes()
    assert all(isinstance(plane, WorldPlane) for plane in planes) and [p.kind for p in planes] == list(PlaneKind)
    letters = [model.edge_labels(plane) for plane in planes]
    assert [(e.left, e.right, e.top, e.bottom) for e in letters] == [("R", "L", "A", "P"), ("R", "L", "S", "I"), ("A", "P", "S", "I")]
    aligned = ViewerModel(Volume(np.zeros((4, 5, 6), np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), metadata={"kind": "classic"}))
    assert not any(isinstance(plane, WorldPlane) for plane in aligned.patient_planes())


def test_a_world_point_shows_at_the_same_place_in_all_three_views(volume: Volume) -> None:
    model = ViewerModel(volume)
    axial, coronal, sagittal = model.patient_planes()
    model.set_cursor(np.array([30, 12, 9]))
    point = lps_of(volume, model.cursor)
    places = {}
    for plane in (axial, coronal, sagittal):
        row, column, depth = plane.from_index(model.cursor, volume.shape)
        assert abs(depth - model.slice_index(plane)) <= 0.5  # the slice shown passes through the point
        assert np.allclose(lps_of(volume, plane.to_index(row, column, depth, volume.shape)), point, atol=1e-6)
        places[plane.kind] = (row, column)
    (a_row, a_column), (c_row, c_column), (s_row, s_column) = places.values()
    assert a_column == pytest.approx(c_column)  # left-right: axial and coronal columns
    assert c_row == pytest.approx(s_row)  # head-foot: coronal and sagittal rows
    assert a_row == pytest.approx(s_column)  # front-back: axial rows, sagittal columns


def test_resampling_is_trilinear_and_labels_take_the_nearest_voxel(volume: Volume) -> None:
    model = ViewerModel(volume)
    coronal = model.patient_planes()[1]
    index = model.slice_index(coronal)
    cut = coronal.extract(volume.array.astype(np.float32), index)  # the display keeps the volume's dtype
    rows, columns, _ = coronal.size(volume.shape)
    assert cut.shape == (rows, columns)
    expected = ramp()
    for row, column in ((rows // 2, columns // 2), (rows // 3, columns // 2 + 3)):
        x, y, z = coronal.to_index(row, column, index, volume.shape)
        if 0 <= x <= SHAPE[2] - 1 and 0 <= y <= SHAPE[1] - 1 and 0 <= z <= SHAPE[0] - 1:
            assert cut[row, column] == pytest.approx(x + 3 * y + 7 * z - 500, abs=1e-3)
    assert cut.min() == model.background == expected.min()  # outside the volume: the lowest value, not a bright band
    mask = np.zeros(SHAPE, np.uint8)
    x, y, z = np.rint(coronal.to_index(rows // 2, columns // 2, index, volume.shape)).astype(int)
    mask[z, y, x] = 3
    labels = coronal.extract(mask, index, nearest=True)
    assert labels[rows // 2, columns // 2] == 3 and set(np.unique(labels)) == {0, 3}


def test_scrolling_a_resampled_plane_always_moves(volume: Volume) -> None:
    model = ViewerModel(volume)
    for plane in model.patient_planes():
        before = model.slice_index(plane)
        model.step(plane, 1)
        assert model.slice_index(plane) > before
        model.go_to_slice(plane, 0)
        assert model.slice_index(plane) < before  # towards the first slice (which may lie outside the volume here)


def test_the_1x3_layout_of_an_oblique_series_clicks_and_paints_in_world_planes(
    qtbot, tmp_path: Path, oblique_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    window = shown_window(qtbot, temporary_settings(tmp_path))
    monkeypatch.setattr(window, "ask_unsaved_label", lambda: QMessageBox.StandardButton.Discard)  # closing after the test
    open_and_show(qtbot, window, oblique_folder)
    window.viewer.set_layout_mode(Layout.MPR)
    model = window.viewer.model
    assert model is not None and isinstance(window.viewer.views[0].plane, ViewPlane)
    axial, coronal, _sagittal = window.viewer.views[:3]
    assert all(isinstance(view.plane, WorldPlane) for view in window.viewer.views[:3])
    rows, columns, _ = axial.plane.size(model.volume.shape)  # type: ignore[union-attr]
    left = Qt.MouseButton.LeftButton
    send_mouse(axial, QMouseEvent.Type.MouseButtonPress, screen_point(axial, rows / 2, columns / 2 + 4), left, left)
    point = lps_of(model.volume, model.cursor)
    for view in window.viewer.views[:3]:
        row, column, depth = view.plane.from_index(model.cursor, model.volume.shape)  # type: ignore[union-attr]
        assert np.allclose(lps_of(model.volume, view.plane.to_index(row, column, depth, model.volume.shape)), point)  # type: ignore[union-attr]

    window.label_tools.actions_by_name["new_label"].trigger()
    window.label_tools.size.setValue(0.5)
    window.label_tools.actions_by_name["brush"].trigger()
    c_rows, c_columns, _ = coronal.plane.size(model.volume.shape)  # type: ignore[union-attr]
    row, column = c_rows // 2, c_columns // 2
    x, y, z = np.rint(coronal.plane.to_index(row, column, model.slice_index(coronal.plane), model.volume.shape)).astype(int)  # type: ignore[union-attr,arg-type]
    drag(coronal, [screen_point(coronal, row, column)])
    assert model.editor is not None and model.editor.layer.mask[z, y, x] == 1 and model.editor.layer.mask.sum() <= 2

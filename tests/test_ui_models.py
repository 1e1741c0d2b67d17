"""The viewer's pure-Python models: window/level, orientation letters, planes, overlays, the viewer model."""

from __future__ import annotations

import numpy as np
import pytest

from medtl.dicom.volume import Volume
from tests.dicomgen import phantom, rotation
from ui.models.orientation import direction_label, edge_labels
from ui.models.overlays import HeatmapLayer, LabelLayer, LabelStyle, composite
from ui.models.view_plane import PlaneKind, ViewPlane
from ui.models.viewer_model import ANONYMOUS, SeriesLabel, ViewerModel

FLIP_X = np.diag([-1.0, 1.0, 1.0])


def volume(direction: np.ndarray | None = None, photometric: str = "MONOCHROME2", array: np.ndarray | None = None) -> Volume:
    values = phantom() if array is None else array
    metadata = {"kind": "classic", "units": "HU", "photometric": photometric, "modality": "CT"}
    return Volume(values.astype(np.int16), (0.7, 0.8, 2.5), (-10.0, 5.0, 30.0), np.eye(3) if direction is None else direction, metadata)


def test_direction_letters() -> None:
    assert [direction_label(v) for v in np.eye(3)] == ["L", "P", "S"]
    assert [direction_label(-v) for v in np.eye(3)] == ["R", "A", "I"]
    oblique = rotation("z", 30) @ np.array([1.0, 0.0, 0.0])  # mostly left, somewhat posterior
    assert direction_label(oblique) == "LP"
    assert direction_label(-oblique) == "RA"


def test_axial_edges_follow_the_radiological_convention() -> None:
    labels = edge_labels(np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    assert (labels.left, labels.right, labels.top, labels.bottom) == ("R", "L", "A", "P")


@pytest.mark.parametrize("direction", [np.eye(3), FLIP_X, np.diag([1.0, -1.0, -1.0])], ids=["axial", "flipped-x", "flipped-yz"])
def test_flipped_grids_are_shown_in_the_standard_layout(direction: np.ndarray) -> None:
    """Whatever the grid's flips, every view shows the same anatomy at the same place, with the same letters."""
    reference = ViewerModel(volume())
    flipped_values = phantom()[:: int(direction[2, 2]), :: int(direction[1, 1]), :: int(direction[0, 0])]
    model = ViewerModel(volume(direction, array=flipped_values))
    for kind in PlaneKind:
        plane, reference_plane = ViewPlane.of_kind(kind, model.volume.direction), ViewPlane.of_kind(kind, np.eye(3))
        model.go_to_slice(plane, 5 if direction[plane.normal, plane.normal] > 0 else model.slice_count(plane) - 6)
        reference.go_to_slice(reference_plane, 5)
        assert np.array_equal(model.render(plane), reference.render(reference_plane)), kind
        assert model.edge_labels(plane) == reference.edge_labels(reference_plane)
    sagittal = reference.edge_labels(ViewPlane.of_kind(PlaneKind.SAGITTAL, np.eye(3)))
    coronal = reference.edge_labels(ViewPlane.of_kind(PlaneKind.CORONAL, np.eye(3)))
    assert (sagittal.left, sagittal.right, sagittal.top, sagittal.bottom) == ("A", "P", "S", "I")
    assert (coronal.left, coronal.right, coronal.top, coronal.bottom) == ("R", "L", "S", "I")


def test_oblique_and_sagittal_acquisitions() -> None:
    oblique = ViewerModel(volume(rotation("z", 30)))
    labels = oblique.edge_labels(ViewPlane.acquired(oblique.volume.direction))
    assert (labels.right, labels.bottom) == ("LP", "PR")
    sagittal_direction = np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]], dtype=float)  # columns: x -> P, y -> I, z -> L
    plane = ViewPlane.acquired(sagittal_direction)
    assert plane.kind is PlaneKind.SAGITTAL and plane.normal == 2
    assert edge_labels(*plane.screen_vectors(sagittal_direction)) == edge_labels(np.array([0, 1.0, 0]), np.array([0, 0, -1.0]))


def test_plane_index_mapping_round_trips() -> None:
    shape = (12, 40, 48)
    for kind in PlaneKind:
        plane = ViewPlane.of_kind(kind, FLIP_X @ rotation("x", 20))
        xyz = np.array([7.0, 3.0, 9.0])
        row, column, index = plane.from_index(xyz, shape)
        assert np.allclose(plane.to_index(row, column, index, shape), xyz)


def test_pixel_under_a_point_has_its_value_and_world_position() -> None:
    model = ViewerModel(volume(FLIP_X))
    plane = ViewPlane.acquired(model.volume.direction)
    info = model.pixel_at(plane, 3, 4)
    assert info is not None
    x, y, z = info.index
    assert info.value == model.volume.array[z, y, x]
    assert np.allclose(info.lps, model.volume.index_to_lps([x, y, z])[0])
    assert "HU" in str(info) and "LPS" in str(info)
    assert model.pixel_at(plane, -1, 0) is None


def test_monochrome1_is_shown_inverted_by_default() -> None:
    normal, mono1 = ViewerModel(volume()), ViewerModel(volume(photometric="MONOCHROME1"))
    plane = ViewPlane.acquired(np.eye(3))
    assert np.array_equal(mono1.render(plane)[..., :3], 255 - normal.render(plane)[..., :3])
    mono1.set_invert(True)
    assert np.array_equal(mono1.render(plane), normal.render(plane))


def test_window_changes_pixels_and_reset_restores_them() -> None:
    model = ViewerModel(volume())
    plane = ViewPlane.acquired(np.eye(3))
    before = model.render(plane)
    model.apply_preset("CT bone")
    assert not np.array_equal(model.render(plane), before)
    model.reset()
    assert np.array_equal(model.render(plane), before)


def test_label_layer_blends_only_where_it_covers() -> None:
    model = ViewerModel(volume())
    plane = ViewPlane.acquired(np.eye(3))
    mask = np.zeros(model.volume.shape, np.uint8)
    mask[:, 10:20, 10:30] = 2
    layer = LabelLayer("lesion", mask, opacity=0.6)
    bare = model.render(plane)
    model.add_layer(layer)
    shown = model.render(plane)
    changed = np.any(shown != bare, axis=2)
    assert changed[10:20, 10:30].all() and not changed[:10].any() and not changed[20:].any()
    layer.style = LabelStyle.OUTLINE
    outline = np.any(model.render(plane) != bare, axis=2)
    assert outline[10, 15] and not outline[15, 20]
    layer.visible = False
    assert np.array_equal(model.render(plane), bare)
    with pytest.raises(ValueError):
        model.add_layer(LabelLayer("wrong grid", np.zeros((2, 2, 2), np.uint8)))


def test_heatmap_is_transparent_at_vmin_and_coloured_above() -> None:
    bgra = np.full((2, 2, 4), 100, np.uint8)
    heat = HeatmapLayer("cam", np.array([[[0.0, 0.5], [1.0, 0.0]]]), opacity=1.0)
    composite(bgra, [heat], [heat.values[0]])
    assert (bgra[0, 0] == 100).all() and (bgra[1, 1] == 100).all()
    assert tuple(bgra[1, 0]) == (164, 255, 252, 100)  # inferno's top colour (R 252, G 255, B 164) at full opacity; alpha untouched


def test_corner_text_and_anonymised_mode() -> None:
    label = SeriesLabel("Doe^Jane", "PID7", "20240102", "CT head", "Axial 5mm", 3, "CT")
    model = ViewerModel(volume(), label)
    plane = ViewPlane.acquired(np.eye(3))
    text = model.corner_text(plane)
    assert text.top_left[:3] == ["Doe^Jane", "PID7", "2024-01-02"]
    assert text.bottom_left[0] == f"Slice {model.slice_index(plane) + 1}/12" and text.bottom_left[1] == "W 1719 L -156"
    model.set_anonymised(True)
    shown = " ".join(line for lines in vars(model.corner_text(plane)).values() for line in lines)
    assert ANONYMOUS in shown and "Doe" not in shown and "PID7" not in shown and "2024" not in shown


def test_scrolling_is_clamped_to_the_volume() -> None:
    model = ViewerModel(volume())
    plane = ViewPlane.acquired(np.eye(3))
    model.step(plane, 100)
    assert model.slice_index(plane) == 11
    model.step(plane, -100)
    assert model.slice_index(plane) == 0


def test_a_classification_prediction_gives_a_heatmap_layer_and_a_summary() -> None:
    from medtl.inference.prediction import ClassificationPrediction
    from ui.models.prediction_layers import prediction_layers, prediction_summary

    source = volume()
    heat = Volume(np.linspace(0, 1, source.array.size, dtype=np.float32).reshape(source.shape), source.spacing, source.origin)
    prediction = ClassificationPrediction(source, None, ("normal", "fracture"), probabilities=np.array([0.2, 0.8]), heatmap=heat)
    (layer,) = prediction_layers(prediction, "run7")
    assert isinstance(layer, HeatmapLayer) and layer.name == "run7: Grad-CAM (fracture)" and layer.values is heat.array
    assert prediction_summary(prediction) == "Predicted fracture: fracture 80%, normal 20%"

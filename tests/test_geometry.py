"""Slice ordering, spacing, gaps, duplicates, tilt and orientation, on generated series whose truth is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medtl.dicom.geometry import Plane, orientation_axes, plan_stack
from medtl.dicom.series import load_series
from medtl.errors import GeometryError
from tests.dicomgen import SeriesSpec, phantom, rotation, write_series

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
DIRECTIONS = {
    "axial": np.eye(3),
    "flipped": np.diag([-1.0, 1.0, -1.0]),
    "sagittal": np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float),
    "coronal": np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float),
    "oblique": rotation("x", 17) @ rotation("z", -33) @ rotation("y", 8),
    "oblique_flipped": rotation("y", 25) @ np.diag([1.0, -1.0, -1.0]),
}


def planes_at(distances: list[float], orientation: tuple[float, ...] = AXIAL) -> list[Plane]:
    normal = orientation_axes(orientation, "test")[:, 2]
    return [Plane(tuple(d * normal), orientation, f"s{i}") for i, d in enumerate(distances)]  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
@pytest.mark.parametrize("order", ["shuffled", "reversed"])
def test_any_orientation_and_file_order_gives_the_true_grid(tmp_path: Path, name: str, order: str) -> None:
    values = phantom()
    spec = SeriesSpec(direction=DIRECTIONS[name], order=order, spacing=(0.8, 0.6, 1.5), origin=(10.0, -20.0, 30.0))
    volume = load_series(write_series(tmp_path, values, spec))
    np.testing.assert_array_equal(volume.array, values)
    np.testing.assert_allclose(volume.spacing, spec.spacing, atol=1e-6)
    np.testing.assert_allclose(volume.origin, spec.origin, atol=1e-6)
    np.testing.assert_allclose(volume.direction, DIRECTIONS[name], atol=1e-7)
    assert volume.warnings == [] and volume.interpolated_slices == ()


def test_left_handed_input_is_reordered_along_the_normal(tmp_path: Path) -> None:
    """A z axis opposite to row x column: the volume runs the other way, world positions unchanged."""
    values = phantom()
    spec = SeriesSpec(direction=np.diag([1.0, 1.0, -1.0]))
    volume = load_series(write_series(tmp_path, values, spec))
    np.testing.assert_array_equal(volume.array, values[::-1])
    np.testing.assert_allclose(volume.direction, np.eye(3))
    top = np.array(spec.origin) - np.array([0, 0, (values.shape[0] - 1) * spec.spacing[2]])
    np.testing.assert_allclose(volume.origin, top, atol=1e-6)


def test_implicit_vr_and_no_extension(tmp_path: Path) -> None:
    values = phantom((5, 20, 24))
    volume = load_series(write_series(tmp_path, values, SeriesSpec(implicit_vr=True, extension="")))
    np.testing.assert_array_equal(volume.array, values)


def test_missing_slices_are_interpolated_and_flagged(tmp_path: Path) -> None:
    values = phantom((20, 30, 36))
    spec = SeriesSpec(drop_slices=(3, 7, 8))
    volume = load_series(write_series(tmp_path, values, spec))
    assert volume.shape == values.shape and volume.interpolated_slices == (3, 7, 8)
    assert volume.spacing[2] == pytest.approx(2.5) and "3 missing slice(s)" in volume.warnings[0]
    kept = [z for z in range(values.shape[0]) if z not in (3, 7, 8)]
    np.testing.assert_array_equal(volume.array[kept], values[kept])
    np.testing.assert_array_equal(volume.array[3], np.rint((values[2] + values[4]) / 2))
    np.testing.assert_array_equal(volume.array[7], np.rint(values[6] * 2 / 3 + values[9] / 3))


def test_irregular_spacing_is_refused() -> None:
    with pytest.raises(GeometryError, match="irregular slice spacing.*s2 and s3 is 3.2 mm"):
        plan_stack(planes_at([0, 2, 4, 7.2, 9.2]), (1, 1))
    with pytest.raises(GeometryError, match="3 slice\\(s\\) .* missing"):
        plan_stack(planes_at([0, 2, 10, 12]), (1, 1))  # a gap of 3 missing slices


def test_spacing_within_tolerance_is_uniform() -> None:
    geometry = plan_stack(planes_at([0, 2.004, 3.998, 6.001]), (1, 1))
    assert geometry.interpolated == () and geometry.slice_spacing == pytest.approx(2.0003333)


def test_irregular_generated_series_is_refused(tmp_path: Path) -> None:
    values = phantom((6, 10, 12))
    files = write_series(tmp_path / "a", values[:3], SeriesSpec(series_uid="1.2.3"))
    files += write_series(tmp_path / "b", values[3:], SeriesSpec(series_uid="1.2.3", origin=(-120.0, -110.0, 40.0 + 3 * 2.5 + 1.1)))
    with pytest.raises(GeometryError, match="irregular slice spacing"):
        load_series(files)


def test_mixed_orientations_are_refused_as_a_localizer(tmp_path: Path) -> None:
    values = phantom((3, 10, 12))
    files = write_series(tmp_path / "a", values, SeriesSpec(series_uid="1.2.3"))
    files += write_series(tmp_path / "b", values, SeriesSpec(series_uid="1.2.3", direction=DIRECTIONS["sagittal"]))
    with pytest.raises(GeometryError, match="2 different orientations.*localizer"):
        load_series(files)


def test_identical_duplicates_are_dropped_with_a_warning(tmp_path: Path) -> None:
    values = phantom((4, 10, 12))
    files = write_series(tmp_path / "a", values, SeriesSpec(series_uid="1.2.3"))
    files += write_series(tmp_path / "b", values[:2], SeriesSpec(series_uid="1.2.3"))
    volume = load_series(files)
    np.testing.assert_array_equal(volume.array, values)
    assert "2 duplicate slice(s) with identical pixels were ignored" in volume.warnings[0]


def test_conflicting_duplicates_are_refused(tmp_path: Path) -> None:
    values = phantom((4, 10, 12))
    files = write_series(tmp_path / "a", values, SeriesSpec(series_uid="1.2.3"))
    files += write_series(tmp_path / "b", values[:1] + 100, SeriesSpec(series_uid="1.2.3"))
    with pytest.raises(GeometryError, match="same position but hold different pixels"):
        load_series(files)


def test_gantry_tilt_is_resampled_onto_an_orthogonal_grid(tmp_path: Path) -> None:
    """Tilt chosen so each slice shifts by exactly one row: the resampled values are exact."""
    values = phantom()
    spacing = (0.7, 0.7, 2.5)
    tilt = float(np.degrees(np.arctan(spacing[1] / spacing[2])))
    volume = load_series(write_series(tmp_path, values, SeriesSpec(spacing=spacing, gantry_tilt=tilt)))
    assert any(f"gantry tilt of {tilt:.2f} degrees" in w for w in volume.warnings)
    np.testing.assert_allclose(volume.direction, np.eye(3), atol=1e-12)  # orthonormal, slice axis = normal
    np.testing.assert_allclose(volume.spacing, spacing, atol=1e-6)
    np.testing.assert_allclose(volume.origin, SeriesSpec().origin)
    for z in range(values.shape[0]):  # slice z was acquired z rows further along +y
        np.testing.assert_array_equal(volume.array[z, z:], values[z, : values.shape[1] - z])
        assert (volume.array[z, :z] == values.min()).all()


def test_positions_off_a_line_are_refused() -> None:
    planes = planes_at([0, 2, 4, 6])
    bent = [Plane((0.0, 0.0, 0.0), AXIAL, "a"), Plane((0.0, 3.0, 2.0), AXIAL, "b"), *planes[2:]]
    with pytest.raises(GeometryError, match="do not lie on a straight line"):
        plan_stack(bent, (0.5, 0.5))


def test_not_orthonormal_orientation_is_refused() -> None:
    with pytest.raises(GeometryError, match="not two orthogonal unit vectors"):
        plan_stack([Plane((0, 0, 0), (1, 0, 0, 0.5, 0.5, 0), "x")], (1, 1))

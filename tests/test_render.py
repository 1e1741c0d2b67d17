"""The shared renderer: window/level to display pixels, colour maps, blending, and the pictures written to files."""

from __future__ import annotations

import numpy as np
import pytest

from medtl.dicom.volume import Volume
from medtl.export.overlay import overlay_rgb
from medtl.render.blend import blend_rgb, boundary, mix_bgra, outline, rgb_bytes
from medtl.render.colours import colormap_table, jet, label_colour
from medtl.render.window import PRESETS, GreyMapper, WindowLevel, auto_window, grey_rgb, percentile_range, voi_linear


def channels(pixels: np.ndarray) -> np.ndarray:
    """Display pixels (uint32 0xFFRRGGBB) as bytes [..., 4] in B, G, R, A order."""
    return pixels.view(np.uint8).reshape(*pixels.shape, 4)


def test_lookup_table_matches_the_dicom_linear_function() -> None:
    values = np.arange(-2000, 3000, 7, dtype=np.int16).reshape(1, -1)
    mapper = GreyMapper(values.dtype)
    for window in (PRESETS["CT brain"], PRESETS["CT lung"], WindowLevel(1, 0)):
        mapper.set_window(window, invert=False)
        expected = voi_linear(values.astype(np.float64), window).astype(np.uint8)
        assert np.array_equal(channels(mapper(values))[..., 0], expected)
        mapper.set_window(window, invert=True)
        assert np.array_equal(channels(mapper(values))[..., 1], 255 - expected)


def test_float_images_map_without_a_table() -> None:
    values = np.linspace(-5, 5, 50, dtype=np.float32).reshape(5, 10)
    mapper = GreyMapper(values.dtype)
    mapper.set_window(WindowLevel(4, 0), invert=False)
    grey = channels(mapper(values))[..., 2]
    assert grey[0, 0] == 0 and grey[-1, -1] == 255 and np.all(np.diff(grey.reshape(-1).astype(int)) >= 0)


def test_auto_window_spans_the_bulk_of_the_values() -> None:
    window = auto_window(np.arange(1000.0))
    assert 985 < window.width < 1000 and window.center == pytest.approx(499.5)


def test_grey_pictures_map_a_range_linearly() -> None:
    grey = grey_rgb(np.array([[-1.0, 0.0, 5.0, 10.0, 11.0]]), 0.0, 10.0)
    assert grey.shape == (1, 5, 3) and np.allclose(grey[0, :, 0], [0, 0, 0.5, 1, 1]) and np.all(grey[..., 0] == grey[..., 2])
    assert not grey_rgb(np.arange(4.0).reshape(2, 2), 3.0, 3.0).any()  # an empty range is black
    assert percentile_range(np.arange(101.0), (1.0, 99.0)) == pytest.approx((1.0, 99.0))


def test_the_outline_of_a_mask_is_its_boundary_inside_it() -> None:
    mask = np.zeros((7, 7), bool)
    mask[1:6, 2:5] = True
    edge = outline(mask)
    assert edge[1, 2] and edge[5, 4] and edge[3, 2] and not edge[3, 3] and not edge[0, 0]
    assert np.array_equal(edge, mask & boundary(mask))
    labels = mask.astype(np.uint8) * 2
    assert boundary(labels)[0, 2] and not boundary(labels)[3, 3]  # outside pixels next to a label are boundary too


def test_blending_is_the_same_mix_in_both_pixel_formats() -> None:
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., :3] = 100
    where = np.array([[True, False], [False, True]])
    colour = np.array([[200, 0, 50]] * 2, dtype=np.uint16)  # R, G, B
    mix_bgra(bgra, where, colour, 128)
    expected = rgb_bytes(blend_rgb(np.full(3, 100 / 255), np.array([200, 0, 50]) / 255, 128 / 255))
    assert np.array_equal(bgra[0, 0, 2::-1], expected) and np.array_equal(bgra[0, 1, :3], [100, 100, 100])


def test_colours() -> None:
    assert label_colour(1) == label_colour(11) and label_colour(1) != label_colour(2)
    table = colormap_table("jet")
    assert table.shape == (256, 3) and tuple(table[0]) == (0, 0, 128) and tuple(table[-1]) == (128, 0, 0)
    assert np.allclose(jet(np.array([0.0, 1.0])), [[0, 0, 0.5], [0.5, 0, 0]])


def test_the_exported_heatmap_png_blends_jet_over_the_grey_middle_slice() -> None:
    image = Volume(np.tile(np.arange(10.0), (3, 10, 1)), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    heat = np.zeros(image.shape)
    heat[1, 5, 5] = 1.0
    rgb = overlay_rgb(image, Volume(heat, image.spacing, image.origin), opacity=0.5)
    assert rgb.dtype == np.uint8 and rgb.shape == (10, 10, 3)
    assert tuple(rgb[0, 0]) == (0, 0, 0) and rgb[0, 9, 0] == rgb[0, 9, 1] == rgb[0, 9, 2] == 255  # no heat: grey
    grey = grey_rgb(image.array[1], *percentile_range(image.array[1], (1.0, 99.0)))[5, 5]
    assert np.array_equal(rgb[5, 5], rgb_bytes(0.5 * grey + 0.5 * jet(np.array(1.0))))

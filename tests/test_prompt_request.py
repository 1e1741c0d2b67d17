"""The prompt engine's parts that need no network: requests, planes, windows, the encoder's input, the embedding cache."""

from __future__ import annotations

import numpy as np
import pytest

from medtl.errors import InvalidRequest
from medtl.prompt.embedding import EmbeddingCache, SliceEmbedding, SliceKey
from medtl.prompt.preprocessing import IntensityWindow, encoder_input, mask_on_slice, resized_shape, window_for
from medtl.prompt.request import Point, PromptRequest
from medtl.prompt.slicing import cut, paste


@pytest.mark.parametrize(
    ("box", "points", "field", "reason"),
    [
        ((50, 10, 40, 20), (), "box", "the box (50, 10)–(40, 20) is empty: x1 must be right of x0 and y1 below y0"),
        ((10, 10, 10, 20), (), "box", "is empty"),
        ((10, 10, 120, 20), (), "box", "the box (10, 10)–(120, 20) reaches outside the slice, whose columns are 0 to 99 and rows 0 to 79"),
        ((-1, 10, 20, 20), (), "box", "reaches outside the slice"),
        ((10, 10, 20, 80), (), "box", "reaches outside the slice"),
        ((10, 10, 20, 20), (Point(15, 15), Point(100, 5, positive=False)), "points", "the click at (100, 5) is outside the slice"),
    ],
)
def test_a_prompt_that_cannot_work_is_refused_with_its_reason(box, points, field: str, reason: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        PromptRequest((80, 100), box, points)
    assert refused.value.field == field and reason in refused.value.reason


def test_a_box_along_the_slice_edges_is_accepted() -> None:
    assert PromptRequest((80, 100), (0, 0, 99, 79), (Point(99, 79, positive=False),)).box == (0, 0, 99, 79)


def test_planes_cut_the_stored_zyx_array_and_masks_go_back_where_they_came_from() -> None:
    volume = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    assert cut(volume, "axial", 2).shape == (5, 6) and cut(volume, "coronal", 1).shape == (4, 6) and cut(volume, "sagittal", 3).shape == (4, 5)
    assert cut(volume, "sagittal", 3)[1, 2] == volume[1, 2, 3]
    mask = np.zeros(volume.shape, dtype=np.uint8)
    paste(mask, "coronal", 4, np.ones((4, 6), dtype=bool))
    assert mask[:, 4].all() and mask.sum() == 24
    with pytest.raises(InvalidRequest, match="slice 5 is outside the volume: the coronal plane has slices 0 to 4") as refused:
        cut(volume, "coronal", 5)
    assert refused.value.field == "slice"
    with pytest.raises(InvalidRequest, match="'oblique' is not one of axial, coronal, sagittal"):
        cut(volume, "oblique", 0)


def test_the_window_follows_the_modality() -> None:
    ct = np.array([-1000.0, 0.0, 40.0, 3000.0])
    assert window_for(ct, "CT") == IntensityWindow(-160.0, 240.0)  # soft tissue, centre 40 / width 400
    assert window_for(ct, "MR", ct_window=(400, 1800)) == IntensityWindow(-500.0, 1300.0)  # a given CT window wins
    assert np.allclose(window_for(ct, "CT").apply(ct), [0.0, 0.4, 0.5, 1.0])
    mr = np.concatenate([np.zeros(1000), np.arange(1, 1001, dtype=float)])  # the zeros (background) are left out
    window = window_for(mr, "MR")
    assert 5 <= window.low <= 6 and 995 <= window.high <= 996


def test_the_encoder_sees_the_slice_resized_to_256_and_padded_and_masks_come_back_on_its_grid() -> None:
    import torch

    pixels = np.full((100, 50), 200.0)
    image = encoder_input(pixels, IntensityWindow(0.0, 100.0))
    assert image.shape == (1, 3, 256, 256) and resized_shape((100, 50)) == (256, 128)
    assert torch.all(image[..., :, :128] == 1.0) and torch.all(image[..., :, 128:] == 0.0)
    logits = torch.full((1, 1, 256, 256), -5.0)
    logits[..., :128, :64] = 5.0  # the top-left quarter of the resized slice
    mask = mask_on_slice(logits, (100, 50))
    assert mask.shape == (100, 50) and mask[:50, :25].all() and not mask[52:].any() and not mask[:, 27:].any()


def _embedding(index: int, window: IntensityWindow = IntensityWindow(0.0, 1.0)) -> SliceEmbedding:
    import torch

    return SliceEmbedding(SliceKey("series", "axial", index), (10, 10), window, torch.zeros(1, 256, 64, 64))  # 4 MiB


def test_the_embedding_cache_keeps_the_most_recently_used_within_its_bytes() -> None:
    cache = EmbeddingCache(max_bytes=2 * _embedding(0).nbytes)
    for index in range(3):
        cache.put(_embedding(index))
    assert len(cache) == 2 and SliceKey("series", "axial", 0) not in cache and cache.nbytes == 2 * _embedding(0).nbytes
    assert cache.get(SliceKey("series", "axial", 1), IntensityWindow(0.0, 1.0)) is not None  # 1 is now the most recent
    cache.put(_embedding(3))
    assert SliceKey("series", "axial", 1) in cache and SliceKey("series", "axial", 2) not in cache


def test_an_embedding_answers_only_for_the_window_it_was_made_with() -> None:
    cache = EmbeddingCache()
    cache.put(_embedding(0, IntensityWindow(-160.0, 240.0)))
    assert cache.get(SliceKey("series", "axial", 0), IntensityWindow(-160.0, 240.0)) is not None
    assert cache.get(SliceKey("series", "axial", 0), IntensityWindow(-1000.0, 1000.0)) is None
    cache.put(_embedding(0, IntensityWindow(-1000.0, 1000.0)))
    assert len(cache) == 1 and cache.nbytes == _embedding(0).nbytes

"""LiteMedSAM prompting on real anatomy: the Colin27 head and its AAL atlas (Debian's mricron-data, as the tasks' tests use).

The image encoder costs one to several seconds a slice on 2 CPU cores, so one model is shared by the
module and the tests reuse cached slices: 78 of the head (thalami), and a few near the top of the
skull-stripped brain for propagation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from medtl.data.images import read_image
from medtl.data.tasks import COLIN27_FILE
from medtl.errors import InvalidRequest
from medtl.progress import CancelToken, Cancelled
from medtl.prompt.embedding import SliceKey
from medtl.prompt.engine import PromptModel
from medtl.prompt.preprocessing import encoder_input, window_for
from medtl.prompt.propagation import PropagationSettings, propagate
from medtl.prompt.request import Point, PromptRequest

COLIN = Path(os.environ.get("MEDTL_COLIN27") or COLIN27_FILE).parent
THALAMUS_L, THALAMUS_R = 77, 78  # AAL labels
SLICE = 78  # axial, through both thalami
TOP = slice(148, 161)  # the top of the brain (its last slice is 155); propagation starts at 149


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(columns[0]), int(rows[0]), int(columns[-1]), int(rows[-1])


def centre(mask: np.ndarray, positive: bool) -> Point:
    rows, columns = np.nonzero(mask)
    return Point(float(columns.mean()), float(rows.mean()), positive)


@pytest.fixture(scope="module")
def colin() -> dict[str, np.ndarray]:
    files = {"head": "ch2.nii.gz", "brain": "ch2bet.nii.gz", "atlas": "aal.nii.gz"}
    missing = [name for name in files.values() if not (COLIN / name).is_file()]
    assert not missing, f"{missing} not in {COLIN}: they come with Debian's mricron-data (make test-data)"
    return {key: read_image(COLIN / name).array for key, name in files.items()}


@pytest.fixture(scope="module")
def model() -> PromptModel:
    """The bundled LiteMedSAM; ``encoder_calls`` counts the image encoder's runs (the copy ``embed`` runs)."""
    prompt_model = PromptModel.load("medsam")
    prompt_model.encoder_calls = 0  # type: ignore[attr-defined]

    def count(*_: object) -> None:
        prompt_model.encoder_calls += 1  # type: ignore[attr-defined]

    prompt_model.encoder.register_forward_hook(count)
    return prompt_model


@pytest.fixture(scope="module")
def head_slice(model: PromptModel, colin: dict[str, np.ndarray]):
    head = colin["head"]
    return model.embed(SliceKey("colin27", "axial", SLICE), head[SLICE], window_for(head, "MR"))


def test_the_embedding_is_the_encoders_as_trained(model: PromptModel, colin: dict[str, np.ndarray], head_slice) -> None:
    import torch

    head = colin["head"]
    with torch.inference_mode():
        as_trained = model.network.image_encoder(encoder_input(head[SLICE], window_for(head, "MR")))
    assert head_slice.features.shape == as_trained.shape == (1, 256, 64, 64) and head_slice.features.is_contiguous()
    assert float((head_slice.features - as_trained).abs().max()) < 1e-4  # batch norms folded, channels-last: measured 4e-6
    assert all(isinstance(module, torch.nn.BatchNorm2d) for module in model.network.image_encoder.modules() if "BatchNorm" in type(module).__name__)
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in model.encoder.modules())


def test_a_box_from_the_true_mask_segments_the_structure(model: PromptModel, colin: dict[str, np.ndarray], head_slice) -> None:
    atlas = colin["atlas"][SLICE]
    for label in (THALAMUS_L, THALAMUS_R):
        truth = atlas == label
        result = model.segment(head_slice, PromptRequest(truth.shape, bbox(truth)))
        assert result.mask.shape == truth.shape
        x0, y0, x1, y1 = bbox(truth)
        the_box = np.zeros_like(truth)
        the_box[y0 : y1 + 1, x0 : x1 + 1] = True
        assert dice(result.mask, truth) >= 0.75  # measured 0.92 and 0.91
        assert dice(result.mask, truth) > dice(the_box, truth)  # the box itself as the mask: 0.86 and 0.84
    brain = colin["brain"][SLICE] > 0
    assert dice(model.segment(head_slice, PromptRequest(brain.shape, bbox(brain))).mask, brain) >= 0.7  # measured 0.84


def test_a_negative_click_removes_what_the_box_also_held(model: PromptModel, colin: dict[str, np.ndarray], head_slice) -> None:
    atlas = colin["atlas"][SLICE]
    left, right = atlas == THALAMUS_L, atlas == THALAMUS_R
    box = bbox(left | right)
    both = model.segment(head_slice, PromptRequest(left.shape, box)).mask
    assert dice(both, left | right) >= 0.75  # measured 0.93
    only_left = model.segment(head_slice, PromptRequest(left.shape, box, (centre(right, positive=False),))).mask
    assert (only_left & right).sum() < 0.1 * right.sum()  # measured 0 of 500 pixels
    assert dice(only_left, left) >= 0.75  # measured 0.90


def test_an_including_click_where_a_short_box_missed_the_structure_adds_it(model: PromptModel, colin: dict[str, np.ndarray], head_slice) -> None:
    truth = colin["atlas"][SLICE] == THALAMUS_L
    x0, y0, x1, y1 = bbox(truth)
    short = (x0, y0, x1, y0 + (y1 - y0) // 2)  # the box stops halfway down the thalamus
    before = model.segment(head_slice, PromptRequest(truth.shape, short)).mask
    missed = truth & ~before
    rows, columns = np.nonzero(missed)
    click = Point(float(columns[np.argmax(rows)]), float(rows.max()))  # the lowest missed pixel
    after = model.segment(head_slice, PromptRequest(truth.shape, short, (click,))).mask
    assert after[round(click.y), round(click.x)] and not before[round(click.y), round(click.x)]
    assert dice(after, truth) > dice(before, truth) + 0.05  # measured 0.38 -> 0.47: the box now reaches the click (with a margin)


def test_a_cached_slice_costs_no_encoder_run(model: PromptModel, colin: dict[str, np.ndarray], head_slice) -> None:
    head = colin["head"]
    before = model.encoder_calls  # type: ignore[attr-defined]
    again = model.embed(SliceKey("colin27", "axial", SLICE), head[SLICE], window_for(head, "MR"))
    truth = colin["atlas"][SLICE] == THALAMUS_L
    model.segment(again, PromptRequest(truth.shape, bbox(truth)))
    assert again is head_slice and model.encoder_calls == before  # type: ignore[attr-defined]


def test_a_prompt_for_another_slice_shape_is_refused(model: PromptModel, head_slice) -> None:
    with pytest.raises(InvalidRequest, match="embedding is of a"):
        model.segment(head_slice, PromptRequest((100, 100), (10, 10, 20, 20)))


def test_propagation_follows_the_structure_and_stops_where_it_ends(model: PromptModel, colin: dict[str, np.ndarray]) -> None:
    volume = colin["brain"][TOP]
    truth = volume > 0
    last = int(np.flatnonzero(truth.any(axis=(1, 2)))[-1])
    start = 1
    window = window_for(volume, "MR")
    embedding = model.embed(SliceKey("colin27-top", "axial", start), volume[start], window)
    start_mask = model.segment(embedding, PromptRequest(truth[start].shape, bbox(truth[start]))).mask
    reached = list(propagate(model, volume, "axial", start, start_mask, window, "colin27-top"))
    up = [s.index for s in reached if s.step == 1]
    down = [s.index for s in reached if s.step == -1]
    assert up == list(range(start + 1, up[-1] + 1)) and down == list(range(start - 1, -1, -1))  # in order, down to the crop's edge
    assert 2 <= len(up) and up[-1] < last  # it stopped before the slices beyond the brain (measured: after 3 slices, at 152 of the head)
    assert all(dice(s.mask, truth[s.index]) >= 0.5 for s in reached)  # measured 0.59 to 0.9


def test_propagation_stops_after_max_slices_on_each_side(model: PromptModel, colin: dict[str, np.ndarray]) -> None:
    volume = colin["brain"][TOP]
    truth, window = volume > 0, window_for(volume, "MR")
    embedding = model.embed(SliceKey("colin27-top", "axial", 1), volume[1], window)
    start_mask = model.segment(embedding, PromptRequest(truth[1].shape, bbox(truth[1]))).mask
    reached = list(propagate(model, volume, "axial", 1, start_mask, window, "colin27-top", PropagationSettings(max_slices=1)))
    assert [(s.index, s.step) for s in reached] == [(2, 1), (0, -1)]  # unlimited, it goes on up to slice 4 (the test above)
    with pytest.raises(InvalidRequest, match="at least 1 slice"):
        PropagationSettings(max_slices=0)


def test_propagation_can_be_cancelled_between_slices(model: PromptModel, colin: dict[str, np.ndarray]) -> None:
    volume = colin["brain"][TOP]
    truth, window, cancel = volume > 0, window_for(volume, "MR"), CancelToken()
    embedding = model.embed(SliceKey("colin27-top", "axial", 1), volume[1], window)
    start_mask = model.segment(embedding, PromptRequest(truth[1].shape, bbox(truth[1]))).mask
    slices = propagate(model, volume, "axial", 1, start_mask, window, "colin27-top", cancel=cancel)
    first = next(slices)
    cancel.cancel()
    with pytest.raises(Cancelled):
        next(slices)
    assert first.index == 2


def test_prompt_command_writes_the_mask_on_the_inputs_grid(model: PromptModel, colin: dict[str, np.ndarray], head_slice, tmp_path: Path, monkeypatch, capsys) -> None:
    from medtl.cli import main

    monkeypatch.setattr(PromptModel, "load", classmethod(lambda cls, source="medsam", cache=None: model))  # the module's model, its cache warm
    truth = colin["atlas"][SLICE] == THALAMUS_L
    out = tmp_path / "thalamus.nii.gz"
    x0, y0, x1, y1 = bbox(truth)
    assert main(["prompt", str(COLIN / "ch2.nii.gz"), "--slice", str(SLICE), "--box", str(x0), str(y0), str(x1), str(y1), "--out", str(out)]) == 0
    written, source = read_image(out), read_image(COLIN / "ch2.nii.gz")
    assert written.shape == source.shape and np.allclose(written.affine_lps(), source.affine_lps())
    assert set(np.unique(written.array)) == {0, 1} and not written.array[SLICE + 1].any()
    assert dice(written.array[SLICE] > 0, truth) >= 0.75
    assert "1 slice(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--slice", "999", "--box", "10", "10", "20", "20"], "--slice: slice 999 is outside the volume: the axial plane has slices 0 to 180"),
        (["--slice", "5", "--plane", "coronal", "--box", "10", "10", "190", "20"], "--box: the box (10, 10)–(190, 20) reaches outside the slice"),
        (["--slice", "5", "--box", "30", "10", "20", "20"], "--box: the box (30, 10)–(20, 20) is empty"),
        (["--slice", "5", "--box", "10", "10", "20", "20", "--point", "15", "400", "--negative"], "--point: the click at (15, 400) is outside"),
        (["--slice", "5", "--box", "10", "10", "20", "20", "--max-slices", "3"], "--max-slices: it limits --propagate, which was not given"),
        (["--slice", "5", "--box", "10", "10", "20", "20", "--propagate", "--max-slices", "0"], "--max-slices: propagation reaches at least 1 slice"),
    ],
)
def test_prompt_command_names_the_bad_flag_before_loading_a_model(arguments: list[str], message: str, tmp_path: Path, monkeypatch, capsys) -> None:
    from medtl.cli import main

    monkeypatch.setattr(PromptModel, "load", classmethod(lambda *_: pytest.fail("the model is loaded before the prompt is checked")))
    assert main(["prompt", str(COLIN / "ch2.nii.gz"), *arguments, "--out", str(tmp_path / "m.nii.gz")]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "m.nii.gz").exists()

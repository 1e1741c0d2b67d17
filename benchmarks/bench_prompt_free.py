"""Prompt-free prediction (issue 13): LiteMedSAM carried through a whole structure from one seed box, against the
task-specific U-Net trained on the same 4 labelled slices.

Usage: python benchmarks/bench_prompt_free.py --adapted RUN [--unet-minutes 2 | --no-unet] [--out DIR] [--threads 2]

On the Colin27 head (Debian's mricron-data), the AAL putamina (left and right, each its own structure):
  LiteMedSAM  one box on the seed slice (76, the middle of the 4 labelled ones; the true mask's box, each side moved by
              up to 3 pixels, seeded), its mask carried through the neighbouring slices by
              :func:`medtl.prompt.propagation.propagate` (each slice prompted with the box of the previous slice's mask,
              stopping where the structure ends): no further prompt. Zero-shot, and adapted (``--adapted``: a
              ``bench_adapt.py`` run, decoder only, on the 4 slices).
  lite0-unet  ``medtl train --model lite0-unet`` (its default weights) on the same 4 labelled axial slices (both
              putamina, the rest of the volume unannotated) for ``--unet-minutes``, then the app's Predictor on the
              whole volume.
Score: Dice of each putamen over every axial slice but the 4 labelled ones (the seed is one of them), mean of the two.
A lite0-unet run finished before in ``--out`` is reused.

Where propagation stops: for each putamen, and each thalamus (seeded on axial slice 80, the middle of its extent, the
same way), the slices reached, how many lie beyond the structure's ends (overshoot) and how many of its slices were not
reached (short), with the default end tests and with the earlier ones (a mask of 0.05 of the start mask's area or more, no upper bound).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_adapt import TRAINING  # noqa: E402

PUTAMINA = (73, 74)
SEED_SLICE = 76
THALAMI = (77, 78)
THALAMUS_SEED = 80
JITTER = 3


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(1, int(a.sum()) + int(b.sum()))


def propagated(model, head: np.ndarray, truth: np.ndarray, rng: np.random.Generator, settings, seed_slice: int = SEED_SLICE) -> np.ndarray:
    """The volume mask one jittered box on ``seed_slice`` gives, propagated until the structure ends (``settings``)."""
    from medtl.prompt.embedding import SliceKey
    from medtl.prompt.preprocessing import window_for
    from medtl.prompt.propagation import propagate
    from medtl.prompt.request import PromptRequest

    seed = truth[seed_slice]
    rows, columns = np.flatnonzero(seed.any(axis=1)), np.flatnonzero(seed.any(axis=0))
    box = tuple(float(v) for v in np.array([columns[0], rows[0], columns[-1], rows[-1]]) + rng.integers(-JITTER, JITTER + 1, 4))
    window = window_for(head, "MR")
    embedding = model.embed(SliceKey("colin27", "axial", seed_slice), head[seed_slice], window)
    mask = np.zeros(head.shape, dtype=bool)
    mask[seed_slice] = model.segment(embedding, PromptRequest(seed.shape, box)).mask  # type: ignore[arg-type]
    for reached in propagate(model, head, "axial", seed_slice, mask[seed_slice], window, "colin27", settings):
        mask[reached.index] = reached.mask
    return mask


def extent_note(mask: np.ndarray, truth: np.ndarray) -> tuple[str, int, int]:
    """``"reached-slices of extent"``, the slices reached beyond the structure's ends and those of it not reached."""
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    extent = np.flatnonzero(truth.any(axis=(1, 2)))
    over = max(0, int(extent[0] - slices[0])) + max(0, int(slices[-1] - extent[-1]))
    short = max(0, int(slices[0] - extent[0])) + max(0, int(extent[-1] - slices[-1]))
    return f"{slices[0]}-{slices[-1]} of {extent[0]}-{extent[-1]}", over, short


def unet_prediction(out: Path, minutes: float) -> tuple[np.ndarray, str, int]:
    """The lite0-unet's whole-volume label map (1 left, 2 right putamen), what it trained, and its optimiser steps."""
    from medtl.inference.predictor import Predictor
    from medtl.training.events import StepProgress
    from medtl.training.run_folder import RunFolder
    from medtl.workflow.train import TrainRequest, preview, train
    from tests.test_prompt_adapt import sparse_mask

    image, label = sparse_mask(out, PUTAMINA, TRAINING, values=(1, 2), ignore=3)
    datalist = out / "datalist.json"
    datalist.write_text(json.dumps({"training": [{"image": str(image), "label": str(label)}], "labels": {"0": "background", "1": "putamen L", "2": "putamen R", "3": "ignore"}}))
    run, steps_file = out / "unet", out / "unet_steps.json"
    if not steps_file.is_file():
        request = TrainRequest(datalist, "segmentation", run, model="lite0-unet", time_limit_minutes=minutes, device="cpu")
        print("lite0-unet:", preview(request).text(), flush=True)
        steps = 0

        def count(event: object) -> None:
            nonlocal steps
            steps += isinstance(event, StepProgress)

        train(request, on_event=count)
        steps_file.write_text(json.dumps({"steps": steps}))
    summary = RunFolder(run).read_summary()
    started = time.perf_counter()
    predicted = Predictor.from_run(run, device="cpu").predict(image).mask.array
    print(f"lite0-unet: {summary.epochs} epochs, stopped: {summary.stopped_because}; whole-volume prediction {time.perf_counter() - started:.0f} s", flush=True)
    return predicted, RunFolder(run).read_config().model.get("architecture", "?"), json.loads(steps_file.read_text())["steps"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapted", type=Path, required=True, help="a bench_adapt.py run folder (decoder only)")
    parser.add_argument("--unet-minutes", type=float, default=2.0)
    parser.add_argument("--no-unet", action="store_true", help="propagation only")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    from medtl.data.images import read_image
    from medtl.prompt.engine import PromptModel
    from medtl.prompt.propagation import PropagationSettings
    from tests.test_prompt import COLIN

    torch.set_num_threads(args.threads)
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_prompt_free_"))
    out.mkdir(parents=True, exist_ok=True)
    head, atlas = read_image(COLIN / "ch2.nii.gz").array, read_image(COLIN / "aal.nii.gz").array
    scored = np.setdiff1d(np.arange(head.shape[0]), TRAINING)
    bundled = PromptModel.load("medsam")
    models = {"LiteMedSAM zero-shot": bundled, "LiteMedSAM adapted": PromptModel.load(f"run:{args.adapted}", cache=bundled.cache)}
    rows = []
    end_tests = {"default": PropagationSettings(), "before (area 0.05x-unbounded)": PropagationSettings(min_area=0.05, max_area=None)}
    for (name, model), (tests, settings) in itertools.product(models.items(), end_tests.items()):
        rng, scores, reached = np.random.default_rng(args.seed), [], []
        started = time.perf_counter()
        for label in PUTAMINA:
            truth = atlas == label
            mask = propagated(model, head, truth, rng, settings)
            scores.append(dice(mask[scored], truth[scored]))
            reached.append("%s (over %d, short %d)" % extent_note(mask, truth))
        thalami = []
        for label in THALAMI:
            truth = atlas == label
            mask = propagated(model, head, truth, rng, settings, THALAMUS_SEED)
            thalami.append("%s (over %d, short %d) Dice %.3f" % (*extent_note(mask, truth), dice(mask, truth)))
        rows.append((f"{name}, {tests}", scores, f"putamina reached {', '.join(reached)}; thalami {', '.join(thalami)}; {time.perf_counter() - started:.0f} s"))
        print(rows[-1], flush=True)
    if not args.no_unet:
        predicted, architecture, steps = unet_prediction(out, args.unet_minutes)
        unet_scores = [dice(predicted[scored] == value, atlas[scored] == label) for value, label in zip((1, 2), PUTAMINA)]
        rows.append((f"{architecture} ({steps} steps, {args.unet_minutes:g} min)", unet_scores, "no prompt"))
    print(f"putamina (left, right), Dice over the axial slices but the labelled {TRAINING}:")
    for name, scores, note in rows:
        print(f"  {name:48s} {np.mean(scores):.3f} ({scores[0]:.3f}, {scores[1]:.3f})   {note}")
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Annotation effort (issue 13): a simulated user prompting LiteMedSAM, Dice against the number of prompts and the brush
strokes the same Dice would take. Zero-shot vs after "Adapt to my labels" on 4 labelled slices.

Usage: python benchmarks/bench_effort.py [--adapted RUN | --adapt-minutes 2] [--prompts 6] [--slices 3] [--jitter 3]
       [--rule edits|points|multimask]

Structures: the AAL atlas's putamen, thalamus, caudate and hippocampus (left and right, each its own structure) on
``--slices`` axial slices of each, at the quartiles of its extent (never one of the adaptation's labelled slices) of the
Colin27 head (Debian's mricron-data).

The simulated user: prompt 1 is the box of the true mask with each side moved by up to ``--jitter`` pixels (seeded);
every further prompt adds one click where the mask is most wrong: the largest connected region of false negatives
(a click that includes) or of false positives (one that excludes), whichever is larger, clicked at its most interior
pixel (farthest from the region's edge). The box and the clicks so far make each prompt (the decoder alone: the
slice's embedding is computed once). ``--rule`` says how the clicks reach the model: the app's box edits and mask
logic (:mod:`medtl.prompt.clicks`, the default), SAM's point prompts to the decoder (what the app did before), or
point prompts with SAM's 3 candidate masks; the script also prints each candidate's Dice for the box alone (whether
LiteMedSAM's multimask heads were trained). Each prompt's result is one undoable step in the app, so the script also reports
the user who undoes the first click that makes the mask worse and stops there ("undo-and-stop").

The brush model (what the same Dice would cost by hand): a round brush of radius ``r`` pixels painted in straight
horizontal strokes, one per band of 2r + 1 rows: along the band's centre row (or, where the structure misses it, the
band's row holding most of it), from the structure's first to its last pixel on that row (one stroke per run of
structure pixels), painting everything within ``r`` of the line (spilling over the edge as a real brush does). A careful user paints the strokes covering the most of the
structure first; the strokes for a Dice are the fewest, in that order, whose union reaches it. Beyond the brush's best
(every stroke painted) no number of strokes reaches a Dice: that shows as ``never``.

The adapted model is a run of ``benchmarks/bench_adapt.py`` (``--adapted RUN``; decoder only, so both models share the
embeddings), or one made here for ``--adapt-minutes`` the same way.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_adapt import TRAINING, adapt_putamina  # noqa: E402

STRUCTURES = {"putamen": (73, 74), "thalamus": (77, 78), "caudate": (71, 72), "hippocampus": (37, 38)}
MIN_PIXELS = 30
RADII = (1, 2)


@dataclass(frozen=True)
class Instance:
    """One structure (one side) on one axial slice."""

    structure: str
    index: int
    truth: np.ndarray


def instances(atlas: np.ndarray, per_structure: int) -> list[Instance]:
    """Each structure's sides on ``per_structure`` slices at the quartiles of its extent, skipping the adaptation's slices."""
    found = []
    for name, labels in STRUCTURES.items():
        extent = np.flatnonzero(np.isin(atlas, labels).any(axis=(1, 2)))
        for quantile in np.linspace(0, 1, per_structure + 2)[1:-1]:
            index = int(np.quantile(extent, quantile))
            while index in TRAINING:
                index += 1
            for label in labels:
                truth = atlas[index] == label
                if truth.sum() >= MIN_PIXELS:
                    found.append(Instance(name, index, truth))
    return found


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(1, int(a.sum()) + int(b.sum()))


def jittered_box(truth: np.ndarray, jitter: int, rng: np.random.Generator) -> tuple[float, float, float, float]:
    rows, columns = np.flatnonzero(truth.any(axis=1)), np.flatnonzero(truth.any(axis=0))
    x0, y0, x1, y1 = np.array([columns[0], rows[0], columns[-1], rows[-1]]) + rng.integers(-jitter, jitter + 1, 4)
    height, width = truth.shape
    x0, y0 = min(max(0, x0), width - 2), min(max(0, y0), height - 2)
    return float(x0), float(y0), float(max(min(width - 1, x1), x0 + 1)), float(max(min(height - 1, y1), y0 + 1))


def corrective_click(mask: np.ndarray, truth: np.ndarray):
    """The click the simulated user makes next (a :class:`~medtl.prompt.request.Point`), or None when the mask is exact."""
    from scipy import ndimage

    from medtl.prompt.request import Point

    best: tuple[int, np.ndarray, bool] | None = None
    for wrong, positive in ((truth & ~mask, True), (mask & ~truth, False)):
        regions, count = ndimage.label(wrong)
        if count:
            sizes = np.bincount(regions.ravel())[1:]
            largest = int(np.argmax(sizes)) + 1
            if best is None or sizes[largest - 1] > best[0]:
                best = (int(sizes[largest - 1]), regions == largest, positive)
    if best is None:
        return None
    _, region, positive = best
    depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), region.shape)
    return Point(float(x), float(y), positive)


def brush_strokes(truth: np.ndarray, radius: int) -> list[np.ndarray]:
    """The strokes of the brush model (module docstring), each the boolean mask it paints, most structure covered first."""
    from scipy import ndimage

    disk = np.hypot(*np.mgrid[-radius : radius + 1, -radius : radius + 1]) <= radius
    rows = np.flatnonzero(truth.any(axis=1))
    strokes = []
    for centre in range(int(rows[0]) + radius, int(rows[-1]) + radius + 1, 2 * radius + 1):
        band = range(max(0, centre - radius), min(truth.shape[0], centre + radius + 1))
        row = centre if centre in band and truth[centre].any() else max(band, key=lambda r: int(truth[r].sum()))
        runs, count = ndimage.label(truth[row])
        for run in range(1, count + 1):
            line = np.zeros_like(truth)
            line[row, runs == run] = True
            strokes.append(ndimage.binary_dilation(line, disk))
    return sorted(strokes, key=lambda painted: -int((painted & truth).sum()))


def strokes_for(dices: list[float], truth: np.ndarray, radius: int) -> tuple[list[int | None], float]:
    """For each Dice in ``dices``: the fewest strokes (in the model's order) whose union reaches it (None: never), and the
    brush's best Dice."""
    painted = np.zeros_like(truth)
    reached = []
    for stroke in brush_strokes(truth, radius):
        painted |= stroke
        reached.append(dice(painted, truth))
    best = np.maximum.accumulate(reached)
    return [int(np.searchsorted(best, target)) + 1 if target <= best[-1] else None for target in dices], float(best[-1])


def segment_with(rule: str):
    """How clicks reach the model: ``edits`` (the app's: :mod:`medtl.prompt.clicks`), ``points`` (the decoder's point
    prompts, single mask) or ``multimask`` (point prompts, SAM's 3 candidates: the one consistent with every click with
    the highest predicted IoU, else the highest predicted IoU)."""
    from medtl.prompt.clicks import honours

    def segment(model, embedding, request) -> np.ndarray:
        if rule == "edits":
            return model.segment(embedding, request).mask
        if rule == "points":
            return model.decode(embedding, request.box, request.points)[0].mask
        candidates = sorted(model.decode(embedding, request.box, request.points, multimask=True), key=lambda c: -c.predicted_iou)
        return next((c.mask for c in candidates if honours(c.mask, request.points)), candidates[0].mask)

    return segment


def simulate(model, embedding, truth: np.ndarray, box: tuple[float, float, float, float], prompts: int, segment) -> list[float]:
    """The Dice after each of ``prompts`` prompts: the box, then one corrective click more each time."""
    from medtl.prompt.request import PromptRequest

    points: list = []
    dices = []
    while len(dices) < prompts:
        mask = segment(model, embedding, PromptRequest(truth.shape, box, tuple(points)))
        dices.append(dice(mask, truth))
        click = corrective_click(mask, truth)
        if click is None:
            break
        points.append(click)
    return dices + [dices[-1]] * (prompts - len(dices))


def candidate_dices(model, embedding, truth: np.ndarray, box: tuple[float, float, float, float]) -> list[float]:
    """The Dice of each of SAM's 3 multimask candidates for the box alone, then of the single-mask output."""
    return [dice(c.mask, truth) for c in model.decode(embedding, box, multimask=True)] + [dice(model.decode(embedding, box)[0].mask, truth)]


def kept_prompts(dices: list[float]) -> int:
    """How many prompts a user keeps who undoes the first click that makes the mask worse and stops there."""
    worse = [k for k in range(1, len(dices)) if dices[k] < dices[k - 1]]
    return worse[0] if worse else len(dices)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapted", type=Path, help="a bench_adapt.py run folder (decoder only); else one is made here")
    parser.add_argument("--adapt-minutes", type=float, default=2.0)
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--slices", type=int, default=3)
    parser.add_argument("--jitter", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rule", choices=("edits", "points", "multimask"), default="edits", help="how clicks reach the model (segment_with)")
    args = parser.parse_args()
    import torch

    from medtl.data.images import read_image
    from medtl.prompt.embedding import SliceKey
    from medtl.prompt.engine import PromptModel
    from medtl.prompt.preprocessing import window_for
    from tests.test_prompt import COLIN

    torch.set_num_threads(args.threads)
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    started = time.perf_counter()
    adapted_run = args.adapted
    if adapted_run is None:
        adapted_run = Path(tempfile.mkdtemp(prefix="bench_effort_")) / "run"
        summary = adapt_putamina(adapted_run, args.adapt_minutes, "decoder", args.seed)
        print(f"adapted to the putamina on slices {TRAINING} in {args.adapt_minutes:g} min: held-out Dice {summary.details['zero_shot_dice']:.3f} -> {summary.details['adapted_dice']:.3f}")
    head, atlas = read_image(COLIN / "ch2.nii.gz").array, read_image(COLIN / "aal.nii.gz").array
    window = window_for(head, "MR")
    bundled = PromptModel.load("medsam")
    models = {"zero-shot": bundled, "adapted": PromptModel.load(f"run:{adapted_run}", cache=bundled.cache)}
    rng = np.random.default_rng(args.seed)
    found = instances(atlas, args.slices)
    results: dict[tuple[str, str], list[list[float]]] = {}
    strokes: dict[tuple[str, str, int], list[list[int | None]]] = {}
    brush_best: dict[tuple[str, int], list[float]] = {}
    candidates: dict[str, list[list[float]]] = {}
    segment = segment_with(args.rule)
    for instance in found:
        embedding = bundled.embed(SliceKey("colin27", "axial", instance.index), head[instance.index], window)
        box = jittered_box(instance.truth, args.jitter, rng)
        for name, model in models.items():
            dices = simulate(model, embedding, instance.truth, box, args.prompts, segment)
            candidates.setdefault(name, []).append(candidate_dices(model, embedding, instance.truth, box))
            results.setdefault((instance.structure, name), []).append(dices)
            for radius in RADII:
                needed, best = strokes_for([dices[0], dices[kept_prompts(dices) - 1]], instance.truth, radius)
                strokes.setdefault((instance.structure, name, radius), []).append(needed)
                brush_best.setdefault((instance.structure, radius), []).append(best)
    print(f"{len(found)} structures (a side on a slice): {args.slices} slices each of {', '.join(STRUCTURES)}; box jitter up to {args.jitter} px; {args.threads} threads; clicks: {args.rule}")
    for name, found_dices in candidates.items():
        means = np.mean(found_dices, axis=0)
        print(f"box alone, {name}: Dice of the multimask candidates {', '.join(f'{m:.3f}' for m in means[:3])}; single mask {means[3]:.3f}")
    print(f"Dice after k prompts (1 = the box, then corrective clicks), mean over the structures; strokes: median brush strokes for the same Dice (r = {', '.join(map(str, RADII))} px; never: beyond the brush's best)")
    shown = sorted({0, 1, 2, 3, args.prompts - 1})
    for structure in STRUCTURES:
        count = len(results.get((structure, "zero-shot"), []))
        best = ", ".join(f"r={radius}: {np.mean(brush_best[(structure, radius)]):.3f}" for radius in RADII)
        print(f"{structure} ({count} structures; the brush's best Dice {best})")
        for name in models:
            dices = np.array(results[(structure, name)])
            line = "  ".join(f"k={k + 1}: {dices[:, k].mean():.3f}" for k in shown)
            kept = [kept_prompts(list(d)) for d in dices]
            stop = f"undo-and-stop {np.mean([d[k - 1] for d, k in zip(dices, kept)]):.3f} after {np.mean(kept):.1f} prompts"
            cost = "  ".join(f"r={radius}: " + "/".join(_median_strokes([s[k] for s in strokes[(structure, name, radius)]]) for k in (0, 1)) for radius in RADII)
            print(f"  {name:9s} {line}   {stop}   strokes for the box's / undo-and-stop Dice: {cost}")
    print(f"wall {time.perf_counter() - started:.0f} s")
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    return 0


def _median_strokes(needed: list[int | None]) -> str:
    """The median over structures; one the brush cannot reach counts as more than every reachable one."""
    middle = float(np.median([np.inf if n is None else n for n in needed]))
    return "never" if np.isinf(middle) else f"{middle:g}"


if __name__ == "__main__":
    raise SystemExit(main())

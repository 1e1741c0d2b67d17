"""A run's best model as TorchScript: scripted (or, where scripting fails, traced), checked against the eager model.

The file carries ``medtl.json`` (ModelSpec, preprocessing, classes, labels) as an extra file so a
consumer knows how inputs are made. The check runs both models on a random input of the training
size that is not the trace example. A traced model follows the operations taken for the example,
which for these convolutional networks holds for other input sizes too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from medtl.atomic import atomic_path
from medtl.errors import MedtlError
from medtl.inference.predictor import Predictor

TOLERANCE = 1e-4


@dataclass(frozen=True)
class TorchScriptExport:
    path: Path
    method: str  # "scripted" or "traced"
    max_abs_difference: float


def export_torchscript(run_dir: Path | str, destination: Path | str) -> TorchScriptExport:
    """Write the run's model as TorchScript to ``destination`` (atomic) after checking it matches the eager model."""
    import torch

    predictor = Predictor.from_run(run_dir, device="cpu")
    model = predictor.model.eval()
    example = predictor.example_input()
    try:
        compiled, method = torch.jit.script(model), "scripted"
    except Exception:  # noqa: BLE001 - scripting fails on many Python constructs; tracing is the fallback
        with torch.no_grad():
            compiled, method = torch.jit.trace(model, example), "traced"
    check = torch.rand(example.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        difference = float((compiled(check) - model(check)).abs().max())
    if not difference <= TOLERANCE:
        raise MedtlError(f"{destination}: the TorchScript model differs from the original by {difference:.3g} (> {TOLERANCE}); not written")
    settings = {
        "model": predictor.spec.to_dict(),
        "preprocessing": predictor.preprocessing.to_dict(),
        "classes": predictor.classes,
        "labels": {str(value): name for value, name in predictor.labels.items()},
    }
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        torch.jit.save(compiled, str(tmp), _extra_files={"medtl.json": json.dumps(settings)})
    return TorchScriptExport(destination, method, difference)

"""A run's best model as a MONAI bundle folder::

    configs/metadata.json   MONAI bundle metadata: versions, task, network_data_format, intended use
    configs/inference.json  MONAI config: the network and its evaluation preprocessing, built by medtl
    models/model.pt         the state dict (tensors only; loads with ``torch.load(weights_only=True)``)
    docs/README.md          the run's model card, when it has one

``inference.json`` stores medtl's own ModelSpec and Preprocessing (the single source of truth for how the
network was built and its inputs made) under ``medtl`` and defines ``network_def``, ``preprocessing``
and ``inferer`` from them as MONAI expressions, so ``monai.bundle.ConfigParser`` instantiates them
wherever medtl is installed. medtl reads the bundle back as weights (``--weights BUNDLE``).
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

from medtl import __version__
from medtl.errors import MedtlError
from medtl.inference.predictor import Predictor
from medtl.training.run_folder import RunFolder

BUNDLE_VERSION = "0.1.0"
METADATA_SCHEMA = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json"
INTENDED_USE = "Research only; not for diagnosis or treatment decisions."
_MONAI_SYNTAX = "$@%"
"""Characters that make a string more than data to MONAI's ConfigParser (expressions, references, macros)."""


def export_bundle(run_dir: Path | str, destination: Path | str) -> Path:
    """Write the bundle folder ``destination`` (which must not exist yet or be empty); built beside it, then renamed."""
    import torch

    run_dir, destination = Path(run_dir), Path(destination)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise MedtlError(f"{destination}: already exists; choose a new folder for the bundle")
    predictor = Predictor.from_run(run_dir, device="cpu")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        (staging / "configs").mkdir()
        (staging / "models").mkdir()
        _write_json(staging / "configs" / "metadata.json", metadata(predictor, run_dir.name))
        _write_json(staging / "configs" / "inference.json", inference_config(predictor))
        torch.save({name: tensor.detach().cpu().contiguous() for name, tensor in predictor.model.state_dict().items()}, staging / "models" / "model.pt")
        card = RunFolder(run_dir).model_card_path
        if card.is_file():
            (staging / "docs").mkdir()
            shutil.copyfile(card, staging / "docs" / "README.md")
        if destination.exists():
            destination.rmdir()
        staging.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def inference_config(predictor: Predictor) -> dict[str, Any]:
    """A MONAI bundle config whose ``network_def`` and ``preprocessing`` medtl builds from its stored settings."""
    spec = predictor.spec.to_dict()
    inferer: dict[str, Any] = {"_target_": "SimpleInferer"}
    if predictor.roi_size is not None:
        inferer = {"_target_": "SlidingWindowInferer", "roi_size": list(predictor.roi_size), "sw_batch_size": 4, "overlap": 0.25, "mode": "gaussian"}
    return {
        "imports": [  # MONAI binds one name per import statement
            "$import torch",
            "$from medtl.models.spec import ModelSpec",
            "$from medtl.models.spec import build_model",
            "$from medtl.data.preprocessing import Preprocessing",
        ],
        "bundle_root": ".",
        "device": "$torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
        "medtl": literal(
            {
                "version": __version__,
                "model": spec,
                "preprocessing": predictor.preprocessing.to_dict(),
                "classes": predictor.classes,
                "labels": {str(value): name for value, name in predictor.labels.items()},
            }
        ),
        "network_def": "$build_model(ModelSpec.from_dict(@medtl::model))[0]",
        "network": "$@network_def.to(@device)",
        "preprocessing": "$Preprocessing.from_dict(@medtl::preprocessing).eval_transforms()",
        "inferer": inferer,
        "postprocessing": {"_target_": "Activationsd", "keys": "pred", "softmax": True},
    }


def literal(value: Any) -> Any:
    """``value`` (plain JSON) with every string that MONAI's ``ConfigParser`` could read as something else (an expression
    ``$...``, a reference ``@...``, a macro ``%...``) replaced by an expression that gives back the string itself.

    Names (of classes, labels, runs, weight files) are data, never code: the replacement decodes the string's UTF-8
    bytes from hex, so nothing of the name reaches ``eval`` but hex digits.
    """
    if isinstance(value, str):
        return f"$bytes.fromhex('{value.encode('utf-8').hex()}').decode('utf-8')" if any(c in value for c in _MONAI_SYNTAX) else value
    if isinstance(value, list):
        return [literal(item) for item in value]
    if isinstance(value, dict):
        return {key: literal(item) for key, item in value.items()}
    return value


def metadata(predictor: Predictor, name: str) -> dict[str, Any]:
    """``configs/metadata.json`` in the MONAI bundle metadata schema."""
    import monai
    import numpy
    import torch

    spec, pre = predictor.spec, predictor.preprocessing
    segmentation = spec.task == "segmentation"
    outputs = {str(value): label for value, label in predictor.labels.items()} if segmentation else {str(i): c for i, c in enumerate(predictor.classes)}
    return literal({
        "schema": METADATA_SCHEMA,
        "version": BUNDLE_VERSION,
        "changelog": {BUNDLE_VERSION: f"exported by medtl {__version__} from run {name}"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": numpy.__version__,
        "required_packages_version": {"medtl": __version__},
        "optional_packages_version": {},
        "name": name,
        "task": f"{spec.spatial_dims}D {spec.task} ({spec.architecture})",
        "description": f"A {spec.architecture} fine-tuned with medtl (run {name}); python {platform.python_version()}.",
        "authors": "exported by medtl",
        "copyright": "see docs/README.md (model card) for the licence of the pretrained weights",
        "intended_use": INTENDED_USE,
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "num_channels": spec.in_channels,
                    "spatial_shape": list(pre.spatial_size),
                    "dtype": "float32",
                    "value_range": [0, 1] if pre.intensity.kind != "zscore" else [],
                    "is_patch_data": segmentation and predictor.roi_size is not None,
                    "channel_def": {str(i): f"channel {i}" for i in range(spec.in_channels)},
                }
            },
            "outputs": {
                "pred": {
                    "type": "image" if segmentation else "probabilities",
                    "format": "segmentation" if segmentation else "classes",
                    "num_channels": spec.num_outputs,
                    "spatial_shape": list(pre.spatial_size) if segmentation else [1],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": segmentation and predictor.roi_size is not None,
                    "channel_def": outputs,
                }
            },
        },
    })

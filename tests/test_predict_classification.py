"""Classification prediction: probabilities, Grad-CAM that finds a planted blob, uncertainty, the CLI's CSV."""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medtl.cli import main
from medtl.data.preprocessing import Augmentation, Intensity, Preprocessing
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.export.nifti import write_nifti
from medtl.inference.gradcam import GradCAM, target_layer
from medtl.inference.predictor import Predictor
from medtl.models.registry import get_architecture
from medtl.models.spec import ModelSpec, build_model
from tests.test_predict_runs import oblique_ct, write_run

SIZE = 32
CLASSES = ["plain", "blob"]
BLOB_AT = (8, 22)  # row, column of the test image's blob
SPEC = ModelSpec("classification", "resnet10", 2, 1, 2, arch_params={"conv1_t_stride": 1, "no_max_pool": True, "widen_factor": 0.125})
PREPROCESSING = Preprocessing(
    task="classification", spatial_dims=2, channels=1, intensity=Intensity("range", a_min=0.0, a_max=1.0),
    spatial_size=(SIZE, SIZE), size_mode="crop_pad", orientation=None, augmentation=Augmentation(),
)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Small convolutions run faster on one thread than on two cores that other processes share."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def picture(rng: np.random.Generator, blob_at: tuple[int, int] | None) -> np.ndarray:
    """Noise around 0.3, plus a Gaussian blob (sigma 2.5 px) where asked; [rows, columns] in [0, 1]."""
    image = rng.normal(0.3, 0.1, size=(SIZE, SIZE))
    if blob_at is not None:
        rows, columns = np.mgrid[:SIZE, :SIZE]
        image += 0.6 * np.exp(-((rows - blob_at[0]) ** 2 + (columns - blob_at[1]) ** 2) / (2 * 2.5**2))
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def train_blob_detector(steps: int = 60) -> torch.nn.Module:
    """ResNet-10 (1/8 width, no stem downsampling) taught 'blob' vs 'plain' in a few Adam steps."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model, _ = build_model(SPEC)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        labels = rng.integers(0, 2, 16)
        images = [picture(rng, tuple(rng.integers(6, SIZE - 6, 2)) if label else None) for label in labels]
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(np.stack(images))[:, None]), torch.from_numpy(labels))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with one_thread():
        model = train_blob_detector()
        yield write_run(tmp_path_factory.mktemp("runs") / "blob", SPEC, PREPROCESSING, {"classes": CLASSES}, model)


@pytest.fixture(scope="module")
def predictor(run: Path) -> Predictor:
    return Predictor.from_run(run, device="cpu")


def image_file(folder: Path, name: str, planes: list[np.ndarray]) -> Path:
    """Slices as an anisotropic, rotated NIfTI volume."""
    c, s = np.cos(0.3), np.sin(0.3)
    volume = Volume(np.stack(planes), (0.8, 0.6, 3.0), (12.0, -40.0, 5.0), np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]))
    return write_nifti(volume, folder / f"{name}.nii.gz")


def test_grad_cam_highlights_the_planted_blob(predictor: Predictor, tmp_path: Path) -> None:
    path = image_file(tmp_path, "one", [picture(np.random.default_rng(5), BLOB_AT)])
    prediction = predictor.predict(path)
    assert prediction.predicted == "blob" and prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    heat = prediction.heatmap
    assert heat.shape == prediction.source.shape == (1, SIZE, SIZE)
    assert heat.spacing == prediction.source.spacing and heat.origin == prediction.source.origin
    assert 0.0 <= heat.array.min() and heat.array.max() <= 1.0
    rows, columns = np.mgrid[:SIZE, :SIZE]
    disk = (rows - BLOB_AT[0]) ** 2 + (columns - BLOB_AT[1]) ** 2 <= 25
    assert heat.array[0][disk].mean() > 2 * heat.array[0][~disk].mean()


def test_a_2d_model_on_a_volume_gives_per_slice_and_mean_probabilities(predictor: Predictor, tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    path = image_file(tmp_path, "three", [picture(rng, None), picture(rng, BLOB_AT), picture(rng, None)])
    prediction = predictor.predict(path)
    assert prediction.slice_probabilities.shape == (3, 2)
    assert np.allclose(prediction.slice_probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert np.allclose(prediction.probabilities, prediction.slice_probabilities.mean(axis=0))
    assert int(np.argmax(prediction.slice_probabilities[:, 1])) == 1
    assert prediction.heatmap.shape == (3, SIZE, SIZE)


def test_tta_gives_a_per_case_uncertainty(predictor: Predictor, tmp_path: Path) -> None:
    path = image_file(tmp_path, "one", [picture(np.random.default_rng(5), BLOB_AT)])
    prediction = predictor.predict(path, uncertainty="tta")
    assert prediction.probability_std.shape == (2,) and 0.0 <= prediction.uncertainty <= 1.0
    with pytest.raises(MedtlError, match="no dropout layers"):
        predictor.predict(path, uncertainty="mc")


def test_tta_is_refused_for_an_orientation_sensitive_model(predictor: Predictor) -> None:
    no_flips = Preprocessing.from_dict({**PREPROCESSING.to_dict(), "augmentation": {"flips": False}})
    sensitive = Predictor(predictor.model, SPEC, no_flips, classes=CLASSES, labels={}, device=torch.device("cpu"))
    with pytest.raises(MedtlError, match="without flips"):
        sensitive.predict(Volume(np.zeros((1, SIZE, SIZE), np.float32), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)), uncertainty="tta")


def test_mc_dropout_samples_differ() -> None:
    spec = ModelSpec("classification", "densenet121", 2, 1, 2, arch_params={"dropout_prob": 0.5})
    torch.manual_seed(0)
    model, _ = build_model(spec)
    predictor = Predictor(model, spec, PREPROCESSING, classes=CLASSES, labels={}, device=torch.device("cpu"))
    prediction = predictor.predict(Volume(picture(np.random.default_rng(1), None)[None], (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)), uncertainty="mc")
    assert prediction.probability_std.max() > 0 and model.training is False


def test_a_3d_model_classifies_a_resampled_series_with_its_heatmap_on_the_input_grid(tmp_path: Path) -> None:
    spec = ModelSpec("classification", "resnet10", 3, 1, 2, arch_params={"widen_factor": 0.25})
    preprocessing = Preprocessing(
        task="classification", spatial_dims=3, channels=1, intensity=Intensity("windows", windows=((40.0, 400.0),)),
        spatial_size=(24, 24, 24), size_mode="fit", spacing=(1.5, 1.5, 2.0), orientation="RAS",
    )
    predictor = Predictor.from_run(write_run(tmp_path / "run", spec, preprocessing, {"classes": CLASSES}), device="cpu")
    prediction = predictor.predict(oblique_ct(tmp_path / "ct"))
    assert prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-6) and prediction.slice_probabilities is None
    assert prediction.heatmap.shape == prediction.source.shape == (12, 40, 48)
    assert np.array_equal(prediction.heatmap.direction, prediction.source.direction)


@pytest.mark.parametrize(("architecture", "layer"), [("resnet18", "layer4"), ("densenet121", "features"), ("efficientnet-lite0", "_bn1")])
def test_grad_cam_weighs_the_last_backbone_stage(architecture: str, layer: str) -> None:
    model, _ = build_model(ModelSpec("classification", architecture, 2, 1, 3))
    model.eval()
    assert target_layer(model, get_architecture(architecture)) == layer
    maps = GradCAM(model, layer)(torch.rand(2, 1, 64, 48), torch.tensor([0, 2]))
    assert maps.shape == (2, 64, 48) and maps.min() >= 0


def test_predict_cli_writes_the_csv_and_heatmaps(run: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    one = image_file(tmp_path, "one", [picture(rng, BLOB_AT)])
    three = image_file(tmp_path, "three", [picture(rng, None) for _ in range(3)])
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.repeat(np.rint(picture(rng, BLOB_AT) * 255).astype(np.uint8)[..., None], 3, axis=2)).save(rgb)
    out = tmp_path / "out"
    assert main(["predict", "--run", str(run), str(one), str(three), str(rgb), "--out", str(out), "--uncertainty", "tta", "--device", "cpu"]) == 0
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["input", "predicted", "p_plain", "p_blob", "uncertainty"]
    assert [row["input"] for row in rows] == [str(one), str(three), str(rgb)]
    assert [row["predicted"] for row in rows] == ["blob", "plain", "blob"]
    assert all(float(row["p_plain"]) + float(row["p_blob"]) == pytest.approx(1.0, abs=1e-5) for row in rows)
    expected = {"predictions.csv", "three_slices.csv"} | {f"{name}_heatmap.{kind}" for name in ("one", "three", "rgb") for kind in ("nii.gz", "png")}
    assert {p.name for p in out.iterdir()} == expected
    assert np.asarray(Image.open(out / "rgb_heatmap.png")).shape == (SIZE, SIZE, 3)

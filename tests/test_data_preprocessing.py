"""Preprocessing: JSON round trip, validation, deterministic eval, intensity, channels, 2D from 3D."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import nibabel
import numpy as np
import pytest
import skimage.io
import torch
from monai.transforms import RandFlipd

from medtl.data.preprocessing import Augmentation, Intensity, Preprocessing, PreprocessingError, default_for
from medtl.data.transforms import RandAxialSliced


@pytest.fixture
def ct_case(tmp_path: Path) -> dict[str, str]:
    """A 3D CT (HU) with a bone-like block in slices 3..5 and its mask, on an anisotropic grid."""
    rng = np.random.default_rng(0)
    hu = rng.normal(40, 20, (40, 36, 9)).astype(np.int16)  # [x, y, z]
    mask = np.zeros(hu.shape, np.uint8)
    mask[10:20, 8:16, 3:6] = 1
    hu[mask > 0] = 1200
    affine = np.diag([0.8, 0.9, 3.0, 1.0])
    nibabel.save(nibabel.Nifti1Image(hu, affine), str(tmp_path / "ct.nii.gz"))
    nibabel.save(nibabel.Nifti1Image(mask, affine), str(tmp_path / "ct_mask.nii.gz"))
    return {"image": str(tmp_path / "ct.nii.gz"), "label": str(tmp_path / "ct_mask.nii.gz")}


@pytest.mark.parametrize("task", ["classification", "segmentation"])
@pytest.mark.parametrize("modality", ["CT", "MR", "OT", None])
@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("channels", [1, 3])
def test_json_round_trip(task: str, modality: str | None, dims: int, channels: int) -> None:
    preprocessing = default_for(task, modality, dims, channels, orientation_sensitive=channels == 3)
    text = json.dumps(preprocessing.to_dict())
    assert Preprocessing.from_dict(json.loads(text)) == preprocessing
    assert Preprocessing.from_dict(json.loads(text)).to_dict() == json.loads(text)


def test_defaults_by_modality() -> None:
    assert default_for("classification", "CT", 2, 3).intensity.windows == ((40.0, 400.0), (-600.0, 1500.0), (400.0, 1800.0))
    assert default_for("segmentation", "MR", 3).intensity.kind == "zscore"
    assert default_for("segmentation", "MR", 3).spacing == (1.5, 1.5, 2.0)
    assert default_for("classification", "XR", 2).intensity.kind == "percentiles"
    assert default_for("classification", "OT", 2, orientation_sensitive=True).augmentation == Augmentation(flips=False, translate=0.1)
    assert default_for("segmentation", "CT", 2).augmentation == Augmentation(flips=True, translate=0.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size_mode": "patch"}, "size_mode for classification"),
        ({"spatial_size": [224, 224, 3]}, "spatial_size needs 2"),
        ({"orientation": "RRS"}, "orientation must be three axis codes"),
        ({"colour": True}, r"unknown preprocessing setting\(s\) \['colour'\]"),
        ({"intensity": {"kind": "windows", "windows": [[40, 400], [0, 100]]}, "channels": 3}, "2 CT windows cannot feed a 3-channel model"),
        ({"intensity": {"kind": "gamma"}}, "intensity.kind must be one of"),
        ({"augmentation": {"probability": 2}}, "augmentation.probability"),
        ({"intensity": {"windows": [[40, 400]]}}, r"incomplete or mistyped: .*kind"),
        ({"spatial_size": ["big", 3]}, "incomplete or mistyped"),
    ],
)
def test_invalid_settings_name_the_field(change: dict, message: str) -> None:
    data = {**default_for("classification", "CT", 2).to_dict(), **change}
    with pytest.raises(PreprocessingError, match=message):
        Preprocessing.from_dict(data)


def test_eval_is_deterministic_3d(ct_case: dict[str, str]) -> None:
    preprocessing = default_for("segmentation", "CT", 3)
    first, second = preprocessing.eval_transforms()(dict(ct_case)), preprocessing.eval_transforms()(dict(ct_case))
    assert torch.equal(first["image"], second["image"]) and torch.equal(first["label"], second["label"])
    assert first["image"].dtype == torch.float32 and first["image"].shape[0] == 1
    assert all(n % 16 == 0 for n in first["image"].shape[1:])
    assert 0.0 <= float(first["image"].min()) and float(first["image"].max()) <= 1.0
    assert set(first["label"].unique().tolist()) == {0.0, 1.0}
    bone = first["image"][first["label"] > 0]
    assert float(bone.median()) == pytest.approx((1200 + 1000) / 3000, abs=1e-4)  # wide window [-1000, 2000]; edges interpolated


def test_eval_without_label_for_prediction(ct_case: dict[str, str]) -> None:
    out = default_for("segmentation", "CT", 3).eval_transforms()({"image": ct_case["image"]})
    assert "label" not in out and out["image"].ndim == 4


def test_2d_model_on_3d_volume(ct_case: dict[str, str]) -> None:
    preprocessing = replace(default_for("segmentation", "CT", 2, in_channels=3), orientation=None)
    evaluated = preprocessing.eval_transforms()(dict(ct_case))
    assert len(evaluated) == 9  # every slice of a dense mask is validated, one item each
    assert all(item["image"].shape[0] == 3 and item["image"].ndim == 3 for item in evaluated)  # [C, x, y]
    assert [float(item["label"].sum()) for item in evaluated] == [0, 0, 0, 80, 80, 80, 0, 0, 0]  # bone in slices 3..5
    trained = preprocessing.train_transforms()
    trained.set_random_state(seed=1)
    patches = [trained(dict(ct_case))[0] for _ in range(4)]
    assert all(p["image"].shape == (3, 128, 128) and p["label"].shape == (1, 128, 128) for p in patches)


def test_random_slice_prefers_foreground() -> None:
    label = torch.zeros(1, 4, 4, 7)
    label[..., 5] = 1
    image = torch.arange(7.0).expand(1, 4, 4, 7).clone()
    picker = RandAxialSliced(["image", "label"], label_key="label", pos_fraction=1.0)
    picker.set_random_state(seed=0)
    assert {int(picker({"image": image, "label": label})["image"][0, 0, 0]) for _ in range(10)} == {5}
    uniform = RandAxialSliced(["image"])
    uniform.set_random_state(seed=0)
    assert len({int(uniform({"image": image})["image"][0, 0, 0]) for _ in range(40)}) > 3


def test_picture_layout_channels_and_range(tmp_path: Path) -> None:
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:5, :, 0] = 255  # a red band along the top rows
    skimage.io.imsave(tmp_path / "rgb.png", rgb, check_contrast=False)
    preprocessing = Preprocessing(
        task="classification",
        spatial_dims=2,
        channels=1,
        intensity=Intensity("range", a_min=0, a_max=255),
        spatial_size=(30, 20),
        size_mode="crop_pad",
        orientation="LPS",
    )
    out = preprocessing.eval_transforms()({"image": str(tmp_path / "rgb.png"), "label": 0})
    assert out["image"].shape == (1, 30, 20)  # MONAI order [C, x (columns), y (rows)]
    expected = np.zeros((30, 20), np.float32)
    expected[:, :5] = 0.299  # luminance of pure red; LPS keeps the picture as stored
    np.testing.assert_allclose(out["image"][0].numpy(), expected, atol=1e-6)
    assert out["label"] == 0


def test_orientation_sensitive_training_has_no_flips() -> None:
    sensitive = default_for("classification", "OT", 2, orientation_sensitive=True).train_transforms()
    assert not any(isinstance(t, RandFlipd) for t in sensitive.transforms)
    assert any(isinstance(t, RandFlipd) for t in default_for("classification", "OT", 2).train_transforms().transforms)


def test_classification_training_shifts_the_image_by_up_to_a_tenth(tmp_path: Path) -> None:
    """A bright square in the middle of a 64 x 64 picture lands up to 6.4 px away (10 %), in both directions."""
    picture = np.zeros((64, 64), np.uint8)
    picture[28:36, 28:36] = 255
    skimage.io.imsave(tmp_path / "square.png", picture, check_contrast=False)
    augmentation = Augmentation(flips=False, rotate_degrees=0.0, scale=0.0, translate=0.1, intensity_scale=0.0, intensity_shift=0.0, probability=1.0)
    preprocessing = Preprocessing("classification", 2, 1, Intensity("range", a_min=0, a_max=255), (64, 64), "crop_pad", orientation="LPS", augmentation=augmentation)
    transforms = preprocessing.train_transforms()
    transforms.set_random_state(seed=0)
    offsets = []
    for _ in range(30):
        image = transforms({"image": str(tmp_path / "square.png"), "label": 0})["image"][0].numpy()
        x, y = np.nonzero(image > 0.5)
        offsets.append((x.mean() - 31.5, y.mean() - 31.5))
    offsets = np.array(offsets)
    assert np.abs(offsets).max() <= 6.4 + 0.5 and offsets.min(axis=0).max() < -2 and offsets.max(axis=0).min() > 2


def test_orientation_reorders_axes_by_world_direction(tmp_path: Path) -> None:
    data = np.zeros((6, 5, 4), np.int16)
    data[0, 1, 2] = 1000  # index x = 0 is the patient's far right: the x axis runs right-to-left
    nibabel.save(nibabel.Nifti1Image(data, np.diag([-1.0, 1.0, 1.0, 1.0])), str(tmp_path / "flipped.nii.gz"))
    base = Preprocessing(
        task="segmentation", spatial_dims=3, channels=1, intensity=Intensity("range", a_min=0, a_max=1000), spatial_size=(4, 4, 4), size_mode="patch", divisible_by=1
    )
    for axcodes, x_index in (("RAS", 5), ("LAS", 0), (None, 0)):
        out = replace(base, orientation=axcodes).eval_transforms()({"image": str(tmp_path / "flipped.nii.gz")})
        assert tuple(torch.nonzero(out["image"][0] == 1.0)[0].tolist()) == (x_index, 1, 2)

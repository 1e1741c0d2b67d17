"""Sparse labels in the data layer: the ignore label in datalists, slices a 2D network trains and validates on,
patches, the slab split of one patient, and the summaries a user reads."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch

from medtl.data.datalist import DatalistError, load_datalist
from medtl.data.dataset import build_loaders, split_datalist, training_ignore_label
from medtl.data.images import read_image
from medtl.data.preprocessing import default_for
from medtl.data.slabs import GAP_SLICES, SLAB_SPLIT, divide, slice_axis
from medtl.data.summary import summarise_datalist
from medtl.data.tasks import write_mni_tissue
from medtl.data.transforms import AxialSliced, RandAnnotatedCropd, RandAxialSliced
from medtl.progress import CancelToken

IGNORE = 3
LABELS = {"0": "background", "1": "grey matter", "2": "white matter", "3": "ignore"}

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def tissue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MNI152 volume (6 mm voxels) with 4 annotated axial slices of grey/white matter, the rest ignore."""
    return write_mni_tissue(tmp_path_factory.mktemp("tissue"), annotated=4, stride=3)


def write_datalist(folder: Path, masks: dict[str, np.ndarray], labels: dict[str, str], patients: list[str] | None = None) -> Path:
    """A datalist of NIfTI volumes ``[x, y, z]`` (image = mask as float), one entry per mask."""
    entries = []
    for number, (name, mask) in enumerate(masks.items()):
        nibabel.save(nibabel.Nifti1Image(mask.astype(np.uint8), np.eye(4)), str(folder / f"{name}_mask.nii.gz"))
        nibabel.save(nibabel.Nifti1Image(mask.astype(np.float32), np.eye(4)), str(folder / f"{name}.nii.gz"))
        entry = {"image": f"{name}.nii.gz", "label": f"{name}_mask.nii.gz"}
        if patients:
            entry["patient_id"] = patients[number]
        entries.append(entry)
    path = folder / "datalist.json"
    path.write_text(json.dumps({"training": entries, "labels": labels}))
    return path


def sparse_volume(annotated_z: list[int], depth: int = 12) -> np.ndarray:
    mask = np.full((16, 16, depth), IGNORE, np.uint8)
    for z in annotated_z:
        mask[..., z] = 0
        mask[4:10, 4:10, z] = 1
    return mask


# ----------------------------------------------------------------- datalist


def test_ignore_is_the_highest_label_and_not_an_output(tissue: Path) -> None:
    datalist = load_datalist(tissue, "segmentation")
    assert datalist.ignore_label == IGNORE and training_ignore_label(datalist) == IGNORE
    assert datalist.trained_labels == {0: "background", 1: "grey matter", 2: "white matter"}


def test_ignore_anywhere_but_last_is_refused(tmp_path: Path) -> None:
    path = write_datalist(tmp_path, {"a": sparse_volume([2])}, {"0": "background", "1": "ignore", "2": "bone"})
    with pytest.raises(DatalistError, match=r"datalist\.json: \"labels\": the label \"ignore\" must be the single highest label value"):
        load_datalist(path)


# ------------------------------------------------------------ slice choice


def test_training_slices_are_annotated_ones_and_validation_takes_them_all() -> None:
    label = torch.from_numpy(sparse_volume([2, 7, 9]))[None].float()
    label[..., 9] = 0  # annotated, but all background
    image = torch.arange(12.0).expand(1, 16, 16, 12).clone()
    picker = RandAxialSliced(["image", "label"], label_key="label", pos_fraction=0.5, ignore_label=IGNORE)
    picker.set_random_state(seed=0)
    chosen = {int(picker({"image": image, "label": label})["image"][0, 0, 0]) for _ in range(60)}
    assert chosen == {2, 7, 9}
    items = AxialSliced(["image", "label"], label_key="label", ignore_label=IGNORE)({"image": image, "label": label})
    assert [int(item["image"][0, 0, 0]) for item in items] == [2, 7, 9]
    assert AxialSliced(["image"])({"image": image})["image"].shape == (1, 16, 16)  # without a label: the central slice


def test_patches_are_centred_on_annotated_voxels() -> None:
    label = torch.full((1, 64, 64), float(IGNORE))
    label[0, 50:60, 50:60] = 0
    label[0, 52:55, 52:55] = 1
    crop = RandAnnotatedCropd(["label"], label_key="label", spatial_size=(8, 8), ignore_label=IGNORE)
    crop.set_random_state(seed=0)
    for _ in range(20):
        patch = crop({"label": label})[0]["label"]
        centre = patch[0, 4, 4]
        assert float(centre) != IGNORE and set(patch.unique().tolist()) <= {0.0, 1.0, float(IGNORE)}


def test_slice_axis_is_the_one_the_pipeline_puts_last(tmp_path: Path) -> None:
    """A volume stored with its slices along the first NIfTI axis (sagittal-like affine): the axis the preprocessing
    slices along (orientation LPS puts superior last) is found in the stored ``[z, y, x]`` array."""
    mask = np.zeros((6, 20, 24), np.uint8)  # NIfTI [i, j, k]
    mask[:, :, 5] = 1  # one slice along k
    affine = np.array([[0, 0, 1.0, 0], [0, 1.0, 0, 0], [1.0, 0, 0, 0], [0, 0, 0, 1]])  # i -> S, j -> A, k -> R
    nibabel.save(nibabel.Nifti1Image(mask, affine), str(tmp_path / "m.nii.gz"))
    volume = read_image(tmp_path / "m.nii.gz")  # array [k, j, i]
    axis = slice_axis(volume, "LPS")
    assert axis == 2 and volume.array.shape[axis] == 6  # i, the superior axis, is stored last in [z, y, x]
    preprocessing = default_for("segmentation", "MR", 2)
    items = preprocessing.eval_transforms(ignore_label=None)({"image": str(tmp_path / "m.nii.gz"), "label": str(tmp_path / "m.nii.gz")})
    assert len(items) == 6  # one item per slice along that axis


# -------------------------------------------------------------- the slab split


def test_validation_is_the_annotated_slab_nearest_the_middle_with_a_gap() -> None:
    assert divide([10, 20, 30, 40, 50], 0.2, seed=0) == ([10, 20, 40, 50], [30], [])  # spread: nothing unused
    assert divide(range(10), 0.2, seed=0) == ([0, 1, 2, 7, 8, 9], [4, 5], [3, 6])  # adjacent: a slice unused on each side
    train, val, unused = divide([3, 4, 5, 6], 0.2, seed=0)  # the middle would leave one slice to train: an end validates
    assert len(train) == 2 and val in ([3], [6]) and len(unused) == 1
    assert min(abs(t - v) for t in train for v in val) > GAP_SLICES
    assert {tuple(divide([0, 10, 20, 30], 0.2, seed=seed)[1]) for seed in range(8)} == {(10,), (20,)}  # equally central: seeded


@pytest.mark.parametrize("annotated", [[4], [4, 9], [4, 5, 6]])
def test_too_few_annotated_slices_are_refused_with_the_counts(tmp_path: Path, annotated: list[int]) -> None:
    path = write_datalist(tmp_path, {"a": sparse_volume(annotated)}, LABELS)
    needed = 4 if len(annotated) == 3 else 3  # three adjacent slices leave no room for the gap
    with pytest.raises(DatalistError, match=rf"datalist\.json: one patient .* has {len(annotated)} annotated slice\(s\) and at least {needed} are needed"):
        split_datalist(load_datalist(path))


def test_one_patient_is_split_into_slabs_written_to_the_split_folder(tissue: Path, tmp_path: Path) -> None:
    datalist = load_datalist(tissue, "segmentation")
    preprocessing = default_for("segmentation", "MR", 2)
    train_loader, val_loader, summary = build_loaders(datalist, "segmentation", preprocessing, 4, cache="none", split_dir=tmp_path / "split")
    assert summary.split == SLAB_SPLIT and summary.labels == datalist.trained_labels and summary.ignore_label == IGNORE
    assert (summary.train_annotated_slices, summary.val_annotated_slices) == (3, 1)
    assert any("optimistic for new patients" in warning for warning in summary.warnings)
    written = sorted(p.name for p in (tmp_path / "split").iterdir())
    assert written == ["training-0-training-slabs.nii.gz", "training-0-validation-slab.nii.gz"]
    sides = {name: read_image(tmp_path / "split" / name).array for name in written}
    annotated = {name: set(np.flatnonzero((array != IGNORE).any(axis=(1, 2))).tolist()) for name, array in sides.items()}
    train, val = annotated["training-0-training-slabs.nii.gz"], annotated["training-0-validation-slab.nii.gz"]
    original = read_image(datalist.training[0].label).array
    assert train | val == set(np.flatnonzero((original != IGNORE).any(axis=(1, 2))).tolist()) and not train & val
    for name, slices in annotated.items():  # each side is the original on its own slices
        np.testing.assert_array_equal(sides[name][sorted(slices)], original[sorted(slices)])
    assert summary.slabs == [{"case": "training[0]", "axis": "z", "training": sorted(train), "validation": sorted(val), "unused": []}]
    (batch,) = list(val_loader)
    assert batch["image"].shape[0] == 1 and set(batch["label"].unique().tolist()) <= {0.0, 1.0, 2.0}  # its one annotated slice
    assert set(next(iter(train_loader))["label"].unique().tolist()) <= {0.0, 1.0, 2.0}  # an annotated slice, never an ignored one


def test_a_dense_volume_of_one_patient_gets_an_ignore_value_for_its_slabs(tmp_path: Path) -> None:
    mask = np.zeros((16, 16, 10), np.uint8)
    mask[4:10, 4:10, 2:8] = 1
    datalist = load_datalist(write_datalist(tmp_path, {"a": mask}, {"0": "background", "1": "bone"}))
    assert datalist.ignore_label is None and training_ignore_label(datalist) == 2
    _, _, summary = build_loaders(datalist, "segmentation", default_for("segmentation", "CT", 2), 4, cache="none", split_dir=tmp_path / "split")
    assert summary.split == SLAB_SPLIT and summary.labels == {0: "background", 1: "bone"} and summary.ignore_label == 2
    assert (summary.train_annotated_slices, summary.val_annotated_slices) == (6, 2)  # 10 slices: 2 validate, one unused each side


def test_one_patient_of_single_slices_still_asks_for_more_patients(tmp_path: Path) -> None:
    masks = {f"s{i}": sparse_volume([0], depth=1) for i in range(3)}
    datalist = load_datalist(write_datalist(tmp_path, masks, LABELS, patients=["P1"] * 3))
    with pytest.raises(DatalistError, match="no patient can be held out for validation"):
        build_loaders(datalist, "segmentation", default_for("segmentation", "MR", 2), 4, cache="none", split_dir=tmp_path / "split")


def test_mask_values_may_hold_ignore_but_nothing_above(tmp_path: Path) -> None:
    mask = sparse_volume([2, 6, 10])
    mask[0, 0, 2] = 7
    datalist = load_datalist(write_datalist(tmp_path, {"a": mask, "b": sparse_volume([2, 6, 10])}, LABELS, patients=["P1", "P2"]))
    with pytest.raises(DatalistError, match=r"holds value\(s\) \[7\] not in \"labels\""):
        build_loaders(datalist, "segmentation", default_for("segmentation", "MR", 2), 4, cache="none")


def test_the_summary_before_start_names_the_slab_split_and_annotated_slices(tissue: Path) -> None:
    summary = summarise_datalist(tissue, None, lambda *_: None, CancelToken())
    assert summary.split == SLAB_SPLIT and (summary.training.cases, summary.validation.cases) == (1, 1)
    assert "ignore" not in summary.training.per_label
    assert summary.lines()[0] == "segmentation, one patient, MR: 3 annotated slices to train on, 1 to validate on"
    assert summary.lines()[-1] == "labels (in the training/validation slabs): grey matter, white matter"
    assert summary.warnings == ["validation is slabs of the one patient's own volume: its scores will be optimistic for new patients"]

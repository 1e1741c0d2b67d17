"""build_loaders on the real tasks: batches, split, summary, RAM budget and disk cache, spawn workers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import skimage.io
import torch

from medtl.data.dataset import available_memory_bytes, build_loaders
from medtl.data.datalist import DatalistError, load_datalist
from medtl.data.preprocessing import default_for
from medtl.data.tasks import build_task


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tasks")
    return {name: build_task(name, root / name) for name in ("orientation", "ct_bone", "mni_brain")}


def test_classification_batches(tasks: dict[str, Path], tmp_path: Path) -> None:
    datalist = load_datalist(tasks["orientation"])
    preprocessing = default_for("classification", datalist.modality, 2, in_channels=3, orientation_sensitive=True)
    train, val, summary = build_loaders(datalist, "classification", preprocessing, 4, cache_dir=tmp_path, seed=0)
    batch = next(iter(train))
    assert batch["image"].shape == (4, 3, 224, 224) and batch["image"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and set(batch["label"].tolist()) <= {0, 1}
    assert -0.5 < float(batch["image"].min()) and float(batch["image"].max()) < 1.5  # [0, 1] plus intensity augmentation
    images = torch.cat([b["image"] for b in val])
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    assert summary.cache == "memory" and 0 < summary.cache_bytes_estimate < summary.ram_budget_bytes
    assert (summary.train_cases, summary.val_cases) == (424, 56) and (summary.train_patients, summary.val_patients) == (11, 2)
    assert summary.val_class_counts == {"upright": 28, "rotated": 28} and summary.split == "datalist"
    assert summary.class_weights == [1.0, 1.0] and not summary.warnings
    json.dumps(summary.to_dict())


def test_segmentation_batches(tasks: dict[str, Path], tmp_path: Path) -> None:
    datalist = load_datalist(tasks["ct_bone"])
    preprocessing = default_for("segmentation", "CT", 2)
    train, val, summary = build_loaders(datalist, "segmentation", preprocessing, 2, cache_dir=tmp_path, seed=1)
    batch = next(iter(train))
    assert batch["image"].shape == (2, 1, 128, 128) and batch["label"].shape == (2, 1, 128, 128)
    assert batch["image"].dtype == torch.float32 and set(batch["label"].unique().tolist()) <= {0.0, 1.0}
    whole = next(iter(val))
    assert whole["image"].shape[:2] == (1, 1) and all(n % 16 == 0 for n in whole["image"].shape[2:])
    assert 0.0 <= float(whole["image"].min()) and float(whole["image"].max()) <= 1.0
    assert (summary.train_patients, summary.val_patients) == (4, 1) and summary.labels == {0: "background", 1: "bone"}
    assert summary.train_class_counts == {"background": 4, "bone": 4} and summary.val_class_counts == {"background": 1, "bone": 1}


def test_mask_values_outside_labels(tmp_path: Path) -> None:
    picture = np.zeros((16, 16), np.uint8)
    picture[4:8, 4:8] = 255
    for name in ("a", "b"):
        skimage.io.imsave(tmp_path / f"{name}.png", picture, check_contrast=False)
    entries = [{"image": f"{n}.png", "label": f"{n}.png", "patient_id": n} for n in ("a", "b")]
    (tmp_path / "datalist.json").write_text(json.dumps({"training": entries}))
    datalist = load_datalist(tmp_path / "datalist.json")
    with pytest.raises(DatalistError, match=r"training\[\d\] mask .*\.png holds value\(s\) \[255\] not in \"labels\""):
        build_loaders(datalist, "segmentation", default_for("segmentation", "OT", 2), 2, cache="none")


def test_ram_budget_forces_disk_cache(tasks: dict[str, Path], tmp_path: Path) -> None:
    datalist = load_datalist(tasks["mni_brain"])
    preprocessing = default_for("segmentation", "MR", 2)
    train, val, summary = build_loaders(datalist, "segmentation", preprocessing, 4, ram_budget_bytes=1000, cache_dir=tmp_path)
    assert summary.cache == "disk" and summary.cache_bytes_estimate > 1000
    first = [b["image"] for b in val]
    for _ in train:
        pass
    cached = sorted(tmp_path.rglob("*.pt"))
    assert len(cached) == summary.train_cases + summary.val_cases
    assert {p.parent.name.rsplit("-", 1)[1] for p in cached} == {"train", "eval"}
    _, val_again, _ = build_loaders(datalist, "segmentation", preprocessing, 4, ram_budget_bytes=1000, cache_dir=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(first, (b["image"] for b in val_again)))
    assert sorted(tmp_path.rglob("*.pt")) == cached  # reused, not rewritten under new names


def test_spawn_worker(tasks: dict[str, Path], tmp_path: Path) -> None:
    datalist = load_datalist(tasks["ct_bone"])
    preprocessing = default_for("segmentation", "CT", 2)
    train, _, summary = build_loaders(datalist, "segmentation", preprocessing, 2, num_workers=1, multiprocessing_context="spawn", cache_dir=tmp_path)
    batch = next(iter(train))  # the in-RAM cache and every transform are pickled into the worker
    assert batch["image"].shape == (2, 1, 128, 128)
    _, _, in_process = build_loaders(datalist, "segmentation", preprocessing, 2, cache_dir=tmp_path)
    assert summary.cache == "memory" and summary.cache_bytes_estimate == 2 * in_process.cache_bytes_estimate  # the worker's copy counts


def test_imbalance_weights_and_sampler(tasks: dict[str, Path], tmp_path: Path) -> None:
    source = load_datalist(tasks["orientation"])
    entries = [{"image": str(c.image), "label": c.label if i % 8 == 1 else "upright", "patient_id": f"P{i}"} for i, c in enumerate(source.training)]
    path = tmp_path / "imbalanced.json"
    path.write_text(json.dumps({"training": entries, "classes": ["upright", "rotated"]}))
    datalist = load_datalist(path)
    preprocessing = replace(default_for("classification", "OT", 2, orientation_sensitive=True), spatial_size=(32, 32))
    train, _, summary = build_loaders(datalist, "classification", preprocessing, 8, cache="memory", weighted_sampler=True, seed=3)
    counts = summary.train_class_counts
    assert counts["upright"] > 3 * counts["rotated"] > 0
    weights = dict(zip(datalist.classes, summary.class_weights))
    assert weights["rotated"] / weights["upright"] == pytest.approx(counts["upright"] / counts["rotated"])
    assert summary.weighted_sampler
    drawn = torch.cat([b["label"] for _ in range(3) for b in train])
    assert 0.3 < float(drawn.float().mean()) < 0.7  # balanced draws, not the 1-in-8 of the data


def test_given_validation_and_mismatches(tasks: dict[str, Path], tmp_path: Path) -> None:
    document = json.loads(tasks["ct_bone"].read_text())
    folder = tasks["ct_bone"].parent
    entries = [{**e, "image": str(folder / e["image"]), "label": str(folder / e["label"])} for e in document["training"]]
    path = tmp_path / "given.json"
    path.write_text(json.dumps({"training": entries[:4], "validation": entries[3:], "labels": document["labels"]}))
    datalist = load_datalist(path)
    preprocessing = default_for("segmentation", "CT", 2)
    _, val, summary = build_loaders(datalist, "segmentation", preprocessing, 2, cache="none")
    assert summary.split == "datalist" and summary.val_cases == 2 and len(list(val)) == 2
    assert summary.warnings == ["1 patient(s) have cases in both training and validation; validation scores will be optimistic"]
    with pytest.raises(DatalistError, match="is a segmentation datalist; it cannot train a classification model"):
        build_loaders(datalist, "classification", default_for("classification", "CT", 2), 2)


def test_available_memory_is_measured() -> None:
    assert available_memory_bytes() > 0

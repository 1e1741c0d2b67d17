"""The label store: masks saved on the series' world grid, found again, and turned into a training datalist."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medtl.data.datalist import load_datalist
from medtl.data.images import read_image
from medtl.data.sparse import Annotated
from medtl.dicom.series import load_series
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.labels.store import (
    IMAGE_NAME,
    TRAINING_MASK_NAME,
    LabelStore,
    default_labels_dir,
    same_grid,
    sole_series_folder,
)
from tests.dicomgen import SeriesSpec, phantom, rotation, write_series


@pytest.fixture
def series(tmp_path: Path) -> tuple[Volume, list[Path]]:
    spec = SeriesSpec(direction=rotation("x", 20) @ rotation("z", 10), patient_id="P7")
    files = write_series(tmp_path / "dicom", phantom((6, 20, 24)), spec)
    return load_series(files), files


def lesion(volume: Volume) -> np.ndarray:
    mask = np.zeros(volume.shape, np.uint8)
    mask[2:4, 5:9, 3:12] = 1
    mask[4, 10:12, 14:20] = 2
    return mask


def test_a_saved_mask_reads_back_on_the_same_grid(series: tuple[Volume, list[Path]], tmp_path: Path) -> None:
    volume, files = series
    store = LabelStore(tmp_path / "labels")
    saved = store.save(lesion(volume), volume, files, {1: "lesion", 2: "oedema"}, "generated")
    assert saved.image == files[0].parent.resolve()  # the folder holds only this series: the datalist points at it
    mask = read_image(saved.mask)
    assert np.array_equal(mask.array, lesion(volume))
    assert np.allclose(mask.affine_lps(), volume.affine_lps(), atol=1e-4)
    found = store.find(volume.metadata["study_uid"], volume.metadata["series_uid"])
    assert found == saved and found.labels == {0: "background", 1: "lesion", 2: "oedema"} and found.patient_id == "P7"
    assert store.find("1.2", "3.4") is None


def test_a_series_sharing_its_folder_gets_its_image_written_beside_the_mask(series: tuple[Volume, list[Path]], tmp_path: Path) -> None:
    volume, files = series
    shutil.copy(files[0], files[0].parent / "other.dcm")
    assert sole_series_folder(files) is None
    saved = LabelStore(tmp_path / "labels").save(lesion(volume), volume, files, {1: "lesion"})
    assert saved.image.name == IMAGE_NAME and np.allclose(read_image(saved.image).array, volume.array)


def test_saved_labels_make_a_segmentation_datalist(series: tuple[Volume, list[Path]], tmp_path: Path) -> None:
    volume, files = series
    store = LabelStore(tmp_path / "labels")
    with pytest.raises(MedtlError, match="no saved labels"):
        store.write_datalist()
    store.save(lesion(volume), volume, files, {2: "oedema"})
    path = store.write_datalist()
    document = json.loads(path.read_text())
    assert document["labels"] == {"0": "background", "1": "label 1", "2": "oedema"}
    datalist = load_datalist(path, "segmentation")
    assert [case.image for case in datalist.training] == [files[0].parent.resolve()]
    assert datalist.training[0].patient_id == "P7"


def test_a_series_without_uid_cannot_be_stored(tmp_path: Path) -> None:
    volume = Volume(np.zeros((2, 3, 4), np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    with pytest.raises(MedtlError, match="no series UID"):
        LabelStore(tmp_path).save(np.zeros((2, 3, 4), np.uint8), volume, [], {1: "x"})


def test_the_default_store_is_per_user_and_overridable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDTL_LABELS", str(tmp_path / "mine"))
    assert default_labels_dir() == tmp_path / "mine"
    monkeypatch.delenv("MEDTL_LABELS")
    assert default_labels_dir().name == "labels"


def test_the_saved_label_loads_only_on_its_series_grid(series: tuple[Volume, list[Path]], tmp_path: Path) -> None:
    volume, files = series
    store = LabelStore(tmp_path / "labels")
    assert store.load_for(volume) is None  # nothing saved yet
    saved = store.save(lesion(volume), volume, files, {1: "lesion"})
    found = store.load_for(volume)
    assert found is not None and found[0] == saved and np.array_equal(found[1].array, lesion(volume))
    assert same_grid(found[1], volume)
    moved = Volume(volume.array, volume.spacing, tuple(o + 1.0 for o in volume.origin), volume.direction, metadata=dict(volume.metadata))
    assert not same_grid(moved, volume)
    with pytest.raises(MedtlError, match="not on this series' grid"):
        store.load_for(moved)
    saved.mask.write_bytes(b"not a NIfTI file")
    with pytest.raises(MedtlError, match="the saved label was not loaded"):
        store.load_for(volume)


def test_an_older_snapshot_never_overwrites_a_newer_one(series: tuple[Volume, list[Path]], tmp_path: Path) -> None:
    volume, files = series
    store = LabelStore(tmp_path / "labels")
    newer = store.save_snapshot("label A", 2, lesion(volume), volume, files, {1: "lesion"})
    older = store.save_snapshot("label A", 1, np.zeros(volume.shape, np.uint8), volume, files, {1: "lesion"})
    assert older == newer and read_image(newer.mask).array.any()  # the older, empty snapshot wrote nothing
    other = store.save_snapshot("label B", 0, np.zeros(volume.shape, np.uint8), volume, files, {1: "lesion"})
    assert not read_image(other.mask).array.any()  # another label's first snapshot is written


def test_saving_again_keeps_the_previous_mask_as_a_version_that_can_be_restored(series: tuple[Volume, list[Path]], tmp_path: Path) -> None:
    volume, files = series
    store = LabelStore(tmp_path / "labels")
    uids = (volume.metadata["study_uid"], volume.metadata["series_uid"])
    assert store.versions(*uids) == []
    first = store.save(lesion(volume), volume, files, {1: "lesion", 2: "oedema"}, annotated=Annotated().add(0, [2]))
    assert store.versions(*uids) == []  # nothing was replaced
    store.save(np.zeros(volume.shape, np.uint8), volume, files, {1: "lesion"})
    versions = store.versions(*uids)
    assert [v.number for v in versions] == [1] and versions[0].mask.name == "mask-0001.nii.gz"
    assert np.array_equal(read_image(versions[0].mask).array, lesion(volume)) and not read_image(first.mask).array.any()
    restored = store.restore(*uids, 1)
    assert np.array_equal(read_image(restored.mask).array, lesion(volume))
    assert restored.labels == {0: "background", 1: "lesion", 2: "oedema"} and restored.annotated == Annotated().add(0, [2])
    assert [v.number for v in store.versions(*uids)] == [1, 2]  # the empty mask the restore replaced is kept too
    assert not read_image(store.versions(*uids)[1].mask).array.any()
    with pytest.raises(MedtlError, match="no version 7"):
        store.restore(*uids, 7)


def test_a_partly_annotated_label_trains_only_on_its_annotated_slices(series: tuple[Volume, list[Path]], tmp_path: Path) -> None:
    """Most slices unannotated: the datalist's mask marks them ``ignore`` (the highest value, named so), nnU-Net style."""
    volume, files = series
    store = LabelStore(tmp_path / "labels")
    annotated = Annotated().add(0, [2]).add(2, [14])
    saved = store.save(lesion(volume), volume, files, {1: "lesion", 2: "oedema"}, annotated=annotated)
    record = json.loads((saved.mask.parent / "label.json").read_text())
    assert record["annotated"] == {"complete": False, "axial": [2], "coronal": [], "sagittal": [14]}
    assert store.find(volume.metadata["study_uid"], volume.metadata["series_uid"]).annotated == annotated  # type: ignore[union-attr]
    datalist = load_datalist(store.write_datalist(), "segmentation")
    assert datalist.labels == {0: "background", 1: "lesion", 2: "oedema", 3: "ignore"}
    training = read_image(datalist.training[0].label)
    assert datalist.training[0].label.name == TRAINING_MASK_NAME and same_grid(training, volume)
    expected = np.full(volume.shape, 3, np.uint8)
    expected[2], expected[:, :, 14] = lesion(volume)[2], lesion(volume)[:, :, 14]
    assert np.array_equal(training.array, expected)  # untouched slices are ignore, annotated background stays 0
    assert (training.array == 3).mean() > 0.7

    store.save(lesion(volume), volume, files, {1: "lesion", 2: "oedema"})  # a whole mask (imported, or accepted everywhere)
    datalist = load_datalist(store.write_datalist(), "segmentation")
    assert datalist.labels == {0: "background", 1: "lesion", 2: "oedema"} and datalist.training[0].label.name == "mask.nii.gz"
    assert not (saved.mask.parent / TRAINING_MASK_NAME).exists()  # no stale sparse mask left to read by mistake


def test_a_label_saved_before_slices_were_recorded_counts_as_complete_and_one_with_none_is_left_out(
    series: tuple[Volume, list[Path]], tmp_path: Path
) -> None:
    volume, files = series
    store = LabelStore(tmp_path / "labels")
    saved = store.save(lesion(volume), volume, files, {1: "lesion"}, annotated=Annotated())
    with pytest.raises(MedtlError, match="no saved label .* has an annotated slice"):
        store.write_datalist()
    info = saved.mask.parent / "label.json"
    old = json.loads(info.read_text())
    del old["annotated"]
    info.write_text(json.dumps(old))
    assert store.saved()[0].annotated.complete
    assert load_datalist(store.write_datalist(), "segmentation").training[0].label == saved.mask.resolve()

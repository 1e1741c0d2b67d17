"""The project store: versioned masks with their audit trail, readers and their agreement, the lock, schema migrations,
training data straight from a project, and the move of the old label store into a project."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medtl.data.datalist import load_datalist
from medtl.data.images import read_image
from medtl.data.sparse import Annotated
from medtl.dicom.series import load_series
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.labels.store import LabelStore
from medtl.project import Project, SeriesRecord
from medtl.project import schema
from medtl.project.agreement import dice_per_label, reader_agreement
from medtl.project.from_label_store import import_label_store, open_default_project
from medtl.project.lock import LOCK_NAME
from medtl.project.records import BRUSH, ERASER, IMPORT, LABEL_TABLE, PREDICTION, RESTORE
from medtl.project.training import write_training_data
from tests.dicomgen import SeriesSpec, phantom, write_series


@pytest.fixture
def series(tmp_path: Path) -> tuple[Volume, list[Path]]:
    files = write_series(tmp_path / "dicom", phantom((6, 20, 24)), SeriesSpec(patient_id="P7"))
    return load_series(files), files


@pytest.fixture
def project(tmp_path: Path, series: tuple[Volume, list[Path]]) -> Project:
    project = Project.create(tmp_path / "project", user="alice")
    project.add_dicom(tmp_path / "dicom")
    yield project
    project.close()


def lesion(shape: tuple[int, int, int], value: int = 1) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[2:4, 5:9, 3:12] = value
    return mask


def test_every_save_is_a_new_version_with_its_audit_entry_and_a_destructive_edit_can_be_undone(project: Project, series: tuple[Volume, list[Path]]) -> None:
    volume, _ = series
    uid = volume.metadata["series_uid"]
    liver = project.define_label("liver")
    drawn = project.save_mask(uid, lesion(volume.shape), volume, tool=BRUSH, value=liver.value, touched=Annotated().add(0, [2, 3]))
    erased = project.save_mask(uid, np.zeros(volume.shape, np.uint8), volume, tool=ERASER, value=liver.value, touched=Annotated().add(0, [3]))
    assert (drawn.version, erased.version) == (1, 2) and drawn.path != erased.path
    assert "P7" not in str(erased.path) and uid not in str(erased.path)
    assert erased.annotated.slices[0] == {2, 3} and not erased.annotated.complete  # the previous slices plus the touched ones
    restored = project.restore_mask(uid, 1)
    assert restored.version == 3 and np.array_equal(project.load_mask(project.mask(uid)).array, lesion(volume.shape))
    assert np.array_equal(read_image(drawn.path).array, lesion(volume.shape))  # earlier versions stay on disk
    project.rename_label(liver.value, "hepar")
    history = project.history(value=liver.value)
    assert [(e.tool, e.who) for e in history] == [(LABEL_TABLE, "alice"), (BRUSH, "alice"), (ERASER, "alice"), (LABEL_TABLE, "alice")]
    assert history[1].slices.slices[0] == {2, 3} and history[2].mask_version == 2 and "renamed 'liver' to 'hepar'" in history[3].detail
    assert [e.tool for e in project.history(uid)] == [BRUSH, ERASER, RESTORE]
    with pytest.raises(MedtlError, match="grid"):
        project.save_mask(uid, np.zeros((6, 21, 24), np.uint8), Volume(np.zeros((6, 21, 24)), (1, 1, 1), (0, 0, 0)), tool=BRUSH)


def test_label_definitions_keep_names_unique_and_deleting_returns_what_undoes_it(project: Project) -> None:
    liver = project.define_label("liver")
    assert liver.value == 1 and liver.colour == (78, 121, 167)
    project.set_label_colour(1, (1, 2, 3))
    project.set_label_hidden(1, True)
    project.set_label_locked(1, True)
    assert project.label(1) == type(liver)(1, "liver", (1, 2, 3), hidden=True, locked=True)
    for bad in ("Liver", "ignore", " "):
        with pytest.raises(MedtlError):
            project.define_label(bad)
    removed = project.delete_label(1)
    assert project.labels() == []
    project.define_label(removed.name, removed.colour, removed.value)
    assert project.label(1).name == "liver"


def test_two_readers_keep_separate_versions_and_agreement_is_dice_per_label_on_slices_both_annotated(project: Project, series: tuple[Volume, list[Path]]) -> None:
    volume, _ = series
    uid = volume.metadata["series_uid"]
    project.define_label("lesion")
    project.define_label("cyst")
    a = lesion(volume.shape)
    b = a.copy()
    b[2, 5:9, 3:7] = 0  # reader b left out 16 of the 72 voxels
    b[0, 0, :4] = 2  # and drew a cyst on slice 0, which reader a did not annotate
    project.save_mask(uid, a, volume, tool=BRUSH, touched=Annotated().add(0, [2, 3]))
    project.save_mask(uid, b, volume, tool=BRUSH, reader="bob", touched=Annotated().add(0, [0, 2, 3]))
    assert project.readers() == ["alice", "bob"]
    assert project.mask(uid).version == project.mask(uid, "bob").version == 1
    agreement = reader_agreement(project, uid, "alice", "bob")
    assert agreement[1] == pytest.approx(2 * 56 / (72 + 56)) and agreement[2] is None
    assert dice_per_label(a, b)[2] == 0.0  # counted over every voxel, the cyst is a disagreement


def test_a_second_opener_is_read_only_with_a_notice_and_a_stale_lock_is_taken_over_only_when_asked(project: Project, tmp_path: Path) -> None:
    second = Project.open(project.folder)
    assert second.read_only and "alice" in second.notice and socket.gethostname() in second.notice and "since" in second.notice
    with pytest.raises(MedtlError, match="being edited by alice"):
        second.define_label("liver")
    assert Project.open(project.folder, take_over=True).read_only  # a live lock is never taken over
    second.close()
    project.close()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock = {"user": "carol", "host": socket.gethostname(), "pid": gone.pid, "since": 0.0, "token": "x"}
    (project.folder / LOCK_NAME).write_text(json.dumps(lock))
    stale = Project.open(project.folder)
    assert stale.read_only and "carol" in stale.notice and "stale" in stale.notice and "no longer running" in stale.notice
    stale.close()
    with Project.open(project.folder, take_over=True) as taken:
        assert not taken.read_only
        (project.folder / LOCK_NAME).write_text(json.dumps({**lock, "pid": 1, "token": "y"}))  # someone else took it over
        with pytest.raises(MedtlError, match="taken over by carol"):
            taken.define_label("liver")
        assert taken.read_only


def test_a_database_of_every_earlier_version_opens_with_its_data_upgraded(tmp_path: Path) -> None:
    for version in range(1, schema.SCHEMA_VERSION):
        folder = tmp_path / f"v{version}"
        (folder / "masks").mkdir(parents=True)
        write_mask = Volume(lesion((4, 5, 6)), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
        from medtl.export.nifti import write_nifti

        write_nifti(write_mask, folder / "masks" / "old.nii.gz")
        connection = sqlite3.connect(folder / "project.sqlite", isolation_level=None)
        schema.migrate(connection, target=version)
        connection.execute("INSERT INTO series (series_uid, path, added_at) VALUES ('1.2.3', '/data/s', 0)")
        connection.execute("INSERT INTO labels (value, name, colour) VALUES (1, 'liver', '#ff0000')")
        if version == 1:
            connection.execute("INSERT INTO masks (series_id, version, path, saved_at, complete) VALUES (1, 1, 'masks/old.nii.gz', 5, 0)")
        else:
            connection.execute("INSERT INTO readers (name, added_at) VALUES ('dana', 0)")
            connection.execute("INSERT INTO masks (series_id, reader_id, version, path, saved_at, complete) VALUES (1, 1, 1, 'masks/old.nii.gz', 5, 0)")
        connection.execute("INSERT INTO annotated_slices VALUES (1, 0, 2)")
        reader_column = ", reader_id" if version >= 2 else ""
        connection.execute(f"INSERT INTO audit (at, who, tool, series_id, value{reader_column}) VALUES (5, 'dana', 'brush', 1, 1{', 1' if reader_column else ''})")
        connection.close()
        with pytest.raises(MedtlError, match="older medtl"):
            Project.open(folder, read_only=True)
        with Project.open(folder, user="erin") as project:
            assert project.schema_version() == schema.SCHEMA_VERSION
            reader = schema.LEGACY_READER if version == 1 else "dana"
            (mask,) = project.mask_versions("1.2.3", reader)
            assert mask.annotated.slices[0] == {2} and np.array_equal(project.load_mask(mask).array, lesion((4, 5, 6)))
            assert project.labels()[0].name == "liver" and not project.labels()[0].hidden
            assert [(e.who, e.reader) for e in project.history("1.2.3")] == [("dana", reader)]
            project.define_class("tumour")  # the tables of later versions work
            project.set_class("1.2.3", "tumour")
            assert project.class_labels("1.2.3") == {None: "tumour"}
    newer = tmp_path / "v1"
    sqlite3.connect(newer / "project.sqlite").execute(f"PRAGMA user_version={schema.SCHEMA_VERSION + 1}")
    with pytest.raises(MedtlError, match="newer medtl"):
        Project.open(newer)


def test_a_save_cut_short_leaves_no_file_behind_and_a_missing_mask_is_reported(project: Project, series: tuple[Volume, list[Path]]) -> None:
    volume, _ = series
    uid = volume.metadata["series_uid"]
    saved = project.save_mask(uid, lesion(volume.shape), volume, tool=BRUSH)
    stray = saved.path.with_name("v0002.nii.gz")
    stray.write_bytes(b"half a save")
    project.close()
    with Project.open(project.folder) as reopened:
        assert not stray.exists() and saved.path.exists()
        saved.path.unlink()
        assert reopened.check() == [f"{saved.path}: the mask file is missing"]


def test_training_data_from_a_project_marks_unannotated_slices_ignore_and_drops_deleted_labels(project: Project, series: tuple[Volume, list[Path]], tmp_path: Path) -> None:
    volume, files = series
    uid = volume.metadata["series_uid"]
    project.define_label("lesion")
    project.define_label("gone")
    mask = lesion(volume.shape)
    mask[3, 0, :3] = 2
    project.save_mask(uid, mask, volume, tool=PREDICTION, detail="run /runs/a", touched=Annotated().add(0, [2, 3]))
    project.delete_label(2)
    datalist = load_datalist(write_training_data(project, tmp_path / "data"), "segmentation")
    assert datalist.labels == {0: "background", 1: "lesion", 2: "ignore"}
    (case,) = datalist.training
    assert case.image == files[0].parent.resolve() and case.patient_id == "P7"
    trained = read_image(case.label).array
    assert set(np.unique(trained[2:4])) == {0, 1} and np.all(trained[[0, 1, 4, 5]] == 2)
    project.define_class("benign")
    project.define_class("malignant")
    project.set_class(uid, "malignant")
    project.set_class(uid, "benign", slice_index=3)
    classification = load_datalist(write_training_data(project, tmp_path / "classes", "classification"), "classification")
    assert classification.classes == ["benign", "malignant"] and [c.label for c in classification.training] == ["malignant"]


def test_the_label_store_moves_into_a_new_default_project_and_stays_where_it_was(series: tuple[Volume, list[Path]], tmp_path: Path) -> None:
    volume, files = series
    store = LabelStore(tmp_path / "labels")
    store.save(lesion(volume.shape), volume, files, {1: "lesion"}, annotated=Annotated().add(0, [2]))
    store.save(lesion(volume.shape, 2), volume, files, {1: "lesion", 2: "oedema"})
    project = open_default_project(tmp_path / "default", store)
    uid = volume.metadata["series_uid"]
    versions = project.mask_versions(uid)
    assert [v.annotated.complete for v in versions] == [False, True] and versions[0].annotated.slices[0] == {2}
    assert np.array_equal(project.load_mask(versions[-1]).array, lesion(volume.shape, 2))
    assert [(label.value, label.name) for label in project.labels()] == [(1, "lesion"), (2, "oedema")]
    assert {e.tool for e in project.history(uid)} == {IMPORT}
    assert store.saved() and store.versions(volume.metadata["study_uid"], uid)  # the originals are kept
    with pytest.raises(MedtlError, match="imported already"):
        import_label_store(project, store)
    project.close()
    with open_default_project(tmp_path / "default", store) as again:  # the second call opens it
        assert len(again.mask_versions(uid)) == 2


def test_a_series_whose_image_is_a_nifti_file_trains_from_that_file(tmp_path: Path) -> None:
    image = tmp_path / "image.nii.gz"
    from medtl.export.nifti import write_nifti

    volume = Volume(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    write_nifti(volume, image)
    with Project.create(tmp_path / "p") as project:
        project.add_image(SeriesRecord("9.8.7", "", None, image, (), "MR", ""))
        project.define_label("x")
        project.save_mask("9.8.7", lesion((4, 5, 6)), project.load_volume("9.8.7"), tool=BRUSH)
        (case,) = load_datalist(write_training_data(project, tmp_path / "data")).training
        assert case.image == image and np.array_equal(read_image(case.label).array, lesion((4, 5, 6)))


def test_an_imported_mask_joins_the_projects_labels_by_name_and_replaces_only_its_own_voxels(project: Project, series: tuple[Volume, list[Path]], tmp_path: Path) -> None:
    from medtl.export.nifti import write_nifti
    from medtl.project.label_files import import_mask

    volume, _ = series
    uid = volume.metadata["series_uid"]
    project.define_label("liver")
    project.save_mask(uid, lesion(volume.shape), volume, tool=BRUSH)
    for number, (z, name) in enumerate(((0, "tumour"), (5, "Tumour"))):
        tumour = np.zeros(volume.shape, np.uint8)
        tumour[z, :3, :3] = 1
        write_nifti(Volume(tumour, volume.spacing, volume.origin, volume.direction), tmp_path / f"t{number}.nii.gz")
        assert import_mask(project, uid, tmp_path / f"t{number}.nii.gz", name=name).values == {1: 2}
    merged = project.load_mask(project.mask(uid)).array
    assert np.array_equal(merged == 1, lesion(volume.shape) == 1)  # the liver stays
    assert np.argwhere(merged == 2)[:, 0].tolist() == [5] * 9  # the second tumour mask replaced the first
    assert [label.name for label in project.labels()] == ["liver", "tumour"]
    assert [(e.tool, e.detail) for e in project.history(uid)][1:] == [(IMPORT, "from t0.nii.gz"), (IMPORT, "from t1.nii.gz")]


def test_saves_from_two_threads_get_distinct_versions_and_the_oldest_beyond_the_limit_are_removed(project: Project, series: tuple[Volume, list[Path]]) -> None:
    import threading

    volume, _ = series
    uid = volume.metadata["series_uid"]
    project.keep_versions = 5
    saved = []

    def save(value: int) -> None:
        for _ in range(6):
            saved.append(project.save_mask(uid, lesion(volume.shape, value), volume, tool=BRUSH))

    threads = [threading.Thread(target=save, args=(value,)) for value in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(v.version for v in saved) == list(range(1, 13))
    kept = project.mask_versions(uid)
    assert [v.version for v in kept] == list(range(8, 13)) and all(v.path.is_file() for v in kept)
    assert sorted(p.name for p in kept[0].path.parent.iterdir()) == [f"v{n:04d}.nii.gz" for n in range(8, 13)]
    assert len([e for e in project.history(uid) if e.tool == BRUSH]) == 12  # the audit log keeps every change


def test_a_damaged_database_is_refused_in_one_line_and_leaves_no_lock(tmp_path: Path) -> None:
    Project.create(tmp_path / "p").close()
    (tmp_path / "p" / "project.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(MedtlError, match="cannot open the project database"):
        Project.open(tmp_path / "p")
    assert not (tmp_path / "p" / LOCK_NAME).exists()

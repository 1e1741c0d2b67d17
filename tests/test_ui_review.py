"""Review in the app: a run's per-case results (sorted, a case opened with its prediction), its history after Train
again, the uncertainty overlay, what to label next (ranked, then Next case), and restoring an earlier label version.

The first tests drive the pure view models (``ui.models``) without a QApplication; the others drive the real widgets
on a tiny U-Net trained for one epoch on 64 x 64 pictures of a disk (seconds)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from medtl.dicom.scan import scan
from medtl.dicom.volume import Volume
from medtl.errors import MedtlError
from medtl.inference.prediction import SegmentationPrediction
from medtl.inference.rank import RankedInput, RankFailure, Ranking
from medtl.labels.store import LabelStore
from medtl.training.case_results import CaseResults, ClassificationCase, RocCurve, SegmentationCase
from medtl.training.events import COMPLETED
from medtl.training.run_folder import RunFolder
from medtl.workflow.train import TrainRequest, train
from tests.dicomgen import SeriesSpec, phantom, write_series
from tests.test_predict_classification import one_thread
from tests.test_ui_labels import shown_window, temporary_settings
from tests.test_ui_window import TIMEOUT_MS
from tests.test_workflow_continue import disk_datalist
from ui.models.case_table import MISSING, CaseTable, auc_text, confusion_rows
from ui.models.label_session import label_versions, restore_call, version_text
from ui.models.overlays import HeatmapLayer, LabelLayer
from ui.models.prediction_layers import NO_UNCERTAINTY, UNCERTAINTY_COLORMAP, choose_uncertainty, prediction_layers
from ui.models.ranking_queue import RankingQueue, series_inputs
from ui.models.run_request import RunOutcome, resume_request, train_again_request
from ui.models.run_review import WITHIN_PATIENT_NOTE, chain_text, is_within_patient, review_run, run_history
from ui.models.viewer_model import ViewerModel

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TRAIN_TIMEOUT_MS = 120_000
SLAB_SPLIT = "slabs within one patient (validation is within-patient)"  # as the engine's data summary names such a split


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six pictures of a disk (NIfTI), the last two for validation."""
    return disk_datalist(tmp_path_factory.mktemp("disks"), count=6)


@pytest.fixture(scope="module")
def finished_run(disks: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small U-Net trained one epoch from scratch on the disks (with flips: TTA applies)."""
    with one_thread():
        result = train(TrainRequest(disks, "segmentation", tmp_path_factory.mktemp("runs") / "first", model="unet", epochs=1, device="cpu"))
    return result.out_dir


def child_of(parent: Path, child: Path, split: str | None = None) -> Path:
    """A copy of the run ``parent`` that names it as the run it was trained again from (its config's weights)."""
    shutil.copytree(parent, child)
    config = json.loads((child / "config.json").read_text())
    config["model"]["weights"] = f"run:{parent}"
    if split is not None:
        config["data"]["split"] = split
    (child / "config.json").write_text(json.dumps(config))
    return child


# --- pure view models ---------------------------------------------------------------------------


def segmentation_results() -> CaseResults:
    cases = (
        SegmentationCase(Path("/data/a.nii.gz"), Path("/data/a_mask.nii.gz"), {"liver": 0.9, "tumour": None}, {"liver": 3.25, "tumour": None}),
        SegmentationCase(Path("/data/b"), Path("/data/b_mask.nii.gz"), {"liver": 0.5, "tumour": 0.7}, {"liver": 12.0, "tumour": 4.0}),
    )
    return CaseResults("segmentation", ("liver", "tumour"), cases)


def test_segmentation_rows_are_case_and_label_and_sort_with_undefined_values_last() -> None:
    table = CaseTable(segmentation_results())
    assert table.headers == ("case", "label", "Dice", "HD95 mm")
    assert [table.rows[r].values[:2] for r in range(4)] == [("a.nii.gz", "liver"), ("a.nii.gz", "tumour"), ("b", "liver"), ("b", "tumour")]
    assert table.text(0, 2) == "0.900" and table.text(0, 3) == "3.2" and table.text(1, 2) == MISSING
    table.sort(2, descending=True)
    assert [table.rows[r].values[2] for r in range(4)] == [0.9, 0.7, 0.5, None]
    table.sort(2)
    assert [table.rows[r].values[2] for r in range(4)] == [0.5, 0.7, 0.9, None]  # undefined last both ways
    table.sort(0, descending=True)
    assert table.rows[0].image == Path("/data/b") and not any(row.wrong for row in table.rows)
    assert auc_text(segmentation_results()) == "" and confusion_rows(segmentation_results()) == []


def test_a_dicom_folder_case_is_named_with_its_parent_folder(tmp_path: Path) -> None:
    series = tmp_path / "sample-study-v1" / "dicom"
    series.mkdir(parents=True)
    cases = (SegmentationCase(series, tmp_path / "mask.nii.gz", {"brain": 0.8}, {"brain": 2.0}),)
    assert CaseTable(CaseResults("segmentation", ("brain",), cases)).text(0, 0) == "sample-study-v1/dicom"  # before: "dicom"


def test_classification_rows_mark_mistakes_and_summarise_auc_and_confusion() -> None:
    cases = (
        ClassificationCase(Path("x.png"), "cat", {"cat": 0.8, "dog": 0.2}, "cat"),
        ClassificationCase(Path("y.png"), "dog", {"cat": 0.6, "dog": 0.4}, "cat"),
    )
    roc = (RocCurve("dog", (0.0, 1.0), (0.0, 1.0), (float("inf"), 0.2), 0.5),)
    results = CaseResults("classification", ("cat", "dog"), cases, confusion_matrix=((1, 0), (1, 0)), roc=roc, auc=0.5)
    table = CaseTable(results)
    assert table.headers == ("case", "true", "predicted", "probability")
    assert [row.wrong for row in table.rows] == [False, True] and table.text(1, 3) == "0.600"
    assert confusion_rows(results) == [("cat", (1, 0)), ("dog", (1, 0))]
    assert auc_text(results) == "ROC AUC: dog 0.500"
    assert "undefined" in auc_text(CaseResults("classification", ("cat", "dog"), cases[:1], confusion_matrix=((1, 0), (0, 0))))


def test_run_review_reads_results_history_and_the_within_patient_split(finished_run: Path, tmp_path: Path) -> None:
    review = review_run(finished_run)
    assert review.results is not None and review.task == "segmentation" and review.problem is None and not review.within_patient
    assert review.best.startswith("mean_dice 0.") and review.best.endswith("at epoch 1")
    assert [case.image.name for case in review.results.cases] == ["image4.nii.gz", "image5.nii.gz"]
    child = child_of(finished_run, tmp_path / "second", split=SLAB_SPLIT)
    grandchild = child_of(child, tmp_path / "third")
    history = run_history(grandchild)
    assert [entry.run_dir for entry in history] == [grandchild, child, finished_run] and all(entry.exists for entry in history)
    assert chain_text(history) == f"third ← second ← {finished_run.name}"
    assert review_run(child).within_patient and is_within_patient(SLAB_SPLIT) and not is_within_patient("patients, seed 0, fraction 0.2")
    assert WITHIN_PATIENT_NOTE.startswith("Validation is within-patient")
    shutil.rmtree(child)
    gone = run_history(grandchild)
    assert [entry.exists for entry in gone] == [True, False] and gone[1].best == "folder missing"
    RunFolder(grandchild).case_results_paths[0].unlink()
    missing = review_run(grandchild)
    assert missing.results is None and "case_results.json: missing" in (missing.problem or "")


def test_resume_and_train_again_requests_leave_the_rest_to_the_stored_run(finished_run: Path, disks: Path, tmp_path: Path) -> None:
    outcome = RunOutcome(finished_run, finished_run, disks, "cpu", COMPLETED)
    again = train_again_request(outcome, None, tmp_path / "next")
    assert again.init_from == finished_run.absolute() and again.weights is None and again.model is None
    assert again.task == "segmentation" and again.datalist == disks and again.out_dir == tmp_path / "next" and not again.resume
    other = disks.parent / "other.json"
    other.write_text(disks.read_text())
    assert train_again_request(outcome, other, tmp_path / "next").datalist == other  # the current labels
    resumed = resume_request(outcome)
    assert resumed.resume and resumed.out_dir == finished_run and resumed.datalist == disks and resumed.task == "segmentation"


def test_uncertainty_is_asked_for_as_tta_then_mc_and_shown_as_a_heat_map() -> None:
    def refuse(method: str) -> None:
        raise MedtlError(f"no {method}")

    assert choose_uncertainty(lambda method: None) == ("tta", None)
    assert choose_uncertainty(lambda method: refuse(method) if method == "tta" else None) == ("mc", None)
    assert choose_uncertainty(refuse) == (None, NO_UNCERTAINTY) and "neither TTA nor MC dropout" in NO_UNCERTAINTY
    grid = ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    mask = np.zeros((2, 4, 4), np.uint8)
    entropy = np.full((2, 4, 4), 0.5, np.float32)
    prediction = SegmentationPrediction(Volume(mask, *grid), None, {0: "bg", 1: "disk"}, Volume(mask, *grid), {}, 0.5, Volume(entropy, *grid))
    labels, heat = prediction_layers(prediction, "run", "tta")
    assert isinstance(labels, LabelLayer) and isinstance(heat, HeatmapLayer)
    assert heat.name == "run: uncertainty (TTA)" and heat.colormap == UNCERTAINTY_COLORMAP and heat.visible and heat.opacity != labels.opacity


def test_series_inputs_leave_out_labelled_series_and_the_queue_walks_the_ranking(tmp_path: Path) -> None:
    for name in ("one", "two", "three"):
        write_series(tmp_path / "study" / name, phantom((3, 16, 16)), SeriesSpec(series_description=name))
    write_series(tmp_path / "study" / "shared", phantom((3, 16, 16)), SeriesSpec(series_description="shared"))
    (tmp_path / "study" / "shared" / "notes.txt").write_text("another file in the series' folder")
    result = scan(tmp_path / "study", workers=1)
    series = [(patient, study, info) for patient in result.patients for study in patient.studies for info in study.series]
    store = LabelStore(tmp_path / "labels")
    three = next(info for _, _, info in series if info.description == "three")
    volume = Volume(np.zeros((3, 16, 16), np.uint8), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), metadata={"study_uid": three.instances[0].study_uid, "series_uid": three.series_uid})
    store.save(np.ones((3, 16, 16), np.uint8), volume, three.files, {1: "x"})
    inputs, skipped = series_inputs(series, store)
    assert sorted(series.path.name for series in inputs) == ["one", "two"]
    assert sorted(skipped) == ["shared (CT, 3 images): shares its folder with other files, so it cannot be ranked by its folder", "three (CT, 3 images): labelled already"]
    one, two = sorted(inputs, key=lambda series: series.path.name)
    ranking = Ranking("tta", "entropy", (RankedInput(1, two.path, 0.8, 0.5, (0.1, 0.9, 0.2)), RankedInput(2, one.path, 0.3)), (RankFailure(one.path, "no"),))
    queue = RankingQueue(ranking, inputs)
    assert [entry.series for entry in queue.entries] == [two, one] and queue.failed == [f"{one.name}: no"]
    assert queue.entries[0].text() == "1. two (CT, 3 images): 0.800, least sure on slice 2" and queue.entries[1].text() == "2. one (CT, 3 images): 0.300"
    assert queue.next() == queue.entries[0] and queue.next() == queue.entries[1] and queue.next() is None
    assert queue.opened(0).series == two and queue.next() == queue.entries[1]


def test_restore_call_brings_an_earlier_save_back_and_keeps_the_replaced_one(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels")
    volume = Volume(np.zeros((2, 6, 6), np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), metadata={"study_uid": "1.2", "series_uid": "1.2.3"})
    model = ViewerModel(volume)
    first, second = np.zeros((2, 6, 6), np.uint8), np.zeros((2, 6, 6), np.uint8)
    first[0, 1:3, 1:3], second[1, 2:5, 2:5] = 1, 2
    assert label_versions(model, store) == []
    for mask in (first, second):
        store.save(mask, volume, [], {1: "a", 2: "b"})
    versions = label_versions(model, store)
    assert [v.number for v in versions] == [1] and version_text(versions[0]).startswith("version 1, saved 20")
    saved, restored = restore_call(model, store, 1)(lambda *_: None, None)  # type: ignore[arg-type]
    assert np.array_equal(restored.array, first) and saved.labels == {0: "background", 1: "a", 2: "b"}
    assert [v.number for v in label_versions(model, store)] == [2, 1]  # newest first: the replaced label is version 2
    _, again = restore_call(model, store, 2)(lambda *_: None, None)  # type: ignore[arg-type]
    assert np.array_equal(again.array, second)
    with pytest.raises(MedtlError, match="no version 9"):
        restore_call(model, store, 9)(lambda *_: None, None)  # type: ignore[arg-type]


# --- the real widgets ---------------------------------------------------------------------------


def test_results_list_the_cases_sort_by_dice_and_a_double_click_opens_the_case_with_its_prediction(qtbot, tmp_path: Path, finished_run: Path) -> None:  # type: ignore[no-untyped-def]
    window = shown_window(qtbot, temporary_settings(tmp_path), LabelStore(tmp_path / "labels"))
    panel = window.results
    window.show_results()
    panel.show_run(finished_run)
    model, table = panel.model, panel.table
    assert model.rowCount() == 2 and [model.index(r, 0).data() for r in range(2)] == ["image4.nii.gz", "image5.nii.gz"]
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(4)] == ["case", "label", "Dice", "HD95 mm"]
    assert not panel.note.isVisible() and not panel.classification.isVisible() and finished_run.name in panel.title.text()
    assert panel.history_list.count() == 1 and "not trained again" in panel.history_label.text()

    def dice_column() -> list[float]:
        return [float(model.index(r, 2).data()) for r in range(model.rowCount())]

    first = dice_column()
    assert first[0] != first[1]
    header = table.horizontalHeader()
    dice_header = QPoint(header.sectionViewportPosition(2) + header.sectionSize(2) // 2, header.height() // 2)
    orders = []
    for _ in range(2):  # a click on the Dice header sorts by Dice; a second click turns the order round
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=dice_header)
        assert header.sortIndicatorSection() == 2
        orders.append(dice_column())
    assert sorted(orders) == [sorted(first), sorted(first, reverse=True)]
    table.sortByColumn(2, Qt.SortOrder.AscendingOrder)
    worst = model.image(0)

    panel.uncertainty_box.setChecked(True)
    assert window.uncertainty_action.isChecked() and window.training.uncertainty_box.isChecked()  # one option, shown in both panels
    cell = table.visualRect(model.index(0, 0)).center()
    with qtbot.waitSignal(window.prediction_shown, timeout=TRAIN_TIMEOUT_MS):
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell)  # a double-click's first press selects the row
        qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    shown = window.viewer.model
    assert shown is not None and shown.label.series_description == worst.name  # the worst case, first once sorted
    assert shown.volume.shape == (1, 64, 64)
    predicted, uncertainty = shown.layers[-2:]
    assert isinstance(predicted, LabelLayer) and predicted.name == f"{finished_run.name}: disk" and predicted.mask.shape == shown.volume.shape
    assert isinstance(uncertainty, HeatmapLayer) and uncertainty.name == f"{finished_run.name}: uncertainty (TTA)" and uncertainty.visible
    assert window.layers.list.count() == 2 and window.status_message.text().startswith("Segmented: disk")


def test_train_again_starts_from_the_run_and_the_history_shows_the_parent(qtbot, tmp_path: Path, disks: Path) -> None:  # type: ignore[no-untyped-def]
    window = shown_window(qtbot, temporary_settings(tmp_path), LabelStore(tmp_path / "labels"))
    panel = window.training
    panel.datalist.setText(str(disks))
    panel.out_dir.setText(str(tmp_path / "parent"))
    panel.model_box.setCurrentText("unet")
    panel.weights_box.setCurrentIndex(1)  # from scratch: nothing to fetch
    panel.epochs.setValue(1)
    panel.device_box.setCurrentText("cpu")
    with qtbot.waitSignal(panel.run_finished, timeout=TRAIN_TIMEOUT_MS):
        assert panel.start()
    qtbot.waitUntil(lambda: not panel.running, timeout=TRAIN_TIMEOUT_MS)
    assert window.results.run_dir == tmp_path / "parent" and window.results.model.rowCount() == 2
    child = Path(panel.out_dir.text())
    panel.datalist.setText("")  # train again on the parent's datalist
    with qtbot.waitSignal(panel.run_finished, timeout=TRAIN_TIMEOUT_MS) as finished:
        panel.again_button.click()
    assert finished.args[0].summary.parent_run == str(tmp_path / "parent")
    assert RunFolder(child).read_config().model["weights"] == f"run:{tmp_path / 'parent'}"
    results = window.results
    assert results.run_dir == child and [results.history_list.item(r).text().split(":")[0] for r in range(2)] == [child.name, "parent"]
    assert results.history_label.text() == f"History: {child.name} ← parent" and "mean_dice" in results.history_list.item(1).text()
    results.history_list.setCurrentRow(1)  # the parent's own results
    assert results.run_dir == tmp_path / "parent" and results.model.rowCount() == 2


def test_rank_the_unlabelled_series_and_next_case_opens_them_in_order(qtbot, tmp_path: Path, finished_run: Path) -> None:  # type: ignore[no-untyped-def]
    for name, seed in (("first", 1), ("second", 2)):
        write_series(tmp_path / "study" / name, phantom((4, 40, 48), seed=seed), SeriesSpec(series_description=name))
    window = shown_window(qtbot, temporary_settings(tmp_path), LabelStore(tmp_path / "labels"))
    with qtbot.waitSignal(window.series_shown, timeout=TIMEOUT_MS):
        window.open_path(tmp_path / "study")
    window.results.show_run(finished_run)
    panel = window.ranking
    assert panel.next_action.shortcut().toString() == "Ctrl+N"
    assert panel.method_box.currentData() == "random"  # the measured winner is the default
    panel.method_box.setCurrentIndex(panel.method_box.findData(None))  # the model's uncertainty
    with qtbot.waitSignal(panel.ranked, timeout=TRAIN_TIMEOUT_MS) as ranked:
        window.rank_action.trigger()  # Model → Rank cases to label next…
    queue = ranked.args[0]
    assert panel.list.count() == 2 and queue.method == "tta" and {entry.series.path.name for entry in queue.entries} == {"first", "second"}
    assert queue.entries[0].score >= queue.entries[1].score and panel.list.item(0).text().startswith(f"1. {queue.entries[0].series.name}: ")
    assert window.ranking_dock.isVisible() and "Next case (Ctrl+N)" in panel.status.text()

    def shown_uid() -> str:
        return str(window.viewer.model.volume.metadata["series_uid"]) if window.viewer.model else ""

    for entry in queue.entries:
        window.ranking.next_action.trigger()
        qtbot.waitUntil(lambda entry=entry: shown_uid() == entry.series.series_uid, timeout=TIMEOUT_MS)
        if entry.slice_index is not None:
            qtbot.waitUntil(lambda entry=entry: int(window.viewer.model.cursor[2]) == entry.slice_index, timeout=TIMEOUT_MS)
    assert panel.next_case() is None and "last series" in panel.status.text()


def test_restore_an_earlier_version_of_the_label_from_the_label_menu(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_series(tmp_path / "ct", phantom((6, 32, 32)), SeriesSpec(series_description="phantom"))
    store = LabelStore(tmp_path / "labels")
    window = shown_window(qtbot, temporary_settings(tmp_path), store)
    with qtbot.waitSignal(window.series_shown, timeout=TIMEOUT_MS):
        window.open_path(tmp_path / "ct")
    model = window.viewer.model
    assert model is not None
    window.show_label_versions()
    assert window.versions_dialog is None and window.status_message.text().startswith("No earlier versions")
    first = np.zeros(model.volume.shape, np.uint8)
    first[2, 5:12, 5:12] = 1
    model.edit_label(first, {1: "lesion"})
    with qtbot.waitSignal(window.label_saved, timeout=TIMEOUT_MS):
        window.save_label()
    second = first.copy()
    second[3, 10:20, 10:20] = 1
    assert model.editor is not None and model.editor.accept(second, {1: "lesion"}) is not None
    with qtbot.waitSignal(window.label_saved, timeout=TIMEOUT_MS):
        window.save_label()
    versions_action = next(action for action in window.actions() if action.text() == "Restore an earlier &version…")
    assert versions_action in window.menuBar().actions()[2].menu().actions()  # the Label menu
    versions_action.trigger()
    dialog = window.versions_dialog
    assert dialog is not None and dialog.list.count() == 1 and dialog.list.item(0).text().startswith("version 1, saved ")
    with qtbot.waitSignal(window.label_restored, timeout=TIMEOUT_MS):
        dialog.restore_button.click()
    assert model.editor is not None and np.array_equal(model.editor.layer.mask, first) and not model.editor.dirty
    assert "kept as version 2" in window.status_message.text()
    window.show_label_versions()
    with qtbot.waitSignal(window.label_restored, timeout=TIMEOUT_MS):
        window.versions_dialog.restore_button.click()  # the newest version, first in the list: undoes the restore
    assert np.array_equal(model.editor.layer.mask, second)

"""`medtl train` on one patient's volume with a few annotated slices: slice-wise 2D from ImageNet weights, a slab
split recorded in the run folder, and voxels nobody annotated that change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medtl.cli import main
from medtl.data.datalist import load_datalist
from medtl.data.dataset import build_loaders
from medtl.data.images import read_image
from medtl.data.slabs import GAP_SLICES, SLAB_SPLIT
from medtl.data.tasks import write_mni_tissue
from medtl.dicom.volume import Volume
from medtl.models.spec import ModelSpec, build_model
from medtl.training.run_folder import RunFolder
from medtl.workflow import defaults
from medtl.workflow.train import TrainRequest, preview, train

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
IGNORE = 3


@pytest.fixture(scope="module")
def tissue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MNI152 head at 6 mm, grey and white matter annotated on 5 of its 27 axial slices, the rest ``ignore``."""
    return write_mni_tissue(tmp_path_factory.mktemp("tissue"), annotated=5, stride=3)


def annotated_z(path: Path) -> set[int]:
    return set(np.flatnonzero((read_image(path).array != IGNORE).any(axis=(1, 2))).tolist())


def test_one_sparse_volume_trains_a_pretrained_2d_network_on_a_recorded_slab_split(tissue: Path, tmp_path: Path) -> None:
    result = train(TrainRequest(tissue, "segmentation", tmp_path / "run", epochs=2))
    run = RunFolder(tmp_path / "run")
    summary = json.loads(run.summary_path.read_text())
    assert summary["split"] == SLAB_SPLIT and summary["pretrained_source"] == "efficientnet-lite0"
    assert result.summary.best_metric is not None and result.summary.best_metric > 0.0
    config = run.read_config()
    assert (config.model["architecture"], config.model["spatial_dims"], config.preprocessing["spatial_dims"]) == ("lite0-unet", 2, 2)
    assert config.data["labels"] == {"0": "background", "1": "grey matter", "2": "white matter"}  # the outputs: no "ignore"
    training, validation = (annotated_z(run.split_dir / name) for name in ("training-0-training-slabs.nii.gz", "training-0-validation-slab.nii.gz"))
    assert len(training) >= 2 and len(validation) >= 1 and not training & validation
    assert min(abs(t - v) for t in training for v in validation) > GAP_SLICES
    assert training | validation <= annotated_z(load_datalist(tissue).training[0].label)
    metrics = run.read_metrics()
    assert {"dice_1", "dice_2"} <= set(metrics[-1]) and metrics[-1]["dice_1"] is not None
    told = preview(TrainRequest(tissue, "segmentation", tmp_path / "another"))
    assert config.choice_reason == told.reason  # what the user saw before Start is what the run keeps


def test_from_scratch_is_one_setting_away(tissue: Path) -> None:
    profile = defaults.profile_data(load_datalist(tissue))
    assert profile.network_dims("segmentation") == 2 and profile.spatial_dims == 3
    pretrained = defaults.choose_spec("segmentation", profile, 3)
    scratch = defaults.choose_spec("segmentation", profile, 3, weights="none")
    assert (pretrained.architecture, pretrained.spatial_dims, pretrained.weights) == ("lite0-unet", 2, "efficientnet-lite0")
    assert (pretrained.strategy, pretrained.strategy_params) == defaults.SLICE_WISE_SEGMENTATION[2:]
    assert (scratch.architecture, scratch.spatial_dims, scratch.weights) == ("lite0-unet", 2, None)
    assert defaults.choose_spec("segmentation", profile, 3, model="unet").spatial_dims == 2  # a named network slices too


def batches_loss_scores(datalist_path: Path, split_dir: Path) -> tuple[list[dict[str, torch.Tensor]], float, dict[str, float]]:
    """Ten epochs' training batches (one slice each), a fixed network's masked loss on them, and its validation scores."""
    datalist = load_datalist(datalist_path)
    profile = defaults.profile_data(datalist)
    spec = ModelSpec("segmentation", "lite0-unet", 2, 1, 3)
    preprocessing = defaults.choose_preprocessing("segmentation", profile, spec, on_gpu=False)
    train_loader, val_loader, data = build_loaders(datalist, "segmentation", preprocessing, 4, cache="none", seed=3, split_dir=split_dir)
    torch.manual_seed(0)
    net, _ = build_model(spec)
    net.eval()
    batches = [batch for _ in range(10) for batch in train_loader]
    images, labels = (torch.cat([batch[key].as_subclass(torch.Tensor) for batch in batches]) for key in ("image", "label"))
    with torch.no_grad():
        loss = float(defaults.segmentation_loss(data.ignore_label)(net(images), labels))
        from medtl.training.metrics import MetricAccumulator

        scores = MetricAccumulator("segmentation", data.ignore_label)
        for item in val_loader:
            scores.update(net(item["image"].as_subclass(torch.Tensor)), item["label"].as_subclass(torch.Tensor))
    return batches, loss, scores.compute()


def test_what_lies_in_slices_nobody_annotated_changes_nothing(tissue: Path, tmp_path: Path) -> None:
    """The image inside the unannotated slices is shuffled (its histogram, hence the volume's intensity scaling, is
    kept): the training slices drawn, the loss and the validation scores stay exactly the same."""
    datalist = load_datalist(tissue)
    case = datalist.training[0]
    image, ignored = read_image(case.image), ~np.isin(np.arange(read_image(case.label).shape[0]), sorted(annotated_z(case.label)))
    array = image.array.copy()
    values = array[ignored]
    array[ignored] = np.random.default_rng(0).permutation(values.ravel()).reshape(values.shape)
    assert not np.array_equal(array, image.array)
    changed = tmp_path / "changed"
    changed.mkdir()
    import nibabel

    nibabel.save(Volume(array, image.spacing, image.origin, image.direction).to_nifti(), str(changed / "image.nii.gz"))
    document = json.loads(tissue.read_text())
    document["training"][0].update(image=str(changed / "image.nii.gz"), label=str(case.label))
    (changed / "datalist.json").write_text(json.dumps(document))

    batches, loss, scores = batches_loss_scores(tissue, tmp_path / "split-original")
    batches_changed, loss_changed, scores_changed = batches_loss_scores(changed / "datalist.json", tmp_path / "split-changed")
    for batch, batch_changed in zip(batches, batches_changed, strict=True):
        assert torch.equal(batch["image"], batch_changed["image"]) and torch.equal(batch["label"], batch_changed["label"])
    assert loss == loss_changed and scores == scores_changed and scores["mean_dice"] is not None


def test_cli_trains_on_one_sparse_volume_without_model_or_weights(tissue: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli-run"
    assert main(["train", "--datalist", str(tissue), "--task", "segmentation", "--out", str(out), "--epochs", "1"]) == 0
    printed = capsys.readouterr()
    assert "efficientnet-lite0" in printed.out + printed.err
    assert "slabs within one patient" in printed.err
    summary = json.loads(RunFolder(out).summary_path.read_text())
    assert summary["split"] == SLAB_SPLIT and summary["best_metric"] is not None
    assert sorted(p.name for p in RunFolder(out).split_dir.iterdir()) == ["training-0-training-slabs.nii.gz", "training-0-validation-slab.nii.gz"]


def test_too_few_annotated_slices_are_refused_before_training(tmp_path: Path) -> None:
    datalist = write_mni_tissue(tmp_path / "two", annotated=2, stride=3)
    with pytest.raises(Exception, match=r"has 2 annotated slice\(s\) and at least 3 are needed \(2 for training, 1 for validation\)"):
        train(TrainRequest(datalist, "segmentation", tmp_path / "run", epochs=1))
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_the_choice_is_shown_before_start_with_its_weights_licence_and_reason(tissue: Path, tmp_path: Path) -> None:
    pretrained = preview(TrainRequest(tissue, "segmentation", tmp_path / "run"))
    assert (pretrained.architecture, pretrained.slice_wise, pretrained.weights) == ("lite0-unet", True, "efficientnet-lite0")
    assert pretrained.licence is not None and "Apache-2.0" in pretrained.licence
    assert "annotated slices" in pretrained.reason and "slice by slice" in pretrained.text()
    scratch = preview(TrainRequest(tissue, "segmentation", tmp_path / "run", weights="none"))
    assert scratch.weights is None and scratch.licence is None and "random initialisation" in scratch.text()
    assert not (tmp_path / "run").exists()  # a preview writes nothing

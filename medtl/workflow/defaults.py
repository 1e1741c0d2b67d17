"""What medtl chooses when the user does not: the network, the preprocessing and the training settings.

The choices depend on the data (task, modality, 2D or 3D, grey or colour) and the device, and are
tuned so that ``medtl train --datalist DL --task T --out RUN --time-limit 3`` gives a strong model on
a 2-core CPU (see ``benchmarks/bench_targets.py``):

- classification: ImageNet EfficientNet-Lite0 (when its package is installed), fully fine-tuned with
  the backbone at the head's learning rate (grey CT/MR slices are far from ImageNet photographs, and
  the features must change: at a tenth, the orientation target stayed at 0.5-0.6); no flips (a flip
  changes laterality or orientation, which a medical label may depend on), shifts of up to 10 %; 2D inputs
  160 × 160 on a CPU, 224 × 224 on a GPU; 2D networks train channels-last on a CPU as on a GPU;
- segmentation: a U-Net from scratch (no offline pretrained segmentation weights fit; 2D: a BasicUNet with
  batch norm, half width on a CPU), trained on random patches half centred on foreground with Dice +
  cross-entropy over the batch, validated on whole images (3D: sliding window); for CT no intensity
  augmentation (HU are calibrated);
- sparse segmentation (masks with an ``ignore`` label, or one patient's volumes split into slabs) on 3D data:
  a 2D network applied slice-wise (:data:`SLICE_WISE_SEGMENTATION`: the U-Net on the ImageNet EfficientNet-Lite0
  encoder when its package is installed), trained on annotated slices with Dice + cross-entropy over the
  annotated voxels only; any named architecture trains slice-wise in 2D too;
- AdamW with warm-up and a cosine schedule fitted to the time budget; with a budget the whole budget is
  spent (no early stopping), and the best validation epoch is kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medtl.data.datalist import Datalist
from medtl.data.preprocessing import Preprocessing, default_for
from medtl.models.spec import DEFAULT_CHOICES, ModelSpec, default_spec
from medtl.training.config import TrainConfig

if TYPE_CHECKING:
    import torch

SLICE_WISE_SEGMENTATION = ("lite0-unet", "efficientnet-lite0", "full", {"backbone_lr_factor": 0.1})
"""The default network for sparse masks on 3D data, applied slice-wise (architecture, weights, strategy, parameters):
the U-Net on the ImageNet EfficientNet-Lite0 encoder, the encoder at a tenth of the learning rate (as
``--model lite0-unet`` trains it). On the MNI152 grey/white-matter volume with 4 annotated axial slices
(``benchmarks/sparse_one_patient.py``, 2 seeds), Dice on the slices nobody annotated was 2-3 points above the
same network from scratch after 40 and after 100 optimiser steps (0.890/0.866 against 0.866/0.837 at 100);
the encoder at the full rate scored 0.876/0.868. Without the weights' package, the 2D segmentation default (a
BasicUNet from scratch)."""

MIN_TRAIN_ITEMS_PER_EPOCH = 32
"""Small training sets are repeated (with fresh random crops and augmentation) up to this many items an
epoch, so that an epoch is several optimiser steps and validation does not dominate the time."""

CPU_CLASSIFICATION_SIZE = 160
SEGMENTATION_PATCH_MULTIPLE = 32
"""Segmentation patches are at most the (first) image's longest side rounded up to this (every network's stride fits it)."""
SEGMENTATION_2D_PARAMS = {"basicunet": {"norm": "batch"}}
"""Constructor arguments of the default 2D segmentation network. Batch norm, not the default instance
norm: instance norm removes the absolute intensity (HU) and makes whole-image validation depend on the
field of view, since training sees patches; 2D batches are large enough for batch statistics."""
CPU_SEGMENTATION_2D_PARAMS = {"basicunet": {"features": (16, 16, 32, 64, 128, 16)}}
"""On a CPU, a half-width BasicUNet: a third of the compute, so three times the epochs in a budget,
which was worth more than the width in the 3-minute bone segmentation target."""
BATCHNORM_MIN_MOMENTUM = 0.1
"""Pretrained batch-norm layers ported from TensorFlow update their running statistics by 1 % a step,
too slowly to follow new data in a short fine-tuning; they follow at this rate at least."""
_LR = {"classification": 1e-3, "segmentation": 2e-3}
_BATCH = {"classification": 8, "segmentation": 8}


@dataclass(frozen=True)
class DataProfile:
    """What the images say about the network they need (read from the first training image)."""

    modality: str | None
    spatial_dims: int
    in_channels: int
    ignore_label: int | None = None
    """Segmentation: the mask value of voxels training leaves out (sparse masks; one patient split into slabs)."""
    shape: tuple[int, ...] | None = None
    """The first training image's ``[z, y, x]`` size."""

    def network_dims(self, task: str) -> int:
        """2 for sparse segmentation masks on 3D data (a 2D network applied slice-wise), else the data's."""
        return 2 if task == "segmentation" and self.ignore_label is not None else self.spatial_dims


def profile_data(datalist: Datalist) -> DataProfile:
    """Modality (the datalist's, else the image's), 2D (one slice) or 3D, grey (1) or colour (3) channels, and the
    mask value training leaves out (:func:`~medtl.data.dataset.training_ignore_label`)."""
    from medtl.data.dataset import training_ignore_label
    from medtl.data.images import read_image

    volume = read_image(datalist.training[0].image)
    modality = datalist.modality or volume.metadata.get("modality") or None
    return DataProfile(modality, 2 if volume.shape[0] == 1 else 3, 3 if volume.is_rgb else 1, training_ignore_label(datalist), tuple(volume.shape[:3]))


def packaged_weights_for(architecture: str, spatial_dims: int) -> str | None:
    """The name of installed packaged weights trained for ``architecture`` in ``spatial_dims``, if any."""
    from medtl.models.weights import available_sources

    return next((w.name for w in available_sources() if w.fits(architecture, spatial_dims)), None)


def choose_spec(
    task: str,
    profile: DataProfile,
    num_outputs: int,
    model: str | None = None,
    weights: str | None = None,
    strategy: str | None = None,
    on_gpu: bool = False,
) -> ModelSpec:
    """The network to train, in :meth:`DataProfile.network_dims` dimensions. Without ``model``, the default for the
    task (2D segmentation: see :data:`SEGMENTATION_2D_PARAMS`; sparse masks on 3D data:
    :data:`SLICE_WISE_SEGMENTATION`); with it, that architecture with its packaged weights when installed (and, if
    that is a default choice, its strategy); with
    only ``weights="run:RUN"``, the run's architecture and settings. ``weights="none"`` trains from random initialisation. Without
    pretrained weights the whole network trains at one learning rate."""
    from medtl.models.weights import PACKAGED

    dims = profile.network_dims(task)
    if model is None and weights is not None and weights.startswith("run:"):
        spec = _spec_of_run(task, profile, num_outputs, weights)
    elif model is None and dims < profile.spatial_dims and PACKAGED[SLICE_WISE_SEGMENTATION[1]].installed():
        architecture, pretrained, default_strategy, params = SLICE_WISE_SEGMENTATION
        spec = ModelSpec(task, architecture, dims, profile.in_channels, num_outputs, pretrained, default_strategy, dict(params))
    elif model is None:
        spec = default_spec(task, dims, profile.in_channels, num_outputs)
        if task == "segmentation" and dims == 2:
            params = {**SEGMENTATION_2D_PARAMS.get(spec.architecture, {}), **({} if on_gpu else CPU_SEGMENTATION_2D_PARAMS.get(spec.architecture, {}))}
            spec = dataclasses.replace(spec, arch_params={**spec.arch_params, **params})
    else:
        spec = ModelSpec(task, model, dims, profile.in_channels, num_outputs, packaged_weights_for(model, dims))
    changes: dict[str, object] = {}
    if weights is not None:
        changes["weights"] = None if weights.lower() == "none" else weights
    if strategy is not None:
        changes["strategy"], changes["strategy_params"] = strategy, {}
    spec = dataclasses.replace(spec, **changes)
    if model is not None and strategy is None:
        spec = _default_strategy(spec)
    return from_scratch(spec) if spec.weights is None and spec.strategy == "full" else spec


def choice_reason(task: str, profile: DataProfile, spec: ModelSpec, model: str | None, weights: str | None) -> str:
    """Why ``spec`` is the network to train, in words for the user (the app shows it before Start; the run keeps it)."""
    if weights is not None and weights.startswith("run:"):
        return f"it goes on from the run {weights.removeprefix('run:')}"
    if model is not None or weights is not None:
        return "as asked"
    if spec.spatial_dims < profile.spatial_dims:
        if spec.weights:
            return (
                "few annotated slices of a 3D series; on 4 annotated slices of a brain MR these weights beat the same "
                "network from scratch by 2-3 Dice points (benchmarks/RESULTS.md)"
            )
        return "few annotated slices of a 3D series; no pretrained weights for it are installed"
    if spec.weights:
        return f"the pretrained default for {spec.spatial_dims}D {task}"
    return f"no installed pretrained network beat training from scratch for {spec.spatial_dims}D {task} on the offline benchmarks (benchmarks/RESULTS.md)"


def _default_strategy(spec: ModelSpec) -> ModelSpec:
    """``spec`` with the strategy of the default choice of the same network and weights, if there is one, so that
    naming the default network (``--model efficientnet-lite0``) trains it as choosing nothing does."""
    for architecture, weights, strategy, params in DEFAULT_CHOICES.get((spec.task, spec.spatial_dims), ()):
        if (architecture, weights) == (spec.architecture, spec.weights):
            return dataclasses.replace(spec, strategy=strategy, strategy_params=dict(params))
    return spec


def _spec_of_run(task: str, profile: DataProfile, num_outputs: int, weights: str) -> ModelSpec:
    """Fine-tuning from a previous run (``run:RUN``, e.g. a ``medtl pretrain`` backbone) without ``--model``: the
    run's architecture with its constructor settings, a new head for this task's outputs, the default strategy."""
    from medtl.models.spec import spec_from_run

    run_dir = Path(weights.removeprefix("run:")).expanduser()
    return spec_from_run(
        run_dir, task=task, spatial_dims=profile.network_dims(task), in_channels=profile.in_channels, num_outputs=num_outputs,
        weights=weights, strategy="full", strategy_params={},
    )


def segmentation_loss(ignore_label: int | None = None) -> torch.nn.Module:
    """Dice + cross-entropy with the Dice over the whole batch: half the training patches are centred on
    background and may hold no foreground, where a per-patch Dice is undefined and only adds noise. With
    ``ignore_label`` (sparse masks), the same over the annotated voxels only."""
    if ignore_label is not None:
        from medtl.training.losses import MaskedDiceCELoss

        return MaskedDiceCELoss(ignore_label)
    from monai.losses import DiceCELoss

    return DiceCELoss(to_onehot_y=True, softmax=True, batch=True)


def follow_new_statistics(model: torch.nn.Module) -> None:
    """Raise slow batch-norm momenta to :data:`BATCHNORM_MIN_MOMENTUM` (a training setting, not stored in the weights)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    for module in model.modules():
        if isinstance(module, _BatchNorm) and module.momentum is not None and module.momentum < BATCHNORM_MIN_MOMENTUM:
            module.momentum = BATCHNORM_MIN_MOMENTUM


def from_scratch(spec: ModelSpec) -> ModelSpec:
    """``spec`` without pretrained weights, the whole network trained at the base learning rate."""
    return dataclasses.replace(spec, weights=None, strategy="full", strategy_params={"backbone_lr_factor": 1.0})


def choose_preprocessing(task: str, profile: DataProfile, spec: ModelSpec, on_gpu: bool) -> Preprocessing:
    """:func:`~medtl.data.preprocessing.default_for` the data and the network's dimensions (2D on 3D data: slice-wise),
    without flips for classification and with smaller 2D classification inputs on a CPU."""
    preprocessing = default_for(task, profile.modality, spec.spatial_dims, spec.in_channels, orientation_sensitive=task == "classification")
    if preprocessing.augmentation is not None and (profile.modality or "").upper() == "CT":
        # Hounsfield units are calibrated: a shifted or scaled HU value is another tissue, not the same one.
        calibrated = dataclasses.replace(preprocessing.augmentation, intensity_scale=0.0, intensity_shift=0.0)
        preprocessing = dataclasses.replace(preprocessing, augmentation=calibrated)
    if task == "classification" and spec.spatial_dims == 2 and not on_gpu:
        preprocessing = dataclasses.replace(preprocessing, spatial_size=(CPU_CLASSIFICATION_SIZE,) * 2)
    if task == "segmentation" and profile.shape is not None and preprocessing.spacing is None:
        # Patches larger than the (not resampled) image are mostly padding: the cost of the default patch without its context.
        side = -(-max(profile.shape) // SEGMENTATION_PATCH_MULTIPLE) * SEGMENTATION_PATCH_MULTIPLE
        preprocessing = dataclasses.replace(preprocessing, spatial_size=tuple(min(n, side) for n in preprocessing.spatial_size))
    return preprocessing


def choose_train_config(
    task: str,
    preprocessing: Preprocessing,
    *,
    epochs: int | None,
    time_limit_minutes: float | None,
    device: str,
    seed: int,
) -> TrainConfig:
    """Training settings: the task's learning rate and batch; with a time budget, epochs are planned from it."""
    budgeted = time_limit_minutes is not None
    defaults = TrainConfig()
    three_d_segmentation = task == "segmentation" and preprocessing.spatial_dims == 3
    return TrainConfig(
        task=task,
        epochs=epochs if epochs is not None else (10_000 if budgeted else defaults.epochs),
        time_limit_minutes=time_limit_minutes,
        lr=_LR[task],
        batch_size=2 if three_d_segmentation else _BATCH[task],
        seed=seed,
        device=device,
        early_stopping_patience=None if budgeted else defaults.early_stopping_patience,
        val_roi_size=preprocessing.spatial_size if three_d_segmentation else None,
    )

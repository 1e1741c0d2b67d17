"""What `medtl train` chooses when the user does not: network, preprocessing and training settings."""

from __future__ import annotations

import pytest

from medtl.errors import MedtlError
from medtl.workflow import defaults
from medtl.workflow.defaults import DataProfile

CT_2D = DataProfile("CT", 2, 1)
PICTURES = DataProfile("OT", 2, 1)


def test_classification_fine_tunes_pretrained_weights_without_flips() -> None:
    spec = defaults.choose_spec("classification", PICTURES, 2)
    assert (spec.architecture, spec.weights, spec.strategy) == ("efficientnet-lite0", "efficientnet-lite0", "full")
    assert spec.strategy_params == {"backbone_lr_factor": 1.0}  # the whole network adapts to grey slices at one rate
    preprocessing = defaults.choose_preprocessing("classification", PICTURES, spec, on_gpu=False)
    assert preprocessing.augmentation is not None and not preprocessing.augmentation.flips
    assert preprocessing.spatial_size == (defaults.CPU_CLASSIFICATION_SIZE,) * 2
    assert defaults.choose_preprocessing("classification", PICTURES, spec, on_gpu=True).spatial_size == (224, 224)


def test_2d_ct_segmentation_keeps_hounsfield_units_meaningful() -> None:
    spec = defaults.choose_spec("segmentation", CT_2D, 2)
    assert spec.weights is None and spec.arch_params == {"norm": "batch", "features": (16, 16, 32, 64, 128, 16)}
    assert defaults.choose_spec("segmentation", CT_2D, 2, on_gpu=True).arch_params == {"norm": "batch"}
    assert spec.strategy_params == {"backbone_lr_factor": 1.0}
    augmentation = defaults.choose_preprocessing("segmentation", CT_2D, spec, on_gpu=False).augmentation
    assert augmentation is not None and augmentation.flips
    assert augmentation.intensity_scale == 0 and augmentation.intensity_shift == 0


def test_explicit_model_gets_its_packaged_weights_and_none_trains_from_scratch() -> None:
    named = defaults.choose_spec("classification", PICTURES, 3, model="efficientnet-lite0", weights="efficientnet-lite0")
    assert named == defaults.choose_spec("classification", PICTURES, 3)  # naming the default network changes nothing
    assert defaults.choose_spec("classification", PICTURES, 3, model="densenet121").weights is None
    scratch = defaults.choose_spec("classification", PICTURES, 2, weights="none")
    assert scratch.weights is None and scratch.strategy_params == {"backbone_lr_factor": 1.0}
    probe = defaults.choose_spec("classification", PICTURES, 2, strategy="linear_probe")
    assert probe.strategy == "linear_probe" and probe.weights == "efficientnet-lite0"


def test_a_time_budget_plans_the_epochs_and_is_spent_in_full() -> None:
    spec = defaults.choose_spec("segmentation", CT_2D, 2)
    preprocessing = defaults.choose_preprocessing("segmentation", CT_2D, spec, on_gpu=False)
    budgeted = defaults.choose_train_config("segmentation", preprocessing, epochs=None, time_limit_minutes=3, device="cpu", seed=1)
    assert budgeted.early_stopping_patience is None and budgeted.epochs > 1000 and budgeted.seed == 1
    assert defaults.choose_train_config("segmentation", preprocessing, epochs=5, time_limit_minutes=None, device="cpu", seed=0).epochs == 5


@pytest.mark.parametrize(("epochs", "minutes"), [(0, None), (None, -1.0)])
def test_bad_numbers_are_refused(epochs: int | None, minutes: float | None) -> None:
    spec = defaults.choose_spec("segmentation", CT_2D, 2)
    preprocessing = defaults.choose_preprocessing("segmentation", CT_2D, spec, on_gpu=False)
    with pytest.raises(MedtlError):
        defaults.choose_train_config("segmentation", preprocessing, epochs=epochs, time_limit_minutes=minutes, device="cpu", seed=0)


def test_slow_batchnorm_momenta_are_raised() -> None:
    import torch

    model = torch.nn.Sequential(torch.nn.BatchNorm2d(3, momentum=0.01), torch.nn.BatchNorm2d(3, momentum=0.3))
    defaults.follow_new_statistics(model)
    assert [m.momentum for m in model] == [defaults.BATCHNORM_MIN_MOMENTUM, 0.3]

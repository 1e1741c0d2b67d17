"""Device choice, batch fitting, the LR schedule and RNG snapshots (the CPU-testable parts)."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medtl.errors import MedtlError
from medtl.training.device import fit_batch_size, is_out_of_memory, select_amp, select_device, setup_device, wants_channels_last
from medtl.training.losses import balanced_class_weights, default_loss
from medtl.training.reproducibility import capture_rng, restore_rng, seed_everything
from medtl.training.schedule import WarmupCosine


def test_cpu_setup_has_no_mixed_precision_and_a_display_name() -> None:
    setup = setup_device(nn.Conv3d(1, 1, 3), "cpu", "auto")
    assert setup.device == torch.device("cpu") and setup.name.startswith("CPU (")
    assert setup.amp_dtype is None and not setup.uses_grad_scaler and not setup.channels_last
    assert select_amp(torch.device("cpu"), "fp16") is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when there is no GPU")
def test_asking_for_a_missing_gpu_is_a_clear_error() -> None:
    with pytest.raises(MedtlError, match="no CUDA GPU"):
        select_device("cuda")


def test_channels_last_for_2d_convnets_on_cuda_and_cpu() -> None:
    for device in (torch.device("cuda", 0), torch.device("cpu")):
        assert wants_channels_last(nn.Sequential(nn.Conv2d(1, 2, 3)), device)
        assert not wants_channels_last(nn.Sequential(nn.Conv3d(1, 2, 3)), device)
        assert not wants_channels_last(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv3d(2, 2, 1)), device)
    assert not wants_channels_last(nn.Sequential(nn.Conv2d(1, 2, 3)), torch.device("mps"))


def test_a_2d_network_is_set_up_channels_last_on_the_cpu_and_saves_plain_weights(tmp_path: Path) -> None:
    """On the CPU a 2D network is set up channels-last (faster for 2D convolutions); its saved weights are ordinary tensors."""
    from medtl.training.run_folder import RunFolder

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    setup = setup_device(model, "cpu", "auto")
    assert setup.channels_last
    model.to(memory_format=torch.channels_last)
    assert model[3].weight.is_contiguous(memory_format=torch.channels_last) and not model[3].weight.is_contiguous()
    RunFolder(tmp_path).save_best_model(model.state_dict(), {})
    saved = RunFolder(tmp_path).load_best_model()
    assert all(torch.equal(saved[name], tensor) for name, tensor in model.state_dict().items())


def test_fit_batch_size_to_free_memory() -> None:
    gib = 2**30
    assert fit_batch_size(32, per_sample_bytes=gib, free_bytes=10 * gib) == 8  # 80 % of 10 GiB
    assert fit_batch_size(4, per_sample_bytes=gib, free_bytes=10 * gib) == 4
    assert fit_batch_size(32, per_sample_bytes=gib, free_bytes=10 * gib, fixed_bytes=6 * gib) == 2
    assert fit_batch_size(32, per_sample_bytes=20 * gib, free_bytes=10 * gib) == 1


def test_out_of_memory_is_recognised() -> None:
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_warmup_then_cosine_to_zero_and_replan() -> None:
    weight = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([{"params": [weight], "lr": 1.0}, {"params": [], "lr": 0.1}])
    schedule = WarmupCosine(optimizer, warmup_steps=4, total_steps=14)
    lrs = [schedule.lr]
    for _ in range(14):
        schedule.step()
        lrs.append(schedule.lr)
    assert lrs[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert lrs[9] == pytest.approx(0.5) and lrs[14] == 0.0
    assert optimizer.param_groups[1]["lr"] == 0.0
    schedule.replan(24)
    assert schedule.lr == pytest.approx(0.5)  # step 14 is now half-way through the cosine
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.05)  # group ratios kept


def test_rng_snapshot_survives_weights_only_serialisation() -> None:
    seed_everything(3)
    buffer = io.BytesIO()
    torch.save(capture_rng(), buffer)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    buffer.seek(0)
    restore_rng(torch.load(buffer, weights_only=True))
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def test_balanced_class_weights_and_default_losses() -> None:
    assert balanced_class_weights([0, 0, 0, 1], num_classes=3) == pytest.approx((4 / 9, 4 / 3, 1.0))
    loss = default_loss("classification", (1.0, 3.0))
    assert isinstance(loss, nn.CrossEntropyLoss) and loss.weight.tolist() == [1.0, 3.0]
    segmentation = default_loss("segmentation")
    logits = torch.randn(2, 3, 8, 8)
    assert segmentation(logits, torch.randint(0, 3, (2, 1, 8, 8))).ndim == 0

"""Data-parallel training under ``torchrun --nproc_per_node=N`` (NCCL on GPUs, gloo on CPUs).

The CLI calls :func:`init_from_env` once; the Trainer then finds the process group through
:func:`current`, shards its loaders with :func:`shard_loader` and wraps the model with
:func:`wrap_model`. Only rank 0 writes the run folder; metrics are gathered from every rank so
each rank takes the same early-stopping and best-model decisions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job; a single process is rank 0 of 1 and every collective is a no-op."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (stop decisions: cancel, time budget)."""
        if not self.enabled:
            return flag
        value = torch.tensor([float(flag)], device=self._device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def sum(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self._device())
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def init_from_env() -> DistContext:
    """Join the process group torchrun describes in the environment (``WORLD_SIZE`` > 1); else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return current()


def current() -> DistContext:
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shard_loader(loader: DataLoader, ctx: DistContext, seed: int) -> DataLoader:
    """The same loader over this rank's shard (``DistributedSampler``; shuffled if the original was)."""
    if not ctx.enabled or isinstance(loader.sampler, DistributedSampler):
        return loader
    sampler: DistributedSampler[Any] = DistributedSampler(loader.dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=isinstance(loader.sampler, RandomSampler), seed=seed)
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        worker_init_fn=loader.worker_init_fn,
        persistent_workers=loader.persistent_workers,
    )


def unpadded_count(loader: DataLoader, ctx: DistContext) -> int | None:
    """How many of this rank's samples are real: ``DistributedSampler`` pads the shards to equal length
    by repeating the first samples, which land at the end of the last ranks' shards (unshuffled). ``None``
    when the loader is not sharded."""
    if not isinstance(loader.sampler, DistributedSampler):
        return None
    return len(range(ctx.rank, len(loader.dataset), ctx.world_size))  # type: ignore[arg-type]


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Reshuffle a sharded loader for ``epoch`` (the same order on every rank and after a resume)."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)


def wrap_model(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``DistributedDataParallel`` around ``model`` when there are several ranks; ``model`` itself otherwise."""
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    # DDP syncs only the parameters that require grad now: wrap again after an epoch hook unfreezes a stage.
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)


"""Helpers for ``torch.distributed`` scale-out: backend choice and per-rank shards of seed nodes."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["default_backend", "shard_indices"]


def default_backend(device: torch.device | str | None = None) -> str:
    """``'nccl'`` for CUDA devices, ``'gloo'`` otherwise."""
    device = torch.device(device) if device is not None else None
    return "nccl" if device is not None and device.type == "cuda" else "gloo"


def shard_indices(
    indices: Tensor | int,
    rank: int | None = None,
    world_size: int | None = None,
    seed: int = 0,
    equal_size: bool = False,
) -> Tensor:
    """The shard of ``indices`` (or of ``range(indices)``) owned by ``rank``.

    The indices are permuted with a generator seeded by ``seed`` (identical on every rank), then split into
    ``world_size`` near-equal, disjoint parts, so that every rank samples a different part of the graph.
    ``rank`` and ``world_size`` default to the initialised process group (or a single process). With
    ``equal_size=True`` the remainder is dropped so every rank gets the same count — and hence the same number of
    batches, which DistributedDataParallel needs to avoid waiting forever on a rank that has finished.
    """
    dist = torch.distributed
    initialised = dist.is_available() and dist.is_initialized()
    rank = rank if rank is not None else (dist.get_rank() if initialised else 0)
    world_size = world_size if world_size is not None else (dist.get_world_size() if initialised else 1)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must lie in [0, world_size) with world_size >= 1, got rank={rank}, "
                         f"world_size={world_size}")
    if isinstance(indices, int):
        indices = torch.arange(indices)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(indices.numel(), generator=generator).to(indices.device)
    if equal_size:
        order = order[: (indices.numel() // world_size) * world_size]
    return indices[order].tensor_split(world_size)[rank]

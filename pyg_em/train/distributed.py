"""Helpers for ``torch.distributed`` scale-out: process-group start, backend choice, per-rank shards of seed nodes."""

from __future__ import annotations

import datetime
import os

import torch
from torch import Tensor

from pyg_em.validation import check_int, check_positive

__all__ = ["default_backend", "shard_indices", "init_distributed", "DEFAULT_TIMEOUT_S"]

#: Seconds a collective waits for a stalled peer before failing (torch's own default is 30 minutes). A training
#: step's all-reduce takes milliseconds to seconds; five minutes also covers a slow first batch or data loading
#: on one rank. Override with ``timeout=`` or the ``PYG_EM_DDP_TIMEOUT`` environment variable (seconds).
DEFAULT_TIMEOUT_S = 300.0


def init_distributed(
    backend: str | None = None,
    timeout: float | datetime.timedelta | None = None,
    device: torch.device | str | None = None,
) -> tuple[int, int]:
    """Start the default process group from the ``torchrun`` environment, with a timeout suited to training.

    A peer that stalls (a stopped or swapped-out process) makes the others fail after ``timeout`` instead of
    blocking the job for torch's default 30 minutes. Returns ``(rank, world_size)``; with no ``torchrun``
    environment (``WORLD_SIZE`` unset) nothing is started and ``(0, 1)`` is returned.

    Args:
        backend (str, optional): ``'gloo'`` or ``'nccl'``; by default from :func:`default_backend`.
            (default: :obj:`None`)
        timeout (float or timedelta, optional): Seconds before a collective waiting for a peer fails.
            (default: ``$PYG_EM_DDP_TIMEOUT`` or ``DEFAULT_TIMEOUT_S``)
        device (str or torch.device, optional): The device this rank trains on, for the backend choice.
            (default: :obj:`None`)
    """
    dist = torch.distributed
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "WORLD_SIZE" not in os.environ:
        return 0, 1
    if timeout is None:
        timeout = float(os.environ.get("PYG_EM_DDP_TIMEOUT", DEFAULT_TIMEOUT_S))
    if not isinstance(timeout, datetime.timedelta):
        timeout = datetime.timedelta(seconds=check_positive(timeout, "timeout"))
    dist.init_process_group(backend or default_backend(device), timeout=timeout)
    return dist.get_rank(), dist.get_world_size()


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
    rank = check_int(rank, "rank") if rank is not None else (dist.get_rank() if initialised else 0)
    world_size = (check_int(world_size, "world_size") if world_size is not None
                  else (dist.get_world_size() if initialised else 1))
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must lie in [0, world_size) with world_size >= 1, got rank={rank}, "
                         f"world_size={world_size}")
    if not isinstance(indices, Tensor):
        indices = torch.arange(check_int(indices, "indices"))
    generator = torch.Generator().manual_seed(check_int(seed, "seed"))
    order = torch.randperm(indices.numel(), generator=generator).to(indices.device)
    if equal_size:
        order = order[: (indices.numel() // world_size) * world_size]
    return indices[order].tensor_split(world_size)[rank]

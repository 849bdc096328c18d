"""Helpers for ``torch.distributed`` scale-out: process-group start, backend choice, per-rank shards of seed nodes,
and one copy of the data per host shared by the ranks there."""

from __future__ import annotations

import datetime
import io
import os
import pickle
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pyg_em.validation import check_int, check_positive

__all__ = ["default_backend", "shard_indices", "init_distributed", "shutdown_distributed", "share_across_local_ranks",
           "DEFAULT_TIMEOUT_S"]

#: Tensors smaller than this many bytes are pickled into each rank's copy instead of a shared file.
_SHARED_MIN_BYTES = 1 << 16

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


def shutdown_distributed() -> None:
    """End the default process group, if one is running, once every rank has reached this call.

    The barrier matters: a rank that tears its Gloo connections down while a peer still uses them can make the
    peer's transport thread abort the process ("terminate called without an active exception"), turning a finished
    run into a failed one. Safe to call without a process group (it does nothing).
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()


def process_rank() -> int:
    """This process's ``torch.distributed`` rank: 0 when no process group is running (a single process)."""
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


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


class _SharingPickler(pickle.Pickler):
    """Pickles an object with each large CPU tensor written to a file of ``folder`` (mapped shared), by name."""

    def __init__(self, file: io.BytesIO, folder: Path) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.folder, self.count = folder, 0

    def persistent_id(self, obj: Any) -> Any:
        if (type(obj) is not Tensor or obj.device.type != "cpu" or obj.layout != torch.strided or obj.requires_grad
                or obj.numel() * obj.element_size() < _SHARED_MIN_BYTES):
            return None
        name = f"tensor{self.count}.bin"
        self.count += 1
        flat = torch.from_file(str(self.folder / name), shared=True, size=obj.numel(), dtype=obj.dtype)
        flat.copy_(obj.reshape(-1))
        return ("pyg_em.shared", name, str(obj.dtype).removeprefix("torch."), tuple(obj.shape))


class _SharingUnpickler(pickle.Unpickler):
    """Maps each shared tensor of a :class:`_SharingPickler` payload from its file (``MAP_SHARED``, no copy)."""

    def __init__(self, file: io.BytesIO, folder: Path) -> None:
        super().__init__(file)
        self.folder = folder

    def persistent_load(self, pid: Any) -> Tensor:
        tag, name, dtype, shape = pid
        if tag != "pyg_em.shared":
            raise pickle.UnpicklingError(f"unknown persistent id {tag!r}")
        numel = 1
        for size in shape:
            numel *= size
        flat = torch.from_file(str(self.folder / name), shared=True, size=numel, dtype=getattr(torch, dtype))
        return flat.view(shape)


def share_across_local_ranks(load: Callable[[], Any], folder: str | os.PathLike | None = None) -> Any:
    """``load()`` run once per host, its tensors shared by every rank of that host through shared memory.

    Under ``torch.distributed`` with several processes per host (``torchrun --nproc_per_node``), local rank 0
    calls ``load`` and writes every CPU tensor of the result above 64 KiB into a file of a private folder in
    ``/dev/shm``; every rank of the host (local rank 0 included, whose private copy is then freed) maps those
    files with ``MAP_SHARED`` (:func:`torch.from_file`), so the host holds the data once, however many ranks
    train on it. This is the shared-memory dataset of PyG's multi-GPU examples, for processes that ``torchrun``
    starts independently instead of ``torch.multiprocessing.spawn`` passing tensors. The files are unlinked once
    every rank has mapped them: the memory is released when the last rank exits. Without a process group, or
    with one process, this is ``load()``. It is a collective: every rank must call it, in the same order.

    The shared tensors are writable and shared: a rank that changes one in place changes it for all. Note that
    ``VmRSS`` counts the shared pages in every process that touches them; ``RssAnon`` (private) and ``Pss``
    (shared pages divided among their users) of ``/proc/<pid>/status`` and ``smaps_rollup`` show the saving.

    Args:
        load (callable): Builds the object (a :class:`~torch_geometric.data.Data`, a tuple of tensors, ...).
        folder (str or Path, optional): Where the shared files go. (default: ``/dev/shm``, else the temp folder)
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return load()
    local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    token: list[Any] = [secrets.token_hex(8) if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(token, src=0)
    root = Path(folder) if folder is not None else Path("/dev/shm" if os.path.isdir("/dev/shm")
                                                         else tempfile.gettempdir())
    where = root / f"pyg_em-shared-{token[0]}"
    failure = None
    if local_rank == 0:
        try:
            where.mkdir(mode=0o700)
            buffer = io.BytesIO()
            _SharingPickler(buffer, where).dump(load())
            (where / "object.pkl").write_bytes(buffer.getvalue())
        except Exception as error:  # reach the barrier anyway: the other ranks would wait for the timeout
            failure = error
            where.mkdir(mode=0o700, exist_ok=True)
            (where / "error.txt").write_text(f"{type(error).__name__}: {error}")
    dist.barrier()
    try:
        if failure is not None:
            raise failure
        if (where / "error.txt").is_file():
            raise RuntimeError(f"local rank 0 failed to build the shared data: {(where / 'error.txt').read_text()}")
        payload = io.BytesIO((where / "object.pkl").read_bytes())
        shared = _SharingUnpickler(payload, where).load()
    finally:
        dist.barrier()  # every rank has mapped the files (or failed): unlink them
        if local_rank == 0:
            shutil.rmtree(where, ignore_errors=True)
    return shared

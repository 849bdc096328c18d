"""Reproducibility and device helpers used by the trainer, the CLI and the benchmarks."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from pyg_em.validation import check_int

__all__ = ["seed_everything", "select_device", "rng_state", "set_rng_state"]


def seed_everything(seed: int, deterministic: bool | None = None) -> int:
    """Seed Python, NumPy and torch (all devices); optionally switch torch to deterministic kernels.

    With ``deterministic=True``, two runs of the same script on the same machine give bit-identical loss
    histories and weights — also with several CPU threads, where parallel scatter/index-add reductions otherwise
    add in a varying order (measured: GAE/DAEGC histories 1e-7 apart from epoch 1-6 with ``OMP_NUM_THREADS=2``).
    It calls ``torch.use_deterministic_algorithms(True, warn_only=True)`` (an op without a deterministic kernel
    warns instead of failing: such a warning means the run is not reproducible), sets
    ``torch.backends.cudnn.deterministic`` and turns cuDNN autotuning off, and sets ``CUBLAS_WORKSPACE_CONFIG``
    when unset (it must be set before CUDA starts, so call this first).

    What stays different: results across thread counts, devices, library versions or hardware (floating-point
    sums are grouped differently), and the speed (deterministic kernels can be slower, mostly on CUDA).

    Args:
        seed (int): The seed, an integer in ``[-2**63, 2**64)`` (NumPy gets ``seed % 2**32``).
        deterministic (bool, optional): ``True`` switches the deterministic mode on, ``False`` off; ``None``
            leaves it as it is. (default: :obj:`None`)

    Returns:
        int: The seed, as a Python int.
    """
    seed = check_int(seed, "seed")
    if not -(2**63) <= seed < 2**64:  # torch's range
        raise ValueError(f"seed must lie in [-2**63, 2**64), got {seed}: pass a smaller integer")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # PYTHONHASHSEED is not set: it acts only on interpreters started later, and a seed outside [0, 2**32) in the
    # environment makes every later Python subprocess fail at start-up.
    if deterministic is not None:
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(bool(deterministic), warn_only=True)
        torch.backends.cudnn.deterministic = bool(deterministic)
        torch.backends.cudnn.benchmark = False if deterministic else torch.backends.cudnn.benchmark
    return seed


def select_device(device: str | torch.device | None = None) -> torch.device:
    """Resolve ``None``/``'auto'`` to CUDA when available, else CPU; validate explicit requests."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available on this machine")
    return device


def rng_state() -> dict:
    """Every random generator's state, for bit-exact resume from a checkpoint.

    Only tensors, ints, floats, strings and containers are used, so the state loads with
    ``torch.load(weights_only=True)``.
    """
    version, mt, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "python": [version, torch.tensor(mt, dtype=torch.int64), gauss],
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the states captured by :func:`rng_state`."""
    version, mt, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in mt.tolist()), gauss))
    numpy_state = state["numpy"]
    np.random.set_state({
        "bit_generator": numpy_state["bit_generator"],
        "state": {"key": numpy_state["key"].cpu().numpy().astype(np.uint32), "pos": int(numpy_state["pos"])},
        "has_gauss": int(numpy_state["has_gauss"]),
        "gauss": float(numpy_state["gauss"]),
    })
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])

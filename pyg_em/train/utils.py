"""Reproducibility and device helpers used by the trainer, the CLI and the benchmarks."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["seed_everything", "select_device", "rng_state", "set_rng_state"]


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); optionally ask torch for deterministic kernels.

    Args:
        seed (int): The seed.
        deterministic (bool): Also call ``torch.use_deterministic_algorithms(True, warn_only=True)``.
            (default: :obj:`False`)
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def select_device(device: str | torch.device | None = None) -> torch.device:
    """Resolve ``None``/``'auto'`` to CUDA when available, else CPU; validate explicit requests."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available on this machine")
    return device


def rng_state() -> dict:
    """Every random generator's state, for bit-exact resume from a checkpoint."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the states captured by :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])

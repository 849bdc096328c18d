"""A trained model on disk (``model.pt``): weights, recipe and settings, enough to rebuild it and assign the
nodes of a graph without retraining (``pyg-em predict``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pyg_em.recipes.base import Recipe
from pyg_em.train.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["save_model", "load_model", "MODEL_FORMAT"]

#: Version tag of the ``model.pt`` layout.
MODEL_FORMAT = "pyg_em.model/1"


def save_model(path: str | os.PathLike, recipe: Recipe, model: torch.nn.Module, in_channels: int,
               n_clusters: int | None) -> Path:
    """Write ``model``'s state dict with the recipe that built it, atomically (temporary file + rename).

    Only tensors, strings, numbers and lists are stored, so :func:`load_model` reads it with
    ``torch.load(weights_only=True)``: loading a model never runs pickled code.
    """
    state = {
        "format": MODEL_FORMAT,
        "method": recipe.method,
        "recipe": recipe.name,
        "settings": recipe.settings(),
        "in_channels": int(in_channels),
        "n_clusters": None if n_clusters is None else int(n_clusters),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return save_checkpoint(state, path)


def _fit_data_buffers(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Give every buffer of ``model`` the shape it has in ``state``: buffers sized by the data (a DEC target
    of N rows, k-means centres that a fresh model does not have yet) must load into a freshly built model."""
    for prefix, module in model.named_modules():
        for name, buffer in list(module._buffers.items()):
            key = f"{prefix}.{name}" if prefix else name
            saved = state.get(key)
            if saved is not None and (buffer is None or buffer.shape != saved.shape):
                module._buffers[name] = torch.empty_like(saved)


def load_model(path: str | os.PathLike, map_location: Any = "cpu") -> tuple[Recipe, torch.nn.Module, dict[str, Any]]:
    """Rebuild the model saved by :func:`save_model`; returns ``(recipe, model in eval mode, stored record)``.

    Raises:
        ValueError: If the file is not a ``pyg_em`` model file, or names an unknown method or recipe.
    """
    from pyg_em.recipes import get_recipe

    record = load_checkpoint(path, map_location=map_location)
    if not isinstance(record, dict) or record.get("format") != MODEL_FORMAT:
        raise ValueError(f"--model {str(path)!r} is not a pyg_em model file (expected format {MODEL_FORMAT!r}; "
                         "write one with `pyg-em run METHOD --out DIR`)")
    recipe = get_recipe(record["method"], record["recipe"]).with_settings(record["settings"])
    model = recipe.build_model(record["in_channels"], record["n_clusters"])
    _fit_data_buffers(model, record["state_dict"])
    model.load_state_dict(record["state_dict"])
    model.eval()
    return recipe, model, record

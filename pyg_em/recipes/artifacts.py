"""A trained model on disk (``model.pt``): weights, recipe and settings, enough to rebuild it and assign the
nodes of a graph without retraining (``pyg-em predict``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pyg_em.recipes.base import Recipe
from pyg_em.train.checkpoint import load_checkpoint, load_model_state, save_checkpoint

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
    load_model_state(model, record["state_dict"], source=str(path))
    model.eval()
    return recipe, model, record

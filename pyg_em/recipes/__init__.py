"""Recipes: the one home of every training protocol (model, encoder, transforms, optimiser, schedule, selection).

A recipe is a dataclass whose fields are its settings, each default written once. ``pyg-em run``, the
benchmarks, the examples and the docs all call these objects::

    from pyg_em.recipes import get_recipe

    result = get_recipe("vgae").run(data)             # the benchmarked default
    result = get_recipe("daegc", "paper").run(data)   # the paper's protocol
    labels, proba = result.labels, result.proba

:data:`RECIPES` maps each method to its named variants; :func:`list_recipes` lists them.
"""

from collections.abc import Callable

from pyg_em.recipes.artifacts import MODEL_FORMAT, load_model, save_model
from pyg_em.recipes.base import ConfigError, Recipe, RecipeResult, check_setting, clustering_report, resolve_n_clusters
from pyg_em.recipes.baselines import KMeansRecipe, SpectralRecipe
from pyg_em.recipes.daegc import (
    DAEGCRecipe,
    auto_feature_weight,
    check_num_neighbors,
    daegc_neighbor_loader,
    fit_daegc,
)
from pyg_em.recipes.gem import GEMRecipe
from pyg_em.recipes.link_prediction import GAERecipe, VGAERecipe, fit_link_prediction, link_neighbor_loader

#: ``method -> {recipe name -> factory}``; ``'default'`` is the best benchmarked recipe of each method.
RECIPES: dict[str, dict[str, Callable[[], Recipe]]] = {
    "kmeans": {"default": KMeansRecipe},
    "spectral": {"default": SpectralRecipe},
    "gae": {"default": GAERecipe, "paper": GAERecipe.paper},
    "vgae": {"default": VGAERecipe, "paper": VGAERecipe.paper},
    "daegc": {"default": DAEGCRecipe, "paper": DAEGCRecipe.paper},
    "gem": {"default": GEMRecipe},
}


def get_recipe(method: str, name: str = "default") -> Recipe:
    """A fresh recipe object: ``method`` (a key of :data:`RECIPES`) in its variant ``name``.

    Raises:
        ValueError: For an unknown method or recipe name, listing the known ones.
    """
    if method not in RECIPES:
        raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(RECIPES)}")
    variants = RECIPES[method]
    if name not in variants:
        raise ValueError(f"method {method!r} has no recipe {name!r}; choose one of: {', '.join(variants)}")
    return variants[name]()


def list_recipes() -> list[tuple[str, str, str]]:
    """``(method, recipe name, one-line description)`` of every registered recipe."""
    rows = []
    for method, variants in RECIPES.items():
        for name, factory in variants.items():
            recipe = factory()
            doc = factory.__doc__ if name != "default" else recipe.describe()
            rows.append((method, name, (doc or "").strip().splitlines()[0]))
    return rows


__all__ = ["RECIPES", "get_recipe", "list_recipes", "Recipe", "RecipeResult", "ConfigError", "check_setting",
           "clustering_report", "resolve_n_clusters", "GAERecipe", "VGAERecipe", "DAEGCRecipe", "GEMRecipe",
           "KMeansRecipe", "SpectralRecipe", "fit_link_prediction", "fit_daegc", "auto_feature_weight",
           "link_neighbor_loader", "save_model", "load_model", "MODEL_FORMAT", "daegc_neighbor_loader",
           "check_num_neighbors"]

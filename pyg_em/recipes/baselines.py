"""Classical baselines as recipes: k-means on node features, regularised spectral clustering on the graph."""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch_geometric.data import Data

from pyg_em.clusters import kmeans, spectral_embedding
from pyg_em.recipes.base import ConfigError, Recipe, RecipeResult, clustering_report, resolve_n_clusters
from pyg_em.validation import check_n_clusters

__all__ = ["KMeansRecipe", "SpectralRecipe", "spectral_regularization"]


@dataclass
class KMeansRecipe(Recipe):
    """k-means (scikit-learn, k-means++) on the node features ``data.x``.

    Args:
        n_init (int): Restarts. (default: :obj:`10`)
        max_iter (int): Lloyd iterations per restart. (default: :obj:`300`)
    """

    method = "kmeans"

    n_init: int = 10
    max_iter: int = 300

    def validate(self) -> None:
        self._positive("n_init", "max_iter")

    def run(self, data: Data, *, n_clusters: int | None = None, seed: int = 0, device: Any = None,
            progress: bool | None = False) -> RecipeResult:
        """Cluster the rows of ``data.x``."""
        if getattr(data, "x", None) is None:
            raise ValueError("kmeans clusters node features, and this graph has none (pass --features FILE)")
        n_clusters = resolve_n_clusters(data, n_clusters)
        start = time.perf_counter()
        labels, _ = kmeans(data.x, n_clusters, n_init=self.n_init, seed=seed, max_iter=self.max_iter)
        elapsed = time.perf_counter() - start
        return RecipeResult(metrics=clustering_report(data, labels, data.x), labels=labels, embedding=data.x,
                            timings={"fit_s": elapsed})


def spectral_regularization(value: float | str, method: str = "spectral") -> float | str:
    """``'auto'`` or a number >= 0 (0 switches the regularisation off); TOML has no null."""
    if value == "auto":
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or value < 0:
        raise ConfigError(f"[{method}] regularization must be 'auto' or a number >= 0, got {value!r}")
    return float(value)


@dataclass
class SpectralRecipe(Recipe):
    """Regularised normalised spectral clustering of ``data.edge_index``: spectral embedding, then k-means.

    Args:
        n_init (int): k-means restarts. (default: :obj:`10`)
        dim (int, optional): Embedding size; ``None`` uses ``n_clusters``. (default: :obj:`None`)
        regularization (float or str): ``'auto'`` (the mean degree), or a number >= 0 (``0``: plain spectral
            clustering); see :func:`~pyg_em.clusters.spectral_embedding`. (default: :obj:`'auto'`)
    """

    method = "spectral"

    n_init: int = 10
    dim: int | None = None
    regularization: float | str = "auto"

    def validate(self) -> None:
        self._positive("n_init", "dim")
        self.regularization = spectral_regularization(self.regularization, self.method)

    def run(self, data: Data, *, n_clusters: int | None = None, seed: int = 0, device: Any = None,
            progress: bool | None = False) -> RecipeResult:
        """Embed the graph spectrally and cluster the embedding; the embedding is returned for the report."""
        n_clusters = resolve_n_clusters(data, n_clusters)
        check_n_clusters(n_clusters, data.num_nodes)
        start = time.perf_counter()
        embedding = spectral_embedding(data.edge_index, data.num_nodes, self.dim or n_clusters,
                                       getattr(data, "edge_weight", None), seed=seed,
                                       regularization=self.regularization)
        labels, _ = kmeans(embedding, n_clusters, n_init=self.n_init, seed=seed)
        elapsed = time.perf_counter() - start
        return RecipeResult(metrics=clustering_report(data, labels, embedding), labels=labels, embedding=embedding,
                            timings={"fit_s": elapsed})

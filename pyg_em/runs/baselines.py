"""Classical baselines: k-means on node features and normalised spectral clustering on the graph."""

from __future__ import annotations

import time

from torch_geometric.data import Data

from pyg_em.clusters import kmeans, spectral_clustering
from pyg_em.runs.common import RunConfig, RunResult, clustering_report

__all__ = ["run_kmeans", "run_spectral", "default_n_clusters"]


def default_n_clusters(data: Data, config: RunConfig) -> int:
    if config.n_clusters is not None:
        return config.n_clusters
    if getattr(data, "y", None) is None:
        raise ValueError("n_clusters must be given for a dataset without labels")
    return int(data.y.max()) + 1


def run_kmeans(data: Data, config: RunConfig) -> RunResult:
    """k-means (scikit-learn, ``n_init`` from the config, default 10) on ``data.x``."""
    start = time.perf_counter()
    labels, _ = kmeans(data.x, default_n_clusters(data, config), n_init=config.extra.get("n_init", 10),
                       seed=config.seed)
    elapsed = time.perf_counter() - start
    return RunResult(metrics=clustering_report(data, labels), labels=labels, embedding=data.x,
                     timings={"fit_s": elapsed})


def run_spectral(data: Data, config: RunConfig) -> RunResult:
    """Normalised spectral clustering on ``data.edge_index``."""
    start = time.perf_counter()
    labels = spectral_clustering(data.edge_index, data.num_nodes, default_n_clusters(data, config),
                                 n_init=config.extra.get("n_init", 10), seed=config.seed)
    elapsed = time.perf_counter() - start
    return RunResult(metrics=clustering_report(data, labels), labels=labels, timings={"fit_s": elapsed})

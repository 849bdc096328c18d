"""Classical baselines: k-means on node features and normalised spectral clustering on the graph."""

from __future__ import annotations

import time

from torch_geometric.data import Data

from pyg_em.clusters import kmeans, spectral_embedding
from pyg_em.runs.common import ConfigError, RunConfig, RunResult, check_option_type, clustering_report
from pyg_em.validation import check_n_clusters

__all__ = ["run_kmeans", "run_spectral", "default_n_clusters"]


def default_n_clusters(data: Data, config: RunConfig) -> int:
    """``config.n_clusters`` if set, else the number of classes in ``data.y``."""
    if config.n_clusters is not None:
        return config.n_clusters
    if getattr(data, "y", None) is None:
        raise ValueError("n_clusters must be given for a dataset without labels")
    return int(data.y.max()) + 1


def run_kmeans(data: Data, config: RunConfig) -> RunResult:
    """k-means (scikit-learn) on ``data.x``. Settings: ``n_init`` (default 10), ``max_iter`` (default 300)."""
    opts = config.options({"n_init": 10, "max_iter": 300})
    start = time.perf_counter()
    labels, _ = kmeans(data.x, default_n_clusters(data, config), n_init=opts["n_init"], seed=config.seed,
                       max_iter=opts["max_iter"])
    elapsed = time.perf_counter() - start
    return RunResult(metrics=clustering_report(data, labels), labels=labels, embedding=data.x,
                     timings={"fit_s": elapsed})


def _regularization(value) -> float | str:
    # TOML has no null: "auto" (the default) or a number >= 0, where 0 switches the regularisation off.
    if value is None or value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"[spectral] regularization must be 'auto' or a number >= 0, got {value!r}")
    return float(value)


def run_spectral(data: Data, config: RunConfig) -> RunResult:
    """Regularised normalised spectral clustering on ``data.edge_index``: spectral embedding, then k-means.

    Settings: ``n_init`` (k-means restarts, default 10), ``dim`` (embedding size, default ``n_clusters``),
    ``regularization`` (``'auto'``, the mean degree, by default; ``0`` for plain spectral clustering; see
    :func:`~pyg_em.clusters.spectral_embedding`). The spectral embedding is returned, so the report draws it.
    """
    opts = config.options({"n_init": 10, "dim": None, "regularization": None})
    opts["regularization"] = config.resolved["regularization"] = _regularization(opts["regularization"])
    n_clusters = default_n_clusters(data, config)
    check_n_clusters(n_clusters, data.num_nodes)
    dim = n_clusters if opts["dim"] is None else check_option_type("[spectral] dim", opts["dim"], 0)
    start = time.perf_counter()
    embedding = spectral_embedding(data.edge_index, data.num_nodes, dim, getattr(data, "edge_weight", None),
                                   seed=config.seed, regularization=opts["regularization"])
    labels, _ = kmeans(embedding, n_clusters, n_init=opts["n_init"], seed=config.seed)
    elapsed = time.perf_counter() - start
    return RunResult(metrics=clustering_report(data, labels), labels=labels, embedding=embedding,
                     timings={"fit_s": elapsed})

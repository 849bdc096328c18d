"""GEM runner: learn the edge weights of the dataset graph from its features, then cluster with them."""

from __future__ import annotations

import time

import torch
from torch_geometric.data import Data

from pyg_em.clusters import kmeans, spectral_embedding
from pyg_em.em import GEMUnrolledEM
from pyg_em.runs.baselines import _regularization, default_n_clusters
from pyg_em.runs.common import ConfigError, RunConfig, RunResult, clustering_report
from pyg_em.validation import check_n_clusters

__all__ = ["run_gem"]

#: Settings of the ``[gem]`` table of ``--config`` and their defaults.
DEFAULTS = {"eta": 0.1, "eps": 0.1, "noise": 1.0, "logdet": "hutchinson", "num_probes": 16, "feature_dim": 32,
            "n_init": 10, "regularization": None}
DEFAULT_LAYERS = 5


def _signals(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Centred features projected on their ``dim`` leading principal directions, each scaled to unit variance.

    GEM models every feature column as a smooth signal on the graph; a few standardised principal components
    carry the structure of bag-of-words features at a fraction of the cost (the E-step solves one system per
    column), and unit variance matches the model's noise scale ``noise``.
    """
    x = x.double()
    x = x - x.mean(dim=0)
    if 0 < dim < min(x.shape):
        _, _, v = torch.pca_lowrank(x, q=dim, center=False)
        x = x @ v
    return x / x.std(dim=0).clamp_min(1e-12)


def run_gem(data: Data, config: RunConfig) -> RunResult:
    """GEM graph learning: EM on the dataset graph learns one weight per edge from the node features (no labels),
    then regularised spectral clustering runs on the learned weights.

    ``--epochs`` sets the number of EM layers :math:`K` (default 5); each is one E-step (a sparse solve) and one
    M-step of :class:`~pyg_em.em.GEMUnrolledEM`, and the history records the mean learned weight and the relative
    weight change per layer. Settings (``[gem]`` table): ``eta`` (M-step size, 0.1), ``eps`` (precision shift,
    0.1), ``noise`` (observation noise, 1.0), ``logdet`` (``'hutchinson'`` or ``'exact'``), ``num_probes`` (16),
    ``feature_dim`` (principal components of the features used as signals, 32; 0 keeps all), ``n_init``
    (k-means restarts, 10), ``regularization`` of the spectral embedding (``'auto'``; see ``[spectral]``).
    """
    opts = config.options(DEFAULTS)
    opts["regularization"] = config.resolved["regularization"] = _regularization(opts["regularization"])
    if config.batch_size is not None:
        raise ValueError("gem runs full batch (its E-step solves on the whole graph); --batch-size is not supported")
    if getattr(data, "x", None) is None:
        raise ValueError("gem learns edge weights from node features, and this dataset has none")
    if isinstance(opts["feature_dim"], bool) or not isinstance(opts["feature_dim"], int) or opts["feature_dim"] < 0:
        raise ConfigError(f"[gem] feature_dim must be an integer >= 0, got {opts['feature_dim']!r}")
    n_clusters = default_n_clusters(data, config)
    check_n_clusters(n_clusters, data.num_nodes)
    num_layers = config.epochs or DEFAULT_LAYERS
    # One EM layer per call, continuing from the previous weights: the same chain as GEMUnrolledEM(num_layers=K)
    # (no prior), with the weights recorded after every layer.
    layer = GEMUnrolledEM(num_layers=1, eta=opts["eta"], eps=opts["eps"], noise=opts["noise"], logdet=opts["logdet"],
                          num_probes=opts["num_probes"])
    generator = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()
    signals = _signals(data.x, opts["feature_dim"])
    weight = None
    history: dict[str, list[float]] = {"mean_weight": [], "weight_change": []}
    with torch.no_grad():
        for _ in range(num_layers):
            new, _ = layer(signals, data.edge_index, weight, generator)
            previous = torch.ones_like(new) if weight is None else weight
            history["mean_weight"].append(float(new.mean()))
            history["weight_change"].append(float((new - previous).norm() / previous.norm()))
            weight = new
    fit_s = time.perf_counter() - start
    embedding = spectral_embedding(data.edge_index, data.num_nodes, n_clusters, weight.float(), seed=config.seed,
                                   regularization=opts["regularization"])
    labels, _ = kmeans(embedding, n_clusters, n_init=opts["n_init"], seed=config.seed)
    return RunResult(metrics=clustering_report(data, labels), history=history, labels=labels, embedding=embedding,
                     timings={"fit_s": fit_s, "clustering_s": time.perf_counter() - start - fit_s})

"""GAE and VGAE runners: link prediction on a leak-free edge split, then k-means on the node embeddings."""

from __future__ import annotations

import time

import torch
from torch_geometric.data import Data

from pyg_em.clusters import kmeans
from pyg_em.models import GAE, VGAE, evaluate_link_prediction, fit_link_prediction, link_split
from pyg_em.nn import (
    GCNEncoder,
    NormalizedPropagationEncoder,
    VariationalGCNEncoder,
    VariationalNormalizedPropagationEncoder,
)
from pyg_em.runs.baselines import default_n_clusters
from pyg_em.runs.common import ConfigError, RunConfig, RunResult, clustering_report
from pyg_em.train import EarlyStopping, Trainer, seed_everything
from pyg_em.validation import check_n_clusters

__all__ = ["run_gae", "run_vgae"]

#: Settings of the ``[gae]`` / ``[vgae]`` tables of ``--config`` and their defaults (Kipf & Welling, 2016: a
#: 32-16 GCN encoder, Adam with learning rate 0.01).
DEFAULTS = {"lr": 0.01, "encoder": "gcn", "hidden_channels": 32, "out_channels": 16, "recon": "sampled",
            "val_ratio": 0.05, "test_ratio": 0.1, "n_init": 10, "weight_decay": 0.0, "num_neighbors": 10}
DEFAULT_EPOCHS = 200
ENCODERS = ("gcn", "propagation")


def _encoder(opts: dict, in_channels: int, variational: bool) -> torch.nn.Module:
    if opts["encoder"] not in ENCODERS:
        raise ConfigError(f"encoder must be one of {ENCODERS}, got {opts['encoder']!r}")
    if opts["encoder"] == "gcn":
        cls = VariationalGCNEncoder if variational else GCNEncoder
        return cls(in_channels, opts["hidden_channels"], opts["out_channels"])
    # GNAE / VGNAE (Ahn & Kim, 2021): linear map, fixed row norm, personalised-PageRank propagation.
    cls = VariationalNormalizedPropagationEncoder if variational else NormalizedPropagationEncoder
    return cls(in_channels, opts["out_channels"])


def _fit_minibatch(model, split, config: RunConfig, opts: dict, epochs: int) -> dict[str, list[float]]:
    """Mini-batch training on LinkNeighborLoader batches (the model's ``loss_batch``), selecting the epoch with
    the best validation AUC + AP as :func:`~pyg_em.models.fit_link_prediction` does in full batch."""
    from torch_geometric.loader import LinkNeighborLoader

    depth = len(getattr(model.encoder, "hidden_channels", [])) + 1 if opts["encoder"] == "gcn" else 2
    # Negatives are sampled by the loader among the training graph's non-edges ("binary" labels).
    loader = LinkNeighborLoader(split.train, num_neighbors=[opts["num_neighbors"]] * depth,
                                edge_label_index=split.train.pos_edge_label_index, neg_sampling="binary",
                                batch_size=config.batch_size, shuffle=True)
    val_on_device: list[Data] = []

    def eval_fn(m: torch.nn.Module, _: Data) -> dict[str, float]:
        if not val_on_device:
            val_on_device.append(split.val.to(next(m.parameters()).device))
        scores = evaluate_link_prediction(m, val_on_device[0])
        return {"val_auc": scores["auc"], "val_ap": scores["ap"], "val_auc_ap": scores["auc"] + scores["ap"]}

    trainer = Trainer(model, epochs=epochs, lr=opts["lr"], weight_decay=opts["weight_decay"], device=config.device,
                      eval_fn=eval_fn, callbacks=[EarlyStopping("val_auc_ap", mode="max", patience=epochs + 1)],
                      progress=config.progress, desc=config.method or "gae")
    return trainer.fit(split.train, loader=loader)


def _run_autoencoder(data: Data, config: RunConfig, variational: bool) -> RunResult:
    opts = config.options(DEFAULTS)
    n_clusters = default_n_clusters(data, config)
    check_n_clusters(n_clusters, data.num_nodes)
    epochs = config.epochs or DEFAULT_EPOCHS
    # Seeds Python's `random` too, which PyG's negative sampling in the split draws from.
    seed_everything(config.seed)
    # Validation and test edges leave the message-passing graph and are never drawn as training negatives.
    split = link_split(data, val_ratio=opts["val_ratio"], test_ratio=opts["test_ratio"], seed=config.seed)
    model = (VGAE if variational else GAE)(_encoder(opts, data.num_features, variational), n_clusters=n_clusters,
                                          recon=opts["recon"])
    start = time.perf_counter()
    if config.batch_size is None:
        history = fit_link_prediction(model, split.train, split.val, epochs=epochs, lr=opts["lr"],
                                      weight_decay=opts["weight_decay"], device=config.device,
                                      progress=config.progress)
    else:
        history = _fit_minibatch(model, split, config, opts, epochs)
    fit_s = time.perf_counter() - start
    device = next(model.parameters()).device
    test = evaluate_link_prediction(model, split.test.to(device))
    # Clustering embeds the training graph, so the test edges stay unseen by the whole run.
    embedding = model.embed_data(split.train.to(device)).cpu()
    labels, _ = kmeans(embedding, n_clusters, n_init=opts["n_init"], seed=config.seed)
    metrics = {"auc": test["auc"], "ap": test["ap"], **clustering_report(data, labels)}
    return RunResult(metrics=metrics, history=history, labels=labels, embedding=embedding,
                     timings={"fit_s": fit_s, "clustering_s": time.perf_counter() - start - fit_s})


def run_gae(data: Data, config: RunConfig) -> RunResult:
    """Graph auto-encoder (:class:`~pyg_em.models.GAE`): link prediction, then k-means on the embedding.

    Splits the edges with :func:`~pyg_em.models.link_split`, trains with
    :func:`~pyg_em.models.fit_link_prediction` (keeping the epoch with the best validation AUC + AP; with
    ``--batch-size``, the same on :class:`~torch_geometric.loader.LinkNeighborLoader` batches), reports the
    test-edge ``auc``/``ap`` and the clustering metrics of k-means on the embedding of the training graph.

    Settings (``[gae]`` table): ``lr`` (0.01), ``encoder`` (``'gcn'``, a :class:`~pyg_em.nn.GCNEncoder`, or
    ``'propagation'``, the GNAE :class:`~pyg_em.nn.NormalizedPropagationEncoder`), ``hidden_channels`` (32, GCN
    only), ``out_channels`` (16), ``recon`` (``'sampled'`` or ``'full'``), ``val_ratio`` (0.05), ``test_ratio``
    (0.1), ``n_init`` (k-means restarts, 10), ``weight_decay`` (0), ``num_neighbors`` (neighbours sampled per
    layer with ``--batch-size``, 10). Default epochs: 200.
    """
    return _run_autoencoder(data, config, variational=False)


def run_vgae(data: Data, config: RunConfig) -> RunResult:
    """Variational graph auto-encoder (:class:`~pyg_em.models.VGAE`); settings and metrics as :func:`run_gae`.

    The loss curves show the reconstruction and KL terms; the embedding is the posterior mean :math:`\\mu`.
    """
    return _run_autoencoder(data, config, variational=True)

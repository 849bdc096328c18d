"""DAEGC runner: attentional graph auto-encoder with DEC self-training (Wang et al., IJCAI 2019)."""

from __future__ import annotations

import time

from torch_geometric.data import Data

from pyg_em.models import DAEGC
from pyg_em.runs.baselines import default_n_clusters
from pyg_em.runs.common import ConfigError, RunConfig, RunResult, clustering_report
from pyg_em.train import seed_everything
from pyg_em.validation import check_n_clusters

__all__ = ["run_daegc"]

#: Settings of the ``[daegc]`` table of ``--config`` and their defaults (the benchmarked recipe).
DEFAULTS = {"lr": 1e-4, "pretrain_lr": 5e-3, "pretrain_steps": 100, "weight_decay": 0.0, "gamma": 10.0,
            "neg_ratio": 3.0, "dropout": 0.5, "hidden_channels": 256, "embedding_channels": 16,
            "update_interval": 1, "n_init": 20, "num_neighbors": 10}
DEFAULT_EPOCHS = 100


def run_daegc(data: Data, config: RunConfig) -> RunResult:
    """DAEGC clustering through :meth:`DAEGC.fit <pyg_em.models.DAEGC.fit>`: reconstruction pretraining, k-means
    initialisation of the centres, then self-training; ``--batch-size`` switches to NeighborLoader mini-batches.

    ``--epochs`` sets the self-training epochs (default 100). Settings (``[daegc]`` table): ``lr`` (1e-4),
    ``pretrain_lr`` (5e-3), ``pretrain_steps`` (optimizer steps; with ``--batch-size`` the fewest whole epochs
    reaching them, 100), ``weight_decay`` (0), ``gamma`` (10), ``neg_ratio``
    (sampled non-edges per edge, 3), ``dropout`` (pretraining attention dropout, 0.5), ``hidden_channels`` (256),
    ``embedding_channels`` (16), ``update_interval`` (1), ``n_init`` (k-means restarts, 20), ``num_neighbors`` (per
    layer with ``--batch-size``, 10). The history holds the self-training losses and the pretraining losses
    (``pretrain_*``).
    """
    opts = config.options(DEFAULTS)
    for key in ("pretrain_steps", "hidden_channels", "embedding_channels", "update_interval", "n_init",
                "num_neighbors"):
        if opts[key] < 1:
            raise ConfigError(f"[daegc] {key} must be a positive integer, got {opts[key]!r}")
    n_clusters = default_n_clusters(data, config)
    check_n_clusters(n_clusters, data.num_nodes)
    seed_everything(config.seed)
    model = DAEGC(data.num_features, n_clusters, hidden_channels=opts["hidden_channels"],
                  embedding_channels=opts["embedding_channels"], gamma=opts["gamma"],
                  update_interval=opts["update_interval"], neg_ratio=opts["neg_ratio"],
                  dropout=opts["dropout"])
    start = time.perf_counter()
    history = model.fit(data, pretrain_steps=opts["pretrain_steps"], epochs=config.epochs or DEFAULT_EPOCHS,
                        pretrain_lr=opts["pretrain_lr"], lr=opts["lr"], weight_decay=opts["weight_decay"],
                        n_init=opts["n_init"], seed=config.seed, batch_size=config.batch_size,
                        num_neighbors=[opts["num_neighbors"]] * 2, device=config.device, progress=config.progress)
    fit_s = time.perf_counter() - start
    device = next(model.parameters()).device
    data = data.to(device)
    labels = model.predict(data).cpu()
    embedding = model.embed_data(data).cpu()
    return RunResult(metrics=clustering_report(data.cpu(), labels), history=history, labels=labels,
                     embedding=embedding, timings={"fit_s": fit_s})

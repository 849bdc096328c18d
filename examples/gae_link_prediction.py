"""Link prediction with pyg_em's GAE / VGAE on Cora, and mini-batch VGAE training on a large SBM.

    PYTHONPATH=$PWD python examples/gae_link_prediction.py            # Cora, 400 epochs, + 100k-node SBM
    PYTHONPATH=$PWD python examples/gae_link_prediction.py --smoke    # seconds: tiny SBM graphs only

Full batch: ``link_split`` (val 5 %, test 10 %, no held-out edge in message passing or among the training
negatives), ``fit_link_prediction`` (Trainer + validation-based epoch selection), ``evaluate_link_prediction``.
Mini-batch: ``LinkNeighborLoader`` batches of positive edges with sampled negatives, ``Trainer.fit(loader=...)``
calling ``VGAE.loss_batch``; the script prints the per-epoch loss, which decreases.
"""

from __future__ import annotations

import argparse
import os
import time

import torch_geometric.transforms as T
from torch_geometric.loader import LinkNeighborLoader

from pyg_em.datasets import attributed_sbm, load_planetoid
from pyg_em.metrics import clustering_metrics
from pyg_em.models import GAE, VGAE, evaluate_link_prediction, fit_link_prediction, link_split
from pyg_em.nn import NormalizedPropagationEncoder, VariationalGCNEncoder, VariationalNormalizedPropagationEncoder
from pyg_em.train import Trainer, seed_everything


def full_batch(data, epochs: int, n_clusters: int) -> None:
    train, val, test = link_split(data, seed=0)
    for name, model in (
        ("GAE", GAE(NormalizedPropagationEncoder(data.num_features, 16, scale=2.5), n_clusters=n_clusters)),
        ("VGAE", VGAE(VariationalNormalizedPropagationEncoder(data.num_features, 16, scale=2.5), kl_weight=0.1,
                      n_clusters=n_clusters)),
    ):
        seed_everything(0)
        start = time.perf_counter()
        history = fit_link_prediction(model, train, val, epochs=epochs, lr=0.005)
        scores = evaluate_link_prediction(model, test)
        model.initialize_cluster_centers(data)
        clusters = clustering_metrics(data.y, model.predict(data))
        print(f"{name}: test AUC {scores['auc']:.4f} AP {scores['ap']:.4f} (best val AUC+AP "
              f"{max(history['val_auc_ap']):.4f}, {time.perf_counter() - start:.1f} s); "
              f"k-means on embeddings: ACC {clusters['acc']:.3f} NMI {clusters['nmi']:.3f}")


def mini_batch(num_nodes: int, epochs: int) -> None:
    from torch_geometric.typing import WITH_PYG_LIB, WITH_TORCH_SPARSE

    if not (WITH_PYG_LIB or WITH_TORCH_SPARSE):  # LinkNeighborLoader needs one of them
        print("mini-batch part skipped: LinkNeighborLoader needs pyg_lib or torch_sparse")
        return
    data = attributed_sbm(num_nodes, 10, 10.0, p_in_ratio=20.0, num_features=32, seed=0)
    loader = LinkNeighborLoader(data, num_neighbors=[10, 5], edge_label_index=data.edge_index, neg_sampling="binary",
                                batch_size=4096, shuffle=True)
    model = VGAE(VariationalGCNEncoder(32, 64, 16))
    start = time.perf_counter()
    history = Trainer(model, epochs=epochs, lr=0.01, progress=False).fit(loader=loader)
    losses = ", ".join(f"{v:.4f}" for v in history["total"])
    print(f"mini-batch VGAE on a {num_nodes}-node SBM ({data.edge_index.size(1)} directed edges): "
          f"loss per epoch {losses} ({time.perf_counter() - start:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny graphs and few epochs (seconds)")
    args = parser.parse_args()
    if args.smoke:
        full_batch(attributed_sbm(300, 3, 8.0, p_in_ratio=30.0, num_features=16, seed=0), epochs=30, n_clusters=3)
        mini_batch(3000, epochs=2)
        return
    root = os.environ.get("PYG_EM_DATA", "../shared/data/planetoid")
    full_batch(load_planetoid("cora", root=root, transform=T.NormalizeFeatures()), epochs=400, n_clusters=7)
    mini_batch(100_000, epochs=3)


if __name__ == "__main__":
    main()

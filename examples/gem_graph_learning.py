"""Recover a hidden graph from smooth noisy signals with GEM, starting from a noisy kNN candidate graph.

Signals are drawn from a Gaussian Markov random field on a hidden kNN graph of random points (plus noise). The
candidate graph is the kNN graph of the *signals* (what a practitioner would build), which holds most true
edges and many false ones. GEM runs EM on the candidate graph and its learned weights rank the candidates;
we report the AUC of the learned weights (true edges vs. the other candidates) next to the AUC of the
signal-distance score that built the candidate graph, then feed the weights to a GCNConv.

    PYTHONPATH=. python examples/gem_graph_learning.py --smoke   # a few seconds (or PYG_EM_SMOKE=1)
    PYTHONPATH=. python examples/gem_graph_learning.py           # N=300, 100 signals
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch_geometric.nn import GCNConv

from pyg_em.em import GEMGraphLearner, GEMUnrolledEM, edge_labels, knn_candidate_graph, smooth_graph_signals
from pyg_em.metrics import link_auc


def recover(num_nodes: int, num_signals: int, num_layers: int, k_candidates: int = 10, seed: int = 0,
            **options) -> dict:
    """Run the synthetic recovery task once; return the AUCs, the candidate counts and the run time.

    ``options`` are further :class:`~pyg_em.em.GEMConfig` settings (e.g. ``logdet='hutchinson'``)."""
    x, true_edge_index, _ = smooth_graph_signals(num_nodes, num_signals, k=4, eps=0.1, noise=0.5, seed=seed)
    candidates = knn_candidate_graph(x, k_candidates)
    # EM on the candidate graph from flat weights; no task loss, so no graph is needed (torch.no_grad)
    learner = GEMGraphLearner(candidates, num_nodes,
                              layer=GEMUnrolledEM(num_layers=num_layers, eta=0.02, eps=0.1, noise=0.5, **options))
    start = time.perf_counter()
    with torch.no_grad():
        weight, _ = learner(x, generator=torch.Generator().manual_seed(seed))
    seconds = time.perf_counter() - start
    labels = edge_labels(learner.pairs, true_edge_index, num_nodes)
    learned = weight[: learner.num_candidates]
    distance = -(x[learner.pairs[0]] - x[learner.pairs[1]]).pow(2).sum(dim=1)
    return {
        "auc_gem": link_auc(learned[labels], learned[~labels]),
        "auc_distance": link_auc(distance[labels], distance[~labels]),
        "candidates": learner.num_candidates,
        "true_in_candidates": int(labels.sum()),
        "true_edges": true_edge_index.size(1) // 2,
        "seconds": seconds,
        "learner": learner,
        "weight": weight,
        "x": x,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny problem, a few seconds")
    parser.add_argument("--num-nodes", type=int, default=300)
    parser.add_argument("--num-signals", type=int, default=100)
    parser.add_argument("--num-layers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.smoke or os.environ.get("PYG_EM_SMOKE") == "1":
        args.num_nodes, args.num_signals, args.num_layers = 60, 40, 60
    torch.manual_seed(args.seed)
    result = recover(args.num_nodes, args.num_signals, args.num_layers, seed=args.seed)
    print(f"candidate edges: {result['candidates']} (holding {result['true_in_candidates']} of "
          f"{result['true_edges']} true edges)")
    print(f"AUC signal distance: {result['auc_distance']:.3f}   AUC GEM weights: {result['auc_gem']:.3f}   "
          f"({args.num_layers} EM layers, {result['seconds']:.1f} s)")
    learner, x = result["learner"], result["x"]
    out = GCNConv(x.size(1), 8).double()(x, learner.edge_index, edge_weight=result["weight"])
    print(f"GCNConv on the learned graph: output {tuple(out.shape)}")


if __name__ == "__main__":
    main()

"""Synthetic graph-learning task: smooth noisy signals drawn from a Gaussian Markov random field on a hidden graph."""

from __future__ import annotations

import torch
from torch import Tensor

from pyg_em.em.candidates import knn_candidate_graph, undirected_pairs
from pyg_em.em.objective import precision_operator
from pyg_em.validation import check_positive

__all__ = ["edge_labels", "smooth_graph_signals"]


def smooth_graph_signals(
    num_nodes: int = 200,
    num_signals: int = 50,
    k: int = 4,
    eps: float = 0.1,
    noise: float = 0.5,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Signals :math:`x = z + \sigma\xi` with :math:`z_{:,f} \sim \mathcal N(0, (L + \varepsilon I)^{-1})`.

    The hidden graph is the symmetrised ``k``-nearest-neighbour graph of ``num_nodes`` uniform points in the
    unit square with weights drawn from :math:`U(0.5, 1.5)`. The GMRF samples are drawn exactly through a dense
    Cholesky factor of the precision (:math:`O(N^3)`: meant for ``N`` up to a few thousand).

    Returns:
        ``(x (N, num_signals), true_edge_index (2, 2U) both directions, true_weight (2U,))``.
    """
    check_positive(eps, "eps")
    check_positive(noise, "noise")
    gen = torch.Generator().manual_seed(seed)
    points = torch.rand(num_nodes, 2, generator=gen, dtype=dtype)
    edge_index = knn_candidate_graph(points, k)
    pairs, _ = undirected_pairs(edge_index, num_nodes)
    weight = 0.5 + torch.rand(pairs.size(1), generator=gen, dtype=dtype)
    indices, values, _ = precision_operator(pairs, weight, num_nodes, eps)
    precision = torch.zeros(num_nodes, num_nodes, dtype=dtype).index_put((indices[0], indices[1]), values,
                                                                         accumulate=True)
    factor = torch.linalg.cholesky(precision)  # precision = C C^T, so z = C^{-T} xi has covariance precision^{-1}
    white = torch.randn(num_nodes, num_signals, generator=gen, dtype=dtype)
    z = torch.linalg.solve_triangular(factor.T, white, upper=True)
    x = z + noise * torch.randn(num_nodes, num_signals, generator=gen, dtype=dtype)
    return x, torch.cat([pairs, pairs.flip(0)], dim=1), torch.cat([weight, weight])


def edge_labels(candidate_pairs: Tensor, true_edge_index: Tensor, num_nodes: int) -> Tensor:
    """Boolean ``(U,)``: which undirected candidate pairs are edges of the true graph."""
    true_pairs, _ = undirected_pairs(true_edge_index, num_nodes)
    true_keys = true_pairs[0] * num_nodes + true_pairs[1]
    keys = candidate_pairs[0] * num_nodes + candidate_pairs[1]
    return torch.isin(keys, true_keys.to(keys.device))

"""Candidate graphs for GEM and the bookkeeping between directed ``edge_index`` and undirected edges.

GEM learns one weight per *undirected* candidate edge ``{i, j}``, so the Laplacian it builds is symmetric by
construction. PyG graphs store each undirected edge as two directed columns of ``edge_index`` (and sometimes
repeat columns), so every GEM entry point first maps ``edge_index`` onto its set of unique undirected pairs
with :func:`undirected_pairs`, and maps the learned pair weights back onto the columns with
``weight[edge_to_pair]``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pyg_em.validation import as_int, check_edge_index, check_features, check_positive

__all__ = ["complete_graph", "knn_candidate_graph", "pairs_to_edge_index", "undirected_pairs"]


def undirected_pairs(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """Unique undirected pairs of a directed ``edge_index`` and the map from each column to its pair.

    Both directions ``(i, j)`` and ``(j, i)`` and any repeated column map to the same pair, so duplicates are
    merged rather than rejected (their weights are averaged by the GEM layers). Self loops are rejected: the
    Laplacian ignores them, and a weight on one would be a parameter with no effect.

    Args:
        edge_index (Tensor): Directed connectivity of shape ``(2, E)``.
        num_nodes (int): Number of nodes ``N``.

    Returns:
        ``(pairs, edge_to_pair)``: ``pairs`` of shape ``(2, U)`` with ``pairs[0] < pairs[1]``, sorted by
        ``(row, col)``, and ``edge_to_pair`` of shape ``(E,)`` with ``pairs[:, edge_to_pair[e]]`` the
        (sorted) endpoints of column ``e``.

    Raises:
        ValueError: If ``edge_index`` holds a self loop or ids outside ``[0, num_nodes)``.
    """
    check_edge_index(edge_index, num_nodes)
    row, col = edge_index
    if bool((row == col).any()):
        raise ValueError("edge_index contains self loops; GEM candidate graphs must not (remove them with "
                         "torch_geometric.utils.remove_self_loops)")
    low, high = torch.minimum(row, col), torch.maximum(row, col)
    keys, edge_to_pair = torch.unique(low * num_nodes + high, return_inverse=True)
    pairs = torch.stack([keys // num_nodes, keys % num_nodes])
    return pairs, edge_to_pair


def pairs_to_edge_index(pairs: Tensor) -> Tensor:
    """Both directions of each undirected pair: ``(2, U)`` -> ``(2, 2U)``, column ``u + U`` reversing ``u``."""
    return torch.cat([pairs, pairs.flip(0)], dim=1)


def complete_graph(num_nodes: int, device: torch.device | str | None = None) -> Tensor:
    """``edge_index`` of the complete graph on ``num_nodes`` nodes, both directions, no self loops.

    This is the candidate graph of the dense seed design (one weight for every node pair); use it for small
    ``N`` only, since it has ``N(N-1)`` columns.
    """
    check_positive(num_nodes, "num_nodes")
    row, col = torch.triu_indices(num_nodes, num_nodes, offset=1, device=device)
    return pairs_to_edge_index(torch.stack([row, col]))


def knn_candidate_graph(x: Tensor, k: int) -> Tensor:
    """Symmetrised k-nearest-neighbour candidate graph of the rows of ``x`` (Euclidean), both directions.

    The neighbour search runs in scikit-learn (a KD-/ball tree, so it scales to 10^5+ points) on a CPU copy;
    the result is returned on ``x.device``. An edge ``{i, j}`` is kept when either endpoint lists the other
    among its ``k`` nearest neighbours.

    Args:
        x (Tensor): Points of shape ``(N, D)``.
        k (int): Neighbours per node, ``1 <= k < N``.

    Returns:
        ``edge_index`` of shape ``(2, 2U)`` without self loops or duplicates.
    """
    from sklearn.neighbors import NearestNeighbors

    check_features(x, "x")
    if as_int(k) is None or not 1 <= as_int(k) < x.size(0):  # NumPy/0-d torch integers accepted, bool not
        raise ValueError(f"k must be an int in [1, N) with N={x.size(0)}, got {k!r}")
    k = as_int(k)
    points = x.detach().cpu().double().numpy()
    _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    row = np.repeat(np.arange(points.shape[0]), k + 1)
    col = neighbours.reshape(-1)
    keep = row != col  # the query point itself (or an exact duplicate standing in for it)
    edge_index = torch.from_numpy(np.stack([row[keep], col[keep]])).to(x.device)
    pairs, _ = undirected_pairs(edge_index, x.size(0))
    return pairs_to_edge_index(pairs)

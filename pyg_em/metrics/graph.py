"""Label-free quality of a partition on the graph itself: modularity and conductance."""

from __future__ import annotations

import torch
from torch import Tensor

from pyg_em.validation import check_edge_index, check_edge_weight

__all__ = ["modularity", "conductance"]


def _prepare(edge_index: Tensor, labels: Tensor, edge_weight: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.dtype not in (torch.long, torch.int32):
        raise TypeError("labels must be a 1-D integer tensor of cluster ids")
    num_nodes = labels.numel()
    check_edge_index(edge_index, num_nodes)
    check_edge_weight(edge_weight, edge_index.size(1))
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), dtype=torch.float64, device=edge_index.device)
    labels = labels.long()
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError("labels must be non-negative cluster ids")
    return edge_index, labels, edge_weight.double()


def modularity(edge_index: Tensor, labels: Tensor, edge_weight: Tensor | None = None) -> float:
    r"""Newman's modularity of a partition; ``edge_index`` lists each undirected edge in both directions.

    .. math::
        Q = \sum_c \left[ \frac{w_{cc}}{2m} - \left(\frac{d_c}{2m}\right)^2 \right]

    with :math:`w_{cc}` the summed weight of directed edges inside cluster :math:`c`, :math:`d_c` the summed
    degree of its nodes and :math:`2m` the summed weight of all directed edges.
    """
    edge_index, labels, w = _prepare(edge_index, labels, edge_weight)
    two_m = w.sum()
    if float(two_m) == 0:
        raise ValueError("edge_index has no (positive-weight) edges: modularity is undefined")
    k = int(labels.max()) + 1
    src, dst = labels[edge_index[0]], labels[edge_index[1]]
    inside = torch.zeros(k, dtype=w.dtype, device=w.device).index_add_(0, src, w * (src == dst))
    degree = torch.zeros(k, dtype=w.dtype, device=w.device).index_add_(0, src, w)
    return float((inside / two_m - (degree / two_m) ** 2).sum())


def conductance(edge_index: Tensor, labels: Tensor, edge_weight: Tensor | None = None) -> float:
    r"""Mean conductance over non-empty clusters (lower is better).

    .. math::
        \phi(c) = \frac{\mathrm{cut}(c, \bar c)}{\min(\mathrm{vol}(c), \mathrm{vol}(\bar c))}

    Clusters whose denominator is zero (no edges on one side) are given conductance 0.
    """
    edge_index, labels, w = _prepare(edge_index, labels, edge_weight)
    k = int(labels.max()) + 1
    src, dst = labels[edge_index[0]], labels[edge_index[1]]
    cut = torch.zeros(k, dtype=w.dtype, device=w.device).index_add_(0, src, w * (src != dst))
    vol = torch.zeros(k, dtype=w.dtype, device=w.device).index_add_(0, src, w)
    denom = torch.minimum(vol, vol.sum() - vol)
    present = torch.bincount(labels, minlength=k) > 0
    phi = torch.where(denom > 0, cut / denom.clamp_min(1e-300), torch.zeros_like(cut))
    return float(phi[present].mean())

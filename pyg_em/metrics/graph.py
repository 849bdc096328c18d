"""Label-free quality of a partition on the graph itself: modularity and conductance."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from pyg_em.validation import check_edge_index, check_edge_weight

__all__ = ["modularity", "conductance"]


def _cluster_index(labels: Any, device: torch.device) -> tuple[Tensor, int]:
    """Labels relabelled to ``0..K-1`` with ``unique`` (as scikit-learn does), and ``K``.

    Buffers are then sized by the number of clusters, not by the largest label id (a label of ``1e9`` must not
    allocate gigabytes), and any sortable labels work: integer tensors, NumPy arrays, lists of strings.
    """
    if isinstance(labels, Tensor):
        if labels.dim() != 1 or labels.is_floating_point() or labels.is_complex():
            raise TypeError(f"labels must be a 1-D integer tensor of cluster ids, got dtype {labels.dtype} and shape "
                            f"{tuple(labels.shape)}")
        _, index = torch.unique(labels.to(device), return_inverse=True)
    else:
        array = np.asarray(labels)
        if array.ndim != 1:
            raise TypeError(f"labels must be a 1-D sequence of cluster ids, got shape {array.shape}")
        if array.dtype.kind in "fc" and not (np.all(np.isfinite(array)) and np.all(array == np.round(array))):
            raise TypeError(f"labels must hold integer or string cluster ids, got dtype {array.dtype}")
        try:
            _, inverse = np.unique(array, return_inverse=True)
        except TypeError as error:  # mixed types that cannot be sorted
            raise TypeError(f"labels must be cluster ids of one sortable type ({error})") from None
        index = torch.as_tensor(inverse.reshape(-1), dtype=torch.long, device=device)
    if index.numel() == 0:
        raise ValueError("labels is empty: give one cluster id per node")
    return index, int(index.max()) + 1


def _prepare(edge_index: Tensor, labels: Any, edge_weight: Tensor | None) -> tuple[Tensor, Tensor, Tensor, int]:
    device = edge_index.device if isinstance(edge_index, Tensor) else torch.device("cpu")
    index, k = _cluster_index(labels, device)
    check_edge_index(edge_index, index.numel())
    check_edge_weight(edge_weight, edge_index.size(1))
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), dtype=torch.float64, device=edge_index.device)
    return edge_index, index, edge_weight.double(), k


def modularity(edge_index: Tensor, labels: Tensor, edge_weight: Tensor | None = None) -> float:
    r"""Newman's modularity of a partition; ``edge_index`` lists each undirected edge in both directions.

    .. math::
        Q = \sum_c \left[ \frac{w_{cc}}{2m} - \left(\frac{d_c}{2m}\right)^2 \right]

    with :math:`w_{cc}` the summed weight of directed edges inside cluster :math:`c`, :math:`d_c` the summed
    degree of its nodes and :math:`2m` the summed weight of all directed edges.

    ``labels`` holds one cluster id per node: an integer tensor, or any 1-D sequence of sortable ids (NumPy
    arrays, strings); ids are relabelled with ``unique``, so their values do not matter.
    """
    edge_index, labels, w, k = _prepare(edge_index, labels, edge_weight)
    two_m = w.sum()
    if float(two_m) == 0:
        raise ValueError("edge_index has no (positive-weight) edges: modularity is undefined")
    src, dst = labels[edge_index[0]], labels[edge_index[1]]
    inside = torch.zeros(k, dtype=w.dtype, device=w.device).index_add_(0, src, w * (src == dst))
    degree = torch.zeros(k, dtype=w.dtype, device=w.device).index_add_(0, src, w)
    return float((inside / two_m - (degree / two_m) ** 2).sum())


def conductance(edge_index: Tensor, labels: Tensor, edge_weight: Tensor | None = None) -> float:
    r"""Mean conductance over non-empty clusters (lower is better).

    .. math::
        \phi(c) = \frac{\mathrm{cut}(c, \bar c)}{\min(\mathrm{vol}(c), \mathrm{vol}(\bar c))}

    Clusters whose denominator is zero (no edges on one side) are given conductance 0. ``labels`` as in
    :func:`modularity`.
    """
    edge_index, labels, w, k = _prepare(edge_index, labels, edge_weight)
    src, dst = labels[edge_index[0]], labels[edge_index[1]]
    cut = torch.zeros(k, dtype=w.dtype, device=w.device).index_add_(0, src, w * (src != dst))
    vol = torch.zeros(k, dtype=w.dtype, device=w.device).index_add_(0, src, w)
    denom = torch.minimum(vol, vol.sum() - vol)
    phi = torch.where(denom > 0, cut / denom.clamp_min(1e-300), torch.zeros_like(cut))
    return float(phi.mean())  # after relabelling every cluster id in 0..k-1 is present

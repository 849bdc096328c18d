"""k-means on node embeddings or features (scikit-learn's KMeans, k-means++ with D² sampling)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import Tensor

from pyg_em.validation import check_features, check_n_clusters

__all__ = ["kmeans"]


def kmeans(
    x: Tensor,
    n_clusters: int,
    n_init: int = 10,
    seed: int | None = 0,
    max_iter: int = 300,
) -> tuple[Tensor, Tensor]:
    """Cluster the rows of ``x`` with scikit-learn's :class:`~sklearn.cluster.KMeans`.

    Args:
        x (Tensor): Points of shape ``(N, D)``, on any device.
        n_clusters (int): Number of clusters, in ``[2, N]``.
        n_init (int): Number of k-means++ restarts; the best inertia wins. (default: :obj:`10`)
        seed (int, optional): Random state for reproducible restarts. (default: :obj:`0`)
        max_iter (int): Lloyd iterations per restart. (default: :obj:`300`)

    Returns:
        ``(labels, centers)``: ``(N,)`` long labels and ``(n_clusters, D)`` centres, on ``x``'s device and dtype.
    """
    check_features(x, "x")
    check_n_clusters(n_clusters, x.size(0))
    if n_init < 1:
        raise ValueError(f"n_init must be >= 1, got {n_init}")
    points = x.detach().cpu().double().numpy()
    model = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed, max_iter=max_iter)
    labels = model.fit_predict(points)
    return (
        torch.from_numpy(labels.astype(np.int64)).to(x.device),
        torch.from_numpy(model.cluster_centers_).to(device=x.device, dtype=x.dtype),
    )

"""How clustered a feature matrix is on its own, without labels: the silhouette of k-means on a sample."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pyg_em.clusters.kmeans import kmeans
from pyg_em.validation import check_n_clusters, check_positive_int

__all__ = ["feature_silhouette"]


def feature_silhouette(x: Tensor, n_clusters: int, sample_size: int = 5000, seed: int = 0) -> float:
    r"""Silhouette of the k-means partition of the feature rows: the label-free measure of how much cluster
    structure the features carry by themselves.

    .. math::
        s = \frac{1}{n}\sum_i \frac{b_i - a_i}{\max(a_i, b_i)}

    with :math:`a_i` the mean Euclidean distance of row :math:`i` to its own k-means cluster and :math:`b_i`
    to the nearest other one, over a fixed random sample of at most ``sample_size`` rows (k-means and the
    :math:`O(n^2)` distances both run on the sample, so the cost does not grow with the graph): the package's
    :func:`~pyg_em.clusters.kmeans` (scikit-learn's ``KMeans`` at this size, 5 restarts) and scikit-learn's
    ``silhouette_score``. Values near 0 mean no cluster structure
    (noise, or high-dimensional bag-of-words where distances concentrate); separated clusters give
    :math:`0.1` and more. Clusters of under 1 % of the sample (outliers) are left out of the score; constant
    features, or fewer than two clusters left, give :math:`0`.

    Args:
        x (Tensor): Features :math:`(N, F)`, dense or sparse.
        n_clusters (int): Clusters of the k-means partition.
        sample_size (int): Rows sampled. (default: :obj:`5000`)
        seed (int): Seed of the sample and of k-means. (default: :obj:`0`)

    Returns:
        float: The silhouette, in :math:`[-1, 1]`.
    """
    from sklearn.metrics import silhouette_score

    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"x must be an (N, F) feature tensor, got {type(x).__name__} "
                         f"of shape {tuple(getattr(x, 'shape', ()))}")
    check_positive_int(sample_size, "sample_size")
    num_rows = x.size(0)
    check_n_clusters(n_clusters, num_rows)
    rng = np.random.default_rng(seed)
    rows = torch.from_numpy(np.sort(rng.choice(num_rows, min(num_rows, sample_size), replace=False)))
    sample = x.index_select(0, rows.to(x.device))
    sample = (sample.to_dense() if sample.layout != torch.strided else sample).double().cpu().numpy()
    if not np.isfinite(sample).all():
        raise ValueError("x holds NaN or Inf values: impute or drop them before clustering")
    if n_clusters >= len(sample) or np.ptp(sample, axis=0).max(initial=0.0) == 0.0:
        return 0.0
    labels = kmeans(torch.from_numpy(sample), n_clusters, n_init=5, seed=seed)[0].numpy()
    # k-means on structureless features (e.g. sparse bag-of-words) can isolate a few outlying rows; every other
    # row then sits far from that "cluster" and the silhouette reads high. Clusters under 1 % of the sample
    # (at least 5 rows) are dropped before scoring, so outliers alone never make features look clustered.
    sizes = np.bincount(labels, minlength=n_clusters)
    kept = np.isin(labels, np.flatnonzero(sizes >= max(5, 0.01 * len(sample))))
    if len(np.unique(labels[kept])) < 2:
        return 0.0
    return float(silhouette_score(sample[kept], labels[kept]))

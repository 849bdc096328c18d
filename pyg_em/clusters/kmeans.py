"""k-means on node embeddings or features: scikit-learn's exact KMeans for small inputs, and for large ones
k-means++ restarts on a sample refined by chunked Lloyd passes over every point (torch, on the points' device)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import Tensor
from tqdm.auto import tqdm

from pyg_em.validation import check_features, check_n_clusters, check_positive_int

__all__ = ["kmeans", "lloyd_refine", "EXACT_KMEANS_MAX_POINTS", "KMEANS_SAMPLE_SIZE"]

#: Up to this many points :func:`kmeans` runs scikit-learn's exact :class:`~sklearn.cluster.KMeans` (all restarts
#: over all points); above it, the sampled form. Measured on 16-d embeddings (one thread): the exact form with 20
#: restarts takes 2.6 s at 100k points and 21 s at 1M, and would copy 10M points to float64 (1.3 GB) at 10M.
EXACT_KMEANS_MAX_POINTS = 200_000

#: Points the restarts of the sampled form see (k-means++ seeding and Lloyd, scikit-learn, float64).
KMEANS_SAMPLE_SIZE = 100_000


def kmeans(
    x: Tensor,
    n_clusters: int,
    n_init: int = 10,
    seed: int | None = 0,
    max_iter: int = 300,
    *,
    exact_max_points: int = EXACT_KMEANS_MAX_POINTS,
    sample_size: int = KMEANS_SAMPLE_SIZE,
    chunk_size: int = 1 << 18,
    progress: bool = False,
) -> tuple[Tensor, Tensor]:
    r"""Cluster the rows of ``x`` by k-means (minimise :math:`\sum_i \min_u \lVert x_i - \mu_u \rVert^2`).

    Up to ``exact_max_points`` rows (``EXACT_KMEANS_MAX_POINTS``, 200k) this is scikit-learn's
    :class:`~sklearn.cluster.KMeans` on all rows (k-means++ seeding, ``n_init`` restarts, best inertia wins),
    so small graphs such as Cora get exactly the partition they always got.

    Above it the cost of ``n_init`` restarts over all :math:`N` rows (:math:`O(N k \cdot n_{init})` per
    iteration, plus a float64 copy of the data) is avoided: the restarts run on a uniform sample of
    ``sample_size`` rows, and the best sample centres are then refined by Lloyd passes over *all* rows in
    chunks of ``chunk_size`` (:func:`lloyd_refine`, torch on ``x``'s device, no copy of ``x``). The restarts
    escape bad seedings; the full passes remove the sample's error. Measured on the 1M-node SBM's
    embeddings: see ``benchmarks/bench_scale.py``.

    Args:
        x (Tensor): Points of shape ``(N, D)``, on any device.
        n_clusters (int): Number of clusters, in ``[2, N]``.
        n_init (int): Number of k-means++ restarts; the best inertia wins. (default: :obj:`10`)
        seed (int, optional): Random state for reproducible restarts and sample. (default: :obj:`0`)
        max_iter (int): Lloyd iterations per restart (and at most this many full passes). (default: :obj:`300`)
        exact_max_points (int): Largest ``N`` clustered exactly. (default: ``EXACT_KMEANS_MAX_POINTS``)
        sample_size (int): Rows the restarts of the sampled form see. (default: ``KMEANS_SAMPLE_SIZE``)
        chunk_size (int): Rows per chunk of the full Lloyd passes. (default: :obj:`262144`)
        progress (bool): Show a progress bar over the full passes. (default: :obj:`False`)

    Returns:
        ``(labels, centers)``: ``(N,)`` long labels and ``(n_clusters, D)`` centres, on ``x``'s device and dtype.
    """
    check_features(x, "x")
    check_n_clusters(n_clusters, x.size(0))
    if n_init < 1:
        raise ValueError(f"n_init must be >= 1, got {n_init}")
    check_positive_int(max_iter, "max_iter")
    check_positive_int(sample_size, "sample_size")
    x = x.detach()
    if x.size(0) <= exact_max_points or sample_size >= x.size(0):
        return _sklearn_kmeans(x, n_clusters, n_init, seed, max_iter)
    generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    rows = torch.randperm(x.size(0), generator=generator)[: max(sample_size, n_clusters)]
    _, centers = _sklearn_kmeans(x[rows.to(x.device)], n_clusters, n_init, seed, max_iter)
    return lloyd_refine(x, centers, max_iter=max_iter, chunk_size=chunk_size, progress=progress)


def _sklearn_kmeans(x: Tensor, n_clusters: int, n_init: int, seed: int | None,
                    max_iter: int) -> tuple[Tensor, Tensor]:
    points = x.cpu().double().numpy()
    model = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed, max_iter=max_iter)
    labels = model.fit_predict(points)
    return (
        torch.from_numpy(labels.astype(np.int64)).to(x.device),
        torch.from_numpy(model.cluster_centers_).to(device=x.device, dtype=x.dtype),
    )


@torch.no_grad()
def lloyd_refine(
    x: Tensor,
    centers: Tensor,
    max_iter: int = 300,
    tol: float = 1e-4,
    chunk_size: int = 1 << 18,
    progress: bool = False,
) -> tuple[Tensor, Tensor]:
    r"""Lloyd iterations from ``centers`` over the rows of ``x``, ``chunk_size`` rows at a time.

    Each pass assigns every row to its nearest centre and moves each centre to the mean of its rows
    (sums accumulated in float64); a centre that loses all its rows stays where it was. Passes stop when the
    squared centre shift is at most ``tol`` times the mean per-dimension variance of ``x`` (scikit-learn's
    criterion) or after ``max_iter`` passes. Memory above ``x`` is ``chunk_size x k`` distances.

    Args:
        x (Tensor): Points ``(N, D)``.
        centers (Tensor): Initial centres ``(k, D)``.
        max_iter (int): Most passes. (default: :obj:`300`)
        tol (float): Relative tolerance on the centre shift. (default: :obj:`1e-4`)
        chunk_size (int): Rows per chunk. (default: :obj:`262144`)
        progress (bool): Show a progress bar over the passes. (default: :obj:`False`)

    Returns:
        ``(labels, centers)``: the labels of the last assignment (made with the returned centres) and the centres.
    """
    check_positive_int(max_iter, "max_iter")
    check_positive_int(chunk_size, "chunk_size")
    if centers.dim() != 2 or centers.size(1) != x.size(1):
        raise ValueError(f"centers must have shape (k, {x.size(1)}), got {tuple(centers.shape)}")
    centers = centers.to(device=x.device, dtype=torch.float64)
    threshold = tol * float(_mean_variance(x, chunk_size))
    labels = torch.empty(x.size(0), dtype=torch.long, device=x.device)
    bar = tqdm(range(max_iter), desc="k-means", disable=not progress, leave=False)
    for _ in bar:
        sums, counts = _assign(x, centers, labels, chunk_size)
        moved = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centers)
        shift = float((moved - centers).pow(2).sum())
        centers = moved
        bar.set_postfix(shift=f"{shift:.3g}", refresh=False)
        if shift <= threshold:
            break
    bar.close()
    _assign(x, centers, labels, chunk_size)  # labels of the returned centres
    return labels, centers.to(x.dtype)


def _assign(x: Tensor, centers: Tensor, labels: Tensor, chunk_size: int) -> tuple[Tensor, Tensor]:
    """Nearest centre of every row into ``labels``; returns the per-centre float64 sums and counts."""
    sums = torch.zeros_like(centers)
    counts = torch.zeros(centers.size(0), dtype=torch.float64, device=x.device)
    compute = centers.to(x.dtype)
    for start in range(0, x.size(0), chunk_size):
        rows = x[start:start + chunk_size]
        nearest = torch.cdist(rows, compute).argmin(dim=1)
        labels[start:start + rows.size(0)] = nearest
        sums.index_add_(0, nearest, rows.double())
        counts += torch.bincount(nearest, minlength=centers.size(0)).double()
    return sums, counts


def _mean_variance(x: Tensor, chunk_size: int) -> Tensor:
    """Mean over dimensions of the per-dimension variance of ``x`` (float64, in chunks)."""
    total = torch.zeros(x.size(1), dtype=torch.float64, device=x.device)
    square = torch.zeros_like(total)
    for start in range(0, x.size(0), chunk_size):
        rows = x[start:start + chunk_size].double()
        total += rows.sum(0)
        square += rows.pow(2).sum(0)
    mean = total / x.size(0)
    return (square / x.size(0) - mean.pow(2)).clamp_min(0).mean()

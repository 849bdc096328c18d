"""Independent oracles for the clustering maths: the regularised spectral embedding against a dense ``eigh``
written here, and the chunked Lloyd refinement against a dense loop (issue 17's mutation survivors)."""

import numpy as np
import pytest
import torch

from pyg_em.clusters import spectral_embedding

# A weighted graph on 7 nodes with unequal degrees, stored in one direction with one edge also reversed at a
# different weight (the embedding symmetrises it as (A + A^T) / 2).
EDGES = torch.tensor([[0, 0, 1, 2, 3, 3, 4, 5, 2], [1, 2, 2, 3, 4, 5, 5, 6, 0]])
WEIGHTS = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.5, 0.7, 2.5, 1.2, 4.0], dtype=torch.float64)


def dense_spectral_embedding(n, dim, weights, tau):
    a = torch.zeros(n, n, dtype=torch.float64)
    w = torch.ones(EDGES.size(1), dtype=torch.float64) if weights is None else weights
    a.index_put_((EDGES[0], EDGES[1]), w, accumulate=True)
    a = (a + a.t()) / 2
    tau = float(a.sum(1).mean()) if tau == "auto" else float(tau or 0.0)
    a_tau = a + tau / n * torch.ones(n, n, dtype=torch.float64)
    d = a_tau.sum(1).rsqrt()
    lam, vec = torch.linalg.eigh(d[:, None] * a_tau * d[None])
    top = vec[:, -dim:]
    return top / top.norm(dim=1, keepdim=True), lam


def same_up_to_column_signs(u, v, atol=1e-8):
    signs = torch.sign((u * v).sum(0))
    return bool(torch.allclose(u, v * signs, atol=atol))


@pytest.mark.parametrize("weights", [None, WEIGHTS])
@pytest.mark.parametrize("tau", ["auto", 0.8, None])
def test_spectral_embedding_matches_dense_eigh(weights, tau):
    n, dim = 7, 3
    ours = spectral_embedding(EDGES, n, dim, weights, seed=0, regularization=tau)
    expected, lam = dense_spectral_embedding(n, dim, weights, tau)
    assert ours.shape == (n, dim) and ours.dtype == torch.float64
    assert float(lam[-dim] - lam[-dim - 1]) > 1e-3  # a unique leading subspace: the comparison is meaningful
    assert same_up_to_column_signs(ours, expected)
    assert torch.allclose(ours.norm(dim=1), torch.ones(n, dtype=torch.float64))
    # Discriminating: another regularisation gives another embedding.
    other, _ = dense_spectral_embedding(n, dim, weights, 5.0)
    assert not same_up_to_column_signs(ours, other, atol=1e-3)


def test_spectral_embedding_default_seed_is_zero_and_reproducible():
    first = spectral_embedding(EDGES, 7, 3, WEIGHTS)
    assert torch.equal(first, spectral_embedding(EDGES, 7, 3, WEIGHTS, seed=0))
    assert torch.equal(first, spectral_embedding(EDGES, 7, 3, WEIGHTS))


def test_spectral_embedding_argument_errors():
    with pytest.raises(ValueError, match=r"edge_weight must have shape \(9,\) to match edge_index, got \(8,\)"):
        spectral_embedding(EDGES, 7, 2, WEIGHTS[:8])
    with pytest.raises(ValueError, match=r"dim must lie in \[1, num_nodes\) = \[1, 7\), got 7"):
        spectral_embedding(EDGES, 7, 7)
    with pytest.raises(ValueError, match="regularization must be >= 0, got -1.0"):
        spectral_embedding(EDGES, 7, 2, regularization=-1.0)


def _blobs(n=1200, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]])
    return centres[torch.arange(n) % 3] + torch.randn(n, 2, generator=gen)


def test_sampled_kmeans_is_reproducible_whatever_the_global_rng():
    from pyg_em.clusters import kmeans

    x = _blobs()
    kwargs = {"n_init": 2, "exact_max_points": 500, "sample_size": 300}
    torch.manual_seed(1)
    labels, centres = kmeans(x, 3, seed=5, **kwargs)
    torch.manual_seed(2)  # the sample is drawn from the seed's own generator, not the global one
    again, centres_again = kmeans(x, 3, seed=5, **kwargs)
    assert torch.equal(labels, again) and torch.equal(centres, centres_again)
    # seed=None still works on the sampled path (a fresh k-means++, any valid partition).
    labels, centres = kmeans(x, 3, seed=None, **kwargs)
    assert labels.shape == (1200,) and set(labels.tolist()) == {0, 1, 2} and centres.shape == (3, 2)
    with pytest.raises(ValueError, match=r"^x must have 2 dimensions, got shape \(1200,\)$"):
        kmeans(x[:, 0], 3)


def test_lloyd_pass_moves_a_centre_onto_its_single_point():
    from pyg_em.clusters import lloyd_refine

    x = torch.cat([_blobs(300), torch.tensor([[40.0, -30.0]])])
    start = torch.tensor([[0.5, 0.5], [5.0, 1.5], [1.5, 6.0], [35.0, -25.0]])
    labels, moved = lloyd_refine(x, start, max_iter=1)
    assert int((labels == 3).sum()) == 1  # the far point alone is nearest to the fourth centre
    assert torch.equal(moved[3], x[-1])  # the mean of one point is that point
    for u in range(3):
        assert torch.allclose(moved[u], x[:-1][labels[:-1] == u].mean(0), atol=1e-5)


def test_mean_variance_in_chunks_is_the_population_variance_averaged_over_dimensions():
    from pyg_em.clusters.kmeans import _mean_variance

    gen = torch.Generator().manual_seed(4)
    x = torch.randn(23, 3, generator=gen) * torch.tensor([0.5, 2.0, 4.0]) + torch.tensor([10.0, -3.0, 1.0])
    expected = float(((x.double() - x.double().mean(0)) ** 2).mean(0).mean())
    for chunk_size in (100, 23, 7, 1):  # one chunk, an exact fit, a ragged last chunk, one row at a time
        assert float(_mean_variance(x, chunk_size)) == pytest.approx(expected, rel=1e-9), chunk_size


def test_spectral_clustering_uses_the_weights_and_passes_its_kmeans_options(monkeypatch):
    import pyg_em.clusters.spectral as spectral_module
    from pyg_em.clusters import spectral_clustering

    # A path 0-1-2-3-4-5: unweighted, it splits in the middle; a weak link (3, 4) moves the cut there.
    pairs = [(i, i + 1) for i in range(5)]
    weights = [1.0, 1.0, 1.0, 0.01, 1.0]
    edge_index = torch.tensor(pairs + [(j, i) for i, j in pairs]).t()
    edge_weight = torch.tensor(weights * 2, dtype=torch.float64)
    labels = spectral_clustering(edge_index, 6, 2, edge_weight, regularization=None).tolist()
    assert labels[:4] == [labels[0]] * 4 and labels[4:] == [labels[4]] * 2 and labels[0] != labels[4]
    unweighted = spectral_clustering(edge_index, 6, 2, regularization=None).tolist()
    assert unweighted[:3] == [unweighted[0]] * 3 and unweighted[3:] == [unweighted[3]] * 3
    calls = []
    real = spectral_module.kmeans
    monkeypatch.setattr(spectral_module, "kmeans", lambda *a, **k: calls.append(k) or real(*a, **k))
    spectral_clustering(edge_index, 6, 2, edge_weight, n_init=3, seed=7)
    assert calls == [{"n_init": 3, "seed": 7}]


def silhouette_by_hand(x, labels):
    """Mean of (b_i - a_i) / max(a_i, b_i): a_i the mean distance to the other rows of i's cluster, b_i to the
    rows of the nearest other cluster (Rousseeuw, 1987; every cluster here has at least two rows)."""
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    clusters = np.unique(labels)
    sums = np.stack([d[:, labels == c].sum(1) for c in clusters], 1)  # (n, K) distance sums per cluster
    sizes = np.array([(labels == c).sum() for c in clusters])
    own = labels[:, None] == clusters[None, :]
    a = (sums * own).sum(1) / ((sizes[None, :] * own).sum(1) - 1)
    b = np.where(own, np.inf, sums / sizes[None, :]).min(1)
    return float(np.mean((b - a) / np.maximum(a, b)))


def _far_blobs(sizes, seed=0, spread=0.5):
    """Blobs far apart (k-means recovers them exactly), the last ones much farther: small outlying clusters."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [12.0, 3.0], [100.0, -80.0], [-90.0, 120.0]])
    labels = np.concatenate([np.full(s, c) for c, s in enumerate(sizes)])
    return centres[labels] + spread * rng.standard_normal((len(labels), 2)), labels


def test_feature_silhouette_drops_clusters_under_five_rows_or_one_percent():
    from pyg_em.clusters import feature_silhouette

    # A 5-row outlying cluster is kept (5 >= max(5, 1 % of 75)), a 4-row one is dropped before scoring.
    for small, kept in ((5, 3), (4, 2)):
        x, labels = _far_blobs([40, 30, small])
        keep = labels < kept
        expected = silhouette_by_hand(x[keep], labels[keep])
        assert feature_silhouette(torch.from_numpy(x), 3) == pytest.approx(expected, rel=1e-9), small
        assert silhouette_by_hand(x, labels) != pytest.approx(silhouette_by_hand(x[labels < 2], labels[labels < 2]),
                                                              rel=1e-3)  # the outlying cluster changes the score
    # Above 500 rows the 1 % rule decides: 6 rows of 700 are under 7, so they are dropped.
    x, labels = _far_blobs([400, 294, 6], seed=1)
    keep = labels < 2
    assert feature_silhouette(torch.from_numpy(x), 3) == pytest.approx(silhouette_by_hand(x[keep], labels[keep]),
                                                                       rel=1e-9)
    # Fewer than two clusters left after dropping the outliers: 0.
    x, _ = _far_blobs([60, 0, 2, 2])
    assert feature_silhouette(torch.from_numpy(x), 3) == 0.0
    # The sample: the sorted rows of numpy's default_rng(seed).choice, without replacement.
    x, labels = _far_blobs([50, 40], seed=2)
    rows = np.sort(np.random.default_rng(4).choice(90, 30, replace=False))
    expected = silhouette_by_hand(x[rows], labels[rows])
    x = torch.from_numpy(x)
    assert feature_silhouette(x, 2, sample_size=30, seed=4) == pytest.approx(expected, rel=1e-9)
    assert feature_silhouette(x, 2, sample_size=30, seed=5) != pytest.approx(expected, rel=1e-6)
    assert feature_silhouette(x, 2, sample_size=90) == pytest.approx(silhouette_by_hand(x.numpy(), labels),
                                                                                rel=1e-9)
    assert feature_silhouette(x, 3, sample_size=3) == 0.0  # as many clusters as sampled rows
    with pytest.raises(ValueError, match=r"^x must be an \(N, F\) feature tensor, got Tensor of shape \(90,\)$"):
        feature_silhouette(x[:, 0], 2)
    with pytest.raises(ValueError, match=r"^x must be an \(N, F\) feature tensor, got list of shape \(\)$"):
        feature_silhouette([[0.0]], 2)
    bad = x.clone()
    bad[7, 1] = float("nan")
    with pytest.raises(ValueError, match="x holds NaN or Inf values"):
        feature_silhouette(bad, 2)
    with pytest.raises(ValueError, match="sample_size"):
        feature_silhouette(x, 2, sample_size=0)

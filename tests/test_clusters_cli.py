import pytest
import torch

from pyg_em.clusters import kmeans, spectral_clustering
from pyg_em.datasets import attributed_sbm
from pyg_em.metrics import clustering_accuracy
from tests.conftest import two_triangles


def test_spectral_separates_components():
    labels = spectral_clustering(two_triangles(), 6, 2)
    assert clustering_accuracy([0, 0, 0, 1, 1, 1], labels) == 1.0


def test_kmeans_reproducible_and_accurate():
    data = attributed_sbm(400, 4, 8, num_features=16, feature_noise=0.3, seed=0)
    a, _ = kmeans(data.x, 4, seed=1)
    b, centers = kmeans(data.x, 4, seed=1)
    assert torch.equal(a, b) and centers.shape == (4, 16)
    assert clustering_accuracy(data.y, a) > 0.95


def test_kmeans_too_many_clusters():
    with pytest.raises(ValueError, match="n_clusters=5 exceeds"):
        kmeans(torch.randn(4, 2), 5)


def test_regularised_spectral_ignores_tiny_components():
    # two planted blocks plus 10 isolated edges: unregularised eigenvectors lock onto the tiny components
    data = attributed_sbm(300, 2, 10, p_in_ratio=20, num_features=0, seed=0)
    extra = torch.arange(300, 320).view(-1, 2).t()
    edge_index = torch.cat([data.edge_index, extra, extra.flip(0)], dim=1)
    y = torch.cat([data.y, torch.zeros(20, dtype=torch.long)])
    core = slice(0, 300)
    plain = spectral_clustering(edge_index, 320, 2, regularization=None)
    regular = spectral_clustering(edge_index, 320, 2)
    assert clustering_accuracy(y[core], regular[core]) > 0.95
    assert clustering_accuracy(y[core], plain[core]) < 0.75

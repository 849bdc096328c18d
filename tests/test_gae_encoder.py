"""GCN encoders: shapes, edge weights, SparseTensor input, sparse features, and the normalisation cache."""

import copy

import pytest
import torch
from torch_geometric.nn import GCNConv

from pyg_em.nn import GCNEncoder, NormalizedAdjacencyCache, VariationalGCNEncoder
from tests.conftest import path_graph, two_triangles


def _dense_gcn_oracle(enc, x, edge_index, edge_weight=None):
    """Â X W + b layer by layer with a dense normalised adjacency (independent of gcn_norm)."""
    n = x.size(0)
    a = torch.zeros(n, n, dtype=x.dtype)
    w = torch.ones(edge_index.size(1), dtype=x.dtype) if edge_weight is None else edge_weight
    a.index_put_((edge_index[1], edge_index[0]), w, accumulate=True)
    a = a + torch.eye(n, dtype=x.dtype)
    d = a.sum(1).pow(-0.5)
    a_hat = d[:, None] * a * d[None, :]
    h = x
    for conv in enc.convs:
        h = torch.relu(a_hat @ conv.lin(h) + conv.bias)
    return [a_hat @ head.lin(h) + head.bias for head in enc.heads]


def test_encoder_matches_dense_oracle_with_edge_weights():
    torch.manual_seed(0)
    x = torch.randn(6, 5, dtype=torch.float64)
    ei = two_triangles()
    ew = torch.rand(ei.size(1), dtype=torch.float64) + 0.1
    enc = GCNEncoder(5, [8, 7], 3).double().eval()
    out = enc(x, ei, ew)
    assert out.shape == (6, 3)
    assert torch.allclose(out, _dense_gcn_oracle(enc, x, ei, ew)[0], atol=1e-10)
    # A different weighting is a different graph: the cache must not return the previous normalisation.
    ew2 = torch.rand(ei.size(1), dtype=torch.float64) + 0.1
    assert torch.allclose(enc(x, ei, ew2), _dense_gcn_oracle(enc, x, ei, ew2)[0], atol=1e-10)


def test_variational_encoder_returns_mu_logstd():
    torch.manual_seed(0)
    x = torch.randn(4, 3, dtype=torch.float64)
    enc = VariationalGCNEncoder(3, 6, 2).double().eval()
    mu, logstd = enc(x, path_graph(4))
    oracle = _dense_gcn_oracle(enc, x, path_graph(4))
    assert torch.allclose(mu, oracle[0]) and torch.allclose(logstd, oracle[1])
    assert not torch.allclose(mu, logstd)


def test_sparse_tensor_adj_t_matches_edge_index():
    torch_sparse = pytest.importorskip("torch_sparse")
    torch.manual_seed(0)
    x = torch.randn(6, 4)
    ei = two_triangles()
    enc = GCNEncoder(4, 8, 2).eval()
    adj_t = torch_sparse.SparseTensor(row=ei[1], col=ei[0], sparse_sizes=(6, 6))
    assert torch.allclose(enc(x, adj_t), enc(x, ei), atol=1e-6)


def test_sparse_features_match_dense():
    torch.manual_seed(0)
    x = (torch.rand(6, 20) < 0.05).float()
    ei = two_triangles()
    dense = GCNEncoder(20, 8, 3, sparse_features=False).eval()
    sparse = copy.deepcopy(dense)
    sparse.sparse_features = True
    assert torch.allclose(dense(x, ei), sparse(x, ei), atol=1e-6)
    sparse(x, ei).sum().backward()  # gradients flow through the sparse product
    assert sparse.convs[0].lin.weight.grad is not None


def test_cache_never_stale_pyg_cached_is():
    """PyG's cached=True reuses the first graph's normalisation; our encoder re-normalises a new graph."""
    torch.manual_seed(0)
    x = torch.randn(6, 4)
    g1, g2 = two_triangles(), path_graph(6)
    enc = GCNEncoder(4, 8, 2).eval()
    out1 = enc(x, g1)
    out2 = enc(x, g2)
    fresh = copy.deepcopy(enc)
    fresh._norm_cache.clear()
    assert torch.allclose(out2, fresh(x, g2))
    assert not torch.allclose(out1, out2)
    # In-place modification of the same edge_index tensor is detected through its version counter.
    g = g1.clone()
    before = enc(x, g)
    g[1, 0] = 3  # rewire one edge in place
    fresh._norm_cache.clear()
    assert torch.allclose(enc(x, g), fresh(x, g))
    assert not torch.allclose(before, enc(x, g))
    # The peer pitfall, for the record: GCNConv(cached=True) ignores the second graph.
    conv = GCNConv(4, 2, cached=True)
    assert torch.allclose(conv(x, g1), conv(x, g2))


def test_cache_reuses_static_graph():
    cache = NormalizedAdjacencyCache()
    ei = two_triangles()
    first = cache(ei, None, 6)
    assert cache(ei, None, 6) is first
    assert cache(ei.clone(), None, 6) is not first


def test_weights_requiring_grad_get_gradients():
    x = torch.randn(6, 3)
    ei = two_triangles()
    ew = torch.rand(ei.size(1), requires_grad=True)
    enc = GCNEncoder(3, 4, 2)
    for _ in range(2):  # the second call must not reuse a freed autograd graph
        enc(x, ei, ew).sum().backward()
    assert ew.grad is not None and torch.isfinite(ew.grad).all()
    # ... and they are the right ones (float64 finite differences).
    enc = enc.double()
    assert torch.autograd.gradcheck(lambda w: enc(x.double(), ei, w), ew.detach().double().requires_grad_())


def test_edge_dropout_only_in_training():
    torch.manual_seed(0)
    x = torch.randn(6, 3)
    enc = GCNEncoder(3, 4, 2, edge_dropout=0.5)
    enc.eval()
    assert torch.allclose(enc(x, two_triangles()), enc(x, two_triangles()))
    enc.train()
    outs = [enc(x, two_triangles()) for _ in range(5)]
    assert any(not torch.allclose(outs[0], o) for o in outs[1:])


def test_encoder_bad_input():
    enc = GCNEncoder(3, 4, 2)
    with pytest.raises(ValueError, match="in_channels"):
        enc(torch.randn(6, 5), two_triangles())
    with pytest.raises(ValueError, match="edge_index"):
        enc(torch.randn(3, 3), two_triangles())  # ids up to 5 for 3 nodes
    with pytest.raises(ValueError, match="dropout"):
        GCNEncoder(3, 4, 2, dropout=1.0)
    with pytest.raises(ValueError, match="hidden_channels"):
        GCNEncoder(3, [4, 0], 2)
    assert "3->4->2" in repr(enc)


def test_encoder_device(device):
    enc = VariationalGCNEncoder(3, 4, 2).to(device)
    x = torch.randn(6, 3)
    mu, logstd = enc(x.to(device), two_triangles().to(device))
    assert mu.device.type == device.type and logstd.shape == (6, 2)
    mu_cpu, logstd_cpu = copy.deepcopy(enc).cpu()(x, two_triangles())
    assert torch.allclose(mu.cpu(), mu_cpu, atol=1e-6) and torch.allclose(logstd.cpu(), logstd_cpu, atol=1e-6)


# -- normalised-propagation (GNAE / VGNAE) encoders ------------------------------------------------------------
def _ppr_oracle(h, edge_index, n, K, alpha, edge_weight=None):
    """Dense K-step personalised PageRank with the GCN-normalised adjacency (torch.linalg-free, explicit loop)."""
    a = torch.zeros(n, n, dtype=h.dtype)
    w = torch.ones(edge_index.size(1), dtype=h.dtype) if edge_weight is None else edge_weight
    a.index_put_((edge_index[1], edge_index[0]), w, accumulate=True)
    a = a + torch.eye(n, dtype=h.dtype)
    d = a.sum(1).pow(-0.5)
    a_hat = d[:, None] * a * d[None, :]
    z = h
    for _ in range(K):
        z = (1 - alpha) * a_hat @ z + alpha * h
    return z


@pytest.mark.parametrize("dense", [True, False])
def test_propagation_encoder_matches_ppr_oracle(dense):
    from pyg_em.nn import NormalizedPropagationEncoder, VariationalNormalizedPropagationEncoder

    torch.manual_seed(0)
    x = torch.randn(6, 5, dtype=torch.float64)
    ei = two_triangles()
    ew = torch.rand(ei.size(1), dtype=torch.float64) + 0.5
    enc = NormalizedPropagationEncoder(5, 3, K=4, alpha=0.2, scale=2.0, dense_propagation=dense).double()
    h = 2.0 * torch.nn.functional.normalize(enc.lins[0](x), dim=1)
    assert torch.allclose(enc(x, ei, ew), _ppr_oracle(h, ei, 6, 4, 0.2, ew), atol=1e-10)
    venc = VariationalNormalizedPropagationEncoder(5, 3, K=3, dense_propagation=dense).double()
    mu, logstd = venc(x, path_graph(6))
    h_mu = 1.8 * torch.nn.functional.normalize(venc.lins[0](x), dim=1)
    assert torch.allclose(mu, _ppr_oracle(h_mu, path_graph(6), 6, 3, 0.1), atol=1e-10)
    assert torch.allclose(logstd, _ppr_oracle(venc.lins[1](x), path_graph(6), 6, 3, 0.1), atol=1e-10)
    # A second graph must not reuse the first graph's cached operator.
    assert torch.allclose(enc(x, path_graph(6)), _ppr_oracle(h, path_graph(6), 6, 4, 0.2), atol=1e-10)


def test_propagation_encoder_gradients_and_bad_input(device):
    from pyg_em.nn import NormalizedPropagationEncoder

    enc = NormalizedPropagationEncoder(4, 2).to(device)
    x = torch.randn(6, 4, device=device)
    enc(x, two_triangles().to(device)).sum().backward()
    assert enc.lins[0].weight.grad is not None
    with pytest.raises(ValueError, match="alpha"):
        NormalizedPropagationEncoder(4, 2, alpha=1.5)
    with pytest.raises(ValueError, match="scale"):
        NormalizedPropagationEncoder(4, 2, scale=-1.0)
    assert "K=10" in repr(enc)


def test_constant_sparse_matmul_gradcheck():
    from pyg_em.nn.sparse_matmul import constant_sparse_matmul, sparse_pair

    torch.manual_seed(0)
    dense = torch.randn(5, 4, dtype=torch.float64) * (torch.rand(5, 4) < 0.5)
    a, a_t = sparse_pair(dense)
    b = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(constant_sparse_matmul(a, a_t, b), dense @ b)
    assert torch.autograd.gradcheck(lambda m: constant_sparse_matmul(a, a_t, m), (b,))
    with pytest.raises(ValueError, match="shapes"):
        constant_sparse_matmul(a, a_t, torch.randn(5, 3, dtype=torch.float64))

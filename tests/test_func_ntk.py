"""Generic per-sample Jacobians and empirical NTKs (torch.func) against naive per-output autograd loops."""

import pytest
import torch
from torch import nn
from torch_geometric.nn import GCN

from pyg_em.func import MeanFieldReLU, empirical_ntk, per_sample_jacobian
from tests.conftest import path_graph, two_triangles

F64 = torch.float64


def naive_jacobian(outputs_fn, model):
    """Oracle: one autograd.grad call per (sample, output) pair; rows (n, C, P)."""
    out = outputs_fn()
    out2 = out.reshape(out.size(0), -1)
    params = [p for p in model.parameters() if p.requires_grad]
    rows = torch.zeros(out2.size(0), out2.size(1), sum(p.numel() for p in params), dtype=out.dtype)
    for s in range(out2.size(0)):
        for c in range(out2.size(1)):
            grads = torch.autograd.grad(out2[s, c], params, retain_graph=True, allow_unused=True)
            rows[s, c] = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                    for g, p in zip(grads, params)])
    return rows


def graph_setup(device="cpu"):
    """A 2-layer GCN on two disconnected components (two triangles plus a 4-node path), 2 outputs per node."""
    torch.manual_seed(0)
    edge_index = torch.cat([two_triangles(), path_graph(4) + 6], dim=1).to(device)
    x = torch.randn(10, 3, dtype=F64, device=device)
    model = GCN(3, 5, num_layers=2, out_channels=2).to(device=device, dtype=F64)
    return model, x, edge_index


def mlp_setup():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    return model, torch.randn(7, 4, dtype=F64), torch.randn(5, 4, dtype=F64)


def test_per_sample_jacobian_gcn_matches_naive_loop(device):
    model, x, edge_index = graph_setup(device)
    expected = naive_jacobian(lambda: model(x, edge_index), model).to(device)
    for chunk_size in (None, 3):
        J = per_sample_jacobian(model, (x, edge_index), chunk_size=chunk_size)
        assert J.shape == (10, 2, sum(p.numel() for p in model.parameters()))
        assert (J - expected).abs().max() <= 1e-12
    sub = torch.tensor([9, 0, 4], device=device)
    torch.testing.assert_close(per_sample_jacobian(model, (x, edge_index), node_index=sub), expected[sub],
                               atol=1e-12, rtol=0)


@pytest.mark.parametrize("strategy", ["jacobian", "ntk_vp"])
@pytest.mark.parametrize("chunk_size", [None, 1, 4])
def test_empirical_ntk_gcn_matches_naive_loop(strategy, chunk_size):
    model, x, edge_index = graph_setup()
    J = naive_jacobian(lambda: model(x, edge_index), model)
    expected = torch.einsum("iap,jbp->ijab", J, J)
    K = empirical_ntk(model, (x, edge_index), strategy=strategy, chunk_size=chunk_size)
    assert K.shape == (10, 10, 2, 2)
    assert (K - expected).abs().max() <= 1e-10
    trace = empirical_ntk(model, (x, edge_index), strategy=strategy, chunk_size=chunk_size, reduce="trace")
    assert (empirical_ntk(model, (x, edge_index), chunk_size=chunk_size) - expected).abs().max() <= 1e-10
    assert (trace - expected.diagonal(dim1=2, dim2=3).sum(-1)).abs().max() <= 1e-10


@pytest.mark.parametrize("strategy", ["jacobian", "ntk_vp"])
def test_empirical_ntk_gcn_between_node_subsets(strategy):
    model, x, edge_index = graph_setup()
    J = naive_jacobian(lambda: model(x, edge_index), model)
    rows, cols = torch.tensor([0, 3, 7, 9]), torch.tensor([8, 1, 5])
    K = empirical_ntk(model, (x, edge_index), node_index=rows, node_index2=cols, strategy=strategy, chunk_size=2)
    expected = torch.einsum("iap,jbp->ijab", J[rows], J[cols])
    assert (K - expected).abs().max() <= 1e-10


@pytest.mark.parametrize("strategy", ["jacobian", "ntk_vp"])
def test_empirical_ntk_mlp_independent_rows(strategy):
    model, X1, X2 = mlp_setup()
    J1 = naive_jacobian(lambda: model(X1), model)
    J2 = naive_jacobian(lambda: model(X2), model)
    full = torch.einsum("iap,jbp->ijab", J1, J1)
    for chunk_size in (None, 2, 3):
        K = empirical_ntk(model, X1, strategy=strategy, chunk_size=chunk_size)
        assert (K - full).abs().max() <= 1e-10
        cross = empirical_ntk(model, X1, X2, strategy=strategy, chunk_size=chunk_size)
        assert (cross - torch.einsum("iap,jbp->ijab", J1, J2)).abs().max() <= 1e-10


def test_chunked_equals_unchunked_exactly_enough():
    model, X1, _ = mlp_setup()
    reference = empirical_ntk(model, X1)
    for strategy in ("jacobian", "ntk_vp"):
        for chunk_size in (1, 5, 100):
            K = empirical_ntk(model, X1, strategy=strategy, chunk_size=chunk_size)
            assert (K - reference).abs().max() <= 1e-13


def test_generic_tools_agree_with_mean_field_closed_forms():
    torch.manual_seed(2)
    model = MeanFieldReLU(3, 8, dtype=F64)
    X, X2 = torch.randn(9, 3, dtype=F64), torch.randn(4, 3, dtype=F64)
    J = per_sample_jacobian(model, X, chunk_size=4)
    assert J.shape == (9, 32)  # scalar outputs: (n, P), columns W row-major then a
    assert (J - model.jacobian(X)).abs().max() <= 1e-12
    for strategy in ("jacobian", "ntk_vp"):
        assert (empirical_ntk(model, X, strategy=strategy, chunk_size=4) - model.ntk(X)).abs().max() <= 1e-12
        assert (empirical_ntk(model, X, X2, strategy=strategy) - model.ntk(X, X2)).abs().max() <= 1e-12


def test_params_subset_differentiates_only_those():
    model, x, edge_index = graph_setup()
    last = {name: p for name, p in model.named_parameters() if name.startswith("convs.1")}
    J = per_sample_jacobian(model, (x, edge_index), params=last)
    full = naive_jacobian(lambda: model(x, edge_index), model)
    assert J.shape[-1] == sum(p.numel() for p in last.values())
    torch.testing.assert_close(J, full[..., -J.shape[-1]:], atol=1e-12, rtol=0)


def test_bad_arguments_raise_clear_errors():
    model, x, edge_index = graph_setup()
    mlp, X1, _ = mlp_setup()
    with pytest.raises(ValueError, match="strategy"):
        empirical_ntk(mlp, X1, strategy="exact")
    with pytest.raises(ValueError, match="reduce"):
        empirical_ntk(mlp, X1, reduce="mean")
    with pytest.raises(ValueError, match="chunk_size"):
        empirical_ntk(mlp, X1, chunk_size=0)
    with pytest.raises(TypeError, match="model"):
        empirical_ntk(lambda t: t, X1)
    with pytest.raises(TypeError, match="inputs"):
        per_sample_jacobian(mlp, 3.0)
    with pytest.raises(ValueError, match="node_index"):
        empirical_ntk(model, (x, edge_index), node_index=torch.tensor([0, 10]))
    with pytest.raises(TypeError, match="node_index"):
        empirical_ntk(model, (x, edge_index), node_index=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="node_index"):
        per_sample_jacobian(mlp, X1, node_index=torch.tensor([0]), independent=True)
    with pytest.raises(ValueError, match="first .batch. dimension"):
        per_sample_jacobian(nn.Bilinear(4, 2, 1).double(), (X1, torch.randn(3, 2, dtype=F64)), independent=True)
    with pytest.raises(ValueError, match="no trainable parameters"):
        empirical_ntk(nn.ReLU(), X1)
    with pytest.raises(ValueError, match="params"):
        per_sample_jacobian(mlp, X1, params={"nope": torch.zeros(1)})

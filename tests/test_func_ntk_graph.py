"""Full-graph NTK strategies and the GCN closed form against brute-force ``torch.func.jacrev`` of the whole output."""

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev
from torch_geometric.data import Data
from torch_geometric.nn import GAT, GCN, GATConv

import pyg_em.func.ntk as ntk_module
from pyg_em.func import empirical_ntk
from pyg_em.func.graph_ntk import choose_mode
from tests.conftest import path_graph, two_triangles

F64 = torch.float64


def jacrev_kernel(model, args, rows=None, cols=None):
    """Oracle: the whole (N, C, P) Jacobian by jacrev of the full output, contracted by einsum."""
    params = {name: p.detach() for name, p in model.named_parameters()}
    jac = jacrev(lambda p: functional_call(model, p, args))(params)
    n, c = next(iter(jac.values())).shape[:2]
    J = torch.cat([jac[name].reshape(n, c, -1) for name in params], dim=2)
    rows = torch.arange(n) if rows is None else rows
    cols = rows if cols is None else cols
    return torch.einsum("iap,jbp->ijab", J[rows], J[cols])


def graph(device="cpu", seed=0):
    """Two triangles, a 4-node path and an isolated node (10): three components plus a node with no edge."""
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.cat([two_triangles(), path_graph(4) + 6], dim=1).to(device)
    x = torch.randn(11, 3, dtype=F64, generator=gen).to(device)
    edge_weight = torch.rand(edge_index.size(1), dtype=F64, generator=gen).to(device) + 0.2
    return x, edge_index, edge_weight


def gcn(num_layers=2, out=3, seed=0, device="cpu", **kwargs):
    torch.manual_seed(seed)
    return GCN(3, 4, num_layers=num_layers, out_channels=out, **kwargs).to(device, F64).eval()


def trace(K):
    return K.diagonal(dim1=2, dim2=3).sum(-1)


ROWS, COLS = torch.tensor([10, 0, 3, 7, 3]), torch.tensor([8, 1, 5, 10])


@pytest.mark.parametrize("strategy", [None, "forward", "reverse", "structured"])
@pytest.mark.parametrize("chunk_size", [None, 5])
def test_gcn_every_strategy_matches_jacrev(strategy, chunk_size, device):
    x, edge_index, edge_weight = graph(device)
    model = gcn(device=device)
    for args in [(x, edge_index), (x, edge_index, edge_weight)]:
        expected = jacrev_kernel(model, args)
        K = empirical_ntk(model, args, strategy=strategy, chunk_size=chunk_size)
        assert K.shape == (11, 11, 3, 3)
        assert (K - expected).abs().max() <= 1e-12
        K = empirical_ntk(model, args, strategy=strategy, chunk_size=chunk_size, reduce="trace")
        assert (K - trace(expected)).abs().max() <= 1e-12


@pytest.mark.parametrize("strategy", [None, "forward", "reverse", "structured"])
def test_subset_kernels_match_jacrev(strategy):
    x, edge_index, edge_weight = graph()
    model = gcn()
    args = (x, edge_index, edge_weight)
    expected = jacrev_kernel(model, args, ROWS, COLS)
    for node_index, node_index2, exp in [(ROWS, COLS, expected), (COLS, ROWS, expected.permute(1, 0, 3, 2)),
                                         (ROWS, None, jacrev_kernel(model, args, ROWS))]:
        K = empirical_ntk(model, args, node_index=node_index, node_index2=node_index2, strategy=strategy,
                          chunk_size=4)
        assert (K - exp).abs().max() <= 1e-12
        K = empirical_ntk(model, args, node_index=node_index, node_index2=node_index2, strategy=strategy,
                          chunk_size=4, reduce="trace")
        assert (K - trace(exp)).abs().max() <= 1e-12


@pytest.mark.parametrize("strategy", [None, "forward", "reverse"])
def test_gat_full_graph_strategies_match_jacrev(strategy):
    x, edge_index, _ = graph()
    torch.manual_seed(3)
    model = GAT(3, 4, num_layers=2, out_channels=2, heads=2).double().eval()
    expected = jacrev_kernel(model, (x, edge_index))
    K = empirical_ntk(model, (x, edge_index), strategy=strategy, chunk_size=6)
    assert (K - expected).abs().max() <= 1e-12
    K = empirical_ntk(model, (x, edge_index), node_index=ROWS, node_index2=COLS, strategy=strategy,
                      reduce="trace")
    assert (K - trace(expected[ROWS][:, COLS])).abs().max() <= 1e-12


def test_second_graph_kernel_matches_jacrev():
    """inputs2 on another graph: K(s, t) = J_1[s] J_2[t]^T with both Jacobians taken of the same parameters."""
    x, edge_index, edge_weight = graph()
    x2 = x.flip(0)
    model = gcn()
    params = {name: p.detach() for name, p in model.named_parameters()}

    def jac(args):
        j = jacrev(lambda p: functional_call(model, p, args))(params)
        return torch.cat([j[name].reshape(11, 3, -1) for name in params], dim=2)

    expected = torch.einsum("iap,jbp->ijab", jac((x, edge_index)), jac((x2, edge_index, edge_weight)))
    for strategy in [None, "forward", "reverse"]:
        K = empirical_ntk(model, (x, edge_index), (x2, edge_index, edge_weight), strategy=strategy, chunk_size=4)
        assert (K - expected).abs().max() <= 1e-12


@pytest.mark.parametrize("kwargs", [{}, {"improved": True}, {"normalize": False}, {"add_self_loops": False},
                                    {"act": "tanh"}, {"bias": False}])
def test_closed_form_matches_generic_path(kwargs):
    """The closed form against forward-mode JVPs on an SBM-like graph, for several GCNConv/act options."""
    gen = torch.Generator().manual_seed(4)
    n = 30
    edge_index = torch.randint(0, n, (2, 80), generator=gen)
    edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    x = torch.randn(n, 3, dtype=F64, generator=gen)
    edge_weight = torch.rand(edge_index.size(1), dtype=F64, generator=gen) + 0.1
    model = gcn(**kwargs)
    args = (x, edge_index, edge_weight)
    generic = empirical_ntk(model, args, strategy="forward")
    closed = empirical_ntk(model, args, strategy="structured")
    assert (closed - generic).abs().max() <= 1e-11 * generic.abs().max()
    rows, cols = torch.arange(0, n, 3), torch.arange(1, n, 4)
    generic = empirical_ntk(model, args, node_index=rows, node_index2=cols, strategy="reverse", reduce="trace")
    closed = empirical_ntk(model, args, node_index=rows, node_index2=cols, strategy="structured", reduce="trace")
    assert (closed - generic).abs().max() <= 1e-11 * generic.abs().max()


@pytest.mark.parametrize("num_layers", [1, 3])
def test_closed_form_one_and_three_layers(num_layers):
    """One layer: the Kronecker term alone; three: closed form for the last two, generic for the first."""
    x, edge_index, edge_weight = graph()
    model = gcn(num_layers=num_layers)
    args = (x, edge_index, edge_weight)
    expected = jacrev_kernel(model, args)
    assert (empirical_ntk(model, args, strategy="structured") - expected).abs().max() <= 1e-12


def test_default_uses_the_closed_form_for_a_gcn(monkeypatch):
    x, edge_index, edge_weight = graph()
    model = gcn()
    expected = jacrev_kernel(model, (x, edge_index, edge_weight))

    def fail(*args, **kwargs):
        raise AssertionError("the generic path ran")

    monkeypatch.setattr(ntk_module, "full_graph_ntk", fail)
    assert (empirical_ntk(model, (x, edge_index, edge_weight)) - expected).abs().max() <= 1e-12
    # A parameter subset still uses the closed form for the parameters it covers.
    last = {name: p for name, p in model.named_parameters() if name.startswith("convs.1")}
    K = empirical_ntk(model, (x, edge_index, edge_weight), params=last, reduce="trace")
    params = {name: p.detach() for name, p in model.named_parameters()}
    jac = jacrev(lambda p: functional_call(model, {**params, **p}, (x, edge_index, edge_weight)))(
        {name: p.detach() for name, p in last.items()})
    J = torch.cat([jac[name].reshape(11, 3, -1) for name in last], dim=2)
    assert (K - torch.einsum("iap,jap->ij", J, J)).abs().max() <= 1e-12


def test_automatic_mode_choice(monkeypatch):
    assert choose_mode(num_params=100, rows=10, cols=30, num_outputs=4) == "reverse"  # 2*10*4 = 80 < 100
    assert choose_mode(num_params=80, rows=30, cols=10, num_outputs=4) == "forward"  # 80 is not < 80
    chosen = []
    original = ntk_module.full_graph_ntk

    def spy(*args, mode, **kwargs):
        chosen.append(mode)
        return original(*args, mode=mode, **kwargs)

    monkeypatch.setattr(ntk_module, "full_graph_ntk", spy)
    x, edge_index, _ = graph()
    torch.manual_seed(3)
    model = GAT(3, 16, num_layers=2, out_channels=2).double().eval()  # P in the hundreds
    P = sum(p.numel() for p in model.parameters())
    empirical_ntk(model, (x, edge_index), node_index=torch.tensor([0, 1]))  # 2*2*2 outputs << P
    small = GAT(3, 1, num_layers=2, out_channels=2).double().eval()
    assert sum(p.numel() for p in small.parameters()) < 2 * 11 * 2 < P
    empirical_ntk(small, (x, edge_index))  # 44 passes in reverse mode > P
    assert chosen == ["reverse", "forward"]


def test_data_input_with_and_without_edge_weights():
    x, edge_index, edge_weight = graph()
    model = gcn()
    data = Data(x=x, edge_index=edge_index, edge_weight=edge_weight)
    expected = jacrev_kernel(model, (x, edge_index, edge_weight))
    assert (empirical_ntk(model, data, reduce="trace") - trace(expected)).abs().max() <= 1e-12
    plain = Data(x=x, edge_index=edge_index)
    assert (empirical_ntk(model, plain) - jacrev_kernel(model, (x, edge_index))).abs().max() <= 1e-12
    gat = GATConv(3, 2).double().eval()  # forward(x, edge_index, edge_attr, ...): no edge_weight argument
    with pytest.raises(ValueError, match="inputs.edge_weight"):
        empirical_ntk(gat, data)
    with pytest.raises(ValueError, match="inputs2.edge_weight"):
        empirical_ntk(gat, plain, data)
    with pytest.raises(ValueError, match="without x or edge_index"):
        empirical_ntk(model, Data(edge_index=edge_index))


@pytest.mark.parametrize("make", [
    lambda: GCN(3, 4, num_layers=2, out_channels=2, dropout=0.5),
    lambda: GCN(3, 4, num_layers=2, out_channels=2, norm="batch_norm"),
    lambda: GATConv(3, 2, dropout=0.3),
])
def test_training_mode_with_dropout_or_batch_norm_is_refused(make):
    x, edge_index, _ = graph()
    model = make().double()
    with pytest.raises(ValueError, match=r"training mode.*model\.eval\(\)"):
        empirical_ntk(model, (x, edge_index))
    model.eval()
    K = empirical_ntk(model, (x, edge_index), reduce="trace")
    assert (K - trace(jacrev_kernel(model, (x, edge_index)))).abs().max() <= 1e-12
    # Without dropout, training mode computes the same function: allowed (no batch statistics either).
    assert empirical_ntk(GCN(3, 4, num_layers=2, out_channels=2).double(), (x, edge_index)).shape == (11, 11, 2, 2)


def test_bad_arguments_name_the_argument():
    x, edge_index, _ = graph()
    model = gcn()
    mlp = nn.Sequential(nn.Linear(3, 2)).double()
    with pytest.raises(ValueError, match="strategy='forward'.*independent rows"):
        empirical_ntk(mlp, x, strategy="forward")
    with pytest.raises(ValueError, match="structured.*not a torch_geometric.nn.models.GCN"):
        empirical_ntk(GAT(3, 4, num_layers=2).double().eval(), (x, edge_index), strategy="structured")
    with pytest.raises(ValueError, match="node_index2 must lie in"):
        empirical_ntk(model, (x, edge_index), node_index2=torch.tensor([11]))
    with pytest.raises(TypeError, match="node_index must be a 1-D torch.long"):
        empirical_ntk(model, (x, edge_index), node_index=torch.tensor([[0]]))
    with pytest.raises(ValueError, match="node_index selects no rows"):
        empirical_ntk(model, (x, edge_index), node_index=torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="strategy must be one of"):
        empirical_ntk(model, (x, edge_index), strategy="jvp")

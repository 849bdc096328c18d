"""Independent oracles for the DAEGC attention layer and its proximity matrix (Wang et al., IJCAI 2019).

Everything on the right-hand side of each assertion is written here from the paper's equations with dense
tensors; nothing is read back from the layer except its parameters. Each fixture is checked to be
discriminating: the oracle with one term removed (no proximity weight, self/neighbour vectors swapped, ...)
is asserted to be far from the true value, so a layer with that term missing cannot pass.
"""

import pytest
import torch
import torch.nn.functional as F

from pyg_em.nn import ProximityAttentionConv, transition_proximity

# An undirected graph with unequal degrees (1, 2, 3, 4): the proximity differs from edge to edge.
UNDIRECTED = [(0, 1), (1, 2), (1, 3), (2, 3), (3, 4), (3, 5), (4, 5), (5, 6)]


def undirected_edges(pairs):
    e = torch.tensor(pairs).t()
    return torch.cat([e, e.flip(0)], dim=1)


def dense_transition(edge_index, n, edge_weight=None):
    """T = D^{-1} A with A[i, j] = weight of edge (i -> j), self loops dropped."""
    a = torch.zeros(n, n, dtype=torch.float64)
    w = torch.ones(edge_index.size(1), dtype=torch.float64) if edge_weight is None else edge_weight.double()
    for (i, j), value in zip(edge_index.t().tolist(), w.tolist()):
        if i != j:
            a[i, j] += value
    degree = a.sum(1, keepdim=True)
    return torch.where(degree > 0, a / degree.clamp_min(1e-300), torch.zeros_like(a)), a


def dense_proximity(edge_index, n, edge_weight=None):
    t, a = dense_transition(edge_index, n, edge_weight)
    return (t + t @ t) / 2, a


def dense_attention(x, edge_index, w, a_self, a_neigh, slope, edge_weight=None, *, use_m=True):
    r"""The paper's eq. (3)-(5): c_ij = M_ij (a_s^T W x_i + a_n^T W x_j), alpha = softmax_j LeakyReLU(c)."""
    n = x.size(0)
    m, a = dense_proximity(edge_index, n, edge_weight)
    h = x @ w.t()
    score = (h @ a_self)[:, None] + (h @ a_neigh)[None, :]
    c = (m if use_m else torch.ones_like(m)) * score
    logits = F.leaky_relu(c, slope)
    neighbours = (a > 0) | torch.eye(n, dtype=torch.bool)  # N(i) U {i}
    logits = logits.masked_fill(~neighbours, float("-inf"))
    alpha = torch.softmax(logits, dim=1)  # row i: node i attends over its neighbours j
    return alpha, alpha @ h


def layer_and_inputs(seed=0, in_channels=5, out_channels=3):
    torch.manual_seed(seed)
    conv = ProximityAttentionConv(in_channels, out_channels).double()  # default LeakyReLU slope: GAT's 0.2
    with torch.no_grad():  # a non-zero bias so that dropping it is seen
        conv.bias.copy_(torch.randn(out_channels, dtype=torch.float64))
        # Large attention vectors: logits of order 1 so that M and the LeakyReLU slope both matter.
        conv.att_self.mul_(4.0)
        conv.att_neighbor.mul_(4.0)
    x = torch.randn(7, in_channels, dtype=torch.float64)
    return conv, x


def params(conv):
    return conv.lin.weight.detach(), conv.att_self.detach()[0], conv.att_neighbor.detach()[0]


@pytest.mark.parametrize("weighted", [False, True])
def test_attention_coefficients_match_the_paper(weighted):
    conv, x = layer_and_inputs()
    edge_index = undirected_edges(UNDIRECTED)
    edge_weight = torch.linspace(0.5, 3.0, edge_index.size(1), dtype=torch.float64) if weighted else None
    w, a_s, a_n = params(conv)
    expected, _ = dense_attention(x, edge_index, w, a_s, a_n, 0.2, edge_weight)

    pattern, alpha = conv.attention(x, edge_index, edge_weight)
    got = torch.zeros(7, 7, dtype=torch.float64)
    got[pattern[1], pattern[0]] = alpha  # (source j, target i) -> row i
    assert torch.allclose(got, expected, atol=1e-12)

    # The fixture tells every term apart.
    no_m, _ = dense_attention(x, edge_index, w, a_s, a_n, 0.2, edge_weight, use_m=False)
    swapped, _ = dense_attention(x, edge_index, w, a_n, a_s, 0.2, edge_weight)
    no_leaky, _ = dense_attention(x, edge_index, w, a_s, a_n, 1.0, edge_weight)
    for wrong in (no_m, swapped, no_leaky, expected.t()):
        assert (wrong - expected).abs().max() > 1e-2


def test_layer_output_matches_the_paper():
    conv, x = layer_and_inputs(seed=1)
    edge_index = undirected_edges(UNDIRECTED)
    w, a_s, a_n = params(conv)
    _, aggregated = dense_attention(x, edge_index, w, a_s, a_n, 0.2)
    expected = aggregated + conv.bias.detach()
    conv.eval()
    assert torch.allclose(conv(x, edge_index), expected, atol=1e-12)
    _, no_m = dense_attention(x, edge_index, w, a_s, a_n, 0.2, use_m=False)
    _, swapped = dense_attention(x, edge_index, w, a_n, a_s, 0.2)
    assert (no_m + conv.bias.detach() - expected).abs().max() > 1e-2
    assert (swapped + conv.bias.detach() - expected).abs().max() > 1e-2
    # Attention aggregates W x_j over neighbours, not x_j or a plain mean.
    assert (conv(x, edge_index) - (torch.full((7, 7), 1 / 7.0).double() @ (x @ w.t()))).abs().max() > 1e-2


def test_layer_gradient_matches_the_dense_oracle():
    conv, x = layer_and_inputs(seed=2)
    edge_index = undirected_edges(UNDIRECTED)
    target = torch.randn(7, 3, dtype=torch.float64)
    (conv(x, edge_index) * target).sum().backward()
    w = conv.lin.weight.detach().clone().requires_grad_()
    a_s = conv.att_self.detach()[0].clone().requires_grad_()
    a_n = conv.att_neighbor.detach()[0].clone().requires_grad_()
    _, out = dense_attention(x, edge_index, w, a_s, a_n, 0.2)
    (out * target).sum().backward()
    assert torch.allclose(conv.lin.weight.grad, w.grad, atol=1e-10)
    assert torch.allclose(conv.att_self.grad[0], a_s.grad, atol=1e-10)
    assert torch.allclose(conv.att_neighbor.grad[0], a_n.grad, atol=1e-10)


def test_attention_dropout_is_active_only_in_training():
    conv, x = layer_and_inputs(seed=3)
    conv.dropout = 0.5
    edge_index = undirected_edges(UNDIRECTED)
    conv.eval()
    reference = conv(x, edge_index)
    assert torch.equal(conv(x, edge_index), reference)
    conv.train()
    torch.manual_seed(0)
    assert (conv(x, edge_index) - reference).abs().max() > 1e-3


def test_transition_proximity_matches_dense_on_a_directed_weighted_graph():
    # Directed, weighted, with a node (4) that has no out-edges and a self loop that must be ignored.
    edge_index = torch.tensor([[0, 0, 1, 1, 2, 2, 3, 3, 0, 5, 5],
                               [1, 2, 2, 3, 0, 3, 1, 4, 0, 0, 4]])
    edge_weight = torch.tensor([1.0, 3.0, 2.0, 0.5, 1.0, 4.0, 2.0, 1.0, 9.0, 1.0, 2.0], dtype=torch.float64)
    n = 6
    for weight in (None, edge_weight):
        m, a = dense_proximity(edge_index, n, weight)
        pattern, values = transition_proximity(edge_index, n, None if weight is None else weight.clone())
        on_pattern = torch.zeros(n, n, dtype=torch.bool)
        on_pattern[pattern[0], pattern[1]] = True
        assert torch.equal(on_pattern, (a > 0) | torch.eye(n, dtype=torch.bool))
        assert pattern.size(1) == int(on_pattern.sum())  # no duplicate entries
        assert torch.allclose(values.double(), m[pattern[0], pattern[1]], atol=1e-12)
        t, _ = dense_transition(edge_index, n, weight)
        for wrong in (t, t @ t, (t + t @ t), (t + t.t() @ t) / 2, (t.t() + t.t() @ t.t()) / 2):
            assert (values.double() - wrong[pattern[0], pattern[1]]).abs().max() > 1e-2

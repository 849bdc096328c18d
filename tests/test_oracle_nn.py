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


def test_transition_proximity_matches_dense_on_a_directed_weighted_graph(device):
    # Directed, weighted, with a node (4) that has no out-edges and a self loop that must be ignored.
    edge_index = torch.tensor([[0, 0, 1, 1, 2, 2, 3, 3, 0, 5, 5],
                               [1, 2, 2, 3, 0, 3, 1, 4, 0, 0, 4]])
    edge_weight = torch.tensor([1.0, 3.0, 2.0, 0.5, 1.0, 4.0, 2.0, 1.0, 9.0, 1.0, 2.0], dtype=torch.float64)
    n = 6
    # Two-hop paths in chunks of any size (one path at a time up to all at once) give the same M.
    for weight, chunk_size in ((None, None), (edge_weight, None), (edge_weight, 1), (edge_weight, 2),
                               (edge_weight, 5), (None, 3)):
        m, a = dense_proximity(edge_index, n, weight)
        pattern, values = transition_proximity(edge_index.to(device), n,
                                               None if weight is None else weight.clone().to(device),
                                               chunk_size=chunk_size)
        assert pattern.device.type == values.device.type == device.type
        pattern, values = pattern.cpu(), values.cpu()
        on_pattern = torch.zeros(n, n, dtype=torch.bool)
        on_pattern[pattern[0], pattern[1]] = True
        assert torch.equal(on_pattern, (a > 0) | torch.eye(n, dtype=torch.bool))
        assert pattern.size(1) == int(on_pattern.sum())  # no duplicate entries
        assert torch.allclose(values.double(), m[pattern[0], pattern[1]], atol=1e-12)
        t, _ = dense_transition(edge_index, n, weight)
        for wrong in (t, t @ t, (t + t @ t), (t + t.t() @ t) / 2, (t.t() + t.t() @ t.t()) / 2):
            assert (values.double() - wrong[pattern[0], pattern[1]]).abs().max() > 1e-2


def dense_gcn_operator(edge_index, edge_weight, n, self_loops=True):
    r"""\hat A = D^-1/2 (A + I) D^-1/2 with A[i, j] the weight of the message j -> i and D the row sums; a
    self-loop already listed keeps its own weight instead of 1 (PyG's ``add_remaining_self_loops``)."""
    a = torch.zeros(n, n, dtype=torch.float64)
    a.index_put_((edge_index[1], edge_index[0]), edge_weight.double(), accumulate=True)
    if self_loops:
        listed = torch.zeros(n, dtype=torch.bool)
        listed[edge_index[0][edge_index[0] == edge_index[1]]] = True
        a = a + torch.diag((~listed).double())
    d = a.sum(1)
    d = torch.where(d > 0, d.clamp_min(1e-300).rsqrt(), torch.zeros_like(d))
    return d[:, None] * a * d[None]


@pytest.mark.parametrize("variational,loop", [(False, False), (True, False), (True, True)])
def test_sampled_gcn_heads_match_the_dense_operator_of_the_batch(variational, loop):
    from torch_geometric.data import Data
    from torch_geometric.loader import NeighborLoader

    from pyg_em.nn import GCNEncoder, VariationalGCNEncoder
    from tests.conftest import WITH_PYG_LIB, WITH_TORCH_SPARSE

    if not (WITH_PYG_LIB or WITH_TORCH_SPARSE):
        pytest.skip("neighbour sampling needs pyg_lib or torch_sparse")
    # One layer, input (3) narrower than twice the output (4): the aggregate-then-project branch, for one head and
    # for the two heads (mu, logstd) of the variational encoder.
    edge_index = undirected_edges(UNDIRECTED)
    if loop:  # a listed self-loop (weight 3.5 below): such batches take the full forward, sliced to the seeds
        edge_index = torch.cat([edge_index, torch.tensor([[1], [1]])], 1)
    gen = torch.Generator().manual_seed(0)
    weight = 0.2 + torch.rand(edge_index.size(1), generator=gen, dtype=torch.float64)
    if loop:
        weight[-1] = 3.5
    data = Data(x=torch.randn(7, 3, generator=gen, dtype=torch.float64), edge_index=edge_index, edge_weight=weight)
    torch.manual_seed(0)
    encoder = (VariationalGCNEncoder if variational else GCNEncoder)(3, [], 4).double()
    with torch.no_grad():
        for head in encoder.heads:
            head.bias.normal_()
    for batch in NeighborLoader(data, num_neighbors=[3], batch_size=3, shuffle=False):
        out = encoder(batch.x, batch.edge_index, batch.edge_weight, num_sampled_nodes_per_hop=batch.num_sampled_nodes,
                      num_sampled_edges_per_hop=batch.num_sampled_edges)
        outs = out if variational else (out,)
        assert len(outs) == len(encoder.heads) == (2 if variational else 1)
        a_hat = dense_gcn_operator(batch.edge_index, batch.edge_weight, batch.num_nodes)
        seeds = batch.num_sampled_nodes[0]
        expected = [(a_hat @ batch.x @ head.lin.weight.detach().t() + head.bias.detach())[:seeds]
                    for head in encoder.heads]
        for got, want in zip(outs, expected):
            assert got.shape == want.shape and torch.allclose(got, want, atol=1e-12)
        # A SparseTensor adj_t with the hop counts takes the full forward, sliced (without a listed loop: PyG's
        # gcn_norm replaces the diagonal of a SparseTensor by 1 instead of keeping a listed loop's weight).
        if WITH_TORCH_SPARSE and not loop:
            from torch_sparse import SparseTensor

            adj_t = SparseTensor(row=batch.edge_index[1], col=batch.edge_index[0], value=batch.edge_weight,
                                 sparse_sizes=(batch.num_nodes, batch.num_nodes))
            out = encoder(batch.x, adj_t, num_sampled_nodes_per_hop=batch.num_sampled_nodes,
                          num_sampled_edges_per_hop=batch.num_sampled_edges)
            for got, want in zip(out if variational else (out,), expected):
                assert got.shape == want.shape and torch.allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("variational", [False, True])
def test_propagation_encoder_with_trainable_edge_weights_matches_the_dense_ppr(variational):
    from pyg_em.nn import NormalizedPropagationEncoder, VariationalNormalizedPropagationEncoder

    # Edge weights that need gradients take PyG's APPNP (message passing); its output and the weights' gradient
    # must be those of Z_{k+1} = (1 - alpha) \hat A Z_k + alpha H, Z_0 = H, written densely here.
    edge_index = undirected_edges(UNDIRECTED)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    w0 = 0.3 + torch.rand(edge_index.size(1), generator=gen, dtype=torch.float64)
    torch.manual_seed(0)
    cls = VariationalNormalizedPropagationEncoder if variational else NormalizedPropagationEncoder
    encoder = cls(5, 3, K=3, alpha=0.25, scale=1.5).double()
    weight = w0.clone().requires_grad_()
    out = encoder(x, edge_index, weight)
    outs = out if variational else (out,)
    probe = torch.linspace(-1.0, 2.0, 21, dtype=torch.float64).view(7, 3)
    sum((o * probe * (i + 1)).sum() for i, o in enumerate(outs)).backward()

    reference = w0.clone().requires_grad_()
    a_hat = dense_gcn_operator(edge_index, reference, 7)
    lins = [lin for lin in encoder.lins]
    heads = [1.5 * F.normalize(x @ lins[0].weight.detach().t() + lins[0].bias.detach(), dim=1)]
    if variational:
        heads.append(x @ lins[1].weight.detach().t() + lins[1].bias.detach())
    expected = []
    for h in heads:
        z = h
        for _ in range(3):
            z = 0.75 * a_hat @ z + 0.25 * h
        expected.append(z)
    sum((e * probe * (i + 1)).sum() for i, e in enumerate(expected)).backward()
    assert len(outs) == len(expected)
    for got, want in zip(outs, expected):
        assert torch.allclose(got, want, atol=1e-12)
    assert torch.allclose(weight.grad, reference.grad, atol=1e-12)
    assert reference.grad.abs().max() > 1e-3  # the weights matter


def test_layerwise_gcn_inference_matches_the_dense_two_layer_formula():
    from pyg_em.nn import GCNEncoder, VariationalGCNEncoder

    # Z = \hat A ReLU(\hat A X W0^T + b0) W1^T + b1 with non-zero biases, in chunks of 3 of the 7 nodes.
    edge_index = undirected_edges(UNDIRECTED)
    gen = torch.Generator().manual_seed(2)
    weight = 0.2 + torch.rand(edge_index.size(1), generator=gen, dtype=torch.float64)
    x = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    a_hat = dense_gcn_operator(edge_index, weight, 7)
    for cls in (GCNEncoder, VariationalGCNEncoder):
        torch.manual_seed(0)
        encoder = cls(3, [5], 2).double().eval()
        with torch.no_grad():
            for conv in (*encoder.convs, *encoder.heads):
                conv.bias.normal_()
        hidden = torch.relu(a_hat @ x @ encoder.convs[0].lin.weight.detach().t() + encoder.convs[0].bias.detach())
        outs = encoder.layerwise_forward(x, edge_index, weight, chunk_size=3)
        assert len(outs) == len(encoder.heads)
        for out, head in zip(outs, encoder.heads):
            expected = a_hat @ hidden @ head.lin.weight.detach().t() + head.bias.detach()
            assert torch.allclose(out, expected, atol=1e-12)


def _propagation_oracle(encoder, x, a_hat, heads=1):
    lins = encoder.lins
    hs = [encoder.scale * F.normalize(x @ lins[0].weight.detach().t() + lins[0].bias.detach(), dim=1)]
    if heads == 2:
        hs.append(x @ lins[1].weight.detach().t() + lins[1].bias.detach())
    out = []
    for h in hs:
        z = h
        for _ in range(encoder.K):
            z = (1 - encoder.alpha) * a_hat @ z + encoder.alpha * h
        out.append(z)
    return out


def test_propagation_encoder_inputs_sparse_features_adj_t_and_an_isolated_last_node():
    from torch_geometric.typing import WITH_TORCH_SPARSE

    from pyg_em.nn import NormalizedPropagationEncoder

    # Node 7 has no edge; without self-loops it keeps a zero row of \hat A (its embedding is alpha h_7).
    edge_index = undirected_edges(UNDIRECTED)
    gen = torch.Generator().manual_seed(3)
    weight = 0.2 + torch.rand(edge_index.size(1), generator=gen, dtype=torch.float64)
    x = torch.randn(8, 6, generator=gen, dtype=torch.float64) * (torch.rand(8, 6, generator=gen) < 0.4)
    for self_loops in (True, False):
        torch.manual_seed(0)
        encoder = NormalizedPropagationEncoder(6, 3, K=4, alpha=0.2, scale=1.3, add_self_loops=self_loops).double()
        expected = _propagation_oracle(encoder, x, dense_gcn_operator(edge_index, weight, 8, self_loops))[0]
        for features in (x, x.to_sparse(), x.to_sparse_csr()):
            for training in (False, True):  # training without dropout: the same function
                encoder.train(training)
                out = encoder(features, edge_index, weight)
                assert torch.allclose(out, expected, atol=1e-12), (self_loops, features.layout, training)
        if WITH_TORCH_SPARSE:
            from torch_sparse import SparseTensor

            encoder.eval()
            adj_t = SparseTensor(row=edge_index[1], col=edge_index[0], value=weight, sparse_sizes=(8, 8))
            assert torch.allclose(encoder(x, adj_t), expected, atol=1e-12)
    # The sparse-feature paths give the dense gradient of the linear map too.
    encoder.train()
    grads = []
    for features in (x, x.to_sparse(), x.to_sparse_csr()):
        encoder.zero_grad()
        (encoder(features, edge_index, weight) * torch.linspace(-1, 1, 24).double().view(8, 3)).sum().backward()
        grads.append(encoder.lins[0].weight.grad.clone())
    assert torch.allclose(grads[1], grads[0], atol=1e-12) and torch.allclose(grads[2], grads[0], atol=1e-12)


# -- the root term, chunked inference rows, the sparse-aware projection, mini-batch proximity ------------------
# Directed and weighted, with a listed self loop (dropped by M) and unequal out-degrees.
DIRECTED = torch.tensor([[0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6, 2],
                         [1, 2, 2, 3, 0, 3, 1, 4, 5, 0, 6, 3, 5, 2]])
DIRECTED_WEIGHT = torch.tensor([1.0, 3.0, 2.0, 0.5, 1.0, 4.0, 2.0, 1.0, 0.7, 1.0, 2.0, 1.5, 0.3, 5.0],
                               dtype=torch.float64)


def root_layer(seed=5, in_channels=3, out_channels=4):
    torch.manual_seed(seed)
    conv = ProximityAttentionConv(in_channels, out_channels, root_weight=True).double()
    with torch.no_grad():
        conv.bias.copy_(torch.randn(out_channels, dtype=torch.float64))
        conv.att_self.mul_(4.0)
        conv.att_neighbor.mul_(4.0)
    return conv, torch.randn(7, in_channels, dtype=torch.float64)


def test_root_weight_forward_rows_and_input_rows_match_the_dense_equations():
    conv, x = root_layer()
    w, a_s, a_n = params(conv)
    w_root, b = conv.lin_root.weight.detach(), conv.bias.detach()
    alpha, aggregated = dense_attention(x, DIRECTED, w, a_s, a_n, 0.2, DIRECTED_WEIGHT)
    expected = aggregated + x @ w_root.t() + b  # h'_i = sum_j alpha_ij W x_j + W_r x_i + b
    conv.eval()
    assert torch.allclose(conv(x, DIRECTED, DIRECTED_WEIGHT), expected, atol=1e-12)
    graph = conv.graph(DIRECTED, 7, DIRECTED_WEIGHT)
    h, root = conv.project(x), conv.project_root(x)
    assert torch.allclose(h, x @ w.t(), atol=1e-12) and torch.allclose(root, x @ w_root.t(), atol=1e-12)
    scores = conv.input_scores(x)
    assert torch.allclose(scores[0], x @ w.t() @ a_s, atol=1e-12)
    assert torch.allclose(scores[1], x @ w.t() @ a_n, atol=1e-12)
    for start, stop in ((0, 2), (2, 3), (3, 7)):  # unequal chunks: each row's softmax stays within its row
        rows = conv.forward_rows(h, graph, start, stop, root[start:stop])
        assert torch.allclose(rows, expected[start:stop], atol=1e-12), (start, stop)
        rows = conv.forward_rows_from_input(x, scores, graph, start, stop)
        assert torch.allclose(rows, expected[start:stop], atol=1e-12), (start, stop)
    # The fixture tells the terms apart: the root term, W_r against W, the bias.
    assert (aggregated + b - expected).abs().max() > 1e-2
    assert (aggregated + x @ w.t() + b - expected).abs().max() > 1e-2
    with pytest.raises(ValueError, match=r"forward_rows\(root=\.\.\.\) takes the chunk's root term exactly when the "
                                         r"layer has root_weight \(root_weight=True, root given: False\)"):
        conv.forward_rows(h, graph, 0, 7)
    plain = ProximityAttentionConv(3, 4).double()
    assert plain.project_root(x) is None and not plain.root_weight and conv.root_weight
    with pytest.raises(ValueError, match=r"\(root_weight=False, root given: True\)"):
        plain.forward_rows(h, graph, 0, 7, root)


def test_float32_layer_on_float64_edge_weights_stays_float32():
    # M is float64 here (the weights' dtype); the logits, alpha and the output follow the layer's float32.
    conv, x = root_layer(seed=6)
    w, a_s, a_n = params(conv)
    _, aggregated = dense_attention(x, DIRECTED, w, a_s, a_n, 0.2, DIRECTED_WEIGHT)
    expected = aggregated + x @ conv.lin_root.weight.detach().t() + conv.bias.detach()
    conv = conv.float().eval()
    graph = conv.graph(DIRECTED, 7, DIRECTED_WEIGHT)
    assert graph.values.dtype == torch.float64
    out = conv(x.float(), DIRECTED, DIRECTED_WEIGHT)
    assert out.dtype == torch.float32 and torch.allclose(out.double(), expected, atol=1e-5)
    h = conv.project(x.float())
    rows = conv.forward_rows(h, graph, 0, 7, conv.project_root(x.float()))
    assert rows.dtype == torch.float32 and torch.allclose(rows.double(), expected, atol=1e-5)


def test_projection_takes_the_sparse_product_by_density_and_layout(monkeypatch):
    import pyg_em.nn.proximity_attention as module

    calls = []
    product = module.constant_sparse_matmul

    def spy(a, a_t, b):
        calls.append(b.shape)
        return product(a, a_t, b)

    monkeypatch.setattr(module, "constant_sparse_matmul", spy)
    conv, _ = root_layer(seed=7, in_channels=20)
    w, w_root = conv.lin.weight.detach(), conv.lin_root.weight.detach()
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(7, 20, generator=gen, dtype=torch.float64)
    sparse = values * (torch.arange(140).view(7, 20) % 16 == 3)  # 9 of 140 entries: 6.4 % <= 10 %
    dense = values * (torch.arange(140).view(7, 20) % 4 == 1)  # 35 of 140: 25 % > 10 %
    cases = [  # (sparse_input, features, expected to take the sparse product)
        (None, sparse, True), (None, dense, False), (True, dense, True), (False, sparse, False),
        (None, sparse.to_sparse_csr(), True), (False, sparse.to_sparse_csr(), False), (None, sparse.to_sparse(), False),
    ]
    for sparse_input, features, takes_sparse in cases:
        conv.sparse_input = sparse_input
        conv._sparse_x_cache = module.TensorKeyedCache()
        calls.clear()
        dense_x = features.to_dense() if features.layout != torch.strided else features
        assert torch.allclose(conv.project(features), dense_x @ w.t(), atol=1e-12)
        assert torch.allclose(conv.project_root(features), dense_x @ w_root.t(), atol=1e-12)  # W_r, not W
        assert (calls == [w.t().shape] * 2) if takes_sparse else not calls, (sparse_input, features.layout)
    # Features that need a gradient always take the dense product, whose input gradient is W.
    conv.sparse_input = True
    calls.clear()
    x = sparse.clone().requires_grad_()
    conv.project(x).sum().backward()
    assert not calls and torch.allclose(x.grad, w.sum(0).expand(7, 20), atol=1e-12)
    # The sparse product's gradient with respect to W is the dense one.
    conv.zero_grad()
    conv.project(sparse).pow(2).sum().backward()
    expected = 2 * (sparse @ w.t()).t() @ sparse
    assert calls and torch.allclose(conv.lin.weight.grad, expected, atol=1e-12)


def test_restrict_proximity_looks_up_the_whole_graphs_m_by_global_ids():
    from pyg_em.nn import proximity_graph, proximity_keys, restrict_proximity

    n = 7
    m, a = dense_proximity(DIRECTED, n, DIRECTED_WEIGHT)
    on_pattern = (a > 0) | torch.eye(n, dtype=torch.bool)
    graph = proximity_graph(DIRECTED, n, DIRECTED_WEIGHT)
    keys, values = proximity_keys(graph)
    rows, cols = torch.nonzero(on_pattern, as_tuple=True)  # row-major: the sorted keys
    assert torch.equal(keys, rows * n + cols)
    assert torch.allclose(values, m[rows, cols], atol=1e-12)
    # A sampled subgraph: local node l is global n_id[l]; edges (source j, target i) in local ids, with a listed
    # self loop (replaced by one loop per node), a pair whose reverse is no edge (0 -> 1 exists, 1 -> 0 not) and a
    # two-hop pair that is no edge (M of the dense T + T^2 is non-zero there, but it is outside the pattern).
    n_id = torch.tensor([3, 1, 0, 5, 2])
    local = torch.tensor([[1, 2, 4, 0, 1, 4, 4, 2],
                          [0, 0, 0, 1, 2, 2, 4, 4]])
    sub = restrict_proximity(keys, values, n, n_id, local)
    keep = local[0] != local[1]
    target = torch.cat([local[1][keep], torch.arange(5)])
    source = torch.cat([local[0][keep], torch.arange(5)])
    assert torch.equal(sub.index, torch.stack([target, source]))
    gi, gj = n_id[target], n_id[source]
    expected = torch.where(on_pattern[gi, gj], m[gi, gj], torch.zeros(()))
    assert torch.allclose(sub.values, expected, atol=1e-12)
    assert bool((~on_pattern[gi, gj] & (m[gi, gj] > 0)).any())  # the pattern filter matters on this fixture
    assert bool((~on_pattern[gi, gj]).any()) and bool(on_pattern[gi, gj].any())
    crow = torch.zeros(6, dtype=torch.long)
    crow[1:] = torch.bincount(target, minlength=5).cumsum(0)
    assert torch.equal(sub.csr.crow, crow) and sub.csr.size == (5, 5)
    assert torch.equal(sub.csr.col, source[(target * 5 + source).argsort()])

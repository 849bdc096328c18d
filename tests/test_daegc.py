import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_dense_adj

from pyg_em.clusters import DECClusterHead
from pyg_em.datasets import attributed_sbm
from pyg_em.metrics import clustering_accuracy
from pyg_em.models import DAEGC
from pyg_em.nn import ProximityAttentionConv, transition_proximity
from pyg_em.recipes import fit_daegc
from pyg_em.train import seed_everything
from tests.conftest import path_graph, requires_sampler, two_triangles


def dense_proximity(edge_index, n, weight=None):
    a = to_dense_adj(edge_index, edge_attr=weight, max_num_nodes=n)[0].double()
    a.fill_diagonal_(0)
    t = a / a.sum(1, keepdim=True).clamp_min(1e-300)
    return (t + t @ t) / 2


@pytest.mark.parametrize("edges", [path_graph(5), two_triangles()])
def test_proximity_matches_dense_formula(edges):
    n = int(edges.max()) + 1
    weight = torch.rand(edges.size(1), dtype=torch.float64) + 0.5
    for w in (None, weight):
        pattern, values = transition_proximity(edges, n, w if w is None else w.clone())
        dense = dense_proximity(edges, n, w)
        assert torch.allclose(values.double(), dense[pattern[0], pattern[1]], atol=1e-12)
        # every non-zero of M on the 1-hop + self pattern is covered
        mask = torch.zeros(n, n, dtype=torch.bool)
        mask[pattern[0], pattern[1]] = True
        assert torch.allclose(dense[mask].sum(), values.double().sum())


def test_proximity_chunking_is_exact():
    data = attributed_sbm(300, 3, 8, num_features=0, seed=0)
    full = transition_proximity(data.edge_index, 300)
    small = transition_proximity(data.edge_index, 300, chunk_size=7)
    assert torch.equal(full[0], small[0]) and torch.allclose(full[1], small[1])
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        transition_proximity(data.edge_index, 300, chunk_size=0)


def test_attention_sums_to_one(device):
    data = attributed_sbm(120, 3, 6, num_features=5, seed=1).to(device)
    conv = ProximityAttentionConv(5, 4).to(device)
    pattern, alpha = conv.attention(data.x, data.edge_index)
    sums = torch.zeros(120, device=device).index_add_(0, pattern[1], alpha)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-6)
    assert conv(data.x, data.edge_index).shape == (120, 4)
    assert "ProximityAttentionConv(5, 4)" == repr(conv)


def test_proximity_cache_follows_graph_changes():
    conv = ProximityAttentionConv(2, 2)
    a = conv.proximity(two_triangles(), 6)[1].clone()
    b = conv.proximity(path_graph(6), 6)[1]
    assert a.shape != b.shape or not torch.allclose(a, b)


def test_daegc_layers_compute_proximity_once_per_graph(monkeypatch):
    import pyg_em.nn.proximity_attention as module

    calls = []
    original = module.transition_proximity
    monkeypatch.setattr(module, "transition_proximity", lambda *a, **k: calls.append(1) or original(*a, **k))
    model = DAEGC(4, 2, hidden_channels=4, embedding_channels=2)
    x = torch.randn(6, 4)
    for edges, expected in ((two_triangles(), 1), (path_graph(6), 2)):
        model.embed(x, edges)
        model.embed(x, edges)
        assert len(calls) == expected  # both layers, both passes: one M per new graph


def test_dec_target_and_kl_by_hand():
    head = DECClusterHead(2, 1)
    with torch.no_grad():
        head.centers.copy_(torch.tensor([[0.0], [2.0]]))
    z = torch.tensor([[0.0], [1.0], [3.0]])
    q = head.soft_assignment(z)
    k = 1 / (1 + torch.tensor([[0.0, 4.0], [1.0, 1.0], [9.0, 1.0]]))
    assert torch.allclose(q, k / k.sum(1, keepdim=True))
    head.refresh_target(q)
    w = q**2 / q.sum(0)
    p = w / w.sum(1, keepdim=True)
    assert torch.allclose(head.target, p)
    expected = (p * (p / q).log()).sum() / 3
    assert torch.allclose(head.kl_loss(q), expected)
    sub_p, sub_q = p[[2, 0]], q[[2, 0]]
    assert torch.allclose(head.kl_loss(sub_q, torch.tensor([2, 0])), (sub_p * (sub_p / sub_q).log()).sum() / 2)


def test_kmeans_init_reproducible():
    z = torch.randn(50, 3)
    a, b = DECClusterHead(3, 3), DECClusterHead(3, 3)
    a.initialize(z, n_init=5, seed=4)
    b.initialize(z, n_init=5, seed=4)
    assert torch.equal(a.centers, b.centers) and torch.equal(a.target, b.target)


def test_bad_input():
    with pytest.raises(ValueError, match="n_clusters must be at least 2"):
        DAEGC(4, 1)
    with pytest.raises(ValueError, match="update_interval"):
        DAEGC(4, 2, update_interval=0)
    model = DAEGC(4, 5, hidden_channels=4, embedding_channels=2)
    no_edges = Data(x=torch.randn(6, 4), edge_index=torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="edge_index is empty"):
        fit_daegc(model, no_edges, pretrain_epochs=1, epochs=1)
    tiny = Data(x=torch.randn(4, 4), edge_index=path_graph(4))
    with pytest.raises(ValueError, match="n_clusters=5 exceeds"):
        fit_daegc(model, tiny, pretrain_epochs=1, epochs=1)
    nan = Data(x=torch.full((6, 4), float("nan")), edge_index=two_triangles())
    with pytest.raises(ValueError, match="x contains NaN"):
        fit_daegc(model, nan, pretrain_epochs=1, epochs=1)
    ok = Data(x=torch.randn(6, 4), edge_index=two_triangles())
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="pretrain_steps must be a positive int"):
            fit_daegc(DAEGC(4, 2, hidden_channels=4, embedding_channels=2), ok, pretrain_steps=bad, epochs=1)
    with pytest.raises(ValueError, match="pretrain_epochs must be a positive int"):
        fit_daegc(DAEGC(4, 2, hidden_channels=4, embedding_channels=2), ok, pretrain_epochs=0, epochs=1)


def test_daegc_clusters_sbm(device):
    seed_everything(0)
    data = attributed_sbm(300, 3, 8, p_in_ratio=20, num_features=16, feature_noise=1.0, seed=0)
    model = DAEGC(16, 3, hidden_channels=32, embedding_channels=8)
    history = fit_daegc(model, data, pretrain_epochs=30, epochs=20, pretrain_lr=0.01, lr=1e-3, n_init=5, device=device,
                        progress=False)
    assert history["pretrain_recon"][-1] < history["pretrain_recon"][0]
    assert set(history) >= {"total", "recon", "cluster"}
    assert clustering_accuracy(data.y, model.predict(data.to(device)).cpu()) > 0.9
    assert model.predict_proba(data.to(device)).sum(1).allclose(torch.ones(300, device=device))


def test_sampled_recon_loss_masks_collisions_and_matches_hand_computation():
    # A dense 4-node graph with one non-edge per node leaves few true negatives, so collisions are frequent.
    edges = torch.tensor([[0, 1, 0, 2, 1, 3, 2, 3], [1, 0, 2, 0, 3, 1, 3, 2]])
    model = DAEGC(3, 2, hidden_channels=4, embedding_channels=2, neg_ratio=5.0)
    z = torch.nn.functional.normalize(torch.randn(4, 2, dtype=torch.float64), dim=-1)
    torch.manual_seed(3)
    loss = model.recon_loss(z, edges)
    torch.manual_seed(3)
    u = edges[0][torch.randint(8, (40,))]
    v = torch.randint(4, (40,))
    existing = set(map(tuple, edges.t().tolist()))
    keep = torch.tensor([(a, b) not in existing and a != b for a, b in zip(u.tolist(), v.tolist())])
    assert 0 < int(keep.sum()) < 40  # some candidates collided and were masked
    logit = lambda a, b: (z[a] * z[b]).sum(-1)  # noqa: E731
    expected = (-torch.log(torch.sigmoid(logit(edges[0], edges[1]))).mean()
                - torch.log(1 - torch.sigmoid(logit(u[keep], v[keep]))).mean())
    assert torch.allclose(loss, expected)


def test_empty_batch_contributes_zero_recon():
    model = DAEGC(3, 2, hidden_channels=4, embedding_channels=2)
    z = torch.randn(5, 2, requires_grad=True)
    loss = model.recon_loss(z, torch.zeros(2, 0, dtype=torch.long))
    assert loss.item() == 0.0
    loss.backward()
    assert z.grad is not None


@requires_sampler
def test_minibatch_reads_target_by_node_id():
    from torch_geometric.loader import NeighborLoader

    seed_everything(0)
    data = attributed_sbm(200, 2, 6, num_features=8, seed=2)
    model = DAEGC(8, 2, hidden_channels=8, embedding_channels=4)
    model.initialize_cluster_centers(data, n_init=2)
    full = model.head.target.clone()
    loader = NeighborLoader(data, num_neighbors=[-1, -1], batch_size=200, shuffle=True)
    batch = next(iter(loader))
    assert torch.equal(model.head.target[batch.n_id[: batch.batch_size]], full[batch.n_id[: batch.batch_size]])
    # one batch holding the whole graph gives the same clustering loss as full batch
    model.eval()
    torch.manual_seed(0)
    mini = model.loss_batch(batch)
    full_loss = model.loss(data)
    assert torch.allclose(mini.components["cluster"], full_loss.components["cluster"], atol=1e-5)


@requires_sampler
def test_minibatch_fit_runs_and_learns():
    seed_everything(0)
    data = attributed_sbm(240, 2, 8, p_in_ratio=20, num_features=8, feature_noise=0.8, seed=3)
    model = DAEGC(8, 2, hidden_channels=16, embedding_channels=4)
    history = fit_daegc(model, data, pretrain_epochs=8, epochs=3, pretrain_lr=0.01, lr=1e-3, n_init=3, batch_size=80,
                        num_neighbors=[5, 5], progress=False)
    assert history["pretrain_recon"][-1] < history["pretrain_recon"][0]
    assert clustering_accuracy(data.y, model.predict(data)) > 0.8


@requires_sampler
@pytest.mark.parametrize("batch_size, steps, expected_epochs, expected_steps",
                         [(None, 7, 7, 7), (80, 7, 3, 9), (80, 6, 2, 6), (80, 3, 1, 3), (80, 2, 1, 2),
                          (80, 1, 1, 1)])
def test_pretraining_is_counted_in_optimizer_steps(batch_size, steps, expected_epochs, expected_steps):
    # 240 nodes in batches of 80 -> 3 optimizer steps per epoch; the fewest whole epochs reaching `steps`, and
    # only the first `steps` batches where one epoch is longer than that.
    data = attributed_sbm(240, 2, 6, num_features=8, seed=3)
    model = DAEGC(8, 2, hidden_channels=8, embedding_channels=4)
    calls = []
    for name in ("pretrain_loss", "pretrain_loss_batch"):
        real = getattr(model, name)
        setattr(model, name, lambda *a, _real=real, **k: calls.append(1) or _real(*a, **k))
    history = fit_daegc(model, data, pretrain_steps=steps, epochs=1, n_init=2, batch_size=batch_size,
                        num_neighbors=[3, 3], progress=False)
    assert len(history["pretrain_recon"]) == expected_epochs
    assert len(calls) == expected_steps
    explicit = fit_daegc(DAEGC(8, 2, hidden_channels=8, embedding_channels=4), data, pretrain_steps=steps,
                         pretrain_epochs=2, epochs=1, n_init=2, batch_size=batch_size, num_neighbors=[3, 3],
                         progress=False)
    assert len(explicit["pretrain_recon"]) == 2


def test_attention_layer_output_matches_dense_product(device):
    data = attributed_sbm(60, 3, 5, num_features=6, seed=2).to(device)
    conv = ProximityAttentionConv(6, 4).to(device).double()
    x = data.x.double()
    pattern, alpha = conv.attention(x, data.edge_index)
    dense_alpha = torch.zeros(60, 60, dtype=torch.float64, device=device)
    dense_alpha[pattern[1], pattern[0]] = alpha  # row = attending (target) node
    assert torch.allclose(conv(x, data.edge_index), dense_alpha @ conv.lin(x) + conv.bias)


def test_step_refresh_equals_inference_refresh():
    data = attributed_sbm(90, 3, 6, num_features=8, seed=3)
    model = DAEGC(8, 3, hidden_channels=16, embedding_channels=4, dropout=0.0)
    model.initialize_cluster_centers(data, n_init=2)
    model.refresh_target(data)
    expected = model.head.target.clone()
    model.head.target = torch.full_like(expected, 1.0 / 3)
    model.loss(data, refresh_target=True)
    assert torch.allclose(model.head.target, expected, atol=1e-6)


def _asymmetric_graph():
    """Five nodes, unequal degrees, one directed-only edge pair and a triangle: no symmetry to hide a term."""
    edges = torch.tensor([[0, 1, 1, 2, 2, 0, 2, 3, 3, 4, 4, 1, 0, 3],
                          [1, 0, 2, 1, 0, 2, 3, 2, 4, 3, 1, 4, 3, 0]])
    return edges, 5


def test_root_weight_layer_matches_the_dense_paper_equations_plus_root(device):
    edges, n = _asymmetric_graph()
    edges = edges.to(device)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(n, 3, generator=gen, dtype=torch.float64).to(device)
    conv = ProximityAttentionConv(3, 2, root_weight=True).double().to(device)
    with torch.no_grad():
        conv.bias.copy_(torch.tensor([0.3, -0.2]))
        conv.att_self.mul_(4.0)  # logits far from zero: a missing M or a swapped vector changes the softmax
    m = dense_proximity(edges.cpu(), n).to(device)
    wx = x @ conv.lin.weight.t()
    scores_self, scores_neighbour = wx @ conv.att_self[0], wx @ conv.att_neighbor[0]
    allowed = to_dense_adj(edges, max_num_nodes=n)[0].bool() | torch.eye(n, dtype=torch.bool, device=device)
    logits = torch.nn.functional.leaky_relu(m * (scores_self[:, None] + scores_neighbour[None, :]), 0.2)
    alpha = torch.softmax(logits.masked_fill(~allowed, float("-inf")), dim=1)  # row i attends over N(i) + i
    expected = alpha @ wx + x @ conv.lin_root.weight.t() + conv.bias
    assert torch.allclose(conv(x, edges), expected, atol=1e-12)
    plain = ProximityAttentionConv(3, 2).double().to(device)
    plain.load_state_dict({k: v for k, v in conv.state_dict().items() if not k.startswith("lin_root")})
    assert not torch.allclose(plain(x, edges), expected, atol=1e-3)  # the root term matters on this fixture
    assert "root_weight=True" in repr(conv) and plain.lin_root is None


@pytest.mark.parametrize("hidden", [32, 4])  # wider than the input (projected per chunk) and narrower
def test_layerwise_inference_equals_forward_with_root_weight(hidden):
    data = attributed_sbm(90, 3, 6, num_features=8, seed=1)
    model = DAEGC(8, 3, hidden_channels=hidden, embedding_channels=4, feature_weight=0.7).double().eval()
    data.x = data.x.double()
    expected = model.embed(data.x, data.edge_index)
    for chunk in (7, 1000):
        assert torch.allclose(model.embed_data(data, chunk_size=chunk), expected, atol=1e-12)


def test_feature_loss_is_the_relative_squared_error_and_enters_every_loss_with_its_weight():
    seed_everything(0)
    data = attributed_sbm(60, 3, 6, num_features=5, seed=2)
    data.x = data.x * torch.tensor([1.0, 3.0, 0.5, 2.0, 1.0]) + 4.0  # uncentred, unequal scales
    model = DAEGC(5, 3, hidden_channels=8, embedding_channels=4, feature_weight=0.7).eval()  # no dropout
    model.head.initialize(model.embed_data(data), n_init=1, seed=0)
    model.head.refresh_target(model.predict_proba(data))
    z = model.embed(data.x, data.edge_index)
    decoded = z @ model.feature_decoder.weight.t() + model.feature_decoder.bias
    expected = ((decoded - data.x) ** 2).sum() / ((data.x - data.x.mean(0)) ** 2).sum()
    assert torch.allclose(model.feature_loss(z, data.x), expected)
    assert torch.allclose(model.feature_loss(z, data.x.to_sparse()), expected)
    for out, terms in ((model.pretrain_loss(data), ("recon",)), (model.loss(data), ("recon", "cluster"))):
        assert torch.allclose(out.components["features"], expected)
        rest = sum(out.components[t] * (model.gamma if t == "cluster" else 1.0) for t in terms)
        assert torch.allclose(out.total, rest + 0.7 * expected)  # weighted by feature_weight, not 1
    paper = DAEGC(5, 3, hidden_channels=8, embedding_channels=4)
    assert paper.feature_decoder is None and "features" not in paper.pretrain_loss(data).components
    with pytest.raises(ValueError, match="feature_weight > 0"):
        paper.feature_loss(z, data.x)
    with pytest.raises(ValueError, match="feature_weight"):
        DAEGC(5, 3, feature_weight=-1.0)


@requires_sampler
def test_minibatch_feature_loss_uses_the_seeds_rows():
    from pyg_em.recipes import daegc_neighbor_loader

    seed_everything(0)
    data = attributed_sbm(120, 3, 6, num_features=5, seed=2)
    model = DAEGC(5, 3, hidden_channels=8, embedding_channels=4, feature_weight=0.5).eval()
    batch = next(iter(daegc_neighbor_loader(data, 40, [4, 3], seed_features=True)))
    seeds = batch.n_id[: batch.batch_size]
    assert torch.equal(batch.seed_x, data.x[seeds])
    out = model.pretrain_loss_batch(batch)
    z = model.embed(batch.x, batch.edge_index, graph=batch.proximity_graph)[: batch.batch_size]
    # scored against the whole graph's feature variance (set once by fit_daegc), not the batch's own
    v = model.set_feature_scale(data.x)
    assert v == pytest.approx(float(((data.x.double() - data.x.double().mean(0)) ** 2).sum(1).mean()), rel=1e-12)
    assert model.set_feature_scale(data.x.to_sparse()) == pytest.approx(v, rel=1e-9)
    out = model.pretrain_loss_batch(batch)
    decoded = model.feature_decoder(z)
    expected = ((decoded - data.x[seeds]) ** 2).sum() / (len(seeds) * v)
    assert torch.allclose(out.components["features"], expected)
    assert torch.allclose(out.total, out.components["recon"] + 0.5 * out.components["features"])
    one = model.feature_loss(z[:1], data.x[seeds[:1]])  # a batch of one seed: finite, same scale
    assert torch.isfinite(one) and torch.allclose(one, ((decoded[:1] - data.x[seeds[:1]]) ** 2).sum() / v)


@requires_sampler
def test_minibatch_fit_with_the_feature_term_learns_on_the_graph_scale():
    seed_everything(0)
    data = attributed_sbm(240, 2, 8, p_in_ratio=1.5, num_features=8, feature_noise=0.6, seed=3)  # noisy graph
    model = DAEGC(8, 2, hidden_channels=16, embedding_channels=4, feature_weight=2.0)
    history = fit_daegc(model, data, pretrain_epochs=8, epochs=3, pretrain_lr=0.01, lr=1e-3, n_init=3, batch_size=80,
                        num_neighbors=[5, 5], progress=False)
    assert model.feature_variance == pytest.approx(float(((data.x - data.x.mean(0)) ** 2).sum(1).mean()), rel=1e-5)
    assert history["pretrain_features"][-1] < history["pretrain_features"][0]
    assert clustering_accuracy(data.y, model.predict(data)) > 0.8
    fit_daegc(model, data, pretrain_epochs=1, epochs=1, n_init=2, progress=False)  # full batch: the rows' own scale
    assert model.feature_variance is None

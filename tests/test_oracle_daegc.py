"""Independent oracles for DAEGC's losses, its mini-batch losses and its layer-wise inference (Wang et al., 2019).

The expected values are written here: the two attention layers from the paper's equations with dense tensors,
the binary cross-entropy of each positive and each sampled pair (the draws replayed with the same seed), the
DEC target and KL term by hand, and the feature term as a relative squared error. The fixtures are directed and
weighted where it matters and are checked to tell the terms apart.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data

from pyg_em.models import DAEGC
from tests.test_oracle_nn import dense_attention


def sig(s):
    return 1.0 / (1.0 + math.exp(-s))


def bce_pos(z, pairs):
    return sum(-math.log(sig(float(z[i] @ z[j]))) for i, j in pairs) / len(pairs)


def bce_neg_mean(z, pairs):
    return sum(-math.log(1.0 - sig(float(z[i] @ z[j]))) for i, j in pairs) / max(len(pairs), 1)


def dec_target(q):
    weight = q ** 2 / q.sum(0, keepdim=True)
    return weight / weight.sum(1, keepdim=True)


def kl_by_hand(p, q):
    return float((p * (p / q).log()).sum() / q.size(0))


def dense_embed(model, x, edge_index, edge_weight=None):
    """Z = normalize(ELU(PAConv_2(ELU(PAConv_1(X))))), each layer from the paper's equations (+ root, bias)."""
    h = x
    for conv in (model.conv1, model.conv2):
        w = conv.lin.weight.detach()
        _, out = dense_attention(h, edge_index, w, conv.att_self.detach()[0], conv.att_neighbor.detach()[0], 0.2,
                                 edge_weight)
        if conv.lin_root is not None:
            out = out + h @ conv.lin_root.weight.detach().t()
        h = F.elu(out + conv.bias.detach())
    return h / h.norm(dim=1, keepdim=True)


def model_and_graph(feature_weight=0.0, seed=0, in_channels=4, hidden=6, neg_ratio=0.7):
    torch.manual_seed(seed)
    model = DAEGC(in_channels, 3, hidden_channels=hidden, embedding_channels=3, gamma=2.5, neg_ratio=neg_ratio,
                  feature_weight=feature_weight).double().eval()  # eval: no attention dropout
    with torch.no_grad():
        for conv in (model.conv1, model.conv2):
            conv.bias.copy_(0.3 * torch.randn_like(conv.bias))
            conv.att_self.mul_(3.0)
            conv.att_neighbor.mul_(3.0)
    pairs = torch.tensor([[0, 1, 1, 2, 3, 4, 5, 6, 0, 2], [1, 2, 3, 3, 4, 5, 6, 7, 7, 5]])
    edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(8, in_channels, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 3.0, 0.5, 2.0]) + 2.0
    weight = 0.2 + 2 * torch.rand(edge_index.size(1), generator=gen, dtype=torch.float64)
    return model, Data(x=x, edge_index=edge_index, edge_weight=weight)


def replay_negatives(seed, sources, num_targets, count):
    torch.manual_seed(seed)
    u = sources[torch.randint(sources.numel(), (count,))]
    v = torch.randint(num_targets, (count,))
    return list(zip(u.tolist(), v.tolist()))


def test_recon_loss_paths_by_hand():
    model, data = model_and_graph()
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    edges = data.edge_index
    pairs = edges.t().tolist()
    forbidden = set(map(tuple, pairs))
    count = 14  # round(0.7 * 20); int() would give 13
    # Explicit negatives: mean BCE of each class.
    neg = torch.tensor([[0, 2, 6], [4, 7, 1]])
    expected = bce_pos(z, pairs) + bce_neg_mean(z, neg.t().tolist())
    assert model.recon_loss(z, edges, neg).item() == pytest.approx(expected, abs=1e-12)
    assert model.decode(z, neg).tolist() == pytest.approx([sig(float(z[i] @ z[j])) for i, j in neg.t().tolist()])
    assert model.decode(z, neg, sigmoid=False).tolist() == pytest.approx([float(z[i] @ z[j]) for i, j in
                                                                          neg.t().tolist()])
    # Sampled: u from `sources` (default the edges' first nodes), v uniform over all nodes or the first
    # num_targets; edges (either direction) and self loops are masked out of the negative mean.
    sources = torch.tensor([0, 0, 3, 6, 7])
    mixed = set()
    for seed in range(6):
        for kwargs, src, targets in (({}, edges[0], 8), ({"sources": sources}, sources, 8),
                                     ({"num_targets": 4}, edges[0], 4),
                                     ({"sources": sources, "num_targets": 5}, sources, 5)):
            candidates = replay_negatives(seed, src, targets, count)
            valid = [(u, v) for u, v in candidates if u != v and (u, v) not in forbidden]
            torch.manual_seed(seed)
            got = model.recon_loss(z, edges, **kwargs).item()
            assert got == pytest.approx(bce_pos(z, pairs) + bce_neg_mean(z, valid), abs=1e-12), (seed, kwargs)
            mixed.add(0 < len(valid) < count)
    assert mixed == {True}  # every draw mixes rejected and valid candidates: a plain mean cannot pass
    # The same edge tensor with one more node: the cached pair keys (i N + j) are rebuilt for the new N.
    z9 = torch.cat([z, torch.randn(1, 3, generator=gen, dtype=torch.float64)])
    for seed in range(3):
        valid = [(u, v) for u, v in replay_negatives(seed, edges[0], 9, count) if u != v and (u, v) not in forbidden]
        torch.manual_seed(seed)
        got = model.recon_loss(z9, edges).item()
        assert got == pytest.approx(bce_pos(z9, pairs) + bce_neg_mean(z9, valid), abs=1e-12), seed
    # A batch without positive edges: an exact zero, still connected to z.
    zg = z.clone().requires_grad_()
    empty = model.recon_loss(zg, edges[:, :0])
    assert empty.item() == 0.0 and empty.requires_grad
    empty.backward()
    assert torch.equal(zg.grad, torch.zeros_like(z))


def test_recon_loss_checks_sampled_pairs_against_the_whole_graph_by_global_id():
    model, _ = model_and_graph(neg_ratio=2.0)
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    n_id = torch.tensor([6, 2, 9, 0, 4])  # local row l is global node n_id[l] of a 10-node graph
    local = torch.tensor([[0, 1, 3], [1, 3, 4]])  # the batch's positive edges (local ids)
    global_pairs = {(6, 2), (2, 0), (0, 4), (6, 9), (9, 4), (2, 4)}  # includes pairs the batch does not list
    from pyg_em.utils import forbidden_pair_keys

    keys = forbidden_pair_keys(torch.tensor(sorted(global_pairs)).t(), 10)
    forbidden = global_pairs | {(j, i) for i, j in global_pairs}
    pos = bce_pos(z, local.t().tolist())
    seen = set()
    for seed in range(8):
        for targets in (None, 3):
            candidates = replay_negatives(seed, local[0], targets or 5, 6)
            valid = [(u, v) for u, v in candidates
                     if n_id[u] != n_id[v] and (int(n_id[u]), int(n_id[v])) not in forbidden]
            local_only = [(u, v) for u, v in candidates if u != v and (u, v) not in
                          {(0, 1), (1, 0), (1, 3), (3, 1), (3, 4), (4, 3)}]
            torch.manual_seed(seed)
            got = model.recon_loss(z, local, num_targets=targets, n_id=n_id, forbidden=keys, num_nodes=10).item()
            assert got == pytest.approx(pos + bce_neg_mean(z, valid), abs=1e-12), (seed, targets)
            seen.add(len(valid) != len(local_only))
    assert True in seen  # the whole graph's edges matter on this fixture
    with pytest.raises(ValueError, match=r"recon_loss\(forbidden=\.\.\.\) needs n_id \(global ids of z's rows\) "
                                         r"and num_nodes"):
        model.recon_loss(z, local, forbidden=keys, num_nodes=10)
    with pytest.raises(ValueError, match="needs n_id"):
        model.recon_loss(z, local, forbidden=keys, n_id=n_id)


def test_set_feature_scale_and_feature_loss_by_hand():
    model, data = model_and_graph(feature_weight=0.8)
    x = data.x
    v = float(((x - x.mean(0)) ** 2).sum(1).mean())  # (1/N) ||X - mean X||_F^2
    assert model.set_feature_scale(x) == pytest.approx(v, rel=1e-12) and model.feature_variance == pytest.approx(v)
    # Sparse, uncoalesced (one entry split in two halves): the same variance, without densifying.
    dense = x.clone()
    dense[dense.abs() < 1.5] = 0.0
    coo = dense.to_sparse()
    idx, val = coo.indices(), coo.values()
    split = torch.sparse_coo_tensor(torch.cat([idx, idx[:, :1]], 1), torch.cat([val[:1] / 2, val[1:], val[:1] / 2]),
                                    coo.shape, check_invariants=False)
    assert not split.is_coalesced()
    v_sparse = float(((dense - dense.mean(0)) ** 2).sum(1).mean())
    assert model.set_feature_scale(split) == pytest.approx(v_sparse, rel=1e-12)
    assert model.set_feature_scale(x.float()) == pytest.approx(v, rel=1e-6)
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    decoded = z @ model.feature_decoder.weight.detach().t() + model.feature_decoder.bias.detach()
    error = ((decoded - x) ** 2).sum(1)
    model.feature_variance = None  # before set_feature_scale: the rows' own variance
    for rows in (slice(None), slice(2, 5)):
        own = ((x[rows] - x[rows].mean(0)) ** 2).sum()
        assert model.feature_loss(z[rows], x[rows]).item() == pytest.approx(float(error[rows].sum() / own))
        assert model.feature_loss(z[rows], x[rows].to_sparse()).item() == pytest.approx(float(error[rows].sum() / own))
    model.set_feature_scale(x)  # the whole graph's: n rows scored against n * v
    for rows in (slice(None), slice(2, 5), slice(6, 7)):
        n = len(range(8)[rows])
        assert model.feature_loss(z[rows], x[rows]).item() == pytest.approx(float(error[rows].sum()) / (n * v))
    assert (float(error[2:5].sum()) / (3 * v)) != pytest.approx(float(error[2:5].sum() / ((x[2:5] - x[2:5].mean(0))
                                                                                          ** 2).sum()), rel=1e-2)
    out32 = model.float().feature_loss(z.float(), x)  # float64 features follow the embeddings' float32
    assert out32.dtype == torch.float32 and out32.item() == pytest.approx(float(error.sum()) / (8 * v), rel=1e-5)
    model.double()
    # Constant features reconstructed exactly: 0, not 0/0, with or without the whole graph's scale.
    with torch.no_grad():
        model.feature_decoder.weight.zero_()
        model.feature_decoder.bias.fill_(1.5)
    constant = torch.full((8, 4), 1.5, dtype=torch.float64)
    for scale in (None, constant):
        model.feature_variance = None
        if scale is not None:
            assert model.set_feature_scale(scale) == 0.0
        assert model.feature_loss(z, constant).item() == 0.0
    with pytest.raises(ValueError, match=r"^DAEGC\.feature_loss needs feature_weight > 0 \(the model has no feature "
                                         r"decoder\); build it with DAEGC\(\.\.\., feature_weight=0\.5\)$"):
        DAEGC(4, 3, hidden_channels=6, embedding_channels=3).feature_loss(z, x)


def make_batch(data, n_id, local_edges, seeds, hops=None):
    batch = Data(x=data.x[n_id], edge_index=local_edges, n_id=n_id, batch_size=seeds)
    if hops is not None:
        batch.num_sampled_edges = torch.tensor(hops)
    return batch


def test_batch_losses_by_hand():
    model, data = model_and_graph(feature_weight=0.6, neg_ratio=2.3)
    with torch.no_grad():
        z_all = dense_embed(model, data.x, data.edge_index)
        model.head.centers.copy_(z_all[[0, 3, 6]] + 0.05)
        model.head.refresh_target(model.head.soft_assignment(z_all) ** 0.5)  # P unlike this Q
    model.set_feature_scale(data.x)
    v = model.feature_variance
    # Three seeds (global 3, 1, 5), then their sampled neighbours; edge columns are (neighbour j, target i). The
    # first hop lists 6 edges into the seeds, the second 3 edges into hop-1 nodes (one from a seed). The seeds 3
    # and 1 are joined by a graph edge that the batch does not list.
    n_id = torch.tensor([3, 1, 5, 2, 4, 6, 0])
    local = torch.tensor([[3, 4, 3, 6, 4, 5, 2, 1, 0],
                          [0, 0, 1, 1, 2, 2, 3, 6, 4]])
    hop_one = local[:, :6]
    hopless = local[:, [6, 0, 1, 7, 2, 3, 8, 4, 5]]  # any column order: the edges that end at a seed
    for batch in (make_batch(data, n_id, local, 3, [6, 3]), make_batch(data, n_id, hopless, 3)):
        z = dense_embed(model, batch.x, batch.edge_index)
        hops = "num_sampled_edges" in batch
        pos = (hop_one if hops else hopless[:, hopless[1] < 3]).flip(0)  # (seed, neighbour), in column order
        pairs = pos.t().tolist()
        assert sorted(pairs) == sorted(hop_one.flip(0).t().tolist())
        count = round(2.3 * len(pairs))  # 14; int() would give 13
        forbidden = set(map(tuple, pairs)) | {(j, i) for i, j in pairs}
        q = model.head.soft_assignment(z[:3]).detach()
        kl = kl_by_hand(model.head.target[n_id[:3]], q)
        decoded = z[:3] @ model.feature_decoder.weight.detach().t() + model.feature_decoder.bias.detach()
        feature = float(((decoded - data.x[n_id[:3]]) ** 2).sum()) / (3 * v)
        for seed in range(3):
            candidates = replay_negatives(seed, pos[0], 3, count)  # v uniform over the seeds
            valid = [(a, b) for a, b in candidates if a != b and (a, b) not in forbidden]
            recon = bce_pos(z, pairs) + bce_neg_mean(z, valid)
            torch.manual_seed(seed)
            out = model.loss_batch(batch)
            assert out.components["recon"].item() == pytest.approx(recon, abs=1e-10)
            assert out.components["cluster"].item() == pytest.approx(kl, abs=1e-10)
            assert out.components["features"].item() == pytest.approx(feature, abs=1e-10)
            assert out.total.item() == pytest.approx(recon + 2.5 * kl + 0.6 * feature, abs=1e-10)
            torch.manual_seed(seed)
            out = model.pretrain_loss_batch(batch)
            assert out.total.item() == pytest.approx(recon + 0.6 * feature, abs=1e-10)
            assert set(out.components) == {"recon", "features"}
        # The loader's gathered seed rows are used when present (here: other rows, to tell them apart).
        batch.seed_x = data.x[[0, 7, 2]]
        decoded_other = float(((decoded - data.x[[0, 7, 2]]) ** 2).sum()) / (3 * v)
        torch.manual_seed(0)
        assert model.loss_batch(batch).components["features"].item() == pytest.approx(decoded_other, abs=1e-10)
        # With the whole graph's keys, a sampled pair that is a graph edge but no batch edge is masked too.
        from pyg_em.utils import forbidden_pair_keys

        keys_global = forbidden_pair_keys(data.edge_index, 8)
        glob = {tuple(p) for p in data.edge_index.t().tolist()}
        differs = False
        for seed in range(3):
            candidates = replay_negatives(seed, pos[0], 3, count)
            valid = [(a, b) for a, b in candidates if a != b and (int(n_id[a]), int(n_id[b])) not in glob]
            torch.manual_seed(seed)
            out = model.loss_batch(batch, forbidden=keys_global, num_nodes=8)
            differs |= len(valid) != len([(a, b) for a, b in candidates if a != b and (a, b) not in forbidden])
            assert out.components["recon"].item() == pytest.approx(bce_pos(z, pairs) + bce_neg_mean(z, valid),
                                                                   abs=1e-10)
        assert differs  # a drawn seed pair is a graph edge but no batch edge: (3, 1) global, (0, 1) local
    assert (3, 1) in glob and (0, 1) not in forbidden
    model.feature_weight = 0.0  # no feature rows needed then
    assert model._seed_features(batch) is None
    model.feature_weight = 0.6
    with pytest.raises(ValueError, match=r"loss_batch\(forbidden=\.\.\.\) needs num_nodes"):
        model.loss_batch(batch, forbidden=keys_global)
    with pytest.raises(ValueError, match=r"the loader samples 3 hop\(s\) \(num_neighbors has 3 entries\) but DAEGC "
                                         r"has 2 attention layers: pass num_neighbors with 2 fan-outs"):
        model.loss_batch(make_batch(data, n_id, local, 3, [6, 2, 1]))
    for missing in ("n_id", "batch_size"):
        bad = make_batch(data, n_id, local, 3, [6, 3])
        del bad[missing]
        with pytest.raises(ValueError, match=r"^DAEGC\.loss_batch needs NeighborLoader batches with n_id \(global "
                                             r"node ids\) and batch_size \(seed count\); got a batch without them\. "
                                             r"Use torch_geometric\.loader\.NeighborLoader or "
                                             r"pyg_em\.recipes\.fit_daegc\(batch_size=\.\.\.\)$"):
            model.pretrain_loss_batch(bad)
    # The batch's edge weights reach the attention layers.
    weighted = make_batch(data, n_id, local, 3, [6, 3])
    weighted.edge_weight = torch.linspace(0.2, 4.0, local.size(1), dtype=torch.float64)
    z = dense_embed(model, weighted.x, local, weighted.edge_weight)
    pairs = hop_one.flip(0).t().tolist()
    forbidden = set(map(tuple, pairs)) | {(j, i) for i, j in pairs}
    valid = [(a, b) for a, b in replay_negatives(0, hop_one.flip(0)[0], 3, 14) if a != b and (a, b) not in forbidden]
    torch.manual_seed(0)
    got = model.pretrain_loss_batch(weighted).components["recon"].item()
    assert got == pytest.approx(bce_pos(z, pairs) + bce_neg_mean(z, valid), abs=1e-10)
    assert (z - dense_embed(model, weighted.x, local)).abs().max() > 1e-2
    sparse = make_batch(data, n_id, local, 3, [6, 3])
    sparse.x = sparse.x.to_sparse()
    with pytest.raises(ValueError, match=r"needs the seeds' dense feature rows of a sparse batch: batch.seed_x"):
        model.pretrain_loss_batch(sparse)


def test_full_batch_losses_by_hand_with_weights_features_and_a_refreshed_target():
    model, data = model_and_graph(feature_weight=0.4)
    z = dense_embed(model, data.x, data.edge_index, data.edge_weight)
    pairs = data.edge_index.t().tolist()
    forbidden = set(map(tuple, pairs))
    with torch.no_grad():
        model.head.centers.copy_(z[[1, 4, 7]] - 0.05)
    q = model.head.soft_assignment(z).detach()
    decoded = z @ model.feature_decoder.weight.detach().t() + model.feature_decoder.bias.detach()
    feature = float(((decoded - data.x) ** 2).sum() / ((data.x - data.x.mean(0)) ** 2).sum())
    for seed in range(3):
        valid = [(a, b) for a, b in replay_negatives(seed, data.edge_index[0], 8, 14)
                 if a != b and (a, b) not in forbidden]
        recon = bce_pos(z, pairs) + bce_neg_mean(z, valid)
        torch.manual_seed(seed)
        out = model.pretrain_loss(data)
        assert out.total.item() == pytest.approx(recon + 0.4 * feature, abs=1e-10)
        assert out.components["recon"].item() == pytest.approx(recon, abs=1e-10)
        assert out.components["features"].item() == pytest.approx(feature, abs=1e-10)
        torch.manual_seed(seed)
        out = model.loss(data, refresh_target=True)  # P from this step's own Q
        kl = kl_by_hand(dec_target(q), q)
        assert torch.allclose(model.head.target, dec_target(q), atol=1e-12)
        assert out.components["cluster"].item() == pytest.approx(kl, abs=1e-10)
        assert out.total.item() == pytest.approx(recon + 2.5 * kl + 0.4 * feature, abs=1e-10)
    # Without refresh_target the stored P is used: a different P gives a different KL.
    with torch.no_grad():
        model.head.refresh_target(q ** 0.5)
    torch.manual_seed(0)
    out = model.loss(data)
    assert out.components["cluster"].item() == pytest.approx(kl_by_hand(model.head.target, q), abs=1e-10)
    assert abs(kl_by_hand(model.head.target, q) - kl) > 1e-3
    unweighted = dense_embed(model, data.x, data.edge_index)
    assert (unweighted - z).abs().max() > 1e-2  # the weights matter on this fixture


@pytest.mark.parametrize("feature_weight", [0.0, 0.5])
@pytest.mark.parametrize("hidden", [6, 3])  # wider than the 4 inputs (projected per chunk), and narrower
def test_layerwise_inference_matches_the_dense_two_layer_equations(feature_weight, hidden):
    model, data = model_and_graph(feature_weight=feature_weight, hidden=hidden)
    expected = dense_embed(model, data.x, data.edge_index, data.edge_weight)
    model.train()
    for chunk in (3, 5, 8192):
        assert torch.allclose(model.embed_data(data, chunk_size=chunk), expected, atol=1e-12), chunk
        assert model.training  # the mode is restored
    plain = Data(x=data.x, edge_index=data.edge_index)  # no edge_weight attribute: the unweighted graph
    assert torch.allclose(model.embed_data(plain, chunk_size=3), dense_embed(model, data.x, data.edge_index),
                          atol=1e-12)
    q = model.predict_proba(data)
    distance = torch.cdist(expected, model.head.centers.detach()).pow(2)
    assert torch.allclose(q, (1 / (1 + distance)) / (1 / (1 + distance)).sum(1, keepdim=True), atol=1e-12)
    model.refresh_target(data)
    assert torch.allclose(model.head.target, dec_target(q), atol=1e-12)
    assert torch.equal(model.predict(data), q.argmax(1))
    if hidden == 6:
        assert torch.allclose(model.embed_data(Data(x=data.x.to_sparse(), edge_index=data.edge_index,
                                                    edge_weight=data.edge_weight), chunk_size=3), expected, atol=1e-12)
    with pytest.raises(ValueError, match="chunk_size"):
        model.embed_data(data, chunk_size=0)

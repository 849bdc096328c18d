"""GAE / VGAE: hand-computed losses, drop-in parity with PyG, leakage, bad input, quality, mini-batch, clustering."""

import copy
import math

import pytest
import torch
import torch_geometric.nn as pygnn
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv

from pyg_em.datasets import attributed_sbm
from pyg_em.metrics import ari
from pyg_em.models import (
    GAE,
    VGAE,
    ClusteringModel,
    LossOutput,
    evaluate_link_prediction,
    link_split,
    sample_negative_edges,
)
from pyg_em.nn import GCNEncoder, VariationalGCNEncoder
from pyg_em.recipes import fit_link_prediction
from pyg_em.train import Trainer
from tests.conftest import path_graph, requires_sampler, two_triangles


def _sig(v):
    return 1.0 / (1.0 + math.exp(-v))


class _PyGStyleEncoder(torch.nn.Module):
    """The encoder of PyG's autoencoder example (what a user already has)."""

    def __init__(self, cin, cout, variational=False):
        super().__init__()
        self.conv1 = GCNConv(cin, 2 * cout)
        self.conv2 = GCNConv(2 * cout, cout)
        self.conv3 = GCNConv(2 * cout, cout) if variational else None

    def forward(self, x, edge_index):
        h = self.conv1(x, edge_index).relu()
        if self.conv3 is None:
            return self.conv2(h, edge_index)
        return self.conv2(h, edge_index), self.conv3(h, edge_index)


# -- hand-computed losses ------------------------------------------------------------------------------------
def test_recon_loss_hand_computed():
    z = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, -1.0]], dtype=torch.float64)
    pos = torch.tensor([[0, 1], [1, 2]])  # pairs (0,1), (1,2)
    neg = torch.tensor([[0], [2]])  # pair (0,2)
    model = GAE(torch.nn.Identity())
    # z0.z1 = 0.5, z1.z2 = -0.5, z0.z2 = 0
    expected = -(math.log(_sig(0.5)) + math.log(_sig(-0.5))) / 2 - math.log(1 - _sig(0.0))
    assert model.recon_loss(z, pos, neg).item() == pytest.approx(expected, abs=1e-12)


def test_kl_loss_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logstd = torch.randn(5, 3, dtype=torch.float64), 0.3 * torch.randn(5, 3, dtype=torch.float64)
    q = torch.distributions.Normal(mu, logstd.exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    oracle = torch.distributions.kl_divergence(q, p).sum(1).mean()
    model = VGAE(torch.nn.Identity())
    assert torch.allclose(model.kl_loss(mu, logstd), oracle)
    # Hand value for one node, one dimension: mu=1, sigma=1 -> KL = mu^2/2 = 0.5
    assert model.kl_loss(torch.ones(1, 1), torch.zeros(1, 1)).item() == pytest.approx(0.5)


def test_full_recon_loss_hand_computed():
    """Paper's weighted BCE on a 3-node path: target A + I, pos_weight=(N^2-E)/E, norm=N^2/(2(N^2-E))."""
    z = torch.tensor([[1.0, 0.2], [0.3, -0.4], [-0.5, 0.6]], dtype=torch.float64)
    ei = path_graph(3)  # edges 0-1, 1-2 both directions
    target = [[1, 1, 0], [1, 1, 1], [0, 1, 1]]
    n2, e = 9, 7
    pos_weight, norm = (n2 - e) / e, n2 / (2 * (n2 - e))
    total = 0.0
    for i in range(3):
        for j in range(3):
            s = float(z[i] @ z[j])
            total += -pos_weight * math.log(_sig(s)) if target[i][j] else -math.log(1 - _sig(s))
    model = GAE(torch.nn.Identity(), recon="full")
    assert model.full_recon_loss(z, ei).item() == pytest.approx(norm * total / n2, abs=1e-12)
    # A held-out pair gets weight zero: drop (0, 2) and (2, 0) from the sum.
    s02 = float(z[0] @ z[2])
    held = torch.tensor([[0], [2]])
    expected = norm * (total - 2 * (-math.log(1 - _sig(s02)))) / n2
    assert model.full_recon_loss(z, ei, held).item() == pytest.approx(expected, abs=1e-12)


def test_vgae_loss_scales_kl_by_num_nodes():
    torch.manual_seed(0)
    data = Data(x=torch.randn(6, 4), edge_index=two_triangles())
    model = VGAE(VariationalGCNEncoder(4, 8, 2), recon="full").eval()  # eval: z = mu, deterministic
    out = model.loss(data)
    assert isinstance(out, LossOutput)
    z = model.encode(data.x, data.edge_index)
    recon = model.full_recon_loss(z, data.edge_index)
    assert torch.allclose(out.total, recon + model.kl_loss() / 6)
    assert torch.allclose(out.components["kl"], model.kl_loss() / 6)


# -- drop-in parity with PyG -------------------------------------------------------------------------------
@pytest.mark.parametrize("variational", [False, True])
def test_same_results_as_pyg(variational):
    torch.manual_seed(0)
    data = attributed_sbm(60, 3, 6.0, num_features=8, seed=1)
    enc = _PyGStyleEncoder(8, 4, variational)
    ours = (VGAE if variational else GAE)(copy.deepcopy(enc))
    peer = (pygnn.VGAE if variational else pygnn.GAE)(copy.deepcopy(enc))
    ours.load_state_dict(peer.state_dict(), strict=False)
    neg = sample_negative_edges(data.edge_index, 60, 50)
    for model in (ours, peer):
        model.train()
    torch.manual_seed(5)
    z_ours = ours.encode(data.x, data.edge_index)
    torch.manual_seed(5)
    z_peer = peer.encode(data.x, data.edge_index)
    assert torch.allclose(z_ours, z_peer)  # same reparametrisation noise from the same seed
    # PyG clips log(sigmoid) at log(1e-15) through its EPS; ours is the exact logsigmoid. Compare them where
    # no logit saturates (|z_i . z_j| well below 34).
    small_o, small_p = 0.3 * z_ours, 0.3 * z_peer
    assert (small_o @ small_o.t()).abs().max() < 20
    assert torch.allclose(ours.recon_loss(small_o, data.edge_index, neg),
                          peer.recon_loss(small_p, data.edge_index, neg), atol=1e-6)
    if variational:
        assert torch.allclose(ours.kl_loss(), peer.kl_loss())
        assert torch.allclose(ours.__mu__, peer.__mu__)
    ours.eval(), peer.eval()
    z = peer.encode(data.x, data.edge_index)
    auc_o, ap_o = ours.test(z, data.edge_index, neg)
    auc_p, ap_p = peer.test(z, data.edge_index, neg)
    assert auc_o == pytest.approx(auc_p) and ap_o == pytest.approx(ap_p)
    assert torch.allclose(ours.decode(z, neg), peer.decode(z, neg))


def test_pyg_training_loop_runs_unchanged():
    """The exact call pattern of PyG's examples/autoencoder.py trains our VGAE."""
    torch.manual_seed(0)
    data = attributed_sbm(80, 2, 6.0, num_features=8, seed=0)
    model = VGAE(_PyGStyleEncoder(8, 4, variational=True))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(15):
        model.train()
        optimizer.zero_grad()
        z = model.encode(data.x, data.edge_index)
        loss = model.recon_loss(z, data.edge_index) + (1 / data.num_nodes) * model.kl_loss()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


# -- negative sampling and leakage ---------------------------------------------------------------------------
def _pairs(edge_index):
    return {(min(a, b), max(a, b)) for a, b in edge_index.t().tolist()}


def test_negative_sampling_never_hits_forbidden_pairs():
    torch.manual_seed(0)
    # A dense graph: 2/3 of the pairs are edges, so rejection matters.
    n = 12
    full = torch.combinations(torch.arange(n)).t()
    keep = torch.rand(full.size(1)) < 0.67
    ei = torch.cat([full[:, keep], full[:, keep].flip(0)], dim=1)
    held = full[:, ~keep][:, :5]
    neg, valid = sample_negative_edges(ei, n, 2000, held, return_mask=True)
    good = neg[:, valid]
    assert good.size(1) > 1000
    assert not (_pairs(good) & (_pairs(ei) | _pairs(held)))
    assert bool((good[0] != good[1]).all())
    # Every allowed pair is reachable.
    allowed = {p for p in _pairs(full) if p not in _pairs(ei) | _pairs(held)}
    assert _pairs(good) == allowed


def test_split_has_no_leakage():
    data = attributed_sbm(300, 3, 8.0, num_features=8, seed=0)
    train, val, test = link_split(data, seed=0)
    held_val, held_test = _pairs(val.pos_edge_label_index), _pairs(test.pos_edge_label_index)
    assert held_val and held_test
    assert not _pairs(train.edge_index) & (held_val | held_test)
    assert not _pairs(val.edge_index) & (held_val | held_test)
    assert not _pairs(test.edge_index) & held_test
    assert not _pairs(val.neg_edge_label_index) & _pairs(data.edge_index)
    assert not _pairs(test.neg_edge_label_index) & _pairs(data.edge_index)
    assert _pairs(train.held_out_edge_index) == held_val | held_test
    model = GAE(GCNEncoder(8, 16, 8), neg_ratio=20.0)
    neg, valid = model.sample_negatives(train.pos_edge_label_index, 300, train.held_out_edge_index)
    negatives = _pairs(neg[:, valid])
    assert len(negatives) > 1000
    assert not negatives & (held_val | held_test | _pairs(train.edge_index))


# -- bad input -----------------------------------------------------------------------------------------------
class _NoForwardAll(torch.nn.Module):
    def forward(self, z, edge_index, sigmoid=True):
        return (z[edge_index[0]] * z[edge_index[1]]).sum(-1)


def test_bad_input():
    enc = GCNEncoder(4, 8, 2)
    with pytest.raises(TypeError, match="forward_all"):
        GAE(enc, _NoForwardAll(), recon="full")
    GAE(enc, _NoForwardAll())  # fine for sampled reconstruction
    with pytest.raises(TypeError, match="decoder"):
        GAE(enc, decoder="inner")
    with pytest.raises(TypeError, match="encoder"):
        GAE(3)  # not callable (a lambda is fine, as in PyG)
    with pytest.raises(ValueError, match="neg_ratio"):
        GAE(enc, neg_ratio=-1.0)
    with pytest.raises(ValueError, match="recon"):
        GAE(enc, recon="dense")
    model = GAE(enc)
    z = torch.randn(6, 2)
    with pytest.raises(ValueError, match="pos_edge_index is empty"):
        model.recon_loss(z, torch.empty(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="neg_edge_index is empty"):
        model.recon_loss(z, two_triangles(), torch.empty(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="x has 5 rows"):
        Trainer(model, epochs=1).fit(Data(x=torch.randn(5, 4), edge_index=two_triangles(), num_nodes=6))
    with pytest.raises(ValueError, match="edge_index"):
        model.loss(Data(x=torch.randn(3, 4), edge_index=two_triangles()))
    with pytest.raises(TypeError, match=r"\(mu, logstd\)"):
        VGAE(GCNEncoder(4, 8, 2)).encode(torch.randn(6, 4), two_triangles())
    with pytest.raises(ValueError, match="empty"):
        link_split(Data(x=torch.randn(4, 2), edge_index=torch.empty(2, 0, dtype=torch.long)))
    with pytest.raises(ValueError, match="val_ratio"):
        link_split(Data(x=torch.randn(6, 2), edge_index=two_triangles()), val_ratio=-0.1)
    with pytest.raises(ValueError, match="n_clusters"):
        model.initialize_cluster_centers(Data(x=torch.randn(6, 4), edge_index=two_triangles()))
    with pytest.raises(RuntimeError, match="initialize_cluster_centers"):
        model.predict_proba(Data(x=torch.randn(6, 4), edge_index=two_triangles()))


# -- quality, clustering, mini-batch, devices ----------------------------------------------------------------
@pytest.mark.parametrize("variational,recon", [(False, "sampled"), (True, "full")])
def test_quality_and_clustering_on_sbm(variational, recon):
    torch.manual_seed(0)
    data = attributed_sbm(150, 3, 8.0, p_in_ratio=50.0, num_features=16, feature_noise=1.0, seed=0)
    train, val, test = link_split(data, seed=0)
    enc = (VariationalGCNEncoder if variational else GCNEncoder)(16, 32, 8)
    model = (VGAE if variational else GAE)(enc, recon=recon, n_clusters=3)
    assert isinstance(model, ClusteringModel)
    history = fit_link_prediction(model, train, val, epochs=50, lr=0.01, eval_every=5)
    assert len(history["val_auc"]) == 10
    scores = evaluate_link_prediction(model, test)
    # Within a block edges are random, so even the true block model scores only about 0.8 AUC here
    # (almost all positives but a third of the negatives are intra-block); chance is 0.5.
    assert scores["auc"] > 0.7 and scores["ap"] > 0.65
    model.initialize_cluster_centers(data)
    proba = model.predict_proba(data).cpu()  # the trainer may have moved the model to CUDA
    assert torch.allclose(proba.sum(1), torch.ones(150))
    assert ari(data.y, model.predict(data).cpu()) > 0.8


@requires_sampler
def test_minibatch_link_neighbor_loader_loss_decreases():
    from torch_geometric.loader import LinkNeighborLoader

    torch.manual_seed(0)
    data = attributed_sbm(600, 4, 6.0, p_in_ratio=20.0, num_features=16, seed=0)
    loader = LinkNeighborLoader(data, num_neighbors=[5, 5], edge_label_index=data.edge_index,
                                neg_sampling="binary", batch_size=256, shuffle=True)
    model = VGAE(VariationalGCNEncoder(16, 32, 16))
    history = Trainer(model, epochs=4, lr=0.01, progress=False).fit(loader=loader)
    assert history["total"][-1] < history["total"][0]
    assert "kl" in history


def test_gae_device(device):
    torch.manual_seed(0)
    data = attributed_sbm(100, 2, 6.0, num_features=8, seed=0)
    train, val, _ = link_split(data, seed=0)
    model = VGAE(VariationalGCNEncoder(8, 16, 4), recon="sampled")
    fit_link_prediction(model, train, val, epochs=3, device=device)
    assert next(model.parameters()).device.type == device.type
    out = model.to(device).loss(train.to(device))
    assert out.total.device.type == device.type
    # Same numbers on the device as on the CPU: embeddings and the full-graph ELBO terms (deterministic in eval).
    on_cpu = VGAE(VariationalGCNEncoder(8, 16, 4), recon="sampled").eval()
    on_cpu.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    model.eval()
    z = model.embed_data(train)
    assert torch.allclose(z.cpu(), on_cpu.embed_data(train), atol=1e-5)
    recon = model.full_recon_loss(z, train.edge_index.to(device))
    assert torch.allclose(recon.cpu(), on_cpu.full_recon_loss(z.cpu(), train.edge_index), atol=1e-5)


def test_masked_mean_matches_boolean_indexing_and_is_zero_when_nothing_is_valid():
    from pyg_em.utils.negative_sampling import masked_mean

    values = torch.tensor([1.0, 2.0, 4.0, 8.0], requires_grad=True)
    valid = torch.tensor([True, False, True, False])
    assert torch.equal(masked_mean(values, valid), values[valid].mean())
    none = masked_mean(values, torch.zeros(4, dtype=torch.bool))
    assert none.item() == 0.0
    none.backward()  # still connected to the graph, with zero gradient
    assert torch.equal(values.grad, torch.zeros(4))

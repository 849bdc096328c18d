"""Independent oracles for the clustering head, the auto-encoder losses and the training loops.

Each expected value is written here by hand (Python loops or dense torch) from the papers' formulas: DEC
(Xie et al., 2016), GAE/VGAE (Kipf & Welling, 2016), DAEGC (Wang et al., 2019). Fixtures are chosen so that
dropping any term changes the answer, and the tests assert that, too.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data

from pyg_em.clusters import DECClusterHead
from pyg_em.clusters.dec import student_t_assignment
from pyg_em.models import DAEGC, GAE, VGAE
from pyg_em.recipes import fit_daegc
from pyg_em.train import Trainer
from pyg_em.utils import masked_mean, sample_negative_edges
from tests.conftest import requires_sampler


def sig(s):
    return 1.0 / (1.0 + math.exp(-s))


# -- DEC ------------------------------------------------------------------------------------------------
def test_student_t_assignment_by_hand():
    z = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5], [-1.0, 3.0]], dtype=torch.float64)
    centers = torch.tensor([[0.0, 0.0], [1.0, 2.0], [-2.0, 1.0]], dtype=torch.float64)
    for alpha in (1.0, 2.5):
        expected = torch.empty(4, 3, dtype=torch.float64)
        for i in range(4):
            kernel = [(1 + sum((z[i, d] - centers[u, d]) ** 2 for d in range(2)) / alpha) ** (-(alpha + 1) / 2)
                      for u in range(3)]
            expected[i] = torch.tensor([k / sum(kernel) for k in kernel])
        assert torch.allclose(student_t_assignment(z, centers, alpha), expected, atol=1e-12)
        if alpha == 1.0:  # the default: Cauchy kernel, as in DEC
            assert torch.allclose(student_t_assignment(z, centers), expected, atol=1e-12)
    # float32 centres (a head not yet moved to the embeddings' dtype) are cast to z's dtype, not rejected.
    assert torch.allclose(student_t_assignment(z, centers.float(), 2.5), student_t_assignment(z, centers, 2.5),
                          atol=1e-6)
    # alpha matters on this fixture (the exponent and the scale both change the answer)
    assert (student_t_assignment(z, centers, 1.0) - student_t_assignment(z, centers, 2.5)).abs().max() > 1e-2


def dec_target_by_hand(q):
    n, k = len(q), len(q[0])
    frequency = [sum(q[i][u] for i in range(n)) for u in range(k)]
    p = []
    for i in range(n):
        row = [q[i][u] ** 2 / frequency[u] for u in range(k)]
        p.append([r / sum(row) for r in row])
    return p


def test_dec_target_with_unequal_cluster_frequencies():
    # Column sums 2.2, 0.9, 0.9 and 1.0 ... : very unequal cluster frequencies.
    q = [[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.6, 0.1, 0.3], [0.1, 0.5, 0.4], [0.2, 0.2, 0.6]]
    q_t = torch.tensor(q, dtype=torch.float64)
    expected = torch.tensor(dec_target_by_hand(q), dtype=torch.float64)
    p = DECClusterHead.target_distribution(q_t)
    assert torch.allclose(p, expected, atol=1e-12)
    without_frequency = q_t.pow(2) / q_t.pow(2).sum(1, keepdim=True)
    assert (without_frequency - expected).abs().max() > 1e-2


def test_dec_refresh_and_kl_loss_by_hand():
    torch.manual_seed(0)
    head = DECClusterHead(3, 2, alpha=1.0).double()
    z = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5], [-1.0, 3.0], [1.5, 1.5]], dtype=torch.float64)
    q_all = head.soft_assignment(z)
    head.refresh_target(q_all)
    p = dec_target_by_hand(q_all.tolist())
    assert torch.allclose(head.target, torch.tensor(p, dtype=torch.float64), atol=1e-12)
    # KL(P || Q) averaged over the rows of a batch selected by node id, against a shifted Q.
    ids = torch.tensor([4, 1, 3])
    q = student_t_assignment(z[ids] + 0.3, head.centers)
    expected = sum(p[int(i)][u] * math.log(p[int(i)][u] / float(q[r, u].detach()))
                   for r, i in enumerate(ids) for u in range(3)) / 3
    assert head.kl_loss(q, ids).item() == pytest.approx(expected, abs=1e-12)
    assert head.kl_loss(q, torch.tensor([0, 1, 2])).item() != pytest.approx(expected, abs=1e-3)
    assert repr(head) == "DECClusterHead(n_clusters=3, embedding_dim=2, alpha=1.0)"
    with pytest.raises(ValueError, match="alpha"):
        DECClusterHead(3, 2, alpha=0.0)


# -- GAE / VGAE -----------------------------------------------------------------------------------------
class FixedEncoder(torch.nn.Module):
    """Returns given parameters, so the losses can be checked independently of any GNN."""

    def __init__(self, mu, logstd=None):
        super().__init__()
        self.mu = torch.nn.Parameter(mu.clone())
        self.logstd = None if logstd is None else torch.nn.Parameter(logstd.clone())

    def forward(self, x, edge_index, edge_weight=None):
        return self.mu if self.logstd is None else (self.mu, self.logstd)


# A 5-node graph with unequal degrees; (3, 4) is held out.
EDGES = torch.tensor([[0, 1, 0, 2, 1, 2, 2, 3], [1, 0, 2, 0, 2, 1, 3, 2]])
HELD = torch.tensor([[3], [4]])
Z = torch.tensor([[1.0, 0.2], [0.3, -0.4], [-0.5, 0.6], [0.9, 0.9], [-1.2, 0.1]], dtype=torch.float64)


def full_recon_by_hand(z, edges, held=None, self_loops=True):
    n = z.size(0)
    pos = {tuple(e) for e in edges.t().tolist()}
    if self_loops:
        pos |= {(i, i) for i in range(n)}
    held = [] if held is None else held.t().tolist()
    skip = {tuple(e) for e in held} | {tuple(e[::-1]) for e in held}
    e = len(pos)
    pos_weight, norm = (n * n - e) / e, n * n / (2 * (n * n - e))
    total = 0.0
    for i in range(n):
        for j in range(n):
            if (i, j) in skip:
                continue
            s = float(z[i] @ z[j])
            total += -pos_weight * math.log(sig(s)) if (i, j) in pos else -math.log(1 - sig(s))
    return norm * total / (n * n)


@pytest.mark.parametrize("self_loops", [True, False])
def test_gae_full_reconstruction_by_hand(self_loops):
    model = GAE(torch.nn.Identity(), recon="full")
    for held in (None, HELD):
        expected = full_recon_by_hand(Z, EDGES, held, self_loops)
        assert model.full_recon_loss(Z, EDGES, held, self_loops=self_loops).item() == pytest.approx(expected, abs=1e-12)
    assert full_recon_by_hand(Z, EDGES, HELD) != pytest.approx(full_recon_by_hand(Z, EDGES), abs=1e-3)
    assert full_recon_by_hand(Z, EDGES, None, True) != pytest.approx(full_recon_by_hand(Z, EDGES, None, False),
                                                                     abs=1e-3)


@pytest.mark.parametrize("kl_weight", [1.0, 0.3, 0.0])
def test_vgae_elbo_by_hand(kl_weight):
    logstd = torch.tensor([[0.1, -0.3], [0.5, 0.0], [-0.2, 0.4], [0.3, 0.3], [-0.6, 0.2]], dtype=torch.float64)
    model = VGAE(FixedEncoder(Z, logstd), recon="full", kl_weight=kl_weight).eval()  # eval: z = mu
    data = Data(x=torch.zeros(5, 1, dtype=torch.float64), edge_index=EDGES, held_out_edge_index=HELD)
    out = model.loss(data)
    n = 5
    kl_mean = sum(-0.5 * sum(1 + 2 * float(logstd[i, d]) - float(Z[i, d]) ** 2 - math.exp(float(logstd[i, d])) ** 2
                             for d in range(2)) for i in range(n)) / n
    recon = full_recon_by_hand(Z, EDGES, HELD)
    assert out.total.item() == pytest.approx(recon + kl_weight * kl_mean / n, abs=1e-12)
    assert out.components["kl"].item() == pytest.approx(kl_mean / n, abs=1e-12)
    assert out.components["recon"].item() == pytest.approx(recon, abs=1e-12)
    assert kl_mean / n > 1e-2  # the KL term is large enough to be seen on this fixture


def test_vgae_reparametrisation_uses_sigma_in_training():
    logstd = torch.full((5, 2), -1.0, dtype=torch.float64)
    model = VGAE(FixedEncoder(Z, logstd))
    torch.manual_seed(7)
    z = model.encode(None, EDGES)
    torch.manual_seed(7)
    eps = torch.randn_like(logstd)
    assert torch.allclose(z, Z + eps * math.exp(-1.0))


def test_gae_sampled_loss_masks_rejected_negatives():
    # A 4-node graph with 5 of its 6 pairs present: most candidates are rejected, some survive the redraws.
    pairs = torch.tensor([[0, 0, 0, 1, 1], [1, 2, 3, 2, 3]])
    edges = torch.cat([pairs, pairs.flip(0)], dim=1)
    z = torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.4, -1.1], [2.0, 0.3]], dtype=torch.float64)
    model = GAE(torch.nn.Identity(), neg_ratio=2.0)
    forbidden = {tuple(e) for e in edges.t().tolist()}
    for seed in range(20):
        torch.manual_seed(seed)
        loss = model.recon_loss(z, edges).item()
        torch.manual_seed(seed)
        candidates, _ = sample_negative_edges(edges, 4, 20, return_mask=True)
        valid = [(u, v) for u, v in candidates.t().tolist() if u != v and (u, v) not in forbidden]
        pos = sum(-math.log(sig(float(z[i] @ z[j]))) for i, j in edges.t().tolist()) / edges.size(1)
        neg = sum(-math.log(1 - sig(float(z[u] @ z[v]))) for u, v in valid) / max(len(valid), 1)
        assert loss == pytest.approx(pos + neg, abs=1e-12)
        if 0 < len(valid) < 20:
            rejected_seed = seed
    # The fixture really has rejected candidates mixed with valid ones (else a plain mean would pass).
    assert "rejected_seed" in locals()


def test_daegc_sampled_loss_masks_rejected_negatives():
    pairs = torch.tensor([[0, 0, 1, 2], [1, 2, 2, 3]])
    edges = torch.cat([pairs, pairs.flip(0)], dim=1)
    z = F.normalize(torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.4, -1.1], [2.0, 0.3]], dtype=torch.float64), dim=1)
    model = DAEGC(2, 2, hidden_channels=2, embedding_channels=2, neg_ratio=1.0)
    forbidden = {tuple(e) for e in edges.t().tolist()}
    pos = sum(-math.log(sig(float(z[i] @ z[j]))) for i, j in edges.t().tolist()) / edges.size(1)
    seen_mixed = False
    for seed in range(10):
        torch.manual_seed(seed)
        loss = model.recon_loss(z, edges).item()
        # DAEGC draws the source from the edges' sources, then a uniform target: replay that draw.
        torch.manual_seed(seed)
        u = edges[0][torch.randint(edges.size(1), (8,))]
        v = torch.randint(4, (8,))
        valid = [(a, b) for a, b in zip(u.tolist(), v.tolist()) if a != b and (a, b) not in forbidden]
        neg = sum(-math.log(1 - sig(float(z[a] @ z[b]))) for a, b in valid) / max(len(valid), 1)
        assert loss == pytest.approx(pos + neg, abs=1e-12)
        seen_mixed |= 0 < len(valid) < 8
    assert seen_mixed


def test_masked_mean_with_a_rejected_candidate():
    values = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0])
    valid = torch.tensor([True, True, False, True, False])
    assert masked_mean(values, valid).item() == pytest.approx((1 + 2 + 8) / 3)
    assert masked_mean(values, torch.ones(5, dtype=torch.bool)).item() == pytest.approx(31 / 5)
    assert masked_mean(values, torch.tensor([False, False, True, False, False])).item() == pytest.approx(4.0)


# -- DAEGC self-training protocol ----------------------------------------------------------------------
def small_graph():
    torch.manual_seed(0)
    pairs = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 6, 7, 8, 9, 6], [1, 2, 3, 4, 5, 0, 3, 7, 8, 9, 6, 9]])
    return Data(x=torch.randn(10, 4), edge_index=torch.cat([pairs, pairs.flip(0)], dim=1))


def record_self_training(monkeypatch, model):
    """Lists filled while ``model`` trains: ``(layer calls so far, rows of Q)`` at every target refresh, and
    ``(phase, p)`` of every attention dropout in training mode (the k-means pass embeds in evaluation mode)."""
    refreshes, dropouts = [], []
    refresh_target = model.head.refresh_target
    dropout = F.dropout

    def counting_refresh(q_all):
        refreshes.append((len(dropouts), q_all.size(0)))
        refresh_target(q_all)

    def recording_dropout(input, p=0.5, training=True, inplace=False):
        if training:
            dropouts.append(("self-train" if model.head.target.size(0) else "pretrain", p))
        return dropout(input, p, training, inplace)

    monkeypatch.setattr(model.head, "refresh_target", counting_refresh)
    monkeypatch.setattr(torch.nn.functional, "dropout", recording_dropout)
    return refreshes, dropouts


def test_daegc_self_training_refreshes_every_update_interval_and_drops_no_attention(monkeypatch):
    data = small_graph()
    model = DAEGC(4, 2, hidden_channels=8, embedding_channels=3, update_interval=3, dropout=0.4)
    refreshes, dropouts = record_self_training(monkeypatch, model)
    fit_daegc(model, data, pretrain_steps=2, epochs=8, n_init=1, progress=False, device="cpu")

    pretrain = [p for phase, p in dropouts if phase == "pretrain"]
    self_train = [p for phase, p in dropouts if phase == "self-train"]
    assert pretrain == [0.4] * 4  # 2 steps x 2 layers, with the attention dropout
    assert self_train == [0.0] * 16  # 8 self-training steps x 2 layers, without it
    assert model.conv1.dropout == model.conv2.dropout == 0.4  # restored afterwards
    # One refresh at the k-means initialisation, then in the steps of self-training epochs 3 and 6 (of 0..7),
    # after that step's two layer calls.
    calls = [c for c, _ in refreshes]
    assert calls[0] == len(pretrain)
    assert [(c - len(pretrain)) // 2 - 1 for c in calls[1:]] == [3, 6]


@requires_sampler
def test_daegc_minibatch_self_training_refreshes_every_update_interval_without_dropout(monkeypatch):
    data = small_graph()
    model = DAEGC(4, 2, hidden_channels=8, embedding_channels=3, update_interval=2, dropout=0.4)
    refreshes, dropouts = record_self_training(monkeypatch, model)
    fit_daegc(model, data, pretrain_steps=1, epochs=7, n_init=1, batch_size=5, num_neighbors=[2, 2],
              progress=False, device="cpu")
    # k-means initialisation, then full-graph refreshes at epochs 2, 4 and 6.
    assert [rows for _, rows in refreshes] == [10] * 4
    self_train = [p for phase, p in dropouts if phase == "self-train"]
    assert self_train and set(self_train) == {0.0}
    assert model.conv1.dropout == model.conv2.dropout == 0.4


def test_daegc_dropout_restored_when_self_training_fails(monkeypatch):
    data = small_graph()
    model = DAEGC(4, 2, hidden_channels=8, embedding_channels=3, dropout=0.3)

    def failing_loss(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(model, "loss", failing_loss)
    with pytest.raises(RuntimeError, match="boom"):
        fit_daegc(model, data, pretrain_steps=1, epochs=2, n_init=1, progress=False, device="cpu")
    assert model.conv1.dropout == model.conv2.dropout == 0.3


# -- Trainer --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("clip", [None, 0.05, 1e6])
def test_trainer_clips_the_gradient_norm(clip, device):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).to(device)
    x = torch.tensor([[3.0, -2.0, 1.0], [0.5, 4.0, -1.0]], device=device)
    y = torch.tensor([[10.0, -7.0], [2.0, 5.0]], device=device)

    def loss(m, _):
        return ((m(x) - y) ** 2).sum()

    before = [p.detach().clone() for p in model.parameters()]
    loss(model, None).backward()
    grad = torch.cat([p.grad.flatten() for p in model.parameters()])
    model.zero_grad()
    trainer = Trainer(model, epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=1.0), step_fn=loss,
                      grad_clip=clip, device=device, progress=False)
    trainer.fit(Data(x=x))
    step = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, model.parameters())])
    expected = grad if clip is None or grad.norm() <= clip else grad * clip / grad.norm()
    assert torch.allclose(step, expected, rtol=1e-5, atol=1e-6)
    assert grad.norm() > 1.0  # the clip at 0.05 really bites


def test_dec_head_alpha_full_batch_kl_and_errors():
    torch.manual_seed(1)
    head = DECClusterHead(3, 2, alpha=2.5).double()
    z = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5], [-1.0, 3.0]], dtype=torch.float64)
    assert torch.allclose(head.soft_assignment(z), student_t_assignment(z, head.centers, 2.5))
    assert (head.soft_assignment(z) - student_t_assignment(z, head.centers, 1.0)).abs().max() > 1e-3
    assert head.target.shape == (0, 3)
    empty = r"^the DEC target is empty: call initialize\(\) \(k-means\) before self-training$"
    with pytest.raises(RuntimeError, match=empty):
        head.kl_loss(head.soft_assignment(z))
    head.refresh_target(head.soft_assignment(z))
    q = student_t_assignment(z - 0.2, head.centers, 2.5)
    p = head.target
    assert head.kl_loss(q).item() == pytest.approx(float((p * (p / q.detach()).log()).sum() / 4), abs=1e-12)
    with pytest.raises(ValueError, match="^target has 4 rows for 2 assignments: pass node_ids$"):
        head.kl_loss(q[:2])


def test_dec_refresh_records_hard_assignment_and_its_change():
    head = DECClusterHead(3, 2).double()
    q1 = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.4, 0.35, 0.25]], dtype=torch.float64)
    head.refresh_target(q1.clone().requires_grad_())
    assert torch.equal(head.assignment, torch.tensor([0, 2, 1, 0]))
    assert head.assignment_change is None  # nothing to compare with yet
    assert not head.target.requires_grad and head.target.dtype == torch.float64
    assert torch.allclose(head.target, torch.tensor(dec_target_by_hand(q1.tolist()), dtype=torch.float64))
    q2 = torch.tensor([[0.1, 0.2, 0.7], [0.1, 0.3, 0.6], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3]], dtype=torch.float64)
    head.refresh_target(q2)
    assert torch.equal(head.assignment, torch.tensor([2, 2, 0, 1]))
    assert head.assignment_change.item() == pytest.approx(3 / 4)  # nodes 0, 2 and 3 moved, 1 stayed
    head.refresh_target(q2[:3])  # a different node set: no change to report
    assert head.assignment_change is None and head.assignment.shape == (3,)
    head32 = DECClusterHead(3, 2)
    head32.refresh_target(q1)
    assert head32.target.dtype == torch.float32  # the centres' dtype


def test_gae_recon_loss_with_explicit_negatives_by_hand():
    model = GAE(torch.nn.Identity())
    neg = torch.tensor([[0, 4, 1], [3, 2, 4]])
    pos_part = sum(-math.log(sig(float(Z[i] @ Z[j]))) for i, j in EDGES.t().tolist()) / EDGES.size(1)
    neg_part = sum(-math.log(1 - sig(float(Z[i] @ Z[j]))) for i, j in neg.t().tolist()) / neg.size(1)
    assert model.recon_loss(Z, EDGES, neg).item() == pytest.approx(pos_part + neg_part, abs=1e-12)
    empty = EDGES[:, :0]
    with pytest.raises(ValueError, match="^pos_edge_index is empty: the reconstruction loss needs at least one "
                                         "positive edge$"):
        model.recon_loss(Z, empty, neg)
    with pytest.raises(ValueError, match="^neg_edge_index is empty: the reconstruction loss needs at least one "
                                         "positive edge$"):
        model.recon_loss(Z, EDGES, empty)
    with pytest.raises(ValueError, match="^pos_edge_index is empty"):
        model.full_recon_loss(Z, empty)
    with pytest.raises(ValueError, match=r"^recon='full' builds N\^2 logits; N=30001 > 30000: use recon='sampled'$"):
        model.full_recon_loss(torch.zeros(30001, 1), EDGES)


def test_vgae_kl_loss_by_hand_with_clamped_logstd():
    mu = torch.tensor([[0.5, -1.0], [2.0, 0.3], [-0.7, 0.0]], dtype=torch.float64)
    logstd = torch.tensor([[0.2, -0.4], [12.0, 0.1], [-1.5, 0.6]], dtype=torch.float64)  # 12 is clamped to 10
    clamped = logstd.clamp(max=10.0)

    def kl_by_hand(m, s):
        rows = [-0.5 * sum(1 + 2 * float(s[i, d]) - float(m[i, d]) ** 2 - math.exp(float(s[i, d])) ** 2
                           for d in range(2)) for i in range(3)]
        return sum(rows) / 3

    model = VGAE(FixedEncoder(mu, logstd))
    with pytest.raises(RuntimeError, match=r"^kl_loss\(\) needs mu and logstd: call encode\(\) first or pass them$"):
        model.kl_loss()
    expected = kl_by_hand(mu, clamped)
    assert model.kl_loss(mu, logstd).item() == pytest.approx(expected, rel=1e-12)
    assert expected != pytest.approx(kl_by_hand(mu, logstd), rel=1e-3)  # the clamp matters here
    model.eval().encode(None, EDGES)  # stores mu and the clamped logstd
    assert model.kl_loss().item() == pytest.approx(expected, rel=1e-12)
    assert torch.equal(model.encode(None, EDGES), mu)  # evaluation: z = mu


def test_gae_sampled_negatives_never_use_excluded_pairs():
    # 4 nodes, 5 of the 6 pairs are edges and the 6th, (2, 3), is held out: no pair is a valid negative, so the
    # negative term is the masked mean over nothing (0) and the loss is the positive term alone.
    pairs = torch.tensor([[0, 0, 0, 1, 1], [1, 2, 3, 2, 3]])
    edges = torch.cat([pairs, pairs.flip(0)], dim=1)
    z = torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.4, -1.1], [2.0, 0.3]], dtype=torch.float64)
    pos = sum(-math.log(sig(float(z[i] @ z[j]))) for i, j in edges.t().tolist()) / edges.size(1)
    held_neg = -math.log(1 - sig(float(z[2] @ z[3])))
    model = GAE(torch.nn.Identity(), neg_ratio=3.0)
    for seed in range(3):
        torch.manual_seed(seed)
        assert model.recon_loss(z, edges, exclude_edge_index=torch.tensor([[2], [3]])).item() == pytest.approx(
            pos, abs=1e-12)
    torch.manual_seed(0)  # without the exclusion the held-out pair is drawn and counted as a negative
    assert model.recon_loss(z, edges).item() == pytest.approx(pos + held_neg, abs=1e-12)


def test_daegc_self_training_loss_is_recon_plus_gamma_kl_on_the_weighted_graph():
    data = small_graph()
    data.edge_weight = torch.linspace(0.2, 3.0, data.edge_index.size(1))
    torch.manual_seed(0)
    model = DAEGC(4, 2, hidden_channels=6, embedding_channels=3, gamma=3.0).eval()  # eval: no attention dropout
    with torch.no_grad():
        z = model.embed(data.x, data.edge_index, data.edge_weight)
        model.head.centers.copy_(z[:2] + 0.1)
        model.head.refresh_target(model.head.soft_assignment(z) ** 0.5)  # a target P that differs from Q
    torch.manual_seed(1)
    out = model.loss(data)
    q = student_t_assignment(z, model.head.centers.detach())
    p = model.head.target
    kl = float((p * (p / q).log()).sum() / z.size(0))
    assert out.components["cluster"].item() == pytest.approx(kl, rel=1e-5)
    torch.manual_seed(1)
    recon = model.recon_loss(z, data.edge_index).item()
    assert out.components["recon"].item() == pytest.approx(recon, rel=1e-5)
    assert out.total.item() == pytest.approx(recon + 3.0 * kl, rel=1e-5)
    # The weights matter on this fixture: the unweighted embeddings give another KL term.
    q_plain = student_t_assignment(model.embed(data.x, data.edge_index).detach(), model.head.centers.detach())
    assert abs(float((p * (p / q_plain).log()).sum() / z.size(0)) - kl) > 1e-4


def test_sampled_negatives_are_uniform_over_the_allowed_pairs_after_redraws():
    # Nodes 0, 1, 2 form a triangle: only the 6 ordered pairs with node 3 are negatives, half of all non-loop
    # pairs, so many first draws are rejected and redrawn. Every allowed pair must come out equally often.
    triangle = torch.tensor([[0, 1, 0, 2, 1, 2], [1, 0, 2, 0, 2, 1]])
    torch.manual_seed(0)
    neg = sample_negative_edges(triangle, 4, 12000, rounds=6)
    allowed = {(0, 3), (3, 0), (1, 3), (3, 1), (2, 3), (3, 2)}
    pairs = [tuple(p) for p in neg.t().tolist()]
    assert set(pairs) == allowed and len(pairs) > 11500
    for pair in allowed:
        assert 0.15 < pairs.count(pair) / len(pairs) < 0.185, pair
    # Two nodes are enough; held-out pairs are checked against num_nodes and named.
    neg = sample_negative_edges(torch.zeros(2, 0, dtype=torch.long), 2, 50)
    assert set(map(tuple, neg.t().tolist())) == {(0, 1), (1, 0)}
    with pytest.raises(ValueError, match=r"num_nodes must be an int >= 2 to sample negative pairs, got 1"):
        sample_negative_edges(torch.zeros(2, 0, dtype=torch.long), 1, 5)
    with pytest.raises(ValueError, match=r"^exclude_edge_index holds node ids in \[0, 5\] but must lie in \[0, 4\)"):
        sample_negative_edges(triangle, 4, 5, torch.tensor([[0], [5]]))


def test_gae_full_reconstruction_cache_is_keyed_on_self_loops_dtype_and_size(monkeypatch):
    import pyg_em.models.gae as gae_module

    # One model, the same edge tensors: the cached dense target must follow self_loops, dtype and N.
    model = GAE(torch.nn.Identity(), recon="full")
    for self_loops in (True, False, True):
        expected = full_recon_by_hand(Z, EDGES, HELD, self_loops)
        assert model.full_recon_loss(Z, EDGES, HELD, self_loops=self_loops).item() == pytest.approx(expected, abs=1e-12)
    loss32 = model.full_recon_loss(Z.float(), EDGES, HELD)
    assert loss32.dtype == torch.float32
    assert loss32.item() == pytest.approx(full_recon_by_hand(Z, EDGES, HELD), rel=1e-5)
    z6 = torch.cat([Z, torch.tensor([[0.4, -0.7]], dtype=torch.float64)])
    expected = full_recon_by_hand(z6, EDGES, HELD)
    assert model.full_recon_loss(z6, EDGES, HELD).item() == pytest.approx(expected, abs=1e-12)
    # The N^2 guard: N = the limit is allowed, one more node is refused with both numbers.
    monkeypatch.setattr(gae_module, "FULL_GRAPH_MAX_NODES", 6)
    assert torch.isfinite(model.full_recon_loss(z6, EDGES, HELD))
    with pytest.raises(ValueError, match=r"recon='full' builds N\^2 logits; N=7 > 6: use recon='sampled'"):
        model.full_recon_loss(torch.cat([z6, z6[:1]]), EDGES, HELD)


@pytest.mark.parametrize("kl_weight", [1.0, 0.25])
def test_link_batch_losses_by_hand_with_masked_negatives_and_the_scaled_kl(kl_weight):
    from pyg_em.utils import forbidden_pair_keys

    logstd = torch.tensor([[0.1, -0.3], [0.5, 0.0], [-0.2, 0.4], [0.3, 0.3], [-0.6, 0.2]], dtype=torch.float64)
    label_index = torch.tensor([[0, 1, 3, 2, 4, 1], [2, 3, 4, 0, 1, 4]])
    labels = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    n_id = torch.tensor([7, 2, 5, 0, 9])  # local -> global ids of a 10-node graph
    batch = Data(x=torch.zeros(5, 1, dtype=torch.float64), edge_index=EDGES, edge_label_index=label_index,
                 edge_label=labels, n_id=n_id)
    # Global edges: (0, 9) is the drawn negative local 3 -> 4, and (7, 5) is the positive local 0 -> 2, whose
    # reverse is the drawn negative local 2 -> 0. Local 4 -> 1 and 1 -> 4 (global 9 - 2) stay negatives.
    keys = forbidden_pair_keys(torch.tensor([[0, 2, 7, 6], [9, 8, 5, 8]]), 10)

    def bce(i, j, label):
        s = float(Z[i] @ Z[j])
        return -math.log(sig(s)) if label else -math.log(1 - sig(s))

    pos = [bce(0, 2, 1), bce(1, 3, 1)]
    negs = {(3, 4): bce(3, 4, 0), (2, 0): bce(2, 0, 0), (4, 1): bce(4, 1, 0), (1, 4): bce(1, 4, 0)}
    kl_mean = sum(-0.5 * sum(1 + 2 * float(logstd[i, d]) - float(Z[i, d]) ** 2 - math.exp(float(logstd[i, d])) ** 2
                             for d in range(2)) for i in range(5)) / 5
    for forbidden, masked in ((None, set()), (keys, {(3, 4), (2, 0)})):
        kept = [v for pair, v in negs.items() if pair not in masked]
        recon = sum(pos) / 2 + sum(kept) / len(kept)
        for model in (GAE(FixedEncoder(Z)), VGAE(FixedEncoder(Z, logstd), kl_weight=kl_weight)):
            model.eval()  # z = mu
            out = model.loss_batch(batch, forbidden, None if forbidden is None else 10)
            assert out.components["recon"].item() == pytest.approx(recon, abs=1e-12)
            if isinstance(model, VGAE):
                assert out.components["kl"].item() == pytest.approx(kl_mean / 5, abs=1e-12)  # / the batch's nodes
                assert out.total.item() == pytest.approx(recon + kl_weight * kl_mean / 5, abs=1e-12)
            else:
                assert out.total.item() == pytest.approx(recon, abs=1e-12) and set(out.components) == {"recon"}
    assert abs(kl_mean / 5) > 1e-2 and len(negs) == 4
    vgae = VGAE(FixedEncoder(Z, logstd))
    with pytest.raises(ValueError, match=r"^loss_batch\(forbidden=\.\.\.\) needs num_nodes, the node count the keys "
                                         r"were built with$"):
        vgae.loss_batch(batch, keys)
    no_ids = batch.clone()
    del no_ids.n_id
    with pytest.raises(ValueError, match=r"loss_batch\(forbidden=\.\.\.\) needs batches with n_id"):
        vgae.loss_batch(no_ids, keys, 10)
    positives = batch.clone()
    positives.edge_label = torch.ones(6)
    with pytest.raises(ValueError, match="the link loader's batches carry only positive labels"):
        GAE(FixedEncoder(Z)).loss_batch(positives)
    unlabelled = batch.clone()
    del unlabelled.edge_label_index
    with pytest.raises(ValueError, match="loss_batch expects a LinkNeighborLoader batch with edge_label_index"):
        GAE(FixedEncoder(Z)).loss_batch(unlabelled)


def test_vgae_kl_loss_by_hand_and_a_missing_half_named():
    vgae = VGAE(lambda x, edge_index: (x, x))
    mu = torch.tensor([[0.5, -1.0], [2.0, 0.0], [0.0, 0.3]])
    logstd = torch.tensor([[0.1, -0.2], [0.0, 0.4], [-0.5, 0.0]])
    expected = -0.5 * (1 + 2 * logstd - mu**2 - torch.exp(2 * logstd)).sum(1).mean()
    assert torch.allclose(vgae.kl_loss(mu, logstd), expected)
    # before any encode() there is no cached half to fall back on: either half alone is an error that names both
    for args in ({"mu": mu}, {"logstd": logstd}):
        with pytest.raises(RuntimeError, match="needs mu and logstd"):
            vgae.kl_loss(**args)

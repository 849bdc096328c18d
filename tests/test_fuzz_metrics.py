"""Fuzz harness for the metrics and the GAE / VGAE / DAEGC losses, against independent oracles.

Each generated call is classified as

- ``correct``: a valid input gave the oracle's answer (brute-force matching, hand-written ARI/NMI/AUC and
  conductance, networkx modularity, scikit-learn AP, closed-form BCE/KL losses);
- ``clear_error``: an invalid input raised ``TypeError``/``ValueError`` naming the offending argument;
- anything else is a failure: a wrong value, a valid input rejected, an unclear error, an invalid input
  accepted, or a hang (a case running over ``HANG_S`` seconds).

The case count comes from ``PYG_EM_FUZZ_CASES`` (CI-sized by default; ``make fuzz`` runs 2000 per test). With
``PYG_EM_FUZZ_REPORT=<folder>`` each test also writes its counts as JSON there.
"""

from __future__ import annotations

import collections
import itertools
import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from pyg_em.metrics import ari, clustering_accuracy, conductance, link_ap, link_auc, modularity, nmi
from pyg_em.models import DAEGC, GAE, VGAE
from pyg_em.nn import GCNEncoder, VariationalGCNEncoder

CASES = int(os.environ.get("PYG_EM_FUZZ_CASES", "150"))
HANG_S = 30.0

pytestmark = pytest.mark.fuzz


class _Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Hang


class Harness:
    """Runs cases and classifies their outcomes."""

    def __init__(self, name):
        self.name = name
        self.counts = collections.Counter()
        self.failures: list[str] = []

    def valid(self, label, call, check):
        """``call()`` must return a value that ``check(value)`` accepts."""
        outcome = self._run(call)
        if isinstance(outcome, BaseException):
            self._fail(label, f"valid input rejected or crashed: {type(outcome).__name__}: {outcome}")
        elif outcome is _HUNG:
            self._fail(label, "hang")
        else:
            ok, detail = check(outcome)
            if ok:
                self.counts["correct"] += 1
            else:
                self._fail(label, f"wrong result: {detail}")

    def invalid(self, label, call, names):
        """``call()`` must raise TypeError/ValueError whose message names one of ``names``."""
        outcome = self._run(call)
        if outcome is _HUNG:
            self._fail(label, "hang")
        elif not isinstance(outcome, BaseException):
            self._fail(label, f"invalid input accepted, returned {outcome!r:.80}")
        elif isinstance(outcome, (TypeError, ValueError)) and any(n in str(outcome) for n in names):
            self.counts["clear_error"] += 1
        else:
            self._fail(label, f"unclear error {type(outcome).__name__}: {outcome}")

    def _run(self, call):
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, HANG_S)
        try:
            return call()
        except _Hang:
            return _HUNG
        except Exception as error:  # classified by the caller
            return error
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def _fail(self, label, detail):
        self.counts["failure"] += 1
        self.failures.append(f"{label}: {detail}")

    def finish(self):
        total = sum(self.counts.values())
        report = {"harness": self.name, "cases": total, **{k: self.counts[k] for k in
                                                           ("correct", "clear_error", "failure")}}
        folder = os.environ.get("PYG_EM_FUZZ_REPORT")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / f"{self.name}.json").write_text(json.dumps(report | {"failures": self.failures[:50]}))
        print(report)
        assert total >= CASES
        assert not self.failures, "\n".join(self.failures[:20])


_HUNG = object()


def _close(a, b, rtol=1e-9, atol=1e-12):
    return (math.isclose(a, b, rel_tol=rtol, abs_tol=atol), f"{a!r} != oracle {b!r}")


# -- oracles ----------------------------------------------------------------------------------------------------
def acc_oracle(y, p):
    """Brute force over every injective cluster -> class map."""
    classes, clusters = sorted(set(y)), sorted(set(p))
    count = collections.Counter(zip(p, y))
    best = 0
    if len(clusters) <= len(classes):
        for image in itertools.permutations(classes, len(clusters)):
            best = max(best, sum(count[(k, c)] for k, c in zip(clusters, image)))
    else:
        for chosen in itertools.permutations(clusters, len(classes)):
            best = max(best, sum(count[(k, c)] for k, c in zip(chosen, classes)))
    return best / len(y)


def _table(y, p):
    _, yi = np.unique(np.asarray(y), return_inverse=True)
    _, pi = np.unique(np.asarray(p), return_inverse=True)
    table = np.zeros((yi.max() + 1, pi.max() + 1))
    np.add.at(table, (yi, pi), 1)
    return table


def ari_oracle(y, p):
    t = _table(y, p)
    comb = lambda v: v * (v - 1) / 2  # noqa: E731
    index, a, b, total = comb(t).sum(), comb(t.sum(1)).sum(), comb(t.sum(0)).sum(), comb(t.sum())
    expected = a * b / total if total else 0.0
    maximum = (a + b) / 2
    return 1.0 if maximum == expected else (index - expected) / (maximum - expected)


def nmi_oracle(y, p):
    t = _table(y, p)
    n = t.sum()
    if t.shape[0] == t.shape[1] == 1:
        return 1.0
    pij, pi, pj = t / n, t.sum(1) / n, t.sum(0) / n
    nz = pij > 0
    mi = float((pij[nz] * np.log(pij[nz] / np.outer(pi, pj)[nz])).sum())
    h = lambda q: -float((q[q > 0] * np.log(q[q > 0])).sum())  # noqa: E731
    return mi / max((h(pi) + h(pj)) / 2, np.finfo(np.float64).eps)


def auc_oracle(pos, neg):
    pos, neg = np.asarray(pos, dtype=np.float64)[:, None], np.asarray(neg, dtype=np.float64)[None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def conductance_oracle(n, edges, weights, labels):
    a = np.zeros((n, n))
    for (u, v), w in zip(edges.T, weights):
        a[u, v] += w
    _, idx = np.unique(np.asarray(labels), return_inverse=True)
    deg, total, phis = a.sum(1), a.sum(), []
    for c in range(idx.max() + 1):
        inside = idx == c
        cut, vol = a[inside][:, ~inside].sum(), deg[inside].sum()
        denom = min(vol, total - vol)
        phis.append(cut / denom if denom > 0 else 0.0)
    return float(np.mean(phis))


def modularity_oracle(n, edges, weights, labels):
    nx = pytest.importorskip("networkx")
    g = nx.Graph()
    g.add_nodes_from(range(n))
    for (u, v), w in zip(edges.T, weights):
        if u < v:
            g.add_edge(int(u), int(v), weight=float(w))
    groups = collections.defaultdict(set)
    for node, label in enumerate(labels):
        groups[label].add(node)
    return nx.algorithms.community.modularity(g, list(groups.values()), weight="weight")


# -- generators -------------------------------------------------------------------------------------------------
def _labels(rng, n, k):
    return rng.integers(0, k, size=n)


def _form(rng, labels):
    """The same labels as a user might hold them."""
    choice = rng.integers(6)
    if choice == 0:
        return labels.tolist()
    if choice == 1:
        return labels.astype(np.int32)
    if choice == 2:
        return torch.as_tensor(labels)
    if choice == 3:
        return np.array([f"c{v}" for v in labels])
    if choice == 4:
        return labels.astype(np.int64) * 1_000_000_007 + 3  # huge ids
    return labels.astype(np.float64)  # integral floats


def _undirected(rng, n, p=0.3, weighted=False):
    pairs = [(u, v) for u in range(n) for v in range(u + 1, n) if rng.random() < p]
    if not pairs:
        pairs = [(0, 1)]
    e = np.array(pairs).T
    w = rng.uniform(0.1, 3.0, size=e.shape[1]) if weighted else np.ones(e.shape[1])
    return np.concatenate([e, e[::-1]], axis=1), np.concatenate([w, w])


def _clustering_case(h, rng, i):
    n, k, c = int(rng.integers(2, 40)), int(rng.integers(1, 5)), int(rng.integers(1, 6))
    y, p = _labels(rng, n, k), _labels(rng, n, c)
    if rng.random() < 0.25:  # PyG's unlabelled marker, excluded with ignore_label
        y = np.where(rng.random(n) < 0.3, -1, y)
        if not (y >= 0).any():
            y[0] = 0
        keep = y >= 0
        yk, pk = y[keep], p[keep]
        h.valid(f"acc-ignore[{i}]", lambda: clustering_accuracy(y, p, ignore_label=-1),
                lambda v: _close(v, acc_oracle(yk.tolist(), pk.tolist())))
        h.valid(f"ari-ignore[{i}]", lambda: ari(y, p, ignore_label=-1), lambda v: _close(v, ari_oracle(yk, pk)))
        if (y < 0).any():
            h.invalid(f"acc-negative[{i}]", lambda: clustering_accuracy(y, p), ["y_true", "ignore_label"])
        return
    yf, pf = _form(rng, y), _form(rng, p)
    h.valid(f"acc[{i}]", lambda: clustering_accuracy(yf, pf), lambda v: _close(v, acc_oracle(y.tolist(), p.tolist())))
    h.valid(f"nmi[{i}]", lambda: nmi(yf, pf), lambda v: _close(v, nmi_oracle(y, p), rtol=1e-7, atol=1e-10))
    h.valid(f"ari[{i}]", lambda: ari(yf, pf), lambda v: _close(v, ari_oracle(y, p), rtol=1e-7, atol=1e-10))


def _clustering_invalid(h, rng, i):
    n = int(rng.integers(2, 20))
    y = _labels(rng, n, 3)
    cases = [
        (lambda: clustering_accuracy(y.reshape(1, -1), y), ["y_true"]),
        (lambda: clustering_accuracy(y, y[:-1]), ["y_true and y_pred"]),
        (lambda: nmi([], []), ["y_true"]),
        (lambda: ari(y + 0.5, y), ["y_true"]),
        (lambda: clustering_accuracy(y, np.r_[np.nan, y[1:]]), ["y_pred"]),
        (lambda: clustering_accuracy(np.full(n, -1), y, ignore_label=-1), ["ignore_label"]),
        (lambda: clustering_accuracy(y, [object()] * n), ["y_pred"]),
    ]
    call, names = cases[i % len(cases)]
    h.invalid(f"clustering-invalid[{i}]", call, names)


def _link_case(h, rng, i):
    npos, nneg = int(rng.integers(1, 50)), int(rng.integers(1, 50))
    kind = rng.integers(4)
    if kind == 0:  # saturated sigmoid outputs, separable only in float64
        pos = 1 - rng.uniform(1e-13, 1e-12, npos)
        neg = 1 - rng.uniform(2e-12, 1e-11, nneg)
    elif kind == 1:  # many ties
        pos, neg = rng.integers(0, 3, npos).astype(float), rng.integers(0, 3, nneg).astype(float)
    else:
        pos, neg = rng.normal(1, 1, npos), rng.normal(0, 1, nneg)
    dtype = [torch.float64, torch.float32, torch.bfloat16, None][rng.integers(4)]
    if dtype is None:
        pf, nf = pos, neg
        pv, nv = pos, neg
    else:
        pf, nf = torch.tensor(pos).to(dtype), torch.tensor(neg).to(dtype)
        pv, nv = pf.double().numpy(), nf.double().numpy()
    labels = np.r_[np.ones(npos), np.zeros(nneg)]
    h.valid(f"auc[{i}]", lambda: link_auc(pf, nf), lambda v: _close(v, auc_oracle(pv, nv)))
    h.valid(f"ap[{i}]", lambda: link_ap(pf, nf),
            lambda v: _close(v, float(average_precision_score(labels, np.r_[pv, nv]))))


def _link_invalid(h, rng, i):
    good = torch.rand(5)
    cases = [
        (lambda: link_auc(torch.tensor([]), good), ["pos_scores"]),
        (lambda: link_ap(good, torch.tensor([0.1, float("nan")])), ["neg_scores"]),
        (lambda: link_auc(["a", "b"], good), ["pos_scores"]),
        (lambda: link_auc(good, [float("inf")]), ["neg_scores"]),
    ]
    call, names = cases[i % len(cases)]
    h.invalid(f"link-invalid[{i}]", call, names)


def _graph_case(h, rng, i):
    n = int(rng.integers(2, 25))
    edges, weights = _undirected(rng, n, p=float(rng.uniform(0.05, 0.6)), weighted=bool(rng.integers(2)))
    labels = _labels(rng, n, int(rng.integers(1, 5)))
    form = _form(rng, labels)
    if isinstance(form, np.ndarray) and form.dtype.kind == "f":
        form = labels  # float labels are for the clustering metrics
    e = torch.as_tensor(edges)
    w = None if np.all(weights == 1) and rng.integers(2) else torch.as_tensor(weights)
    h.valid(f"modularity[{i}]", lambda: modularity(e, form, w),
            lambda v: _close(v, modularity_oracle(n, edges, weights, labels.tolist()), rtol=1e-9, atol=1e-12))
    h.valid(f"conductance[{i}]", lambda: conductance(e, form, w),
            lambda v: _close(v, conductance_oracle(n, edges, weights, labels), rtol=1e-9, atol=1e-12))


def _graph_invalid(h, rng, i):
    e = torch.as_tensor(_undirected(rng, 6)[0])
    labels = torch.as_tensor(_labels(rng, 6, 2))
    cases = [
        (lambda: modularity(e.int(), labels), ["edge_index"]),
        (lambda: modularity(e + 6, labels), ["edge_index"]),
        (lambda: conductance(e[:1], labels), ["edge_index"]),
        (lambda: modularity(e, labels, -torch.ones(e.size(1), dtype=torch.float64)), ["edge_weight"]),
        (lambda: conductance(e, labels, torch.ones(3)), ["edge_weight"]),
        (lambda: modularity(e, labels.float() + 0.5), ["labels"]),
        (lambda: modularity(e, labels.reshape(2, 3)), ["labels"]),
        (lambda: modularity(torch.empty(2, 0, dtype=torch.long), labels), ["edge_index"]),
        (lambda: conductance(e, []), ["labels"]),
    ]
    call, names = cases[i % len(cases)]
    h.invalid(f"graph-invalid[{i}]", call, names)


@pytest.mark.fuzz
def test_fuzz_metrics():
    h = Harness("metrics")
    rng = np.random.default_rng(20261201)
    families = [_clustering_case, _clustering_invalid, _link_case, _link_invalid, _graph_case, _graph_invalid]
    weights = np.array([3, 1, 2, 1, 2, 1], dtype=float)
    i = 0
    while sum(h.counts.values()) < CASES:
        family = families[rng.choice(len(families), p=weights / weights.sum())]
        family(h, rng, i)
        i += 1
    h.finish()


# -- losses -----------------------------------------------------------------------------------------------------
def _bce_oracle(z, pos, neg):
    z = z.detach().double().numpy()
    logit = lambda e: (z[np.asarray(e[0])] * z[np.asarray(e[1])]).sum(1)  # noqa: E731
    softplus = lambda t: np.logaddexp(0, t)  # noqa: E731  -log sigmoid(t) = softplus(-t)
    return float(softplus(-logit(pos)).mean() + softplus(logit(neg)).mean())


def _finite_loss(out):
    total = out.total
    total.backward()
    grads_ok = all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in _finite_loss.model.parameters())
    ok = total.dim() == 0 and bool(torch.isfinite(total)) and float(total) >= 0 and grads_ok
    return ok, f"loss {float(total)!r}, finite gradients: {grads_ok}"


def _graph_data(rng, dtype):
    from torch_geometric.data import Data

    n, f = int(rng.integers(3, 25)), int(rng.integers(1, 7))
    edges, weights = _undirected(rng, n, p=float(rng.uniform(0.1, 0.5)), weighted=True)
    x = torch.as_tensor(rng.normal(size=(n, f))).to(dtype)
    data = Data(x=x, edge_index=torch.as_tensor(edges))
    if rng.integers(2):
        data.edge_weight = torch.as_tensor(weights).to(dtype)
    return data


def _build(kind, f, rng, dtype):
    if kind == "gae":
        model = GAE(GCNEncoder(f, 8, 4))
    elif kind == "vgae":
        model = VGAE(VariationalGCNEncoder(f, 8, 4))
    else:
        model = DAEGC(f, int(rng.integers(2, 4)), hidden_channels=8, embedding_channels=4)
    return model.to(dtype)


def _loss_case(h, rng, i):
    kind = ["gae", "vgae", "daegc"][i % 3]
    dtype = [torch.float32, torch.float64][rng.integers(2)]
    data = _graph_data(rng, dtype)
    n = data.num_nodes
    model = _build(kind, data.num_features, rng, dtype)
    _finite_loss.model = model
    w = getattr(data, "edge_weight", None)
    neg = torch.as_tensor(rng.integers(0, n, size=(2, int(rng.integers(1, 30)))))
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    if kind == "daegc":
        z = model.embed(data.x, data.edge_index, w)
        model.head.refresh_target(model.head.soft_assignment(z))
        h.valid(f"daegc-recon[{i}]", lambda: float(model.recon_loss(z, data.edge_index, neg)),
                lambda v: _close(v, _bce_oracle(z, data.edge_index, neg), rtol=tol, atol=tol))
        q = model.head.soft_assignment(z)
        p = model.head.target.double()
        kl = float((p * (p.clamp_min(1e-300).log() - q.double().clamp_min(1e-12).log())).sum() / n)
        h.valid(f"daegc-kl[{i}]", lambda: float(model.head.kl_loss(q)), lambda v: _close(v, kl, rtol=tol, atol=tol))
        h.valid(f"daegc-loss[{i}]", lambda: model.loss(data), _finite_loss)
        model.zero_grad()
        h.valid(f"daegc-pretrain[{i}]", lambda: model.pretrain_loss(data), _finite_loss)
        return
    z = model.encode(data.x, data.edge_index) if w is None else model.encode(data.x, data.edge_index, w)
    h.valid(f"{kind}-recon[{i}]", lambda: float(model.recon_loss(z, data.edge_index, neg)),
            lambda v: _close(v, _bce_oracle(z, data.edge_index, neg), rtol=tol, atol=tol))
    if kind == "vgae":
        mu, logstd = model.__mu__.double(), model.__logstd__.double().clamp(max=10)
        kl = float((-0.5 * (1 + 2 * logstd - mu**2 - logstd.exp() ** 2).sum(1)).mean())
        h.valid(f"vgae-kl[{i}]", lambda: float(model.kl_loss()), lambda v: _close(v, kl, rtol=tol, atol=tol))
    model.zero_grad()
    h.valid(f"{kind}-loss[{i}]", lambda: model.loss(data), _finite_loss)


def _loss_invalid(h, rng, i):
    kind = ["gae", "vgae", "daegc"][i % 3]
    data = _graph_data(rng, torch.float32)
    model = _build(kind, data.num_features, rng, torch.float32)
    if kind == "daegc":
        model.head.refresh_target(torch.full((data.num_nodes, model.n_clusters), 1.0 / model.n_clusters))
    e = data.edge_index
    mutations = [
        ("int32", lambda d: setattr(d, "edge_index", e.int()), ["edge_index"]),
        ("out-of-range", lambda d: setattr(d, "edge_index", e + d.num_nodes), ["edge_index"]),
        ("negative-id", lambda d: setattr(d, "edge_index", torch.cat([e[:, :1] * 0 - 1, e], 1)), ["edge_index"]),
        ("empty", lambda d: setattr(d, "edge_index", e[:, :0]), ["edge_index", "pos_edge_index"]),
        ("nan-x", lambda d: d.x.__setitem__((0, 0), float("nan")), ["x"]),
        ("int-x", lambda d: setattr(d, "x", d.x.long()), ["x"]),
        ("negative-weight", lambda d: setattr(d, "edge_weight", -torch.ones(e.size(1))), ["edge_weight"]),
        ("short-weight", lambda d: setattr(d, "edge_weight", torch.ones(e.size(1) - 1)), ["edge_weight"]),
    ]
    if kind == "daegc":  # DAEGC row-normalises by the weighted degree
        mutations.append(("zero-degree", lambda d: setattr(d, "edge_weight", torch.zeros(e.size(1))), ["edge_weight"]))
    name, mutate, names = mutations[int(rng.integers(len(mutations)))]
    mutate(data)
    losses = [model.loss] + ([model.pretrain_loss] if kind == "daegc" else [])
    for loss in losses:
        h.invalid(f"{kind}-{name}[{i}]", lambda loss=loss: loss(data), names)


@pytest.mark.fuzz
def test_fuzz_losses():
    torch.manual_seed(0)
    h = Harness("losses")
    rng = np.random.default_rng(7)
    i = 0
    while sum(h.counts.values()) < CASES:
        (_loss_case if rng.random() < 0.6 else _loss_invalid)(h, rng, i)
        i += 1
    h.finish()

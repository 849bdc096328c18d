import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from pyg_em.metrics import (
    ari,
    clustering_accuracy,
    clustering_metrics,
    conductance,
    f1_macro,
    link_prediction_metrics,
    modularity,
    nmi,
)
from tests.conftest import two_triangles

labels = st.lists(st.integers(0, 5), min_size=2, max_size=60)


def test_trap_case_is_not_perfect():
    pred = [2, 2, 2, 2, 0, 0, 1, 1]
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    assert clustering_accuracy(y, pred) == pytest.approx(0.75)
    assert f1_macro(y, pred) < 1.0


@given(labels, st.permutations(range(6)))
@settings(max_examples=60, deadline=None)
def test_relabelling_invariance(y, perm):
    rng = np.random.default_rng(len(y))
    pred = rng.integers(0, 4, size=len(y))
    relabelled = np.asarray(perm)[pred]
    for fn in (clustering_accuracy, nmi, ari, f1_macro):
        assert fn(y, pred) == pytest.approx(fn(y, relabelled))


@given(labels, st.permutations(range(6)))
@settings(max_examples=60, deadline=None)
def test_equal_partitions_score_one(y, perm):
    pred = np.asarray(perm)[np.asarray(y)]
    assert clustering_accuracy(y, pred) == 1.0
    assert f1_macro(y, pred) == pytest.approx(1.0)


@given(labels, labels)
@settings(max_examples=60, deadline=None)
def test_bounds(y, pred):
    n = min(len(y), len(pred))
    y, pred = y[:n], pred[:n]
    m = clustering_metrics(y, pred)
    assert 0.0 <= m["acc"] <= 1.0 and 0.0 <= m["f1"] <= 1.0 and 0.0 <= m["nmi"] <= 1.0 + 1e-12
    assert -1.0 <= m["ari"] <= 1.0


@given(labels, labels)
@settings(max_examples=40, deadline=None)
def test_accuracy_matches_bruteforce_assignment(y, pred):
    n = min(len(y), len(pred))
    y, pred = np.asarray(y[:n]), np.asarray(pred[:n])
    table = np.zeros((6, 6))
    np.add.at(table, (pred, y), 1)
    r, c = linear_sum_assignment(-table)
    assert clustering_accuracy(y, pred) == pytest.approx(table[r, c].sum() / n)


def test_metric_input_errors():
    with pytest.raises(ValueError, match="same length"):
        clustering_accuracy([0, 1], [0])
    with pytest.raises(TypeError, match="integer labels"):
        clustering_accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        nmi([], [])


def test_modularity_and_conductance_two_triangles():
    e = two_triangles()
    perfect = torch.tensor([0, 0, 0, 1, 1, 1])
    # each triangle holds half the edges and half the degree: Q = 2 * (1/2 - 1/4)
    assert modularity(e, perfect) == pytest.approx(0.5)
    assert conductance(e, perfect) == pytest.approx(0.0)
    mixed = torch.tensor([0, 1, 0, 1, 0, 1])
    assert modularity(e, mixed) < 0.5
    assert conductance(e, mixed) > 0.0


def test_modularity_matches_networkx():
    nx = pytest.importorskip("networkx")
    g = nx.karate_club_graph()
    edges = torch.tensor(list(g.edges())).t()
    e = torch.cat([edges, edges.flip(0)], 1)
    part = torch.tensor([0 if g.nodes[i]["club"] == "Mr. Hi" else 1 for i in g.nodes])
    comms = [set(np.flatnonzero(part.numpy() == c)) for c in (0, 1)]
    assert modularity(e, part) == pytest.approx(nx.algorithms.community.modularity(g, comms, weight=None))


def test_link_metrics():
    m = link_prediction_metrics(torch.tensor([0.9, 0.8]), torch.tensor([0.1, 0.2]))
    assert m == {"auc": 1.0, "ap": 1.0}
    m = link_prediction_metrics(torch.tensor([0.1]), torch.tensor([0.9]))
    assert m["auc"] == 0.0
    with pytest.raises(ValueError, match="neg_scores is empty"):
        link_prediction_metrics(torch.tensor([0.1]), torch.tensor([]))


def test_unlabelled_nodes_are_never_a_class():
    # Two true classes plus two unlabelled nodes; the prediction splits class 1 into clusters 1 and 2.
    y = np.array([0, 0, 1, 1, 1, 1, -1, -1])
    pred = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    with pytest.raises(ValueError, match="negative label -1.*ignore_label=-1"):
        clustering_accuracy(y, pred)
    # Scored on the 6 labelled nodes: cluster 2 is unmatched, so 4 of 6 are right (never 1.0).
    assert clustering_accuracy(y, pred, ignore_label=-1) == pytest.approx(4 / 6)
    assert nmi(y, pred, ignore_label=-1) == pytest.approx(nmi(y[:6], pred[:6]))
    assert ari(y, pred, ignore_label=-1) == pytest.approx(ari(y[:6], pred[:6]))
    assert f1_macro(y, pred, ignore_label=-1) == pytest.approx(f1_macro(y[:6], pred[:6]))
    assert clustering_metrics(y, pred, ignore_label=-1)["acc"] == pytest.approx(4 / 6)
    from pyg_em.metrics import match_clusters

    assert match_clusters(y, pred, ignore_label=-1).tolist() == [0, 0, 1, 1, -1, -1, -1, -1]
    with pytest.raises(ValueError, match="nothing to score"):
        clustering_accuracy([-1, -1], [0, 1], ignore_label=-1)


def test_string_labels_are_accepted():
    y = ["cat", "cat", "dog", "dog", "eel"]
    pred = [3, 3, 1, 1, 1]
    assert clustering_accuracy(y, pred) == pytest.approx(4 / 5)
    assert nmi(y, pred) == pytest.approx(nmi([0, 0, 1, 1, 2], pred))


def test_link_scores_keep_float64():
    sk = pytest.importorskip("sklearn.metrics")
    # Saturated sigmoid outputs differ only below float32 resolution.
    pos = torch.tensor([1 - 1e-12, 1 - 2e-12, 1 - 3e-12], dtype=torch.float64)
    neg = torch.tensor([1 - 4e-12, 1 - 5e-12], dtype=torch.float64)
    from pyg_em.metrics import link_ap, link_auc

    labels = np.r_[np.ones(3), np.zeros(2)]
    scores = np.r_[pos.numpy(), neg.numpy()]
    assert link_auc(pos, neg) == sk.roc_auc_score(labels, scores) == 1.0
    assert link_ap(pos, neg) == sk.average_precision_score(labels, scores) == 1.0
    assert link_auc(pos.to(torch.bfloat16), neg.to(torch.bfloat16)) == 0.5  # ties in bf16, no crash
    with pytest.raises(TypeError, match="pos_scores must be an array of real scores"):
        link_auc(["a"], [0.1])


def test_graph_metrics_relabel_with_unique():
    e = two_triangles()
    reference = modularity(e, torch.tensor([0, 0, 0, 1, 1, 1]))
    # A label of 1e9 must not size a buffer by it; strings and negative ids are cluster ids like any other.
    for labels in (torch.tensor([7, 7, 7, 10**9, 10**9, 10**9]), ["a", "a", "a", "b", "b", "b"],
                   np.array([-5, -5, -5, 2, 2, 2]), torch.tensor([0, 0, 0, 1, 1, 1], dtype=torch.int32)):
        assert modularity(e, labels) == pytest.approx(reference)
        assert conductance(e, labels) == pytest.approx(0.0)
    # Unused ids do not count as empty clusters in the conductance mean.
    mixed = torch.tensor([0, 1, 0, 1, 0, 1])
    assert conductance(e, mixed * 1000) == pytest.approx(conductance(e, mixed))
    with pytest.raises(TypeError, match="labels must be a 1-D integer tensor"):
        modularity(e, torch.zeros(6))
    with pytest.raises(ValueError, match="labels is empty"):
        modularity(torch.empty(2, 0, dtype=torch.long), [])

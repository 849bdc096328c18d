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

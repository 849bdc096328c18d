"""GEMGraphLearner, candidate graphs, the synthetic recovery task and its example."""

import doctest
import importlib.util
from pathlib import Path

import pytest
import torch

import pyg_em.em.learner as learner_module
from pyg_em.em import (
    GEMGraphLearner,
    GEMImplicitEM,
    GEMUnrolledEM,
    complete_graph,
    edge_labels,
    knn_candidate_graph,
    smooth_graph_signals,
    undirected_pairs,
)
from pyg_em.train import Trainer

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gem_graph_learning.py"


def test_seed_usage_doc_example():
    finder = doctest.DocTestFinder()
    (test,) = [t for t in finder.find(learner_module.GEMGraphLearner) if t.examples]
    assert doctest.DocTestRunner().run(test).failed == 0


def test_learner_outputs_align_with_its_edge_index_and_train_with_the_trainer():
    torch.manual_seed(0)
    x, target = torch.randn(8, 2), torch.randn(8, 2)
    learner = GEMGraphLearner(complete_graph(8), num_nodes=8, layer=GEMUnrolledEM(num_layers=2, eps=0.1))
    weight, z_hat = learner(x)
    assert learner.num_candidates == 28 and weight.shape == (56,) and z_hat.shape == (8, 2)
    edge_index = learner.edge_index
    torch.testing.assert_close(weight[:28], weight[28:])  # column u + U reverses column u
    assert bool((edge_index[0, :28] == edge_index[1, 28:]).all())

    def step(model, data):
        from pyg_em.models.base import LossOutput

        _, z = model(data.x)
        loss = ((z - data.y) ** 2).sum()
        return LossOutput(loss, {"task": loss})

    from torch_geometric.data import Data

    history = Trainer(learner, epochs=15, lr=0.1, step_fn=step, progress=False).fit(Data(x=x, y=target))
    losses = history["loss"] if "loss" in history else history["task"]
    assert losses[-1] < losses[0]
    assert "num_candidates=28" in repr(learner)


def test_learner_with_implicit_layer_and_bad_input():
    x = torch.randn(6, 3, dtype=torch.float64)
    learner = GEMGraphLearner(complete_graph(6), 6, layer=GEMImplicitEM(eta=0.1, eps=0.1, prior=1.0)).double()
    weight, _ = learner(x)
    weight.sum().backward()
    assert learner.theta.grad is not None and torch.isfinite(learner.theta.grad).all()
    with pytest.raises(ValueError, match="rows"):
        learner(torch.randn(5, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="layer"):
        GEMGraphLearner(complete_graph(4), 4, layer=torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="self loops"):
        GEMGraphLearner(torch.tensor([[0, 1], [0, 1]]), 2)


def test_knn_candidate_graph_is_symmetric_and_loop_free():
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    edge_index = knn_candidate_graph(points, 1)
    pairs, _ = undirected_pairs(edge_index, 4)
    # nearest neighbours: 0<->1, 1->0, 2->1, 3->2
    assert pairs.tolist() == [[0, 1, 2], [1, 2, 3]]
    assert edge_index.size(1) == 6
    with pytest.raises(ValueError, match="k must be"):
        knn_candidate_graph(points, 4)


def test_synthetic_signals_and_edge_labels():
    x, true_edge_index, true_weight = smooth_graph_signals(num_nodes=30, num_signals=5, k=3, seed=1)
    assert x.shape == (30, 5) and true_edge_index.size(1) == true_weight.numel()
    pairs, _ = undirected_pairs(true_edge_index, 30)
    assert bool(edge_labels(pairs, true_edge_index, 30).all())
    other = torch.tensor([[0], [29]])
    assert edge_labels(other, true_edge_index, 30).item() == bool(((pairs[0] == 0) & (pairs[1] == 29)).any())


def test_example_recovers_the_hidden_graph_better_than_signal_distance():
    spec = importlib.util.spec_from_file_location("gem_graph_learning", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.recover(num_nodes=60, num_signals=40, num_layers=60, seed=0)
    assert result["auc_gem"] > result["auc_distance"] + 0.03
    assert result["auc_gem"] > 0.75

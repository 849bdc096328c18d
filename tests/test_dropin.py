"""Drop-in where PyG users plug in: callable encoders, edge weights, RandomLinkSplit's outputs, one-direction
edge lists, and the mini-batch path's negatives (never a training or held-out edge)."""

import warnings

import pytest
import torch
import torch_geometric.transforms as T
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv, InnerProductDecoder

from pyg_em.datasets import attributed_sbm
from pyg_em.models import DAEGC, GAE, evaluate_link_prediction, link_split
from pyg_em.recipes import fit_link_prediction, link_neighbor_loader
from pyg_em.utils import forbidden_pair_keys, is_forbidden
from tests.conftest import requires_sampler


class PyGExampleEncoder(torch.nn.Module):
    """PyG's examples/autoencoder.py encoder: forward(x, edge_index), no edge_weight."""

    def __init__(self, f: int) -> None:
        super().__init__()
        self.conv = GCNConv(f, 8)

    def forward(self, x, edge_index):
        return self.conv(x, edge_index)


def _weighted_graph():
    data = attributed_sbm(60, 2, 6.0, num_features=5, seed=0)
    data.edge_weight = torch.rand(data.edge_index.size(1))
    return data


def test_lambda_encoder_and_repr_like_pyg():
    lin = torch.nn.Linear(5, 4)
    model = GAE(lambda x, edge_index: lin(x))
    z = model.encode(torch.randn(6, 5), torch.zeros(2, 0, dtype=torch.long))
    assert z.shape == (6, 4)
    assert "GAE(encoder=" in repr(model)
    half = GAE.__new__(GAE)  # a half-built object: repr must not raise
    assert "GAE" in repr(half)


def test_edge_weight_only_reaches_encoders_that_take_it():
    data = _weighted_graph()
    model = GAE(PyGExampleEncoder(5))
    with pytest.warns(UserWarning, match="takes no edge_weight"):
        out = model.loss(data)
    assert torch.isfinite(out.total)
    from pyg_em.nn import GCNEncoder

    weighted = GAE(GCNEncoder(5, 8, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z_w = weighted.embed(data.x, data.edge_index, data.edge_weight)
    z = weighted.embed(data.x, data.edge_index)
    assert not torch.allclose(z_w, z)  # the weights were used


def test_default_random_link_split_output_trains_and_evaluates():
    from pyg_em.train import seed_everything

    seed_everything(0)  # RandomLinkSplit's negatives draw from Python's random too
    data = attributed_sbm(120, 3, 8.0, num_features=8, seed=0)
    train, val, test = T.RandomLinkSplit(num_val=0.1, num_test=0.1, is_undirected=True)(data)  # split_labels=False
    assert "pos_edge_label_index" not in train and bool((train.edge_label == 0).any())
    from pyg_em.nn import GCNEncoder

    model = GAE(GCNEncoder(8, 16, 8))
    loss = model.loss(train)
    # the loss uses the given negatives: mean BCE of the positive pairs plus mean BCE of the negative ones
    z = model.encode(train.x, train.edge_index)
    logits = (z[train.edge_label_index[0]] * z[train.edge_label_index[1]]).sum(-1)
    pos, neg = logits[train.edge_label == 1], logits[train.edge_label == 0]
    expected = torch.nn.functional.softplus(-pos).mean() + torch.nn.functional.softplus(neg).mean()
    assert torch.allclose(loss.total, expected, atol=1e-6)
    fit_link_prediction(model, train, val, epochs=60, lr=0.01)
    scores = evaluate_link_prediction(model, test)
    assert scores["auc"] > 0.75


def test_link_split_undirects_a_one_direction_edge_list_and_says_so():
    full = attributed_sbm(100, 2, 8.0, num_features=4, seed=0)
    once = full.edge_index[:, full.edge_index[0] < full.edge_index[1]]
    data = Data(x=full.x, edge_index=once, num_nodes=100)
    with pytest.warns(UserWarning, match="one direction only"):
        train, val, test = link_split(data, seed=0)
    kept = train.pos_edge_label_index.size(1) + val.pos_edge_label_index.size(1) + test.pos_edge_label_index.size(1)
    assert kept == once.size(1)  # nothing dropped


def test_daegc_decoder_is_pygs_inner_product_decoder():
    model = DAEGC(4, 2, hidden_channels=4, embedding_channels=3)
    assert isinstance(model.decoder, InnerProductDecoder)
    z = torch.randn(5, 3)
    edges = torch.tensor([[0, 1, 2], [3, 4, 0]])
    assert torch.allclose(model.decode(z, edges), InnerProductDecoder()(z, edges))
    assert torch.allclose(model.decode(z, edges, sigmoid=False), (z[edges[0]] * z[edges[1]]).sum(-1))


@requires_sampler
def test_minibatch_negatives_never_hit_training_or_held_out_edges():
    torch.manual_seed(0)
    data = attributed_sbm(100, 2, 40.0, p_in_ratio=2.0, num_features=4, seed=0)  # dense: 40 % of all pairs
    train, val, test = link_split(data, seed=0)
    from pyg_em.nn import GCNEncoder

    model = GAE(GCNEncoder(4, 8, 4))
    loader = link_neighbor_loader(train, model, batch_size=64)
    keys = forbidden_pair_keys(train.pos_edge_label_index, 100, train.held_out_edge_index)
    seen = masked_hits = 0
    captured = {}
    original = model._labelled_bce

    def spy(z, label_index, labels, valid):
        captured.update(label_index=label_index, labels=labels, valid=valid)
        return original(z, label_index, labels, valid)

    model._labelled_bce = spy
    for _ in range(10):
        for batch in loader:
            model.loss_batch(batch, forbidden=keys, num_nodes=100)
            neg = captured["labels"] == 0
            src = batch.n_id[captured["label_index"][0]]
            dst = batch.n_id[captured["label_index"][1]]
            hit = is_forbidden(src, dst, 100, keys) & neg
            seen += int(neg.sum())
            masked_hits += int((hit & captured["valid"]).sum())
            assert bool(hit.any())  # on a dense graph the loader's blind draws do hit edges ...
    assert seen > 1000 and masked_hits == 0  # ... and none of them is ever trained as a negative


@requires_sampler
def test_positive_only_loader_is_a_clear_error():
    from torch_geometric.loader import LinkNeighborLoader

    data = attributed_sbm(80, 2, 6.0, num_features=4, seed=0)
    loader = LinkNeighborLoader(data, num_neighbors=[5, 5], edge_label_index=data.edge_index,
                                edge_label=torch.ones(data.edge_index.size(1)), batch_size=32)
    from pyg_em.nn import GCNEncoder

    model = GAE(GCNEncoder(4, 8, 4))
    with pytest.raises(ValueError, match="only positive labels"):
        model.loss_batch(next(iter(loader)))

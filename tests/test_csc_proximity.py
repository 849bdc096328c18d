"""The lean proximity layout of mini-batch DAEGC at scale: one sorted CSC, M per edge, edge membership."""

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_dense_adj, to_undirected

from pyg_em.models import DAEGC
from pyg_em.nn import csc_proximity, proximity_graph
from pyg_em.utils import SortedCSC, is_forbidden, symmetric_csc


def dense_proximity(edge_index, n):
    """M = (T + T^2) / 2 with T = D^-1 A, self loops dropped: the paper's equation on dense matrices."""
    a = to_dense_adj(edge_index, max_num_nodes=n)[0].double()
    a.fill_diagonal_(0)
    t = a / a.sum(1, keepdim=True).clamp_min(1e-300)
    return (t + t @ t) / 2


def irregular_graph(n=30, seed=0):
    """Undirected, unequal degrees, one isolated node (n - 1), a listed self loop on node 3 and a hub (node 0)."""
    g = torch.Generator().manual_seed(seed)
    pairs = torch.randint(n - 1, (2, 70), generator=g)
    hub = torch.stack([torch.zeros(12, dtype=torch.long), torch.arange(1, 13)])
    edges = to_undirected(torch.cat([pairs, hub], 1), num_nodes=n)
    return torch.cat([edges, torch.tensor([[3], [3]])], 1), n


@pytest.mark.parametrize("chunk_size", [1, 7, 1 << 21])
def test_csc_proximity_equals_the_dense_equation(chunk_size):
    edges, n = irregular_graph()
    lean = csc_proximity(edges, n, chunk_size=chunk_size)
    oracle = dense_proximity(edges, n)
    source, target = lean.graph.edge_index
    # sorted by (target, source), every edge once, and the target attends the source with M[target, source]
    keys = target * n + source
    assert torch.equal(keys, keys.sort().values) and keys.numel() == edges.size(1)
    expected = torch.where(source != target, oracle[target, source], torch.zeros((), dtype=torch.float64))
    assert torch.allclose(lean.values.double(), expected, atol=1e-7)
    assert torch.allclose(lean.loop_values.double(), oracle.diagonal(), atol=1e-7)
    assert lean.loop_values[n - 1] == 0 and lean.values[(source == 3) & (target == 3)].item() == 0
    assert torch.equal(lean.graph.colptr, torch.cat([torch.zeros(1, dtype=torch.long),
                                                      torch.bincount(target, minlength=n).cumsum(0)]))


def test_csc_proximity_is_none_for_a_directed_edge_set():
    assert csc_proximity(torch.tensor([[0, 1, 2], [1, 2, 0]]), 3) is None
    # the same pairs, but one direction listed twice: still not symmetric
    assert symmetric_csc(torch.tensor([[0, 1, 0], [1, 0, 1]]), 2) is None
    assert symmetric_csc(torch.tensor([[0, 1, 0, 1], [1, 0, 1, 0]]), 2) is not None


def test_chunk_rows_match_the_proximity_graph():
    edges, n = irregular_graph(seed=1)
    lean, full = csc_proximity(edges, n), proximity_graph(edges, n)
    for start, stop in [(0, n), (2, 9), (n - 1, n)]:
        dense = []
        for graph in (lean, full):
            crow, cols, prox, rows = graph.chunk_rows(start, stop)
            assert torch.equal(torch.repeat_interleave(torch.arange(stop - start), crow.diff()), rows)
            dense.append(torch.zeros(stop - start, n, dtype=torch.float64).index_put_(
                (rows, cols), prox.double(), accumulate=True))
        assert torch.allclose(dense[0], dense[1], atol=1e-7)
        oracle = dense_proximity(edges, n)[start:stop]  # the entries a row attends: its edges and itself
        pattern = (to_dense_adj(edges, max_num_nodes=n)[0][start:stop] > 0) | (
            torch.arange(n)[None, :] == torch.arange(start, stop)[:, None])
        assert torch.allclose(dense[0], torch.where(pattern, oracle, torch.zeros(())), atol=1e-7)


def test_sorted_csc_membership_equals_the_adjacency_matrix():
    edges, n = irregular_graph(seed=2)
    graph = symmetric_csc(edges, n)
    assert isinstance(graph, SortedCSC) and graph.num_nodes == n
    g = torch.Generator().manual_seed(3)
    u, v = torch.randint(n, (4000,), generator=g), torch.randint(n, (4000,), generator=g)
    u, v = torch.cat([u, edges[0]]), torch.cat([v, edges[1]])  # every edge, and many non-edges
    adjacency = to_dense_adj(edges, max_num_nodes=n)[0] > 0
    assert torch.equal(graph.contains(u, v), adjacency[u, v])
    assert torch.equal(is_forbidden(u, v, n, graph), adjacency[u, v] | (u == v))
    hub = torch.zeros(13, dtype=torch.long)  # the longest run needs all its bisection steps
    assert graph.contains(hub, torch.arange(13)).tolist() == adjacency[0, :13].tolist()


def test_embed_data_on_the_lean_layout_equals_the_full_forward():
    torch.manual_seed(0)
    edges, n = irregular_graph(seed=4)
    data = Data(x=torch.randn(n, 5), edge_index=edges)
    for feature_weight in (0.0, 1.0):  # without and with the root terms
        model = DAEGC(5, 3, hidden_channels=8, embedding_channels=4, feature_weight=feature_weight).eval()
        assert model.inference_graph(edges, n).__class__.__name__ == "CSCProximity"
        for chunk in (4, 1024):
            assert torch.allclose(model.embed_data(data, chunk_size=chunk), model.embed(data.x, edges), atol=1e-5)


def test_whole_graph_proximity_picks_the_lean_layout_only_where_it_holds():
    from pyg_em.nn import CSCProximity, ProximityGraph, whole_graph_proximity

    edges, n = irregular_graph(seed=5)
    assert isinstance(whole_graph_proximity(edges, n), CSCProximity)
    weighted = whole_graph_proximity(edges, n, torch.rand(edges.size(1)) + 0.5)
    directed = whole_graph_proximity(torch.tensor([[0, 1, 2], [1, 2, 0]]), 3)
    assert isinstance(weighted, ProximityGraph) and isinstance(directed, ProximityGraph)
    marker = proximity_graph(edges, n)
    assert whole_graph_proximity(torch.tensor([[0, 1], [1, 2]]), 3, general=lambda: marker) is marker

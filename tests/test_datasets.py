import shutil

import pytest
import torch
from torch_geometric.utils import contains_self_loops, degree, is_undirected

from pyg_em.datasets import attributed_sbm, load_dataset, load_planetoid


def test_sbm_structure():
    data = attributed_sbm(4000, 4, avg_degree=12, p_in_ratio=20, num_features=8, seed=1)
    e = data.edge_index
    assert is_undirected(e) and not contains_self_loops(e)
    assert data.x.shape == (4000, 8) and data.y.shape == (4000,)
    assert torch.bincount(data.y).tolist() == [1000] * 4
    deg = degree(e[0], 4000)
    assert deg.mean().item() == pytest.approx(12, rel=0.05)
    # expected intra-block fraction: r (s-1) / (r (s-1) + N - s)
    r, s, n = 20, 1000, 4000
    expected = r * (s - 1) / (r * (s - 1) + n - s)
    assert (data.y[e[0]] == data.y[e[1]]).float().mean().item() == pytest.approx(expected, abs=0.02)
    # features are informative: block means differ
    means = torch.stack([data.x[data.y == k].mean(0) for k in range(4)])
    assert torch.cdist(means, means).max() > 1.0


def test_sbm_reproducible_and_blocks_shuffled():
    a, b = attributed_sbm(500, 3, 6, seed=7), attributed_sbm(500, 3, 6, seed=7)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x)
    assert not torch.equal(a.y, a.y.sort().values)  # node ids are permuted


def test_sbm_is_built_without_touching_all_pairs():
    # 2M nodes have 2e12 node pairs: a pair-by-pair (O(N^2)) build could neither allocate nor finish here, while
    # the O(N + E) sampler returns ~2M directed edges in about a second. (A wall-clock ratio was flaky on CI.)
    data = attributed_sbm(2_000_000, 4, 1.0, num_features=0, seed=0)
    assert data.num_nodes == 2_000_000
    assert data.edge_index.size(1) == pytest.approx(2_000_000, rel=0.05)


def test_sbm_bad_input():
    with pytest.raises(ValueError, match="num_blocks"):
        attributed_sbm(10, 20)
    with pytest.raises(ValueError, match="avg_degree"):
        attributed_sbm(10, 2, avg_degree=-1)
    with pytest.raises(ValueError, match="avg_degree must be below"):
        attributed_sbm(10, 2, avg_degree=50)


def test_planetoid_missing_root(tmp_path, monkeypatch):
    monkeypatch.delenv("PYG_EM_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="PYG_EM_DATA"):
        load_planetoid("Cora")
    with pytest.raises(FileNotFoundError, match="Cora/raw"):
        load_planetoid("Cora", root=tmp_path)
    with pytest.raises(ValueError, match="name must be one of"):
        load_planetoid("Reddit", root=tmp_path)


def test_planetoid_loads_without_writing_beside_source(planetoid_root, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(planetoid_root / "Cora", source / "Cora")
    before = sorted(p.name for p in (source / "Cora").rglob("*"))
    data = load_planetoid("cora", root=source, cache_dir=tmp_path / "cache")
    assert data.num_nodes == 2708 and data.edge_index.size(1) == 10556 and int(data.y.max()) == 6
    assert sorted(p.name for p in (source / "Cora").rglob("*")) == before


def test_load_dataset_names():
    assert load_dataset("karate").num_nodes == 34
    assert load_dataset("sbm", num_nodes=300).num_nodes == 300
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_dataset("nope")

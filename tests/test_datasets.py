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
    with pytest.raises(ValueError, match="unknown dataset .nope."):
        load_dataset("nope")


# -- Planetoid: the cache follows the source, and broken raw files are named ----------------------------------
@pytest.fixture
def cora_copy(planetoid_root, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(planetoid_root / "Cora", source / "Cora")
    return source


def _raw(source, suffix):
    return source / "Cora" / "raw" / f"ind.cora.{suffix}"


def test_planetoid_cache_is_keyed_by_source_and_content(cora_copy, tmp_path):
    cache = tmp_path / "cache"
    full = load_planetoid("cora", root=cora_copy, cache_dir=cache)
    # Another root with fewer test nodes must not be served the cached full graph.
    other = tmp_path / "other"
    shutil.copytree(cora_copy / "Cora", other / "Cora")
    ids = _raw(other, "test.index").read_text().split()
    assert len(ids) == 1000
    # Swapping two test ids permutes rows of x and y: same sizes, different graph.
    ids[0], ids[1] = ids[1], ids[0]
    _raw(other, "test.index").write_text("\n".join(ids) + "\n")
    swapped = load_planetoid("cora", root=other, cache_dir=cache)
    assert not torch.equal(swapped.x, full.x)
    # The same root edited in place is re-processed too.
    _raw(cora_copy, "test.index").write_text("\n".join(ids) + "\n")
    edited = load_planetoid("cora", root=cora_copy, cache_dir=cache)
    assert torch.equal(edited.x, swapped.x) and torch.equal(edited.y, swapped.y)
    # ...and an unchanged root is not (the processed file is reused).
    processed = next((cache / "planetoid").glob("Cora-*/Cora/processed/data.pt"))
    mtime = processed.stat().st_mtime_ns
    load_planetoid("cora", root=cora_copy, cache_dir=cache)
    assert any(p.stat().st_mtime_ns == mtime for p in (cache / "planetoid").glob("Cora-*/Cora/processed/data.pt"))


@pytest.mark.parametrize(
    "suffix, content, message",
    [
        ("test.index", b"", "ind.cora.test.index' is empty"),
        ("test.index", b"12\nabc\n", "ind.cora.test.index' must hold one integer node id per line"),
        ("test.index", b"\n".join(str(i).encode() for i in range(1708, 2707)) + b"\n99999\n",
         "ind.cora.test.index' holds node ids in \\[1708, 99999\\]"),
        ("test.index", b"\n".join(str(i).encode() for i in range(1708, 1718)), "lists 10 test ids but ind.cora.tx"),
        ("test.index", b"\n".join(str(i).encode() for i in [1708] * 1000), "more than once"),
        ("allx", "truncate", "ind.cora.allx' is truncated or not a Planetoid pickle"),
        ("graph", b"garbage bytes", "ind.cora.graph' is truncated or not a Planetoid pickle"),
        ("y", b"", "ind.cora.y' is empty"),
        ("ty", "swap:ally", "ind.cora.ty' has 1708 rows but ind.cora.tx has 1000"),
        ("graph", "pickle:{0: [1, 5000]}", "ind.cora.graph' holds node ids in \\[0, 5000\\]"),
        ("x", "pickle:os.system", "refusing to load"),
    ],
)
def test_planetoid_bad_raw_files_are_named(cora_copy, tmp_path, suffix, content, message):
    import os
    import pickle

    path = _raw(cora_copy, suffix)
    if content == "truncate":
        content = path.read_bytes()[: path.stat().st_size // 2]
    elif isinstance(content, str) and content.startswith("swap:"):
        content = _raw(cora_copy, content[5:]).read_bytes()
    elif content == "pickle:os.system":
        class Evil:
            def __reduce__(self):
                return os.system, (f"touch {tmp_path / 'pwned'}",)
        content = pickle.dumps(Evil())
    elif isinstance(content, str):
        content = pickle.dumps(eval(content[7:]))
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_planetoid("cora", root=cora_copy, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "pwned").exists()


def test_planetoid_unreadable_file_and_unwritable_cache(cora_copy, tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(PermissionError, match="cannot write the Planetoid cache .* PYG_EM_CACHE"):
        load_planetoid("cora", root=cora_copy, cache_dir=blocker)
    from pathlib import Path

    real = Path.read_bytes

    def deny(self):
        if self.name == "ind.cora.tx":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(PermissionError, match="cannot read raw file .*ind.cora.tx"):
        load_planetoid("cora", root=cora_copy, cache_dir=tmp_path / "cache")

"""Any graph in: edge lists (CSV/TSV/whitespace, string ids, weights, headers), feature and label files, saved
``Data``, ``torch_geometric.datasets`` classes from local raw files; each malformed file named in one error."""

import shutil

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from pyg_em.cli import main
from pyg_em.datasets import attributed_sbm, load_edge_list, load_graph
from pyg_em.report import read_assignments


def _write(path, text):
    path.write_text(text)
    return path


def test_csv_edge_list_with_string_ids_weights_header_features_and_labels(tmp_path):
    edges = _write(tmp_path / "e.csv", "source,target,weight\nalice,bob,1\nbob,carol,2\ncarol,alice,0.5\n"
                                       "# a comment\ndave,alice,1\n")
    feats = _write(tmp_path / "f.csv", "id,f1,f2\nalice,1,2\nbob,3,4\ncarol,5,6\ndave,7,8\neve,0,1\n")
    labels = _write(tmp_path / "l.csv", "id,label\nalice,x\nbob,y\ncarol,x\n")
    graph = load_edge_list(edges, features=feats, labels=labels)
    data = graph.data
    assert graph.node_ids == ["alice", "bob", "carol", "dave", "eve"]  # eve: only in the feature file
    assert data.num_nodes == 5 and data.edge_index.size(1) == 8 and data.is_undirected()
    assert any("made undirected" in n for n in graph.notes)
    assert torch.equal(data.x[graph.node_ids.index("dave")], torch.tensor([7.0, 8.0]))
    assert graph.class_names == ["x", "y"] and data.y.tolist() == [0, 1, 0, -1, -1]
    # the weight of an edge given once is kept for both directions
    i, j = graph.node_ids.index("bob"), graph.node_ids.index("carol")
    both = (data.edge_index[0] == i) & (data.edge_index[1] == j) | (data.edge_index[0] == j) & (data.edge_index[1] == i)
    assert data.edge_weight[both].tolist() == [2.0, 2.0]


def test_whitespace_and_tsv_edge_lists_with_integer_ids_and_npy_features(tmp_path):
    txt = _write(tmp_path / "g.txt", "0 1\n1 2\n2 3\n3 0\n")
    np.save(tmp_path / "x.npy", np.arange(15, dtype=np.float32).reshape(5, 3))  # node 4 is isolated
    graph = load_graph(str(txt), features=str(tmp_path / "x.npy"))
    assert graph.node_ids is None and graph.data.num_nodes == 5 and graph.data.x[4].tolist() == [12.0, 13.0, 14.0]
    tsv = _write(tmp_path / "g.tsv", "u\tv\n0\t1\n1\t2\n")
    assert load_graph(str(tsv)).data.edge_index.size(1) == 4


@pytest.mark.parametrize("name, edges, features, message", [
    ("ragged.csv", "a,b\nb,c,3\n", None, "line 2: 3 columns where the first edge had 2"),
    ("wide.csv", "a,b,1,2\n", None, "line 1: 4 columns"),
    ("neg.csv", "a,b,1\nb,c,-2\n", None, "line 2, column 3: negative weight"),
    ("nan.csv", "a,b,nan\n", None, "weight is nan"),
    ("word.csv", "a,b,heavy\n", None, "weight 'heavy' is not a number"),
    ("empty.csv", "# nothing\n", None, "no edges"),
    ("e1.csv", "a,b\nb,c\n", "id,f\na,1\nb,2\n", "no feature row for node 'c'"),
    ("e2.csv", "a,b\n", "id,f\na,1\nb,nan\n", "node 'b', column 2: feature 'nan' is not a finite number"),
    ("e3.csv", "a,b\n", "id,f,g\na,1,2\nb,2\n", "ragged rows"),
])
def test_bad_files_give_one_clear_error_naming_file_and_line(tmp_path, name, edges, features, message):
    path = _write(tmp_path / name, edges)
    feature_path = None if features is None else _write(tmp_path / "feat.csv", features)
    with pytest.raises(ValueError, match=None) as info:
        load_edge_list(path, features=feature_path)
    assert message in str(info.value)
    assert str(path if features is None else feature_path) in str(info.value)


def test_npy_features_must_cover_every_node(tmp_path):
    path = _write(tmp_path / "g.csv", "0,1\n1,7\n")
    np.save(tmp_path / "x.npy", np.zeros((3, 2)))
    with pytest.raises(ValueError, match="ids missing from the feature file"):
        load_edge_list(path, features=tmp_path / "x.npy")
    x = np.zeros((8, 2))
    x[5, 1] = np.inf
    np.save(tmp_path / "bad.npy", x)
    with pytest.raises(ValueError, match="row 5, column 1"):
        load_edge_list(path, features=tmp_path / "bad.npy")


def test_saved_data_loads_without_unpickling_code(tmp_path):
    data = attributed_sbm(50, 2, 5.0, num_features=4, seed=0)
    torch.save(data, tmp_path / "g.pt")
    graph = load_graph(str(tmp_path / "g.pt"))
    assert torch.equal(graph.data.edge_index, data.edge_index) and torch.equal(graph.data.x, data.x)
    (tmp_path / "junk.pt").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="junk.pt: not a saved torch_geometric Data"):
        load_graph(str(tmp_path / "junk.pt"))
    torch.save({"weights": torch.zeros(2)}, tmp_path / "dict.pt")
    with pytest.raises(ValueError, match="not a torch_geometric Data"):
        load_graph(str(tmp_path / "dict.pt"))


def test_pyg_dataset_class_by_name_from_local_raw_files(tmp_path, planetoid_root):
    root = tmp_path / "pyg"
    shutil.copytree(planetoid_root / "Cora" / "raw", root / "Cora" / "raw")
    graph = load_graph("pyg:Planetoid/Cora", root=str(root))
    assert graph.data.num_nodes == 2708 and graph.data.x.size(1) == 1433
    assert not (root / "Cora" / "processed").exists()  # processed into the cache, never beside the source
    with pytest.raises(FileNotFoundError, match=r"Amazon: raw file\(s\) missing.*amazon_electronics_photo.npz"):
        load_graph("pyg:Amazon/Photo", root=str(tmp_path))
    with pytest.raises(ValueError, match="has no dataset class 'Nope'"):
        load_graph("pyg:Nope", root=str(tmp_path))


def test_missing_pubmed_names_the_files(tmp_path, capsys):
    assert main(["run", "kmeans", "--dataset", "pubmed", "--root", str(tmp_path)]) == 2
    assert "ind.pubmed.x" in capsys.readouterr().err


def _community_edge_list(tmp_path, n=2000, k=4, seed=0):
    """An edge-list CSV with string ids and a feature CSV: k communities, the i-th node named ``n<i>``."""
    data = attributed_sbm(n, k, 8.0, p_in_ratio=15.0, num_features=8, feature_noise=1.0, seed=seed)
    once = data.edge_index[:, data.edge_index[0] < data.edge_index[1]]  # each edge once: loading undirects it
    lines = ["src,dst"] + [f"n{u},n{v}" for u, v in once.t().tolist()]
    _write(tmp_path / "edges.csv", "\n".join(lines) + "\n")
    rows = ["id," + ",".join(f"f{j}" for j in range(8))]
    rows += [f"n{i}," + ",".join(f"{v:.6f}" for v in data.x[i].tolist()) for i in range(n)]
    _write(tmp_path / "feats.csv", "\n".join(rows) + "\n")
    return data


@pytest.mark.slow
def test_daegc_on_an_edge_list_writes_clusters_and_predict_reproduces_them(tmp_path, capsys):
    truth = _community_edge_list(tmp_path)
    out = tmp_path / "run"
    argv = ["run", "daegc", "--dataset", str(tmp_path / "edges.csv"), "--features", str(tmp_path / "feats.csv"),
            "--n-clusters", "4", "--epochs", "5", "--set", "pretrain_steps=20", "--set", "hidden_channels=32",
            "--set", "n_init=3", "--embedding", "none", "--out", str(out)]
    assert main(argv) == 0
    assert "made undirected" in capsys.readouterr().out
    ids, clusters = read_assignments(out / "assignments.csv")
    assert len(ids) == 2000 and ids[0].startswith("n") and set(clusters.tolist()) <= {0, 1, 2, 3}
    assert (out / "model.pt").is_file() and np.load(out / "embedding.npy").shape == (2000, 16)
    # clustered features: 'auto' switched the feature reconstruction and the root terms on, and the report
    # holds the number used; predict below rebuilds that architecture from model.pt
    import json

    assert json.loads((out / "report.json").read_text())["config"]["daegc"]["feature_weight"] > 0
    from pyg_em.metrics import clustering_metrics

    order = torch.tensor([int(i[1:]) for i in ids])
    assert clustering_metrics(truth.y[order], clusters)["nmi"] > 0.5
    assert main(["predict", "--model", str(out / "model.pt"), "--dataset", str(tmp_path / "edges.csv"),
                 "--features", str(tmp_path / "feats.csv"), "--out", str(tmp_path / "pred")]) == 0
    again_ids, again = read_assignments(tmp_path / "pred" / "assignments.csv")
    assert again_ids == ids and torch.equal(again, clusters)  # identical assignments, no retraining


def test_predict_assigns_new_nodes_and_rejects_a_mismatched_graph(tmp_path, capsys):
    data = attributed_sbm(120, 3, 8.0, num_features=6, seed=0)
    torch.save(data, tmp_path / "g.pt")
    assert main(["run", "vgae", "--dataset", str(tmp_path / "g.pt"), "--epochs", "5", "--embedding", "none",
                 "--out", str(tmp_path / "run")]) == 0
    bigger = attributed_sbm(150, 3, 8.0, num_features=6, seed=1)  # new nodes and edges
    torch.save(bigger, tmp_path / "new.pt")
    assert main(["predict", "--model", str(tmp_path / "run" / "model.pt"), "--dataset", str(tmp_path / "new.pt"),
                 "--out", str(tmp_path / "p")]) == 0
    assert len(read_assignments(tmp_path / "p" / "assignments.csv")[0]) == 150
    torch.save(Data(x=torch.randn(10, 3), edge_index=torch.tensor([[0, 1], [1, 0]])), tmp_path / "other.pt")
    model = str(tmp_path / "run" / "model.pt")
    assert main(["predict", "--model", model, "--dataset", str(tmp_path / "other.pt")]) == 2
    assert "trained on 6 node features, this graph has 3" in capsys.readouterr().err
    (tmp_path / "fake.pt").write_bytes(b"garbage")
    assert main(["predict", "--model", str(tmp_path / "fake.pt"), "--dataset", "karate"]) == 2
    assert "--model" in capsys.readouterr().err


def test_unlabelled_graph_reports_unsupervised_metrics_only(tmp_path, capsys):
    data = attributed_sbm(100, 2, 8.0, num_features=4, seed=0)
    del data.y
    torch.save(data, tmp_path / "g.pt")
    assert main(["run", "spectral", "--dataset", str(tmp_path / "g.pt"), "--n-clusters", "2",
                 "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "modularity" in out and "silhouette" in out and "acc" not in out
    assert "no labels" in out
    assert not (tmp_path / "r" / "confusion.png").exists()
    assert main(["run", "spectral", "--dataset", str(tmp_path / "g.pt")]) == 2
    assert "--n-clusters" in capsys.readouterr().err

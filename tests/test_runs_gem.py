"""``pyg-em run gem``: GEM learns the edge weights of the dataset graph, spectral clustering uses them."""

import json

from pyg_em.cli import main
from pyg_em.datasets import attributed_sbm
from pyg_em.runs import RUNNERS, RunConfig
from tests.test_cli import assert_png, write_toml


def test_gem_run_reports_clustering_and_per_layer_history(tmp_path, capsys):
    config = write_toml(tmp_path / "c.toml", "[gem]\nfeature_dim = 8\nn_init = 2\n[plots]\ndpi = 50\n")
    assert main(["run", "gem", "--dataset", "karate", "--epochs", "2", "--config", config,
                 "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert {"acc", "nmi", "ari", "modularity"} <= set(report["metrics"])
    assert report["config"]["gem"]["feature_dim"] == 8 and report["config"]["gem"]["regularization"] == "auto"
    assert len(report["history"]["mean_weight"]) == 2 and len(report["history"]["weight_change"]) == 2
    for name in ("losses", "embedding", "confusion"):
        assert_png(tmp_path / "r" / f"{name}.png")
    assert "acc" in capsys.readouterr().out


def test_gem_learned_weights_separate_blocks():
    data = attributed_sbm(300, 3, 8.0, num_features=16, feature_noise=0.5, seed=0)
    result = RUNNERS["gem"](data, RunConfig(seed=0, epochs=3, method="gem", extra={"n_init": 2}))
    change = result.history["weight_change"]
    assert len(change) == 3 and all(c > 0 for c in change)
    assert result.metrics["acc"] > 0.9 and result.embedding.shape == (300, 3)


def test_gem_bad_settings_exit_2(tmp_path, capsys):
    config = write_toml(tmp_path / "c.toml", "[gem]\nfeature_dim = -1\n")
    assert main(["run", "gem", "--dataset", "karate", "--config", config, "--out", str(tmp_path / "a")]) == 2
    assert "feature_dim" in capsys.readouterr().err
    assert main(["run", "gem", "--dataset", "karate", "--batch-size", "8", "--out", str(tmp_path / "b")]) == 2
    assert "--batch-size" in capsys.readouterr().err

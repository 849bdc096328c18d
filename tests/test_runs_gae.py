"""``pyg-em run gae`` / ``vgae``: link prediction on a leak-free split plus k-means clustering of the embedding."""

import json

import pytest

from pyg_em.cli import main
from pyg_em.datasets import attributed_sbm
from pyg_em.runs import RUNNERS, RunConfig
from tests.conftest import requires_sampler
from tests.test_cli import assert_png, write_toml


@pytest.mark.parametrize("method, loss_keys", [("gae", {"recon"}), ("vgae", {"recon", "kl"})])
def test_autoencoder_run_reports_link_and_clustering_metrics(method, loss_keys, tmp_path, capsys):
    config = write_toml(tmp_path / "c.toml", f"[{method}]\nn_init = 2\nhidden_channels = 16\nout_channels = 8\n"
                        "[plots]\ndpi = 50\n")
    assert main(["run", method, "--dataset", "karate", "--epochs", "3", "--config", config, "--device", "cpu",
                 "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    metrics = report["metrics"]
    assert {"auc", "ap", "acc", "nmi", "ari", "modularity"} <= set(metrics)
    assert 0.0 <= metrics["auc"] <= 1.0 and 0.0 <= metrics["ap"] <= 1.0
    assert report["config"][method]["out_channels"] == 8
    history = report["history"]
    assert loss_keys | {"total", "val_auc", "val_ap"} <= set(history) and len(history["total"]) == 3
    for name in ("losses", "embedding", "confusion"):
        assert_png(tmp_path / "r" / f"{name}.png")
    assert "auc" in capsys.readouterr().out


def test_autoencoder_bad_setting_exits_2(tmp_path, capsys):
    config = write_toml(tmp_path / "c.toml", "[gae]\nrecon = \"dense\"\n")
    assert main(["run", "gae", "--dataset", "karate", "--config", config, "--out", str(tmp_path / "a")]) == 2
    assert "recon" in capsys.readouterr().err
    config = write_toml(tmp_path / "d.toml", "[vgae]\nencoder = \"gat\"\n")
    assert main(["run", "vgae", "--dataset", "karate", "--config", config, "--out", str(tmp_path / "b")]) == 2
    assert "encoder must be one of" in capsys.readouterr().err


@pytest.mark.parametrize("method, extra, batch_size", [("gae", {}, None), ("vgae", {}, None),
                                                      ("gae", {"encoder": "propagation"}, None),
                                                      pytest.param("vgae", {}, 64, marks=requires_sampler)])
def test_autoencoder_runners_on_a_small_sbm(method, extra, batch_size):
    data = attributed_sbm(300, 3, 8.0, num_features=16, feature_noise=0.5, seed=0)
    config = RunConfig(seed=0, epochs=10, batch_size=batch_size, method=method, extra={"n_init": 2, **extra})
    result = RUNNERS[method](data, config)
    assert result.metrics["acc"] > 0.8 and result.metrics["auc"] > 0.6
    assert result.embedding.shape == (300, 16) and result.labels.shape == (300,)
    assert len(result.history["total"]) == 10 and len(result.history["val_auc"]) == 10
    again = RUNNERS[method](data, RunConfig(seed=0, epochs=10, batch_size=batch_size, method=method,
                                            extra={"n_init": 2, **extra}))
    assert again.metrics == result.metrics  # the seed fixes the split, the negatives and the training

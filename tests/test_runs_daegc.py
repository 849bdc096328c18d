"""``pyg-em run daegc``: DAEGC's own fit (pretraining, k-means init, self-training), full batch or mini-batch."""

import json

import pytest

from pyg_em.cli import main
from pyg_em.datasets import attributed_sbm
from pyg_em.runs import RUNNERS, RunConfig
from tests.conftest import requires_sampler
from tests.test_cli import assert_png, write_toml

SMALL = {"pretrain_steps": 3, "n_init": 2, "hidden_channels": 32}


def test_daegc_run_writes_report_with_both_training_phases(tmp_path, capsys):
    config = write_toml(tmp_path / "c.toml", "[daegc]\npretrain_steps = 2\nn_init = 2\nhidden_channels = 16\n"
                        "[plots]\ndpi = 50\n")
    assert main(["run", "daegc", "--dataset", "karate", "--epochs", "3", "--config", config, "--device", "cpu",
                 "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert {"acc", "nmi", "ari", "modularity"} <= set(report["metrics"])
    assert report["config"]["daegc"]["pretrain_steps"] == 2 and report["config"]["daegc"]["gamma"] == 10.0
    history = report["history"]
    assert len(history["total"]) == 3 and len(history["cluster"]) == 3 and len(history["pretrain_recon"]) == 2
    for name in ("losses", "embedding", "confusion"):
        assert_png(tmp_path / "r" / f"{name}.png")
    assert "acc" in capsys.readouterr().out


@pytest.mark.parametrize("batch_size", [None, pytest.param(64, marks=requires_sampler)])
def test_daegc_runner_on_a_small_sbm(batch_size):
    data = attributed_sbm(300, 3, 8.0, num_features=16, feature_noise=0.5, seed=0)
    result = RUNNERS["daegc"](data, RunConfig(seed=0, epochs=3, batch_size=batch_size, method="daegc",
                                              extra=SMALL))
    assert result.metrics["acc"] > 0.9
    assert result.embedding.shape == (300, 16) and result.labels.shape == (300,)
    # pretrain_steps=3: three full-batch epochs, or one epoch of 5 mini-batches
    assert len(result.history["total"]) == 3
    assert len(result.history["pretrain_total"]) == (3 if batch_size is None else 1)


def test_daegc_bad_setting_exits_2(tmp_path, capsys):
    config = write_toml(tmp_path / "c.toml", "[daegc]\npretrain_steps = 0\n")
    assert main(["run", "daegc", "--dataset", "karate", "--config", config, "--out", str(tmp_path / "a")]) == 2
    assert "pretrain_steps" in capsys.readouterr().err
    config = write_toml(tmp_path / "d.toml", "[daegc]\ngamma = \"high\"\n")
    assert main(["run", "daegc", "--dataset", "karate", "--config", config, "--out", str(tmp_path / "b")]) == 2
    assert "gamma" in capsys.readouterr().err

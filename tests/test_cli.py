"""The ``pyg-em`` command: reports and plots through a subprocess, user errors, config files, ``bench``."""

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.image
import pytest
import torch

from pyg_em.cli import UsageError, find_benchmarks, main
from pyg_em.models.base import LossOutput
from pyg_em.recipes import RECIPES, ConfigError, Recipe, RecipeResult, check_setting, clustering_report
from pyg_em.report import read_assignments
from pyg_em.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _pyg_em(*argv, cwd=None, env_extra=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "pyg_em.cli", *argv], capture_output=True, text=True,
                          timeout=180, cwd=cwd or ROOT, env=env)


def assert_png(path: Path, min_bytes: int = 2000) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert len(data) > min_bytes, f"{path} is suspiciously small ({len(data)} bytes)"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0.01, f"{path} is blank"


def write_toml(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# -- through a subprocess, as a user runs it ----------------------------------------------------------------
def test_run_subprocess_writes_report_and_plots_with_config_override(tmp_path):
    config = write_toml(tmp_path / "cfg.toml", 'dataset = "karate"\nseed = 1\nn_clusters = 3\n'
                        '[kmeans]\nn_init = 3\nmax_iter = 20\n[plots]\nembedding = "pca"\ndpi = 60\n')
    out = tmp_path / "report"
    proc = _pyg_em("run", "kmeans", "--config", config, "--seed", "3", "--out", str(out), "--progress",
                   "--set", "max_iter=50")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "stages" in proc.stderr  # the tqdm progress bar
    for line in ("metric", "acc", "nmi", "ari", "modularity"):
        assert line in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "kmeans" and report["dataset"] == "karate"
    assert report["config"]["seed"] == 3  # the flag beats the file
    assert report["config"]["n_clusters"] == 3  # the file beats the default
    assert report["config"]["kmeans"] == {"n_init": 3, "max_iter": 50}  # --set beats the file
    assert report["recipe"] == "default"
    assert report["config"]["plots"]["dpi"] == 60
    assert report["data"] == {"num_nodes": 34, "num_edges": 156, "num_features": 34, "num_classes": 4}
    ids, clusters = read_assignments(out / "assignments.csv")
    assert ids == [str(i) for i in range(34)] and set(clusters.tolist()) == {0, 1, 2}
    # The reported scores are those of the written assignments against the karate labels.
    from pyg_em.datasets import load_dataset
    from pyg_em.metrics import clustering_metrics

    expected = clustering_metrics(load_dataset("karate").y, torch.as_tensor(clusters))
    for key in ("acc", "nmi", "ari", "f1"):
        assert report["metrics"][key] == pytest.approx(expected[key], abs=1e-9)
    assert report["timings"]["wall_s"] > 0 and report["timings"]["fit_s"] > 0
    assert {"torch", "torch_geometric", "numpy", "pyg_em"} <= set(report["versions"])
    assert report["history"] == {}
    assert report["files"] == {"assignments": "assignments.csv", "embedding": "embedding.npy",
                               "plot (embedding)": "embedding.png", "plot (confusion)": "confusion.png"}
    for name in ("embedding.png", "confusion.png"):
        assert_png(out / name)
    assert not (out / "losses.png").exists()  # k-means has no training history


def test_user_error_subprocess_exits_2_without_traceback():
    proc = _pyg_em("run", "nope")
    assert proc.returncode == 2, proc.stderr
    assert f"pyg-em: error: unknown method 'nope'; choose one of: {', '.join(RECIPES)}\n" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- in process: every user error exits 2 with a message naming the problem -----------------------------------
@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "kmeans", "--dataset", "cora", "--root", "/nonexistent/planetoid"],
         "missing 8 raw Cora file(s) in '/nonexistent/planetoid/Cora/raw'"),
        (["run", "kmeans", "--dataset", "nope"], "unknown dataset 'nope'; --dataset takes sbm, karate, cora"),
        (["run", "gae", "--epochs", "0"], "[gae] epochs must be positive"),
        (["run", "daegc", "--batch-size", "-3"], "[daegc] batch_size must be positive"),
        (["run", "kmeans", "--epochs", "3"], "--epochs (or epochs in --config): kmeans has no such setting"),
        (["run", "kmeans", "--seed", "-1"], "--seed must be an integer in [0, 2^63 - 1]"),
        (["run", "kmeans", "--seed", str(2**63)], "--seed must be an integer in [0, 2^63 - 1]"),
        (["run", "kmeans", "--recipe", "fast"], "method 'kmeans' has no recipe 'fast'; choose one of: default"),
        (["run", "kmeans", "--set", "n_init"], "--set 'n_init': expected KEY=VALUE"),
        (["run", "kmeans", "--set", "n_init=many"], "[kmeans] n_init must be an integer, got 'many'"),
        (["run"], "name a method"),
        (["run", "kmeans", "--n-clusters", "5000"], "exceeds the number of nodes"),
        (["run", "kmeans", "--device", "banana"], "--device 'banana'"),
        (["run", "kmeans", "--config", "/nonexistent.toml"], "does not exist"),
    ],
)
def test_user_errors_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_out_that_is_a_file_exits_2_before_running(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "kmeans", "--dataset", "karate", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "cannot write into the folder" in err


def test_missing_data_root_says_where_to_put_files(monkeypatch, capsys):
    monkeypatch.delenv("PYG_EM_DATA", raising=False)
    assert main(["run", "kmeans", "--dataset", "citeseer"]) == 2
    err = capsys.readouterr().err
    assert "PYG_EM_DATA" in err and "--root DIR" in err and "CiteSeer/raw/ind.citeseer.x" in err


@pytest.mark.parametrize(
    "toml, message",
    [
        ("seed = 'ten'\n", "seed must be an integer, got 'ten'"),
        ("seed = true\n", "seed must be an integer, got True"),
        ("progress = 1\n", "progress must be a boolean"),
        ("dataset = 3\n", "dataset must be a string"),
        ("n_init = 20\n", "unknown top-level key 'n_init'"),
        ("kmeans = 3\n", "'kmeans' must be a table"),
        ("[plots]\nembedding = 'umap'\n", "embedding must be one of pca, tsne, none"),
        ("[plots]\ncolour = 'red'\n", "unknown key 'colour' in [plots]"),
        ("[plots]\ndpi = 1.5\n", "[plots] dpi must be an integer"),
        ("[kmeans]\nn_inits = 20\n", "[kmeans]: unknown setting(s) ['n_inits']"),
        ("[kmeans]\nn_init = 'many'\n", "[kmeans] n_init must be an integer"),
        ("[spectral]\nn_init = 2.5\n", None),  # a table of another method is not validated by this run
        ("[kmeans]\nmax_iter = 50\n", None),
        ("seed = [\n", "is not valid TOML"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path, toml, message, capsys):
    config = write_toml(tmp_path / "bad.toml", toml)
    code = main(["run", "kmeans", "--dataset", "karate", "--config", config])
    err = capsys.readouterr().err
    if message is None:
        assert code == 0, err
    else:
        assert code == 2 and message in err and "Traceback" not in err


def test_unreadable_config_exits_2(tmp_path, capsys):
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert main(["run", "kmeans", "--config", str(binary)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
    assert main(["run", "kmeans", "--config", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_config_sets_dataset_and_flags_override(tmp_path, capsys):
    config = write_toml(tmp_path / "c.toml", 'dataset = "karate"\nn_clusters = 3\n[kmeans]\nn_init = 2\n')
    assert main(["run", "kmeans", "--config", config, "--out", str(tmp_path / "a")]) == 0
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["dataset"] == "karate" and report["config"]["n_clusters"] == 3
    assert main(["run", "kmeans", "--config", config, "--n-clusters", "2", "--out", str(tmp_path / "b"),
                 "--embedding", "none"]) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["config"]["n_clusters"] == 2 and "plot (embedding)" not in report["files"]
    assert "acc" in capsys.readouterr().out


def test_spectral_reports_its_embedding(tmp_path, capsys):
    assert main(["run", "spectral", "--dataset", "sbm", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["metrics"]["acc"] > 0.9
    assert report["config"]["spectral"] == {"n_init": 10, "dim": None, "regularization": "auto"}
    assert_png(tmp_path / "embedding.png")


@pytest.mark.parametrize("value, expected", [("0", 0.0), ("2.5", 2.5), ('"auto"', "auto"), ('"off"', None),
                                             ("-1", None)])
def test_spectral_regularization_setting(tmp_path, value, expected, capsys):
    config = write_toml(tmp_path / "c.toml", f"[spectral]\nregularization = {value}\n")
    code = main(["run", "spectral", "--dataset", "karate", "--config", config, "--out", str(tmp_path / "r")])
    if expected is None:
        assert code == 2
        assert "[spectral] regularization must be 'auto' or a number >= 0" in capsys.readouterr().err
    else:
        assert code == 0
        report = json.loads((tmp_path / "r" / "report.json").read_text())
        assert report["config"]["spectral"]["regularization"] == expected


# -- a trained method: loss curves appear when the runner returns a history ----------------------------------
class _LinearAutoencoder(torch.nn.Module):
    """A tiny trainable model, only to exercise the report of a runner that trains."""

    def __init__(self, num_features: int, dim: int = 2) -> None:
        super().__init__()
        self.encoder = torch.nn.Linear(num_features, dim)
        self.decoder = torch.nn.Linear(dim, num_features)

    def loss(self, data) -> LossOutput:
        z = self.encoder(data.x)
        recon = (self.decoder(z) - data.x).pow(2).mean()
        reg = 1e-3 * z.pow(2).mean()
        return LossOutput(recon + reg, {"recon": recon, "reg": reg})


@dataclass
class _ToyRecipe(Recipe):
    """A toy recipe: a linear auto-encoder trained by the Trainer, clustered by a median split."""

    method = "toy"

    lr: float = 0.05
    epochs: int = 5

    def run(self, data, *, n_clusters=None, seed=0, device=None, progress=False) -> RecipeResult:
        model = _LinearAutoencoder(data.num_features)
        trainer = Trainer(model, epochs=self.epochs, lr=self.lr, progress=progress, device="cpu",
                          eval_fn=lambda m, d: {"recon_eval": float((m.decoder(m.encoder(d.x)) - d.x).pow(2).mean())},
                          eval_every=2)
        start = time.perf_counter()
        history = trainer.fit(data)
        with torch.no_grad():
            z = model.encoder(data.x)
        labels = (z[:, 0] > z[:, 0].median()).long()
        return RecipeResult(metrics=clustering_report(data, labels), history=history, labels=labels, embedding=z,
                            timings={"fit_s": time.perf_counter() - start})


def test_recipe_with_history_gets_loss_curves(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(RECIPES, "toy", {"default": _ToyRecipe})
    config = write_toml(tmp_path / "c.toml", "[toy]\nlr = 1\n")  # an int where a float is expected is fine
    assert main(["run", "toy", "--dataset", "karate", "--epochs", "6", "--config", config,
                 "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["config"]["toy"] == {"lr": 1.0, "epochs": 6}  # the values used, never null
    assert set(report["history"]) == {"total", "recon", "reg", "recon_eval", "eval_epoch"}
    assert len(report["history"]["total"]) == 6 and report["history"]["eval_epoch"] == [1.0, 3.0, 5.0]
    for name in ("losses.png", "embedding.png", "confusion.png"):
        assert report["files"][f"plot ({name[:-4]})"] == name
        assert_png(tmp_path / name)


# -- Recipe.with_settings: the type rules every recipe relies on -----------------------------------------------
def test_recipe_settings_are_type_checked_and_recorded():
    recipe = _ToyRecipe().with_settings({"lr": 1}, epochs=3)
    assert recipe.settings() == {"lr": 1.0, "epochs": 3} and isinstance(recipe.lr, float)
    with pytest.raises(ConfigError, match=r"\[toy\]: unknown setting\(s\) \['typo'\]"):
        _ToyRecipe().with_settings(typo=1)
    with pytest.raises(ConfigError, match="epochs must be an integer, got 2.5"):
        _ToyRecipe().with_settings(epochs=2.5)
    with pytest.raises(ConfigError, match="flag must be a boolean, got 1"):
        check_setting("flag", 1, bool)
    with pytest.raises(ConfigError, match="n must be an integer, got False"):
        check_setting("n", False, int)
    assert check_setting("k", [3, 2], list[int]) == [3, 2] and check_setting("k", None, int | None) is None
    import numpy as np

    assert check_setting("n", np.int64(7), int) == 7  # integers as users hold them


# -- pyg-em bench ------------------------------------------------------------------------------------------
def _fake_checkout(tmp_path: Path) -> Path:
    bench = tmp_path / "checkout" / "benchmarks"
    bench.mkdir(parents=True)
    (bench / "__init__.py").write_text("")
    shutil.copy(ROOT / "benchmarks" / "run_all.py", bench / "run_all.py")
    (bench / "bench_tiny.py").write_text("def main():\n    print('tiny suite ran')\n")
    return bench.parent


def test_bench_runs_a_suite_of_the_checkout(tmp_path, monkeypatch, capfd):
    root = _fake_checkout(tmp_path)
    monkeypatch.chdir(root)
    assert main(["bench", "--list"]) == 0
    assert capfd.readouterr().out.split() == ["bench_tiny"]
    assert main(["bench", "tiny"]) == 0
    assert "tiny suite ran" in capfd.readouterr().out
    assert main(["bench", "nope"]) == 2
    err = capfd.readouterr().err
    assert "unknown benchmark suite(s) bench_nope; available: bench_tiny" in err
    assert main(["bench"]) == 2
    assert "name a suite or 'all'" in capfd.readouterr().err


def test_bench_without_checkout_is_a_clear_error(tmp_path):
    assert find_benchmarks([ROOT]) == ROOT
    with pytest.raises(UsageError, match="benchmarks/ folder of a source checkout"):
        find_benchmarks([tmp_path])


# -- the CLI's contract under faults: clear errors before training, no mixed results, clean interrupts --------
def test_output_names_taken_by_folders_and_bad_devices_fail_before_training(tmp_path, capsys):
    (tmp_path / "out" / "report.json").mkdir(parents=True)
    assert main(["run", "kmeans", "--dataset", "karate", "--out", str(tmp_path / "out")]) == 2
    assert "report.json exists there as a folder" in capsys.readouterr().err
    for device in ("meta", "mps"):
        assert main(["run", "kmeans", "--dataset", "karate", "--device", device]) == 2
        err = capsys.readouterr().err
        assert f"--device {device!r}" in err and "Traceback" not in err


def test_a_failed_write_leaves_the_previous_results_untouched(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert main(["run", "kmeans", "--dataset", "karate", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    import pyg_em.report

    monkeypatch.setattr(pyg_em.report, "write_plots", interrupted)
    assert main(["run", "kmeans", "--dataset", "karate", "--seed", "5", "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "pyg-em: interrupted"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing new next to the old report
    assert not list(tmp_path.glob(".out.partial-*"))  # and no staging folder left behind


@pytest.mark.parametrize("when", ["training"])
def test_sigint_exits_130_with_one_line(when):
    import signal

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pyg_em.cli", "run", "gae", "--dataset", "sbm", "--epochs",
                             "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        if when == "training":
            deadline = time.time() + 150
            line = ""
            while "pyg-em run gae" not in line and time.time() < deadline:  # printed once training starts
                line = proc.stdout.readline()
            assert "pyg-em run gae" in line
        time.sleep(2.5 if when == "importing" else 0.5)  # past the interpreter's own start-up
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.strip() == "pyg-em: interrupted"


def test_a_diverged_run_is_one_clear_error(tmp_path, capsys):
    code = main(["run", "gae", "--dataset", "karate", "--epochs", "3", "--set", "lr=1e30", "--set",
                 "encoder='gcn'"])
    err = capsys.readouterr().err
    assert code == 2 and "training diverged" in err and "Traceback" not in err


def test_daegc_checkpoints_from_the_cli_and_resume_reproduces_the_run(tmp_path, capsys):
    import torch

    from pyg_em.datasets import attributed_sbm

    data = attributed_sbm(150, 3, 8.0, num_features=6, seed=0)
    torch.save(data, tmp_path / "g.pt")
    ckpt = tmp_path / "ckpt"
    base = ["run", "daegc", "--dataset", str(tmp_path / "g.pt"), "--epochs", "3", "--set", "pretrain_steps=4",
            "--set", "hidden_channels=16", "--set", "n_init=2", "--embedding", "none", "--checkpoint-dir", str(ckpt)]
    assert main([*base, "--out", str(tmp_path / "first")]) == 0
    assert {p.name for p in ckpt.iterdir()} >= {"pretrain.ckpt", "self_train.ckpt"}
    first = read_assignments(tmp_path / "first" / "assignments.csv")[1]
    # killed during self-training: the finished pretraining is kept, k-means and self-training run again
    (ckpt / "self_train.ckpt").unlink()
    assert main([*base, "--resume", "--out", str(tmp_path / "again")]) == 0
    assert torch.equal(read_assignments(tmp_path / "again" / "assignments.csv")[1], first)
    capsys.readouterr()
    assert main(["run", "daegc", "--dataset", "karate", "--resume"]) == 2
    assert "--resume needs --checkpoint-dir" in capsys.readouterr().err
    assert main(["run", "gae", "--dataset", "karate", "--checkpoint-dir", str(ckpt)]) == 2
    assert "gae does not checkpoint" in capsys.readouterr().err
    assert main(["run", "daegc", "--dataset", "karate", "--resume", "--checkpoint-dir", str(tmp_path / "no")]) == 2
    assert "does not exist" in capsys.readouterr().err

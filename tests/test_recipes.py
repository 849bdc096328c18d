"""Recipes: one home for every protocol; the CLI's defaults are the recipes', and every setting can be set."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from pyg_em.cli import main
from pyg_em.datasets import attributed_sbm
from pyg_em.recipes import (
    RECIPES,
    ConfigError,
    DAEGCRecipe,
    GAERecipe,
    GEMRecipe,
    VGAERecipe,
    get_recipe,
    list_recipes,
)
from tests.conftest import requires_sampler
from tests.test_cli import assert_png, write_toml

SBM = dict(num_nodes=300, num_blocks=3, avg_degree=8.0, num_features=16, feature_noise=0.5, seed=0)


def test_registry_lists_every_method_with_default_and_paper_recipes(capsys):
    rows = list_recipes()
    assert {(m, n) for m, n, _ in rows} >= {("gae", "default"), ("gae", "paper"), ("vgae", "paper"),
                                             ("daegc", "default"), ("daegc", "paper"), ("gem", "default"),
                                             ("kmeans", "default"), ("spectral", "default")}
    assert main(["run", "--list-recipes"]) == 0
    out = capsys.readouterr().out
    assert "daegc --recipe paper" in out and "Kipf & Welling" in out


def test_default_recipes_are_the_benchmarked_ones():
    gae, vgae, daegc = GAERecipe(), VGAERecipe(), DAEGCRecipe()
    assert (gae.encoder, gae.normalize_features, gae.lr, gae.epochs, gae.monitor) == \
        ("propagation", "auto", 0.005, 300, "val_auc_ap")
    assert (vgae.kl_weight, vgae.scale, vgae.propagation_steps) == (0.1, 1.8, 1)
    assert (daegc.pretrain_steps, daegc.weight_decay, daegc.neg_ratio, daegc.num_neighbors) == (100, 0.0, 3.0, [15, 10])
    paper = get_recipe("daegc", "paper")
    assert (paper.pretrain_steps, paper.weight_decay, paper.name) == (30, 5e-3, "paper")
    gae_paper = get_recipe("vgae", "paper")
    assert (gae_paper.encoder, gae_paper.hidden_channels, gae_paper.out_channels, gae_paper.kl_weight) == \
        ("gcn", [32], 16, 1.0)
    assert gae_paper.with_settings(lr=0.1).name == "paper"  # overriding a setting keeps the variant


@pytest.mark.parametrize("method", list(RECIPES))
def test_cli_report_records_every_setting_of_the_recipe(method, tmp_path):
    epochs = [] if method in ("kmeans", "spectral") else ["--epochs", "2"]
    extra = {"daegc": ["--set", "pretrain_steps=2", "--set", "hidden_channels=8"], "gem": ["--set", "feature_dim=4"],
             "gae": ["--set", "hidden_channels=[8]"], "vgae": ["--set", "kl_weight=0.5"]}.get(method, [])
    assert main(["run", method, "--dataset", "karate", "--embedding", "none", *epochs, *extra,
                 "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["config"]["device"] == "cpu" and report["recipe"] == "default"
    recipe = get_recipe(method)
    settings = report["config"][method]
    assert set(settings) == set(recipe.settings())
    assert None not in [v for k, v in settings.items() if getattr(recipe, k) is not None]
    if epochs:
        key = "num_layers" if method == "gem" else "epochs"
        assert settings[key] == 2
    changed = {k: v for k, v in settings.items() if v != recipe.settings()[k]}
    if method == "daegc":  # 'auto' is resolved from the data: the report holds the number that was used
        assert recipe.feature_weight == "auto" and isinstance(changed.pop("feature_weight"), float)
    assert set(changed) <= {"epochs", "num_layers", "pretrain_steps", "hidden_channels", "feature_dim", "kl_weight"}


def test_bad_recipe_settings_exit_2_naming_the_setting(tmp_path, capsys):
    cases = [("gae", "[gae]\nrecon = \"dense\"\n", "recon"), ("vgae", "[vgae]\nencoder = \"gat\"\n",
             "encoder must be one of"), ("daegc", "[daegc]\npretrain_steps = 0\n", "pretrain_steps"),
             ("daegc", "[daegc]\ngamma = \"high\"\n", "gamma"), ("daegc", "[daegc]\nnum_neighbors = [0, 0]\n",
             "num_neighbors"), ("gem", "[gem]\nfeature_dim = -1\n", "feature_dim")]
    for i, (method, toml, message) in enumerate(cases):
        config = write_toml(tmp_path / f"{i}.toml", toml)
        assert main(["run", method, "--dataset", "karate", "--config", config]) == 2
        assert message in capsys.readouterr().err
    assert main(["run", "gem", "--dataset", "karate", "--batch-size", "8"]) == 2
    assert "--batch-size" in capsys.readouterr().err


@pytest.mark.parametrize("method, extra", [("gae", {}), ("vgae", {}), ("gae", {"encoder": "gcn"}),
                                           pytest.param("vgae", {"batch_size": 64}, marks=requires_sampler)])
def test_autoencoder_recipes_on_a_small_sbm(method, extra):
    data = attributed_sbm(**SBM)
    recipe = get_recipe(method).with_settings(epochs=10, n_init=2, **extra)
    result = recipe.run(data, seed=0)
    assert result.metrics["acc"] > 0.8 and result.metrics["auc"] > 0.6
    assert result.embedding.shape == (300, recipe.out_channels) and result.labels.shape == (300,)
    assert result.proba.shape == (300, 3) and torch.allclose(result.proba.sum(1).double(),
                                                              torch.ones(300, dtype=torch.float64), atol=1e-5)
    assert torch.equal(result.labels, result.proba.argmax(1))
    assert len(result.history["total"]) == 10 and len(result.history["val_auc"]) == 10
    assert 0 <= result.selected_epoch < 10
    best = max(range(10), key=result.history["val_auc_ap"].__getitem__)
    assert result.selected_epoch == best
    pairs = result.link_scores["edge_index"]
    assert pairs.size(1) == result.link_scores["score"].numel() == result.link_scores["label"].numel()
    again = get_recipe(method).with_settings(epochs=10, n_init=2, **extra).run(data, seed=0)
    assert again.metrics == result.metrics  # the seed fixes the split, the negatives and the training


@pytest.mark.parametrize("batch_size", [None, pytest.param(64, marks=requires_sampler)])
def test_daegc_recipe_on_a_small_sbm(batch_size):
    data = attributed_sbm(**SBM)
    recipe = DAEGCRecipe(pretrain_steps=3, n_init=2, hidden_channels=32, epochs=3, batch_size=batch_size)
    result = recipe.run(data, seed=0)
    assert result.metrics["acc"] > 0.9
    assert result.embedding.shape == (300, 16) and result.labels.shape == (300,)
    # pretrain_steps=3: three full-batch epochs, or the first 3 of one epoch's 5 mini-batches
    assert len(result.history["total"]) == 3
    assert len(result.history["pretrain_total"]) == (3 if batch_size is None else 1)
    # self-training shows what it changes: the fraction of nodes that moved, and ACC/NMI against the labels
    assert len(result.history["assignment_change"]) == 2 and len(result.history["acc"]) == 2
    assert all(0.0 <= c <= 1.0 for c in result.history["assignment_change"])


def test_gem_recipe_learns_weights_that_separate_blocks(tmp_path, capsys):
    data = attributed_sbm(**SBM)
    result = GEMRecipe(num_layers=3, n_init=2).run(data, seed=0)
    change = result.history["weight_change"]
    assert len(change) == 3 and all(c > 0 for c in change)
    assert result.metrics["acc"] > 0.9 and result.embedding.shape == (300, 3)
    assert result.x_label == "EM layer"


def test_daegc_cli_run_writes_report_with_both_training_phases(tmp_path, capsys):
    config = write_toml(tmp_path / "c.toml", "[daegc]\npretrain_steps = 2\nn_init = 2\nhidden_channels = 16\n"
                        "[plots]\ndpi = 50\n")
    assert main(["run", "daegc", "--dataset", "karate", "--epochs", "3", "--config", config, "--device", "cpu",
                 "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert {"acc", "nmi", "ari", "modularity", "silhouette"} <= set(report["metrics"])
    assert report["config"]["daegc"]["pretrain_steps"] == 2 and report["config"]["daegc"]["gamma"] == 10.0
    history = report["history"]
    assert len(history["total"]) == 3 and len(history["cluster"]) == 3 and len(history["pretrain_recon"]) == 2
    for name in ("losses", "embedding", "confusion"):
        assert_png(tmp_path / "r" / f"{name}.png")
    assert "acc" in capsys.readouterr().out


def test_recipe_fields_have_documented_defaults():
    for variants in RECIPES.values():
        cls = type(variants["default"]())
        doc = "".join(c.__doc__ or "" for c in cls.__mro__)
        for f in dataclasses.fields(cls):
            assert f"{f.name} (" in doc, f"{cls.__name__}.{f.name} is not documented in its Args"


def test_report_records_the_data_root_actually_used(tmp_path, planetoid_root, monkeypatch):
    monkeypatch.setenv("PYG_EM_DATA", str(planetoid_root))
    assert main(["run", "kmeans", "--dataset", "cora", "--set", "n_init=1", "--embedding", "none",
                 "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["config"]["root"] == str(planetoid_root)  # never null when a root was used


def test_settings_accept_numpy_numbers():
    import numpy as np

    recipe = DAEGCRecipe().with_settings(epochs=np.int64(3), num_neighbors=[np.int64(5), np.int64(4)],
                                         gamma=np.float32(2.0))
    assert recipe.epochs == 3 and recipe.num_neighbors == [5, 4] and recipe.gamma == 2.0
    from pyg_em.models import link_split

    split = link_split(attributed_sbm(**SBM), val_ratio=np.float32(0.1), test_ratio=np.float64(0.1), seed=0)
    assert split.val.pos_edge_label_index.size(1) > 0


def _hand_silhouette(x, labels):
    """The silhouette by its definition (mean over points of (b - a) / max(a, b)), with NumPy distances."""
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    values = []
    for i in range(len(x)):
        own = labels == labels[i]
        a = d[i, own].sum() / (own.sum() - 1)
        b = min(d[i, labels == c].mean() for c in set(labels.tolist()) if c != labels[i])
        values.append((b - a) / max(a, b))
    return float(np.mean(values))


def test_feature_silhouette_against_its_definition_and_edge_cases():
    from pyg_em.clusters import feature_silhouette

    gen = torch.Generator().manual_seed(0)
    sizes = [30, 12, 20]  # unequal clusters
    centres = torch.tensor([[0.0, 0.0, 0.0], [9.0, 1.0, 0.0], [0.0, 8.0, 5.0]])
    truth = torch.cat([torch.full((s,), c) for c, s in enumerate(sizes)])
    x = centres[truth] + 0.6 * torch.randn(len(truth), 3, generator=gen)
    # separated blobs: k-means finds the true partition, so the silhouette is that of the truth
    expected = _hand_silhouette(x.double().numpy(), truth.numpy())
    assert feature_silhouette(x, 3) == pytest.approx(expected, rel=1e-9)
    assert feature_silhouette(x.to_sparse(), 3) == pytest.approx(expected, rel=1e-9)
    noise = torch.randn(400, 8, generator=gen)
    assert feature_silhouette(noise, 3) < 0.2 < expected
    assert feature_silhouette(torch.ones(20, 4), 2) == 0.0  # featureless graphs: nothing to keep
    # bag of words without structure, where k-means isolates one outlying row on each side: the plain silhouette
    # of that partition reads 0.11, as high as clustered features; without the outlier clusters it is 0
    words = (torch.rand(600, 800, generator=torch.Generator().manual_seed(3)) < 0.025).double()
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    plain = KMeans(3, n_init=5, random_state=0).fit_predict(words.numpy())
    assert sorted(np.bincount(plain))[:2] == [1, 1] and silhouette_score(words.numpy(), plain) > 0.1
    assert feature_silhouette(words, 3) == 0.0
    sample = feature_silhouette(noise, 3, sample_size=50)
    assert sample != feature_silhouette(noise, 3)  # the sample is really taken
    with pytest.raises(ValueError, match="NaN"):
        feature_silhouette(torch.tensor([[0.0, float("nan")], [1.0, 2.0], [3.0, 1.0]]), 2)
    with pytest.raises(ValueError, match="n_clusters"):
        feature_silhouette(x, 1)


def test_auto_feature_weight_rule():
    from pyg_em.recipes import auto_feature_weight

    assert auto_feature_weight(0.004) == 0.0 and auto_feature_weight(0.02) == 0.0  # bag-of-words: the paper's model
    assert auto_feature_weight(0.05) == pytest.approx(40 * 0.025)
    assert auto_feature_weight(0.5) == 3.0  # capped


def test_daegc_recipe_resolves_auto_feature_weight_and_records_it(tmp_path):
    from pyg_em.recipes import load_model, save_model

    clustered = attributed_sbm(200, 3, 6.0, p_in_ratio=1.5, num_features=8, feature_noise=0.5, seed=0)
    recipe = DAEGCRecipe(pretrain_steps=3, epochs=2, n_init=2, hidden_channels=16)
    with pytest.raises(ValueError, match="resolve 'auto'"):
        recipe.build_model(8, 3)
    resolved, notes = recipe.resolved(clustered, 3)
    assert recipe.feature_weight == "auto" and resolved.feature_weight == 3.0 and "feature_weight auto" in notes[0]
    result = recipe.run(clustered, seed=0)
    assert result.recipe.feature_weight == 3.0 and result.model.feature_weight == 3.0
    assert result.model.conv1.root_weight and result.notes == notes and "features" in result.history
    words = attributed_sbm(600, 3, 6.0, num_features=8, seed=0)
    words.x = (torch.rand(600, 800, generator=torch.Generator().manual_seed(0)) < 0.025).float()  # bag of words
    assert recipe.resolved(words, 3)[0].feature_weight == 0.0
    assert DAEGCRecipe.paper().resolved(clustered, 3) == (DAEGCRecipe.paper(), [])
    with pytest.raises(ConfigError, match="feature_weight"):
        DAEGCRecipe().with_settings(feature_weight="high")
    # model.pt keeps the resolved weight: the rebuilt model has the root terms and assigns identically
    path = save_model(tmp_path / "model.pt", result.recipe, result.model, 8, 3)
    again, model, _ = load_model(path)
    assert again.feature_weight == 3.0 and torch.equal(again.assign(model, clustered)[0], result.labels)

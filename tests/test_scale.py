"""Scale features on small graphs: sampled + chunked k-means, the SBM's memory check and lean build, the narrow
layer-wise inference, and kill/resume of fit_daegc from its per-epoch checkpoints."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from torch_geometric.utils import coalesce, is_undirected

from pyg_em.clusters import kmeans, lloyd_refine
from pyg_em.datasets import attributed_sbm, available_memory_bytes, sbm_memory_bytes
from pyg_em.models import DAEGC
from pyg_em.recipes import fit_daegc
from pyg_em.train import load_checkpoint, seed_everything
from tests.conftest import requires_sampler


def _blobs(n=3000, k=4, d=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=gen) * 3
    labels = torch.randint(k, (n,), generator=gen)
    return centres[labels] + torch.randn(n, d, generator=gen) * torch.linspace(0.5, 1.5, d), labels


def _inertia(x, labels, centres):
    return float((x.double() - centres.double()[labels]).pow(2).sum())


# -- k-means ---------------------------------------------------------------------------------------------------
def test_small_inputs_keep_the_exact_sklearn_partition(device):
    x, _ = _blobs(500)
    labels, centres = kmeans(x.to(device), 4, n_init=5, seed=3)
    reference = KMeans(4, n_init=5, random_state=3).fit(x.double().numpy())
    assert np.array_equal(labels.cpu().numpy(), reference.labels_)
    np.testing.assert_allclose(centres.cpu().double().numpy(), reference.cluster_centers_, rtol=1e-5, atol=1e-6)
    assert labels.device.type == device.type and centres.dtype == x.dtype


def test_sampled_kmeans_matches_sklearn_on_all_points(device):
    x, truth = _blobs(6000, k=5, seed=1)
    labels, centres = kmeans(x.to(device), 5, n_init=4, seed=0, exact_max_points=1000, sample_size=800,
                             chunk_size=777)
    reference = KMeans(5, n_init=10, random_state=0).fit(x.double().numpy())
    ours = _inertia(x, labels.cpu(), centres.cpu())
    assert ours <= reference.inertia_ * (1 + 1e-6)  # the full Lloyd passes reach sklearn's optimum
    # the labels are the nearest centres of the returned centres, and every centre is the mean of its rows
    assert torch.equal(labels.cpu(), torch.cdist(x.double(), centres.cpu().double()).argmin(1))
    for u in range(5):
        torch.testing.assert_close(centres.cpu()[u].double(), x[labels.cpu() == u].double().mean(0), rtol=0,
                                   atol=1e-4)


def test_one_chunked_lloyd_pass_equals_the_dense_update():
    x, _ = _blobs(1000, k=3, d=4, seed=2)
    start = x[:3].clone() + 0.1
    labels, moved = lloyd_refine(x, start, max_iter=1, chunk_size=97)
    dense = np.linalg.norm(x.double().numpy()[:, None] - start.double().numpy()[None], axis=2).argmin(1)
    expected = np.stack([x.double().numpy()[dense == u].mean(0) for u in range(3)])
    np.testing.assert_allclose(moved.double().numpy(), expected, atol=1e-5)
    # an empty cluster keeps its centre
    far = torch.cat([start, torch.full((1, 4), 1e6)])
    _, kept = lloyd_refine(x, far, max_iter=1)
    assert torch.equal(kept[3], far[3])
    with pytest.raises(ValueError, match="centers must have shape"):
        lloyd_refine(x, start[:, :2])


# -- SBM memory --------------------------------------------------------------------------------------------------
def test_sbm_is_the_coalesced_symmetric_graph_and_the_estimate_bounds_its_arrays():
    data = attributed_sbm(3000, 3, avg_degree=12, num_features=7, seed=4)
    ei = data.edge_index
    assert torch.equal(ei, coalesce(ei, num_nodes=3000)) and is_undirected(ei) and bool((ei[0] != ei[1]).all())
    same = (data.y[ei[0]] == data.y[ei[1]]).float().mean()
    assert 0.75 < float(same) < 0.9  # p_in/p_out = 10 with 3 blocks: 10 / 12 of the edges inside blocks
    # x = mu_y + noise: the block means are recovered
    means = torch.stack([data.x[data.y == k].mean(0) for k in range(3)])
    assert float((data.x - means[data.y]).std()) == pytest.approx(1.0, abs=0.05)
    output = ei.numel() * 8 + data.x.numel() * 4 + data.y.numel() * 8
    assert output < sbm_memory_bytes(3000, 12, 7) < 10 * output + (80 << 20)
    assert attributed_sbm(3000, 3, avg_degree=12, num_features=7, seed=4).edge_index.equal(ei)  # seeded


def test_sbm_that_cannot_fit_fails_at_once_with_the_estimate_and_the_limit():
    with pytest.raises(MemoryError, match=r"needs about .* GiB at its peak but only 0\.00 GiB"):
        attributed_sbm(10_000, avg_degree=10, memory_limit=1000)
    # a 10M-node request on a machine with less than ~3 GiB available is refused before any edge is drawn
    assert sbm_memory_bytes(10_000_000, 10, 32) > 2.5 * 2**30
    available = available_memory_bytes()
    assert available is None or available > 0


# -- narrow layer-wise inference ---------------------------------------------------------------------------------
def test_inference_from_the_input_equals_the_full_forward(device):
    seed_everything(0)
    data = attributed_sbm(400, 3, avg_degree=6, num_features=5, seed=1).to(device)
    model = DAEGC(5, 3, hidden_channels=24, embedding_channels=4).to(device)  # 5 < 24: the narrow path
    model.eval()
    full = model.embed(data.x, data.edge_index)
    for chunk in (13, 4096):
        torch.testing.assert_close(model.embed_data(data, chunk_size=chunk), full, atol=1e-5, rtol=1e-4)
    wide = DAEGC(5, 3, hidden_channels=4, embedding_channels=3).to(device).eval()  # 5 > 4: project first
    torch.testing.assert_close(wide.embed_data(data, chunk_size=50), wide.embed(data.x, data.edge_index),
                               atol=1e-5, rtol=1e-4)


# -- kill / resume -----------------------------------------------------------------------------------------------
class _Killed(Exception):
    pass


def _fit(data, folder, kill_after=None, resume=False, batch_size=None):
    seed_everything(5)
    model = DAEGC(data.num_features, 3, hidden_channels=16, embedding_channels=4)
    if kill_after is not None:
        calls = {"n": 0}
        for name in ("pretrain_loss", "pretrain_loss_batch", "loss", "loss_batch"):
            real = getattr(model, name)

            def counted(*args, _real=real, **kwargs):
                calls["n"] += 1
                if calls["n"] > kill_after:
                    raise _Killed
                return _real(*args, **kwargs)

            setattr(model, name, counted)
    timings = {}
    history = fit_daegc(model, data, pretrain_epochs=4, epochs=5, pretrain_lr=1e-2, lr=1e-3, n_init=2,
                        batch_size=batch_size, num_neighbors=[5, 5] if batch_size else None, device="cpu",
                        progress=False, checkpoint_dir=folder, resume=resume, timings=timings)
    return model, history, timings


@pytest.mark.parametrize("batch_size,kill_after", [(None, 2), (None, 6), pytest.param(64, 21, marks=requires_sampler)])
def test_killed_fit_resumes_to_the_uninterrupted_result(tmp_path, batch_size, kill_after):
    data = attributed_sbm(200, 3, avg_degree=6, num_features=6, seed=2)
    full, full_history, timings = _fit(data, tmp_path / "full", batch_size=batch_size)
    assert len(timings["pretrain"]) == 4 and len(timings["self_train_epoch"]) == 5 and len(timings["kmeans"]) == 1
    with pytest.raises(_Killed):  # killed in pretraining (2 steps) or in self-training (6 steps)
        _fit(data, tmp_path / "run", kill_after=kill_after, batch_size=batch_size)
    stage = "self_train" if (tmp_path / "run" / "self_train.ckpt").is_file() else "pretrain"
    assert load_checkpoint(tmp_path / "run" / f"{stage}.ckpt")["epoch"] >= 1
    resumed, history, _ = _fit(data, tmp_path / "run", resume=True, batch_size=batch_size)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert history == full_history
    assert torch.equal(full.predict(data), resumed.predict(data))


def test_resume_needs_a_checkpoint_folder():
    data = attributed_sbm(60, 2, avg_degree=4, num_features=3, seed=0)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        fit_daegc(DAEGC(3, 2, hidden_channels=4, embedding_channels=2), data, resume=True, epochs=1)

import os

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.loader import NeighborLoader
from torch_geometric.nn import GCNConv

from pyg_em.datasets import attributed_sbm
from pyg_em.models import BaseModel, LossOutput
from pyg_em.train import (
    EarlyStopping,
    LambdaCallback,
    Trainer,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
)
from tests.conftest import requires_sampler


class ToyAutoEncoder(BaseModel):
    """GCN encoder + linear decoder reconstructing features; dropout makes resume depend on the RNG."""

    def __init__(self, in_dim, hidden=8):
        super().__init__()
        self.conv = GCNConv(in_dim, hidden)
        self.dec = torch.nn.Linear(hidden, in_dim)
        self.reset_parameters()

    def embed(self, x, edge_index, edge_weight=None):
        return F.dropout(self.conv(x, edge_index, edge_weight).relu(), p=0.3, training=self.training)

    def loss(self, data):
        recon = F.mse_loss(self.dec(self.embed(data.x, data.edge_index)), data.x)
        reg = 1e-3 * self.dec.weight.pow(2).sum()
        return LossOutput(recon + reg, {"recon": recon, "reg": reg})

    def loss_batch(self, batch):
        z = self.embed(batch.x, batch.edge_index)[: batch.batch_size]
        recon = F.mse_loss(self.dec(z), batch.x[: batch.batch_size])
        return LossOutput(recon, {"recon": recon})


@pytest.fixture
def graph():
    return attributed_sbm(200, 2, 6, num_features=6, seed=3)


def test_full_batch_loss_decreases(graph, device):
    seed_everything(0)
    model = ToyAutoEncoder(6)
    history = Trainer(model, epochs=60, lr=0.02, device=device, progress=False).fit(graph)
    assert set(history) == {"total", "recon", "reg"}
    assert len(history["total"]) == 60
    assert history["recon"][-1] < 0.8 * history["recon"][0]


def test_log_every_keeps_every_epoch(graph):
    model = ToyAutoEncoder(6)
    history = Trainer(model, epochs=7, log_every=3, progress=False, device="cpu").fit(graph)
    assert len(history["total"]) == 7


def test_resume_is_bit_exact(graph, tmp_path):
    ckpt = tmp_path / "run.pt"
    seed_everything(0)
    reference = Trainer(ToyAutoEncoder(6), epochs=20, device="cpu", progress=False).fit(graph)["total"]

    class Interrupt(Exception):
        pass

    def stop_at(trainer, epoch):
        if epoch == 9:
            raise Interrupt

    seed_everything(0)
    first = Trainer(ToyAutoEncoder(6), epochs=20, device="cpu", progress=False, checkpoint_path=ckpt,
                    callbacks=[LambdaCallback(on_epoch_start=stop_at)])
    with pytest.raises(Interrupt):
        first.fit(graph)
    assert load_checkpoint(ckpt)["epoch"] == 9

    seed_everything(123)  # a different global state must not matter after resume
    resumed = Trainer(ToyAutoEncoder(6), epochs=20, device="cpu", progress=False, checkpoint_path=ckpt)
    history = resumed.fit(graph, resume=True)["total"]
    assert history == reference


@requires_sampler
def test_minibatch_training(graph, device):
    seed_everything(0)
    loader = NeighborLoader(graph, num_neighbors=[5], batch_size=64, shuffle=True)
    model = ToyAutoEncoder(6)
    history = Trainer(model, epochs=15, lr=0.02, device=device, progress=False).fit(loader=loader)
    assert history["recon"][-1] < history["recon"][0]


def test_empty_loader_is_an_error(graph):
    with pytest.raises(ValueError, match="loader yielded no batches"):
        Trainer(ToyAutoEncoder(6), epochs=1, device="cpu", progress=False).fit(loader=[])


def test_early_stopping_restores_best(graph):
    model = ToyAutoEncoder(6)
    calls = []

    def fake_metric(model, data):
        calls.append(1)
        return {"score": [0.5, 0.9, 0.1, 0.1, 0.1, 0.1][min(len(calls) - 1, 5)]}

    stopper = EarlyStopping("score", mode="max", patience=2)
    history = Trainer(model, epochs=50, device="cpu", progress=False, eval_fn=fake_metric,
                      callbacks=[stopper]).fit(graph)
    assert len(history["total"]) == 4 and stopper.best == 0.9 and stopper.best_epoch == 1


def test_nonfinite_loss_is_reported(graph):
    class Bad(ToyAutoEncoder):
        def loss(self, data):
            out = super().loss(data)
            return LossOutput(out.total * float("nan"), {})

    with pytest.raises(FloatingPointError, match="non-finite loss"):
        Trainer(Bad(6), epochs=2, device="cpu", progress=False).fit(graph)


def test_trainer_validates_data_once(graph):
    graph.x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x contains NaN"):
        Trainer(ToyAutoEncoder(6), epochs=1, device="cpu", progress=False).fit(graph)


def test_bad_arguments():
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        Trainer(ToyAutoEncoder(2), epochs=0)
    with pytest.raises(ValueError, match="fit\\(\\) needs data"):
        Trainer(ToyAutoEncoder(2), epochs=1, device="cpu").fit()


def test_loss_output_keeps_tensors():
    with pytest.raises(TypeError, match="must be a tensor"):
        LossOutput(torch.tensor(1.0), {"recon": 0.5})
    out = LossOutput(torch.tensor(1.0), {"a": torch.tensor(2.0)})
    assert out.to_floats() == {"total": 1.0, "a": 2.0}


def test_checkpoint_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"v": 1}, path)

    def broken_save(obj, handle):
        handle.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint({"v": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # no temporary file left behind


def test_shard_indices_disjoint_cover_and_equal_size():
    from pyg_em.train import shard_indices

    parts = [shard_indices(11, rank=r, world_size=3, seed=5) for r in range(3)]
    assert sorted(torch.cat(parts).tolist()) == list(range(11))
    equal = [shard_indices(11, rank=r, world_size=3, seed=5, equal_size=True) for r in range(3)]
    assert [p.numel() for p in equal] == [3, 3, 3]
    assert len(set(torch.cat(equal).tolist())) == 9
    with pytest.raises(ValueError, match="rank must lie"):
        shard_indices(4, rank=2, world_size=2)


def test_divergence_names_the_epoch_last_finite_loss_and_a_hint(graph):
    class DivergesAtEpoch3(ToyAutoEncoder):
        totals = []

        def loss(self, data):
            out = super().loss(data)
            if len(self.totals) == 3:
                out = LossOutput(out.total * float("inf"), out.components)
            self.totals.append(float(out.total))  # a host copy, for this test only
            return out

    trainer = Trainer(DivergesAtEpoch3(6), epochs=10, log_every=5, device="cpu", progress=False)
    with pytest.raises(FloatingPointError, match="non-finite loss at epoch 3") as info:
        trainer.fit(graph)
    message = str(info.value)
    # The last finite loss is epoch 2's, although the check only runs every log_every=5 epochs.
    assert f"last finite loss: {DivergesAtEpoch3.totals[2]:.6g}." in message
    assert "Lower the learning rate (lr=0.01)" in message

    # Parameters that overflow in the last step, after a finite loss, are caught before evaluation runs.
    model = ToyAutoEncoder(6)

    def bias_loss(m, data):
        return m.dec.bias.sum() * 10.0

    def never(model, data):
        raise AssertionError("eval_fn must not run on non-finite parameters")

    diverged = Trainer(model, epochs=1, device="cpu", progress=False, step_fn=bias_loss, eval_fn=never,
                       optimizer=torch.optim.SGD(model.parameters(), lr=1e38))
    with pytest.raises(FloatingPointError, match="non-finite parameters after the step of epoch 0"):
        diverged.fit(graph)


def test_resume_cleans_orphans_and_refuses_bad_epochs(graph, tmp_path):
    ckpt = tmp_path / "run.pt"
    (tmp_path / ".run.pt.dead.tmp").write_bytes(b"x" * 100)
    Trainer(ToyAutoEncoder(6), epochs=2, device="cpu", progress=False, checkpoint_path=ckpt).fit(graph, resume=True)
    assert sorted(os.listdir(tmp_path)) == ["run.pt"]
    with pytest.raises(ValueError, match="epochs=1"):
        Trainer(ToyAutoEncoder(6), epochs=1, device="cpu", progress=False, checkpoint_path=ckpt).fit(graph,
                                                                                                   resume=True)

"""Checkpoint fault matrix: kills during writes, truncation, bit flips, foreign files, changed settings.

Every corruption must be detected (an error naming the file, never changed tensors), and every resume from a
surviving checkpoint must reproduce the uninterrupted run bit for bit. Case counts scale with
``PYG_EM_FUZZ_CASES`` (CI-sized by default).
"""

import os
import pickle
import random
import signal
import time
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv

from pyg_em.datasets import attributed_sbm
from pyg_em.models import DAEGC, GAE, BaseModel, LossOutput
from pyg_em.nn import GCNEncoder
from pyg_em.train import CheckpointError, LambdaCallback, Trainer, load_checkpoint, save_checkpoint, seed_everything
from pyg_em.train import checkpoint as checkpoint_module

CASES = int(os.environ.get("PYG_EM_FUZZ_CASES", "200"))
EPOCHS = 8


class Toy(BaseModel):
    """Dropout and a random noise term make every step depend on the RNG state."""

    def __init__(self):
        super().__init__()
        self.conv, self.dec = GCNConv(6, 8), torch.nn.Linear(8, 6)

    def loss(self, data):
        z = F.dropout(self.conv(data.x, data.edge_index).relu(), p=0.3, training=self.training)
        recon = F.mse_loss(self.dec(z), data.x + 0.1 * torch.randn_like(data.x))
        return LossOutput(recon, {"recon": recon})


@pytest.fixture(scope="module")
def graph():
    return attributed_sbm(120, 2, 6, num_features=6, seed=3)


def _trainer(path, epochs=EPOCHS, callbacks=(), **kwargs):
    seed_everything(0)
    return Trainer(Toy(), epochs=epochs, lr=0.02, device="cpu", progress=False, checkpoint_path=path,
                   callbacks=list(callbacks), **kwargs)


def _params(trainer):
    return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])


@pytest.fixture(scope="module")
def reference(graph, tmp_path_factory):
    trainer = _trainer(tmp_path_factory.mktemp("ref") / "ref.ckpt")
    history = trainer.fit(graph)
    return history, _params(trainer)


def _orphans(folder):
    return [p for p in os.listdir(folder) if p.endswith(".tmp")]


# -- kills ----------------------------------------------------------------------------------------------------
def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def _fork(target):
    """Start ``target()`` in a forked child (which never returns) and return its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            target()
        finally:
            os._exit(0)
    return pid


def _run_child(target):
    """Run ``target()`` in a forked child and return its wait status."""
    return os.waitpid(_fork(target), 0)[1]


KILL_POINTS = ["serialise", "partial_write", "before_fsync", "before_rename", "after_rename"]


def _aimed_kill(path, graph, point, at_write):
    count = {"n": 0}

    def armed():
        count["n"] += 1
        return count["n"] == at_write

    real_save, real_fdopen, real_fsync, real_replace = torch.save, os.fdopen, os.fsync, os.replace
    real_folder_sync = checkpoint_module._fsync_folder

    def save(obj, f, *a, **k):
        if point == "serialise" and armed():
            _die()
        return real_save(obj, f, *a, **k)

    class HalfWriter:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

        def write(self, data):
            if point == "partial_write" and len(data) > 100 and armed():
                self.handle.write(data[: len(data) // 2])
                self.handle.flush()
                _die()
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

    def fsync(fd):
        if point == "before_fsync" and armed():
            _die()
        return real_fsync(fd)

    def replace(src, dst):
        if point == "before_rename" and armed():
            _die()
        return real_replace(src, dst)

    def folder_sync(folder):
        if point == "after_rename" and armed():
            _die()
        return real_folder_sync(folder)

    torch.save = save
    checkpoint_module.os.fdopen = lambda fd, mode: HalfWriter(real_fdopen(fd, mode))
    checkpoint_module.os.fsync = fsync
    checkpoint_module.os.replace = replace
    checkpoint_module._fsync_folder = folder_sync
    _trainer(path).fit(graph, resume=True)


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kills_inside_checkpoint_writes(point, graph, reference, tmp_path):
    history, params = reference
    path = tmp_path / "run.ckpt"
    for at_write in (1, 3, 3):  # counted per process: the 3rd write of a resumed process is a later epoch
        status = _run_child(lambda k=at_write: _aimed_kill(path, graph, point, k))
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        if path.exists():
            load_checkpoint(path)  # the surviving checkpoint is intact (previous or new one)
            assert not _orphans(tmp_path)  # cleaned by the load
    resumed = _trainer(path)
    assert resumed.fit(graph, resume=True) == history
    assert torch.equal(_params(resumed), params)
    assert not _orphans(tmp_path)  # cleaned by the resume


def test_random_sigkills_during_training(graph, reference, tmp_path):
    """Unaimed kills at random times of a process checkpointing every epoch; resume always bit-exact."""
    history, params = reference
    rng = random.Random(0)
    big = tmp_path / "big.ckpt"

    def train_forever():
        # A long run with large checkpoints, so that kills often land inside a write.
        trainer = _trainer(big, epochs=10_000)
        trainer.model.register_buffer("ballast", torch.randn(500_000))
        trainer.fit(graph, resume=True)

    kills = max(3, CASES // 100)
    for _ in range(kills):
        pid = _fork(train_forever)
        time.sleep(rng.uniform(0.2, 1.2))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        if big.exists():
            state = load_checkpoint(big)
            assert state["epoch"] >= 1
            assert not _orphans(tmp_path)
    # The same holds for the small run: kill it at a random time, then resume to the end.
    path = tmp_path / "run.ckpt"
    for _ in range(kills):
        delay = rng.uniform(0.001, 0.05)
        _run_child(lambda delay=delay: (signal.signal(signal.SIGALRM, lambda *a: _die()),
                            signal.setitimer(signal.ITIMER_REAL, delay),
                            _trainer(path).fit(graph, resume=True)))
    resumed = _trainer(path)
    assert resumed.fit(graph, resume=True) == history
    assert torch.equal(_params(resumed), params)


def test_orphan_tmp_files_are_removed_by_the_next_write(tmp_path):
    path = tmp_path / "run.ckpt"
    for i in range(3):
        (tmp_path / f".run.ckpt.orphan{i}.tmp").write_bytes(b"x" * 1000)
    (tmp_path / ".other.ckpt.keep.tmp").write_bytes(b"x")  # another checkpoint's file is left alone
    save_checkpoint({"v": torch.ones(2)}, path)
    assert sorted(os.listdir(tmp_path)) == [".other.ckpt.keep.tmp", "run.ckpt"]


# -- truncation and bit flips ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint_bytes(graph, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "run.ckpt"
    trainer = _trainer(path, epochs=3)
    trainer.fit(graph)
    return path.read_bytes()


def test_every_truncation_is_detected(checkpoint_bytes, tmp_path):
    path = tmp_path / "cut.ckpt"
    n = len(checkpoint_bytes)
    rng = random.Random(1)
    lengths = sorted({0, 1, 15, 16, 17, 47, 48, 55, 56, 57, n // 2, n - 1} | {rng.randrange(n) for _ in range(CASES)})
    for length in lengths:
        path.write_bytes(checkpoint_bytes[:length])
        with pytest.raises(CheckpointError, match="cut.ckpt") as info:
            load_checkpoint(path)
        assert any(word in str(info.value) for word in ("empty", "truncated", "not a pyg_em checkpoint"))
    path.write_bytes(checkpoint_bytes + b"\0")
    with pytest.raises(CheckpointError, match="longer than written"):
        load_checkpoint(path)


def test_every_single_byte_corruption_is_detected(checkpoint_bytes, tmp_path):
    path = tmp_path / "flip.ckpt"
    n = len(checkpoint_bytes)
    rng = random.Random(2)
    positions = list(range(56)) + [rng.randrange(56, n) for _ in range(CASES)]
    detected = 0
    for i, pos in enumerate(positions):
        corrupted = bytearray(checkpoint_bytes)
        # Alternate single-bit flips and random byte replacements.
        corrupted[pos] ^= (1 << rng.randrange(8)) if i % 2 else rng.randrange(1, 256)
        path.write_bytes(bytes(corrupted))
        with pytest.raises(CheckpointError, match="flip.ckpt"):
            load_checkpoint(path)
        detected += 1
    assert detected == len(positions)


# -- foreign files --------------------------------------------------------------------------------------------
class _Evil:
    def __reduce__(self):
        return os.system, ("touch pwned-by-checkpoint",)


def _foreign_files(tmp_path, graph):
    other = Toy()
    plain = tmp_path / "plain.pt"
    torch.save({"model": other.state_dict()}, plain)  # a bare torch.save file
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(_Evil()))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(bytes(random.Random(3).randrange(256) for _ in range(4096)))
    text = tmp_path / "text.pt"
    text.write_text('{"epoch": 3}')
    return [plain, evil, garbage, text]


def test_foreign_files_are_refused_without_running_code(tmp_path, graph, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path in _foreign_files(tmp_path, graph):
        with pytest.raises(CheckpointError, match=path.name):
            load_checkpoint(path)
        trainer = _trainer(path)
        with pytest.raises(CheckpointError, match=path.name):
            trainer.fit(graph, resume=True)
    assert not (tmp_path / "pwned-by-checkpoint").exists()
    # A well-formed checkpoint that is not a Trainer's, and a Trainer checkpoint of another model.
    save_checkpoint({"v": torch.ones(1)}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="not a Trainer checkpoint"):
        _trainer(tmp_path / "other.ckpt").fit(graph, resume=True)
    _trainer(tmp_path / "toy.ckpt", epochs=2).fit(graph)
    seed_everything(0)
    wider = Trainer(DAEGC(6, 2, hidden_channels=4, embedding_channels=2), epochs=4, device="cpu", progress=False,
                    checkpoint_path=tmp_path / "toy.ckpt")
    with pytest.raises(CheckpointError, match="toy.ckpt.* does not fit this DAEGC"):
        wider.fit(graph, resume=True)
    # State that a safe load would refuse is refused when saving, not at resume.
    with pytest.raises(TypeError, match="weights_only=True"):
        save_checkpoint({"obj": _Evil()}, tmp_path / "bad.ckpt")


# -- changed settings -------------------------------------------------------------------------------------------
@pytest.fixture
def half_run(graph, tmp_path):
    path = tmp_path / "run.ckpt"

    class Stop(Exception):
        pass

    def stop(trainer, epoch):
        if epoch == EPOCHS // 2:
            raise Stop

    with pytest.raises(Stop):
        _trainer(path, callbacks=[LambdaCallback(on_epoch_start=stop)]).fit(graph)
    assert load_checkpoint(path)["epoch"] == EPOCHS // 2
    return path


def test_resume_continues_bit_exact(half_run, graph, reference):
    history, params = reference
    seed_everything(123)
    resumed = _trainer(half_run)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same settings: no warning
        assert resumed.fit(graph, resume=True) == history
    assert torch.equal(_params(resumed), params)


def test_new_lr_and_weight_decay_win_with_a_warning(half_run, graph):
    seed_everything(0)
    trainer = Trainer(Toy(), epochs=EPOCHS, lr=0.005, weight_decay=1e-3, device="cpu", progress=False,
                      checkpoint_path=half_run)
    with pytest.warns(UserWarning, match=r"lr: 0\.02 in the checkpoint, 0\.005 now.*weight_decay: 0(\.0)? in"):
        trainer.fit(graph, resume=True)
    assert trainer.optimizer.param_groups[0]["lr"] == 0.005
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 1e-3


def test_impossible_resumes_are_refused(half_run, graph, tmp_path):
    with pytest.raises(ValueError, match="at epoch 4 but this Trainer has epochs=3.*pass epochs >= 4"):
        _trainer(half_run, epochs=3).fit(graph, resume=True)
    seed_everything(0)
    model = Toy()
    sgd = Trainer(model, epochs=EPOCHS, optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                  device="cpu", progress=False, checkpoint_path=half_run)
    with pytest.raises(ValueError, match="written with the Adam optimiser but this Trainer uses SGD"):
        sgd.fit(graph, resume=True)
    state = load_checkpoint(half_run)
    for key, value, message in (("epoch", -3, "holds epoch -3"), ("epoch", True, "'epoch' is missing or not"),
                                ("rng", None, "'rng' is missing")):
        forged = dict(state, **{key: value})
        save_checkpoint(forged, tmp_path / "forged.ckpt")
        with pytest.raises(CheckpointError, match=message):
            _trainer(tmp_path / "forged.ckpt").fit(graph, resume=True)
    forged = dict(state, settings=dict(state["settings"], world_size=2))
    save_checkpoint(forged, tmp_path / "forged.ckpt")
    with pytest.raises(ValueError, match="written by 2 process"):
        _trainer(tmp_path / "forged.ckpt").fit(graph, resume=True)
    # A longer run continues from the checkpoint (epochs is the new total).
    longer = _trainer(half_run, epochs=EPOCHS + 2)
    assert len(longer.fit(graph, resume=True)["total"]) == EPOCHS + 2


# -- clustering models resume into freshly built models ------------------------------------------------------------
def _clustering_run(build, graph, path, epochs, stop_at=None):
    class Stop(Exception):
        pass

    def stop(trainer, epoch):
        if epoch == stop_at:
            raise Stop

    seed_everything(0)
    model = build()
    model.initialize_cluster_centers(graph, n_init=1)
    trainer = Trainer(model, epochs=epochs, lr=0.01, device="cpu", progress=False, checkpoint_path=path,
                      callbacks=[LambdaCallback(on_epoch_start=stop)])
    try:
        trainer.fit(graph)
    except Stop:
        pass
    return trainer


@pytest.mark.parametrize("build", [
    lambda: DAEGC(6, 2, hidden_channels=8, embedding_channels=4),
    lambda: GAE(GCNEncoder(6, 8, 4), n_clusters=2),
], ids=["daegc", "gae"])
def test_clustering_models_resume_into_fresh_models(build, graph, tmp_path):
    full = _clustering_run(build, graph, tmp_path / "full.ckpt", epochs=6)
    _clustering_run(build, graph, tmp_path / "half.ckpt", epochs=6, stop_at=3)
    seed_everything(99)
    fresh = build()  # DAEGC: head.target is 0 x K; GAE: cluster_centers is None
    resumed = Trainer(fresh, epochs=6, lr=0.01, device="cpu", progress=False, checkpoint_path=tmp_path / "half.ckpt")
    assert resumed.fit(graph, resume=True) == full.history
    for (name, a), (_, b) in zip(full.model.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), name

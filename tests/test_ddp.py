import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import requires_sampler

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@requires_sampler
@pytest.mark.ddp
def test_ddp_two_ranks_keep_identical_parameters_and_loss_falls(tmp_path):
    out = tmp_path / "params"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(ROOT / "examples" / "ddp_daegc.py"), "--nodes", "300",
           "--epochs", "6", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0 = torch.load(f"{out}.0", weights_only=True)
    rank1 = torch.load(f"{out}.1", weights_only=True)
    torch.testing.assert_close(rank0["params"], rank1["params"])
    recon = rank0["history"]["pretrain_recon"]
    assert recon[-1] < recon[0]
    assert rank0["history"]["pretrain_recon"] != rank1["history"]["pretrain_recon"]  # different shards per rank


# The fault matrix's toy model draws random numbers at every step (dropout, noise): each rank draws different ones,
# so a resume that restored rank 0's generator on every rank would drift from the uninterrupted run.
_RESUME_WORKER = """
import sys

import torch

from pyg_em.datasets import attributed_sbm
from pyg_em.train import LambdaCallback, Trainer, init_distributed, seed_everything, shutdown_distributed
from tests.test_checkpoint_faults import Toy


class Stop(Exception):
    pass


mode, ckpt, out = sys.argv[1:4]
rank, world = init_distributed()  # the default timeout (300 s) covers slow imports on a loaded machine
seed_everything(0)
data = attributed_sbm(120, 2, 6, num_features=6, seed=3)
model = Toy()
seed_everything(10 + rank)


def stop(trainer, epoch):
    if mode == "interrupt" and epoch == 7:
        raise Stop


trainer = Trainer(model, epochs=12, lr=0.02, device="cpu", progress=False, checkpoint_path=ckpt,
                  checkpoint_every=3, callbacks=[LambdaCallback(on_epoch_start=stop)])
try:
    history = trainer.fit(data, resume=mode == "resume")
except Stop:
    shutdown_distributed()
    sys.exit(0)
flat = torch.cat([p.detach().flatten() for p in model.parameters()])
torch.save({"params": flat, "history": history}, f"{out}.{rank}")
shutdown_distributed()
"""


def _torchrun(script, *args, timeout=240):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(script), *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.ddp
def test_ddp_resume_equals_the_uninterrupted_run(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_RESUME_WORKER)
    ckpt = tmp_path / "run.ckpt"
    proc = _torchrun(script, "full", tmp_path / "unused.ckpt", tmp_path / "full")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _torchrun(script, "interrupt", ckpt, tmp_path / "never")
    assert proc.returncode == 0, proc.stderr[-3000:]
    from pyg_em.train import load_checkpoint

    saved = load_checkpoint(ckpt)
    assert saved["epoch"] == 6 and len(saved["rng_per_rank"]) == 2
    proc = _torchrun(script, "resume", ckpt, tmp_path / "resumed")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        full = torch.load(f"{tmp_path / 'full'}.{rank}", weights_only=True)
        resumed = torch.load(f"{tmp_path / 'resumed'}.{rank}", weights_only=True)
        assert torch.equal(full["params"], resumed["params"])  # bit-exact
        assert full["history"] == resumed["history"]
    rank0 = torch.load(f"{tmp_path / 'resumed'}.0", weights_only=True)["history"]["total"]
    rank1 = torch.load(f"{tmp_path / 'resumed'}.1", weights_only=True)["history"]["total"]
    assert rank0 != rank1  # each rank kept its own history (its own dropout draws)


_STALL_WORKER = """
import sys
import time

import torch
import torch.distributed as dist

from pyg_em.train import init_distributed

rank, world = init_distributed(timeout=float(sys.argv[1]))
dist.all_reduce(torch.ones(1))  # both ranks are up (however slow their imports were)
if rank == 1:
    time.sleep(300)  # a stalled peer
start = time.monotonic()
try:
    dist.all_reduce(torch.ones(1))
    print("no timeout")
except Exception as error:
    print(f"rank {rank} timed out after {time.monotonic() - start:.1f}s: {type(error).__name__}", flush=True)
    sys.exit(3)
"""


@pytest.mark.ddp
def test_ddp_stalled_peer_fails_after_the_timeout(tmp_path):
    from pyg_em.train import DEFAULT_TIMEOUT_S

    assert DEFAULT_TIMEOUT_S <= 600  # far below torch's 30 minutes
    script = tmp_path / "stall.py"
    script.write_text(_STALL_WORKER)
    start = __import__("time").monotonic()
    proc = _torchrun(script, 20, timeout=280)
    elapsed = __import__("time").monotonic() - start
    assert "rank 0 timed out after" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    waited = float(proc.stdout.split("rank 0 timed out after ")[1].split("s")[0])
    assert 19 <= waited <= 60 and proc.returncode != 0 and elapsed < 270  # not the 300 s sleep, nor 30 minutes


@requires_sampler
@pytest.mark.ddp
def test_cli_under_torchrun_trains_data_parallel_and_rank0_alone_writes(tmp_path):
    out = tmp_path / "out"
    proc = _torchrun("-m", "pyg_em.cli", "run", "daegc", "--dataset", "sbm", "--batch-size", "256", "--epochs", "2",
                     "--set", "pretrain_steps=4", "--out", out, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("pyg-em run daegc") == 1 and "(2 ranks)" in proc.stdout  # rank 0 alone prints
    assert proc.stdout.count("time: ") == 1
    report = json.loads((out / "report.json").read_text())
    assert (out / "model.pt").is_file() and (out / "assignments.csv").is_file()
    assert report["metrics"]["acc"] > 0.3  # a trained 4-block clustering (chance 0.25)

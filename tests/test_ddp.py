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
    rank0 = torch.load(f"{out}.0", weights_only=False)
    rank1 = torch.load(f"{out}.1", weights_only=False)
    torch.testing.assert_close(rank0["params"], rank1["params"])
    recon = rank0["history"]["pretrain_recon"]
    assert recon[-1] < recon[0]
    assert rank0["history"]["pretrain_recon"] != rank1["history"]["pretrain_recon"]  # different shards per rank

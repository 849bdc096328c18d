"""DAEGC mini-batch training with DistributedDataParallel, one process per rank.

Launch: ``torchrun --nproc_per_node=2 examples/ddp_daegc.py`` (gloo on CPU, nccl on CUDA). ``fit_daegc`` builds
a ``NeighborLoader`` over this rank's shard of seed nodes and the shared ``Trainer`` wraps the model in DDP.
Run without torchrun (or with ``--smoke``) it trains a single process on a tiny graph.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
from torch_geometric.typing import WITH_PYG_LIB, WITH_TORCH_SPARSE

from pyg_em.datasets import attributed_sbm
from pyg_em.metrics import clustering_accuracy
from pyg_em.models import DAEGC
from pyg_em.recipes import fit_daegc
from pyg_em.train import default_backend, seed_everything, shutdown_distributed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=None, help="file prefix for each rank's final parameters and history")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke or os.environ.get("PYG_EM_SMOKE") == "1":
        args.nodes, args.epochs = 200, 2
    distributed = "RANK" in os.environ
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if distributed:
        dist.init_process_group(default_backend(device))
    rank = dist.get_rank() if distributed else 0
    seed_everything(0)  # same graph and initial weights on every rank (DDP also broadcasts rank 0's weights)
    data = attributed_sbm(args.nodes, 3, avg_degree=8, p_in_ratio=20, num_features=16, seed=0)
    model = DAEGC(data.num_features, 3, hidden_channels=32, embedding_channels=8)
    seed_everything(1 + rank)  # each rank samples differently
    # NeighborLoader needs pyg_lib or torch_sparse; without either, fall back to full-batch training.
    batch_size = 64 if (WITH_PYG_LIB or WITH_TORCH_SPARSE) else None
    if batch_size is None:
        print("neither pyg_lib nor torch_sparse is installed: training full batch")
    history = fit_daegc(model, data, pretrain_epochs=args.epochs, epochs=args.epochs, pretrain_lr=1e-2, lr=1e-3,
                        n_init=3, batch_size=batch_size, num_neighbors=[5, 5], device=device, progress=False)
    acc = clustering_accuracy(data.y, model.predict(data.to(device)).cpu())
    print(f"rank {rank}: pretrain recon {history['pretrain_recon'][0]:.3f} -> {history['pretrain_recon'][-1]:.3f}, "
          f"ACC {acc:.3f}")
    if args.out:
        flat = torch.cat([p.detach().cpu().flatten() for p in model.parameters()])
        torch.save({"params": flat, "history": history}, f"{args.out}.{rank}")
    if distributed:
        shutdown_distributed()


if __name__ == "__main__":
    main()

"""Mini-batch DAEGC with NeighborLoader on a large synthetic SBM (the DEC target is read by node id).

The lower-level route: build the loss-only ``DAEGC`` model yourself and train it with
``pyg_em.recipes.fit_daegc`` (the routine ``DAEGCRecipe`` calls); ``batch_size`` switches it to mini-batches.

    python examples/daegc_minibatch.py [--nodes 100000] [--batch-size 1024] [--epochs 3]
    python examples/daegc_minibatch.py --smoke
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from pyg_em.datasets import attributed_sbm
from pyg_em.metrics import clustering_metrics
from pyg_em.models import DAEGC
from pyg_em.recipes import fit_daegc
from pyg_em.train import seed_everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="2000 nodes, one epoch per phase (seconds)")
    args = parser.parse_args()
    if args.smoke or os.environ.get("PYG_EM_SMOKE") == "1":
        args.nodes, args.batch_size, args.epochs = 2000, 500, 1
    from torch_geometric.typing import WITH_PYG_LIB, WITH_TORCH_SPARSE

    if not (WITH_PYG_LIB or WITH_TORCH_SPARSE):
        print("NeighborLoader needs pyg_lib or torch_sparse; neither is installed")
        return
    seed_everything(0)
    data = attributed_sbm(args.nodes, 8, 10.0, p_in_ratio=20.0, num_features=32, feature_noise=1.5, seed=0)
    model = DAEGC(data.num_features, 8, hidden_channels=64, embedding_channels=16)
    start = time.perf_counter()
    history = fit_daegc(model, data, pretrain_epochs=args.epochs, epochs=args.epochs, pretrain_lr=5e-3, lr=1e-3,
                        n_init=3, batch_size=args.batch_size, num_neighbors=[10, 5], progress=False)
    metrics = clustering_metrics(data.y, model.predict(data))
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{args.nodes} nodes, batch {args.batch_size}: ACC {metrics['acc']:.3f} NMI {metrics['nmi']:.3f}; "
          f"pretrain recon {history['pretrain_recon'][0]:.3f} -> {history['pretrain_recon'][-1]:.3f}; "
          f"{time.perf_counter() - start:.1f} s, peak RSS {peak_gib:.2f} GiB")


if __name__ == "__main__":
    main()

"""Cluster a graph with the two classical baselines and compare them; optionally write plots.

k-means sees only the node features, spectral clustering only the edges. On the synthetic SBM both recover
the blocks. On Cora both are weak (ACC about 0.35 and 0.48): bag-of-words features are sparse and noisy, and the
citation graph has 78 connected components (the regularised spectral embedding keeps them from taking over the
eigenvectors). The learned methods of pyg_em (GAE/VGAE, DAEGC) combine both signals.

    python examples/clustering_baselines.py                         # Cora if $PYG_EM_DATA holds it, else the SBM
    python examples/clustering_baselines.py --dataset sbm --out runs/baselines
    python examples/clustering_baselines.py --smoke                 # a few seconds (see examples/README.md)
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from pyg_em.datasets import attributed_sbm, load_dataset, planetoid_root
from pyg_em.recipes import get_recipe
from pyg_em.report import write_plots

COLUMNS = ("acc", "nmi", "ari", "modularity")


def default_dataset() -> str:
    root = planetoid_root()
    return "cora" if root is not None and (root / "Cora" / "raw" / "ind.cora.x").is_file() else "sbm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None, help="sbm, karate, cora or citeseer (default: cora if present)")
    parser.add_argument("--root", default=None, help="Planetoid data root (default: $PYG_EM_DATA)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write embedding and confusion plots here")
    parser.add_argument("--smoke", action="store_true", help="tiny graph, finishes in seconds")
    args = parser.parse_args()
    smoke = args.smoke or os.environ.get("PYG_EM_SMOKE") == "1"

    if smoke:  # a small SBM: three blocks of 100 nodes
        data, name = attributed_sbm(300, 3, 8.0, num_features=16, seed=args.seed), "sbm (smoke)"
    else:
        name = args.dataset or default_dataset()
        data = load_dataset(name, root=args.root, seed=args.seed)
    print(f"{name}: {data.num_nodes} nodes, {data.edge_index.size(1)} directed edges, "
          f"{int(data.y.max()) + 1} classes")

    with tempfile.TemporaryDirectory() as scratch:
        # In smoke mode the plots go to a scratch folder, so that the plotting code runs too.
        out = Path(args.out) if args.out else (Path(scratch) if smoke else None)
        rows = {}
        for method in ("kmeans", "spectral"):
            # The recipes behind `pyg-em run kmeans|spectral`; with_settings checks names and types.
            recipe = get_recipe(method).with_settings(n_init=3 if smoke else 10)
            result = recipe.run(data, seed=args.seed)
            rows[method] = result.metrics
            if out is not None:
                plots = write_plots(out / method, labels=result.labels, embedding=result.embedding, truth=data.y,
                                    seed=args.seed)
                print(f"{method}: plots {', '.join(str(p) for p in plots.values())}")
        print(f"\n{'method':<10}" + "".join(f"{c:>12}" for c in COLUMNS))
        for method, metrics in rows.items():
            print(f"{method:<10}" + "".join(f"{metrics[c]:>12.4f}" for c in COLUMNS))


if __name__ == "__main__":
    main()

"""The default recipes on graphs they were not tuned on: DAEGC (and its paper recipe) against the two classical
baselines — spectral clustering of the graph and k-means of the features — on Cora, CiteSeer and attributed SBMs
where either the structure or the features carry the signal.

Every row is ``get_recipe(method, name).run(data, seed=seed)``, exactly what ``pyg-em run METHOD --recipe NAME``
computes; mean ± std over the seeds.

Run: ``PYTHONPATH=$PWD OMP_NUM_THREADS=1 python -m benchmarks.bench_recipes [--seeds 3] [--graphs ...]``; writes
the ``recipes`` section of ``benchmarks/RESULTS.md``. On two cores, split the graphs over two processes with
``--save PART.json --no-write`` and write the section from both with ``--load A.json B.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from benchmarks._report import command, data_root, machine, markdown_table, write_section
from pyg_em.datasets import attributed_sbm, load_planetoid
from pyg_em.recipes import get_recipe

#: Synthetic graphs: 2,000 nodes, 4 blocks, mean degree 10; the name says which part carries the clusters.
SBMS = {
    "sbm-structure": dict(p_in_ratio=8.0, feature_noise=6.0),   # clear blocks, weak features
    "sbm-mixed": dict(p_in_ratio=6.0, feature_noise=4.0),       # moderately mixed graph, weak features
    "sbm-features": dict(p_in_ratio=1.5, feature_noise=1.5),    # noisy graph, informative features
    "sbm-features-weak": dict(p_in_ratio=1.5, feature_noise=3.0),  # noisy graph, weaker features
    "sbm-both-weak": dict(p_in_ratio=3.0, feature_noise=3.0),   # both parts carry a little
}
METHODS = [("daegc", "default"), ("daegc", "paper"), ("spectral", "default"), ("kmeans", "default")]


def load(name: str, seed: int):
    if name in SBMS:
        return attributed_sbm(2000, 4, 10.0, num_features=32, seed=seed, **SBMS[name])
    return load_planetoid(name, data_root())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--graphs", nargs="+", default=["cora", "citeseer", *SBMS])
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--save", help="write the per-run scores of this process to a JSON file")
    parser.add_argument("--load", nargs="+", default=[], help="JSON files of --save runs: table from them, no runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    runs_by_graph = {}
    for path in args.load:
        runs_by_graph.update(json.loads(Path(path).read_text()))
    for graph in [] if args.load else args.graphs:
        scores: dict[str, list[dict]] = {f"{m}|{n}": [] for m, n in METHODS}
        for seed in range(args.seeds):  # interleaved: machine noise hits every method alike
            data = load(graph, seed)
            for method, name in METHODS:
                start = time.perf_counter()
                result = get_recipe(method, name).run(data, seed=seed)
                used = (result.recipe.settings() if result.recipe is not None else {}).get("feature_weight")
                scores[f"{method}|{name}"].append({**result.metrics, "s": time.perf_counter() - start,
                                                   "feature_weight": used})
                print(graph, seed, method, name, {k: round(v, 4) for k, v in result.metrics.items()},
                      "feature_weight" if used is not None else "", used if used is not None else "", flush=True)
        runs_by_graph[graph] = scores
    if args.save:
        Path(args.save).write_text(json.dumps(runs_by_graph))
    order = [g for g in [*SBMS, "citeseer", "cora"] if g in runs_by_graph]
    rows = []
    for graph in order + [g for g in runs_by_graph if g not in order]:
        for key, runs in runs_by_graph[graph].items():
            method, name = key.split("|")
            cells = [graph, f"{method} ({name})"]
            for metric in ("acc", "nmi", "ari"):
                values = [100 * r[metric] for r in runs]
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.mean(values):.1f} ± {std:.1f}")
            cells.append(f"{statistics.mean(r['s'] for r in runs):.1f}")
            weights = [r["feature_weight"] for r in runs if r.get("feature_weight") is not None]
            cells.append(", ".join(f"{w:.2f}" for w in weights) if weights else "")
            rows.append(cells)
    table = markdown_table(["graph", "recipe", "ACC", "NMI", "ARI", "s / run", "feature_weight (per seed)"], rows)
    seeds = len(next(iter(next(iter(runs_by_graph.values())).values())))
    text = "\n".join([
        "## Default recipes across graphs (bench_recipes)", "",
        f"Command: `PYTHONPATH=$PWD OMP_NUM_THREADS=1 {command()}`  ", f"Machine: {machine()}", "",
        f"{seeds} seeds each (the seed also draws the SBM). SBMs: 2,000 nodes, 4 blocks, mean degree 10, "
        "32 features; " + "; ".join(f"{k}: p_in/p_out {v['p_in_ratio']}, feature noise {v['feature_noise']}"
                                    for k, v in SBMS.items()) + ". The default's `feature_weight` is "
        "'auto' (`DAEGCRecipe.resolved`): the last column is the value it chose per seed.", "", table])
    print(text)
    if not args.no_write:
        write_section("recipes", text)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])

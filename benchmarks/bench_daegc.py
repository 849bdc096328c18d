"""DAEGC on Cora: ours full batch, ours mini-batch and PyAGC's DAEGC, interleaved seed by seed in one run.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=$PWD python -m benchmarks.bench_daegc [--seeds 10] [--epochs 100]``.
Cora is read from ``$PYG_EM_DATA`` (default ``../shared/data/planetoid``).

Memory: ``... bench_daegc --rss 10000 100000 1000000`` trains mini-batch DAEGC for one pretraining and one
self-training epoch on SBM graphs of those sizes, each in its own process, and reports the peak resident set
next to the resident set of the data alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks._report import command, data_root, machine, markdown_table, write_section
from pyg_em.datasets import load_planetoid
from pyg_em.metrics import clustering_metrics
from pyg_em.models import DAEGC
from pyg_em.recipes import DAEGCRecipe, fit_daegc
from pyg_em.train import seed_everything


def run_ours(data, seed: int, minibatch: bool, epochs: int) -> dict[str, float]:
    """The default recipe, exactly as `pyg-em run daegc [--batch-size 512]` trains it."""
    recipe = DAEGCRecipe().with_settings(epochs=epochs, batch_size=512 if minibatch else None)
    result = recipe.run(data, n_clusters=7, seed=seed)
    return {**clustering_metrics(data.y, result.labels), "time": result.timings["fit_s"]}


class _PyAGCEncoder(torch.nn.Module):
    """The paper's encoder for PyAGC (its package ships no DAEGC encoder): GAT ``hidden`` -> ``out_channels``
    (256 -> 16 by default), ELU, L2-normalised."""

    def __init__(self, in_channels: int, hidden: int = 256, out_channels: int = 16) -> None:
        super().__init__()
        from torch_geometric.nn import GATConv

        self.conv1, self.conv2 = GATConv(in_channels, hidden), GATConv(hidden, out_channels)

    def forward(self, x, edge_index):
        return F.normalize(F.elu(self.conv2(F.elu(self.conv1(x, edge_index)), edge_index)), dim=-1)


def run_pyagc(data, seed: int, epochs: int) -> dict[str, float]:
    from pyagc.models import DAEGC as PyAGCDAEGC

    from pyg_em.clusters import kmeans

    seed_everything(seed)
    model = PyAGCDAEGC(_PyAGCEncoder(data.num_features), 7, 16)
    start = time.perf_counter()
    opt = torch.optim.Adam(model.encoder.parameters(), lr=5e-3, weight_decay=5e-3)
    for epoch in range(30):
        model.train_full(data, opt, epoch, verbose=False, pretrain=True)
    with torch.no_grad():
        model.eval()
        _, centers = kmeans(model.embed(data.x, data.edge_index), 7, n_init=20, seed=seed)
    model.cluster_head.reset_cluster_centers(centers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=5e-3)
    for epoch in range(epochs):
        model.train_full(data, opt, epoch, verbose=False)
    model.eval()
    with torch.no_grad():
        pred = model(data.x, data.edge_index)
    elapsed = time.perf_counter() - start
    return {**clustering_metrics(data.y, pred), "time": elapsed}


def _rss_gib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def rss_case(num_nodes: int) -> dict[str, float]:
    """One pretraining and one self-training epoch of mini-batch DAEGC (1024 seeds, fan-out 10/5)."""
    from pyg_em.datasets import attributed_sbm

    seed_everything(0)
    data = attributed_sbm(num_nodes, 8, 10.0, p_in_ratio=20.0, num_features=32, feature_noise=1.5, seed=0)
    data_gib = _rss_gib()
    model = DAEGC(data.num_features, 8, hidden_channels=64, embedding_channels=16)
    start = time.perf_counter()
    fit_daegc(model, data, pretrain_epochs=1, epochs=1, n_init=3, batch_size=1024, num_neighbors=[10, 5],
              progress=False)
    elapsed = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"nodes": num_nodes, "edges": data.edge_index.size(1), "data_gib": data_gib, "peak_gib": peak_gib,
            "time": elapsed}


def rss_table(sizes: list[int], module: str = "benchmarks.bench_daegc") -> str:
    rows = []
    for n in sizes:  # one process per size (``module --rss-case n``), so each peak is its own
        out = subprocess.run([sys.executable, "-m", module, "--rss-case", str(n)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(r, flush=True)
        rows.append([f"{r['nodes']:,}", f"{r['edges']:,}", f"{r['data_gib']:.2f}", f"{r['peak_gib']:.2f}",
                     f"{r['peak_gib'] - r['data_gib']:.2f}", f"{r['time']:.0f}"])
    return markdown_table(["nodes", "directed edges", "RSS with data (GiB)", "peak RSS (GiB)",
                           "peak - data (GiB)", "s (1 + 1 epochs)"], rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--rss", type=int, nargs="+", help="measure peak RSS of mini-batch training at these sizes")
    parser.add_argument("--rss-case", type=int, help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    if args.rss_case:
        print(json.dumps(rss_case(args.rss_case)))
        return
    if args.rss:
        write_section("daegc_rss", "### DAEGC mini-batch training memory (SBM, 8 blocks, average degree 10, 32 "
                                   "features; 1024 seeds per batch, fan-out 10/5, hidden 64, embedding 16)\n\n"
                                   f"{rss_table(args.rss)}\n\nThe full-graph passes (k-means initialisation, "
                                   "target refresh, prediction) run on the whole graph, so the peak includes one "
                                   "inference pass over all nodes.\n\n"
                                   f"Command: `OMP_NUM_THREADS=1 PYTHONPATH=$PWD {command()}`\n\n"
                                   f"Machine: {machine()}\n")
        return
    data = load_planetoid("cora", root=data_root())
    runs = {"ours full batch": lambda s: run_ours(data, s, False, args.epochs),
            "ours mini-batch (512 seeds, fan-out 15/10)": lambda s: run_ours(data, s, True, args.epochs),
            "PyAGC DAEGC 1.1.2": lambda s: run_pyagc(data, s, args.epochs)}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for seed in range(args.seeds):  # interleaved, so machine load affects every method alike
        for name, fn in runs.items():
            results[name].append(fn(seed))
            print(seed, name, {k: round(v, 4) for k, v in results[name][-1].items()}, flush=True)
    rows = []
    for name, rs in results.items():
        cells = [name]
        for key in ("acc", "nmi", "ari", "f1"):
            vals = 100 * np.array([r[key] for r in rs])
            cells.append(f"{vals.mean():.2f} ± {vals.std():.2f}")
        times = np.array([r["time"] for r in rs])
        cells.append(f"{times.mean():.1f} ± {times.std():.1f}")
        rows.append(cells)
    table = markdown_table(["method", "ACC", "NMI", "ARI", "F1", "s / run"], rows)
    recipe = ("Ours: `DAEGCRecipe()` (= `pyg-em run daegc`) defaults (100 pretraining optimizer steps at lr "
              "5e-3, i.e. 100 full-batch epochs or 17 mini-batch epochs of 6 batches, k-means with 20 restarts, "
              "self-training at lr 1e-4, no weight decay, 3 sampled non-edges per edge, attention dropout 0.5 in "
              "pretraining, P "
              "refreshed every epoch). PyAGC: its DAEGC with the paper's protocol (a GAT 256-16 encoder written here, "
              "as PyAGC ships none; 30 pretraining epochs, lr 5e-3 then 1e-4, weight decay 5e-3, its reconstruction "
              "with PyG's negative_sampling). Wall time per run includes pretraining and k-means.")
    write_section("daegc", f"### DAEGC, Cora, {args.seeds} seeds, {args.epochs} self-training epochs\n\n"
                           f"{recipe}\n\n{table}\n\n"
                           f"Command: `OMP_NUM_THREADS=1 PYTHONPATH=$PWD {command()}`\n\n"
                           f"Machine: {machine()}\n")


if __name__ == "__main__":
    main()

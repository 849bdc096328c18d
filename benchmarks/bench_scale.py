"""DAEGC at scale on attributed SBMs (issue 16): build time, fit time per phase, prediction, peak RSS.

One process per size (``--worker``), so each peak RSS is that size's own. Each process builds
``attributed_sbm(N, 4 blocks, avg_degree=10, 32 features)`` and runs the library path a user runs:
``fit_daegc(batch_size=1024, num_neighbors=[10, 5])`` with ``DAEGC(32, 4, hidden_channels=64)`` (the
configuration of ``bench_minibatch --part rss``; at fan-out 15/10 and hidden 256 a 1024-seed batch of a degree-10
graph spans about 100k nodes, and the 100k-node run did not finish in 12 minutes on the loaded machine), the
recipe's learning rates and pretraining (100 optimizer steps, i.e. one epoch from 100k nodes on) and one
self-training epoch; then one more target refresh (the call every later self-training epoch starts with)
and ``predict``. Phases are timed by ``fit_daegc(timings=...)``.

Before a size is started its SBM's memory estimate is checked against the available memory, and a time
projection from the largest size measured so far (linear in N) is compared with ``--budget-s``: a size that
would not fit or finish is reported as projected, not run.

Run: ``OMP_NUM_THREADS=1 python -m benchmarks.bench_scale --sizes 100000 1000000 --write``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks._report import machine, markdown_table, run_line, write_section

ROOT = Path(__file__).resolve().parents[1]


def _rss_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def worker(num_nodes: int, epochs: int, batch_size: int, hidden: int, fanout: list[int]) -> dict[str, float]:
    """One size, in this process: the figures of one row of the table."""
    from pyg_em.datasets import attributed_sbm
    from pyg_em.metrics import clustering_metrics
    from pyg_em.models import DAEGC
    from pyg_em.recipes import DAEGCRecipe, fit_daegc
    from pyg_em.train import seed_everything

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    baseline = _rss_gib()
    start = time.perf_counter()
    data = attributed_sbm(num_nodes, 4, avg_degree=10, num_features=32, seed=0)
    build_s = time.perf_counter() - start
    data_gib = (data.edge_index.numel() * 8 + data.x.numel() * 4 + data.y.numel() * 8) / 2**30
    build_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    seed_everything(0)
    recipe = DAEGCRecipe()
    model = DAEGC(data.num_features, 4, hidden_channels=hidden, embedding_channels=recipe.embedding_channels)
    timings: dict[str, list[float]] = {}
    start = time.perf_counter()
    fit_daegc(model, data, pretrain_steps=recipe.pretrain_steps, epochs=epochs, pretrain_lr=recipe.pretrain_lr,
              lr=recipe.lr, n_init=recipe.n_init, seed=0, batch_size=batch_size, num_neighbors=fanout,
              device="cpu", progress=True, timings=timings)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    model.refresh_target(data)
    refresh_s = time.perf_counter() - start
    start = time.perf_counter()
    labels = model.predict(data)
    predict_s = time.perf_counter() - start
    scores = clustering_metrics(data.y, labels)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"num_nodes": num_nodes, "num_edges": int(data.edge_index.size(1)), "build_s": build_s,
            "pretrain_s": sum(timings["pretrain"]), "pretrain_epochs": len(timings["pretrain"]),
            "kmeans_s": timings["kmeans"][0], "self_train_epoch_s": timings["self_train_epoch"][-1],
            "refresh_s": refresh_s, "predict_s": predict_s, "fit_s": fit_s, "acc": scores["acc"],
            "nmi": scores["nmi"], "baseline_gib": baseline, "build_peak_gib": build_peak, "peak_gib": peak,
            "data_gib": data_gib, "load": os.getloadavg()[0]}


def _run_worker(num_nodes: int, args: argparse.Namespace, timeout: float) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "benchmarks.bench_scale", "--worker", str(num_nodes), "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--hidden", str(args.hidden), "--fanout", *map(str, args.fanout)]
    # stderr (the progress bars with their ETAs) goes to this process's stderr
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"size {num_nodes} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _projection(row: dict[str, float], num_nodes: int) -> dict[str, float]:
    """Times linear in N (every phase is O(N + E) at a fixed degree) from a measured row."""
    scale = num_nodes / row["num_nodes"]
    keys = ("build_s", "pretrain_s", "kmeans_s", "self_train_epoch_s", "refresh_s", "predict_s", "fit_s")
    return {"num_nodes": num_nodes, **{k: row[k] * scale for k in keys}, "projected": True,
            "peak_gib": row["peak_gib"] * scale, "data_gib": row["data_gib"] * scale}


def _table(rows: list[dict]) -> str:
    header = ["nodes", "directed edges", "build s", "pretrain s (epochs)", "k-means s", "self-train epoch s",
              "refresh s", "predict s", "ACC / NMI %", "peak RSS GiB", "data GiB", "peak ÷ data", "load"]
    out = []
    for r in rows:
        mark = " (projected)" if r.get("projected") else ""
        out.append([f"{r['num_nodes']:,}{mark}", f"{r.get('num_edges', 0):,}" if not mark else "≈ 10 N",
                    f"{r['build_s']:.1f}",
                    f"{r['pretrain_s']:.0f}" + (f" ({r['pretrain_epochs']})" if not mark else ""),
                    f"{r['kmeans_s']:.1f}", f"{r['self_train_epoch_s']:.0f}", f"{r['refresh_s']:.1f}",
                    f"{r['predict_s']:.1f}",
                    f"{100 * r['acc']:.1f} / {100 * r['nmi']:.1f}" if not mark else "–",
                    f"{r['peak_gib']:.2f}", f"{r['data_gib']:.2f}", f"{r['peak_gib'] / r['data_gib']:.1f}",
                    f"{r['load']:.1f}" if not mark else "–"])
    return markdown_table(header, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--epochs", type=int, default=1, help="self-training epochs")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=64, help="first attention layer width")
    parser.add_argument("--fanout", type=int, nargs=2, default=[10, 5], help="neighbours sampled per layer")
    parser.add_argument("--budget-s", type=float, default=2400.0, help="skip a size projected to take longer")
    parser.add_argument("--write", action="store_true", help="write the 'scale' section of RESULTS.md")
    parser.add_argument("--jsonl", help="append each measured row to this file, and reuse the sizes already in it")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.epochs, args.batch_size, args.hidden, args.fanout)))
        return
    from pyg_em.datasets import available_memory_bytes, sbm_memory_bytes

    rows: list[dict] = []
    saved = {}
    if args.jsonl and Path(args.jsonl).is_file():
        saved = {r["num_nodes"]: r for r in map(json.loads, Path(args.jsonl).read_text().splitlines())}
    for size in sorted(args.sizes):
        if size in saved:
            rows.append(saved[size])
            continue
        measured = [r for r in rows if not r.get("projected")]
        if measured:
            projected = _projection(measured[-1], size)
            total = projected["build_s"] + projected["fit_s"] + projected["refresh_s"] + projected["predict_s"]
            available = available_memory_bytes()
            too_big = available is not None and sbm_memory_bytes(size, 10, 32) > available
            if total > args.budget_s or too_big:
                print(f"{size}: projected {total:.0f} s (budget {args.budget_s:.0f} s), SBM estimate "
                      f"{sbm_memory_bytes(size, 10, 32) / 2**30:.2f} GiB: not run", flush=True)
                rows.append(projected)
                continue
        rows.append(_run_worker(size, args, timeout=max(args.budget_s, 600) * 1.5))
        print(json.dumps(rows[-1]), flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as handle:
                handle.write(json.dumps(rows[-1]) + "\n")
    text = ("### DAEGC mini-batch pipeline on attributed SBMs (4 blocks, average degree 10, 32 features)\n\n"
            f"`fit_daegc(batch_size={args.batch_size}, num_neighbors={args.fanout})`, `DAEGC(32, 4, "
            f"hidden_channels={args.hidden})` (embedding 16), the recipe's pretraining (100 steps), "
            f"{args.epochs} self-training epoch(s), then one target refresh and "
            "`predict`; one process per size, CPU. Peak RSS is the process's (`ru_maxrss`, including about "
            "0.33 GiB of Python/torch); data = `edge_index` + `x` + `y` bytes. Projected rows scale the largest "
            "measured row linearly in N (every phase is O(N + E) at fixed degree).\n\n"
            + _table(rows) + "\n\n" + run_line() + f"\n\n{machine()}\n")
    print(text)
    if args.write:
        write_section("scale", text)


if __name__ == "__main__":
    main()

"""GEM benchmark: sparse GEMUnrolledEM vs a dense seed-style implementation, a 100k-node run, graph recovery.

Each timing runs in a fresh subprocess (so its peak resident memory is its own) with one torch thread.

    PYTHONPATH=$PWD python -m benchmarks.bench_gem            # full run, writes the 'gem' section of RESULTS.md
    PYTHONPATH=$PWD python -m benchmarks.bench_gem --quick    # small sizes, prints only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from benchmarks._report import command, machine, markdown_table, write_section

NUM_FEATURES, NUM_LAYERS, ETA, EPS, NOISE = 8, 5, 0.1, 1e-3, 1.0


def dense_seed_style(x: torch.Tensor, pairs: torch.Tensor, theta0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The seed's design with the real objective: dense N x N matrices, torch.linalg.inv, autograd M-step."""
    n = x.size(0)
    eye = torch.eye(n, dtype=x.dtype)
    theta = theta0
    for _ in range(NUM_LAYERS):
        weight = F.softplus(theta)
        adjacency = x.new_zeros(n, n).index_put((pairs[0], pairs[1]), weight).index_put((pairs[1], pairs[0]), weight)
        precision = torch.diag(adjacency.sum(1)) - adjacency + EPS * eye
        covariance = torch.linalg.inv(precision + eye / NOISE ** 2)
        z_hat = covariance @ x / NOISE ** 2
        leaf = theta.clone()  # the M-step gradient holds z_hat and the covariance fixed
        w = F.softplus(leaf)
        adjacency = x.new_zeros(n, n).index_put((pairs[0], pairs[1]), w).index_put((pairs[1], pairs[0]), w)
        a = torch.diag(adjacency.sum(1)) - adjacency + EPS * eye
        objective = (0.5 * x.size(1) * torch.logdet(a) - 0.5 * torch.trace(z_hat.T @ a @ z_hat)
                     - 0.5 * x.size(1) * torch.trace(a @ covariance))
        theta = theta + ETA * torch.autograd.grad(objective, leaf, create_graph=True)[0]
    return F.softplus(theta), z_hat


def _graph(kind: str, num_nodes: int, seed: int = 0) -> torch.Tensor:
    if kind == "sbm":  # random graph with average degree 10: 1M directed edges at 100k nodes
        from pyg_em.datasets import attributed_sbm

        return attributed_sbm(num_nodes=num_nodes, num_blocks=10, avg_degree=10.0, p_in_ratio=5.0, num_features=0,
                              seed=seed).edge_index
    from pyg_em.em import knn_candidate_graph

    points = torch.rand(num_nodes, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return knn_candidate_graph(points, 5)


def run_one(impl: str, num_nodes: int, graph: str, logdet: str, dtype: str, num_probes: int, tol: float | None) -> dict:
    """One forward + backward in this process; returns seconds, peak RSS and sizes."""
    from pyg_em.em import GEMUnrolledEM, undirected_pairs

    torch.set_num_threads(1)
    dt = getattr(torch, dtype)
    edge_index = _graph(graph, num_nodes)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(num_nodes, NUM_FEATURES, generator=gen, dtype=dt).requires_grad_()
    target = torch.randn(num_nodes, NUM_FEATURES, generator=gen, dtype=dt)
    load_start = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), time.process_time()
    if impl == "defaults":  # what a new user writes: every setting at its default
        weight, z_hat = GEMUnrolledEM()(x, edge_index, generator=torch.Generator().manual_seed(2))
    elif impl == "dense":
        pairs, _ = undirected_pairs(edge_index, num_nodes)
        theta0 = torch.zeros(pairs.size(1), dtype=dt, requires_grad=True)
        weight, z_hat = dense_seed_style(x, pairs, theta0)
    else:
        options = {} if tol is None else {"tol": tol}
        layer = GEMUnrolledEM(num_layers=NUM_LAYERS, eta=ETA, eps=EPS, noise=NOISE, logdet=logdet,
                              num_probes=max(num_probes, 1), solver_options=options)
        weight, z_hat = layer(x, edge_index, generator=torch.Generator().manual_seed(2))
    forward = time.perf_counter() - start
    ((z_hat - target) ** 2).sum().add(weight.sum()).backward()
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB -> GiB (Linux)
    return {"forward_s": forward, "total_s": total, "cpu_s": cpu, "peak_rss_gib": peak, "edges": edge_index.size(1),
            "load": (load_start + os.getloadavg()[0]) / 2}


def _subprocess(*args: object, code_root: str | None = None) -> dict:
    """One ``run_one`` in a fresh process; ``code_root`` runs it against another checkout of ``pyg_em`` (e.g. a
    previous commit exported by ``git archive``), with this file's measuring code."""
    root = os.path.abspath(code_root or os.path.join(os.path.dirname(__file__), os.pardir))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": root}
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps(list(args))],
                         capture_output=True, text=True, env=env, check=True, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def scaling_table(sizes: list[int]) -> tuple[str, dict]:
    rows, ratios = [], {}
    for n in sizes:
        dense = _subprocess("dense", n, "knn", "exact", "float64", 0, None)
        exact = _subprocess("ours", n, "knn", "exact", "float64", 0, None)
        probes = _subprocess("ours", n, "knn", "hutchinson", "float64", 16, None)
        ratios[n] = dense["total_s"] / exact["total_s"], dense["total_s"] / probes["total_s"]
        rows.append([n, dense["edges"], f"{dense['total_s']:.2f}", f"{dense['peak_rss_gib']:.2f}",
                     f"{exact['total_s']:.3f}", f"{exact['peak_rss_gib']:.2f}", f"{ratios[n][0]:.0f}x",
                     f"{probes['total_s']:.3f}", f"{probes['peak_rss_gib']:.2f}", f"{ratios[n][1]:.0f}x"])
    header = ["N", "edges", "dense s", "dense GiB", "ours exact s", "GiB", "speed-up", "ours Hutchinson(16) s",
              "GiB", "speed-up"]
    return markdown_table(header, rows), ratios


def large_table(num_nodes: int, baseline: str | None = None, previous_settings: bool = False,
                repeats: int = 1) -> tuple[str, dict]:
    """``GEMUnrolledEM()`` with its defaults, in float64 and float32; with ``baseline`` (the root of another
    checkout) the same defaults on that code, interleaved in the same run; with ``previous_settings`` also the
    settings of an earlier release (Hutchinson, 16 probes solved to sparse_solve's default tolerance).
    ``repeats`` interleaved rounds; the table gives the median wall and CPU seconds."""
    runs = [("defaults", "float64", None, None, None), ("defaults", "float32", None, None, None)]
    if baseline is not None:
        runs += [(f"defaults, code of {os.path.basename(os.path.normpath(baseline))}", dtype, None, None, baseline)
                 for dtype in ("float64", "float32")]
    if previous_settings:
        runs.append(("hutchinson, 16 probes, default CG tol", "float64", 16, None, None))
    measured: dict = {}
    for _ in range(repeats):
        for label, dtype, probes, tol, root in runs:
            impl = "defaults" if label.startswith("defaults") else "ours"
            result = _subprocess(impl, num_nodes, "sbm", "hutchinson", dtype, probes or 0, tol, code_root=root)
            measured.setdefault((label, dtype), []).append(result)
    rows, results = [], {}
    for (label, dtype), group in measured.items():
        def median(key: str, group=group) -> float:
            return statistics.median(r[key] for r in group)
        results[(label, dtype)] = {key: median(key) for key in ("forward_s", "total_s", "cpu_s", "peak_rss_gib")}
        rows.append([num_nodes, group[0]["edges"], label, dtype, f"{median('forward_s'):.1f}",
                     f"{median('total_s'):.1f}", f"{median('cpu_s'):.1f}", f"{median('peak_rss_gib'):.2f}",
                     ", ".join(f"{r['total_s']:.0f}" for r in group), ", ".join(f"{r['load']:.1f}" for r in group)])
    header = ["N", "edges", "settings", "dtype", "forward s", "fwd+bwd s (median)", "fwd+bwd CPU s", "peak RSS GiB",
              "runs (wall s)", "load avg per run"]
    return markdown_table(header, rows), results


def recovery_table(num_nodes: int, num_signals: int, num_layers: int, seeds: list[int]) -> str:
    """Edge recovery with the exact log-det gradient and with the Hutchinson settings of the defaults (8 probes
    solved to 1e-4) and of the previous defaults (16 probes, default tolerance): the accuracy cost of probes."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
    from gem_graph_learning import recover

    torch.set_num_threads(1)
    settings = (("exact", {"logdet": "exact"}),
                ("Hutchinson 8 probes, tol 1e-4 (default above 2048 nodes)", {"logdet": "hutchinson"}),
                ("Hutchinson 16 probes, tol 1e-10", {"logdet": "hutchinson", "num_probes": 16, "probe_tol": 1e-10}))
    rows = []
    for label, options in settings:
        runs = [recover(num_nodes, num_signals, num_layers, seed=seed, **options) for seed in seeds]

        def stat(key: str, runs=runs) -> str:
            values = [run[key] for run in runs]
            return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"

        rows.append([num_nodes, num_signals, num_layers, len(seeds), label, stat("auc_distance"), stat("auc_gem"),
                     f"{statistics.mean(r['seconds'] for r in runs):.1f}"])
    return markdown_table(["N", "signals", "EM layers", "seeds", "log-det gradient", "AUC signal distance (kNN score)",
                           "AUC GEM weights", "GEM s"], rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default="scaling,large,recovery",
                        help="comma-separated tables to run (scaling, large, recovery); a partial run only prints")
    parser.add_argument("--baseline", default=None,
                        help="root of another checkout (git archive of an earlier commit) to time side by side")
    parser.add_argument("--previous-settings", action="store_true",
                        help="also time an earlier release's settings (16 probes at the default tolerance; slow)")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds of the large table")
    args, _ = parser.parse_known_args()  # benchmarks.run_all passes its own suite names on the command line
    if args.child is not None:
        print(json.dumps(run_one(*json.loads(args.child))))
        return
    torch.set_num_threads(1)
    sizes, large, recovery = ([200, 400], 20_000, (80, 40, 60, [0, 1])) if args.quick else \
        ([500, 1000, 2000], 100_000, (300, 100, 200, [0, 1, 2]))
    parts = set(args.parts.split(","))
    scaling = scaling_table(sizes)[0] if "scaling" in parts else ""
    print(scaling, flush=True)
    big = large_table(large, args.baseline, args.previous_settings, args.repeats)[0] if "large" in parts else ""
    print(big, flush=True)
    quality = recovery_table(*recovery) if "recovery" in parts else ""
    print(quality, flush=True)
    load = os.getloadavg()
    text = "\n\n".join([
        "## GEM (`pyg_em.em`)",
        f"Command: `{command()}`  \n"
        f"Machine: {machine()}; load average (1/5/15 min) at the end of the run "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared machine: timings are noisy, ratios are side by side)",
        f"Forward + backward of K={NUM_LAYERS} unrolled EM layers (create_graph), F={NUM_FEATURES}, eps={EPS}, "
        "posterior E-step, on a symmetrised 5-NN candidate graph of random 2-D points, float64, 1 torch thread, "
        "each run in its own process (peak RSS includes the ~0.3-0.5 GiB of the imported libraries). "
        "Dense: the seed's design with the real objective (N x N matrices, `torch.linalg.inv`, autograd log-det).",
        scaling,
        f"Large graph: SBM with {large} nodes and average degree 10, K={NUM_LAYERS}, F={NUM_FEATURES}. 'defaults' "
        "is `GEMUnrolledEM()` with nothing set: logdet='auto' (Hutchinson above 2048 nodes), 8 fresh Rademacher "
        "probes per layer solved to a relative 1e-4, the E-step to 1e-6 (float64; 1e-5 float32), eps=1e-3, one "
        "sparsity pattern analysed per forward pass and shared by all solves. Rows 'code of ...' run the same "
        "defaults on an earlier commit (`git archive`), interleaved with ours. Wall seconds depend on the load "
        "of the shared 2-core machine (given per run); CPU seconds of the process are the steadier figure. "
        "Batched Jacobi-PCG solves.",
        big,
        "Graph recovery (examples/gem_graph_learning.py): signals from a GMRF on a hidden 4-NN graph of random "
        "points plus noise (sigma=0.5); candidates = 10-NN graph of the signals; AUC of the candidate scores "
        "(true edges vs other candidates), mean ± std over seeds.",
        quality,
    ])
    if args.quick:
        return
    if parts == {"scaling", "large", "recovery"}:
        write_section("gem", text)
    else:  # a partial run keeps the other tables and writes its own section: command, machine, description, table
        paragraphs = text.split("\n\n")
        run = paragraphs[1]
        for part, table, title in (("large", big, "GEM defaults at scale"), ("recovery", quality, "GEM recovery")):
            if part in parts:
                description = paragraphs[paragraphs.index(table) - 1]
                write_section(f"gem-{part}", f"## {title} (`benchmarks/bench_gem.py --parts {part}`)\n\n{run}\n\n"
                                             f"{description}\n\n{table}")


if __name__ == "__main__":
    main()

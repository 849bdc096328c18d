"""Sparse SPD solve, forward + backward, 16 right-hand sides: pyg_em.linalg vs torchsparsegradutils vs scipy splu.

The system is ``L + eps I`` with ``L`` the unweighted graph Laplacian and ``eps = f * 1e-2 * mean degree`` (``f`` from
``--shift-factors``, 1 by default; 0.01 is the conditioning GEM's E-step meets); the loss is
``(X * P).sum()`` for a fixed random ``P``, differentiated w.r.t. the nnz values of the matrix and ``B``. Every case
runs in its own subprocess (1 thread, an address-space cap, a wall-clock cap), which reports wall time and the
peak-RSS increase over the process's state just before the solve (``ru_maxrss``). Graphs are built once by the
parent (random geometric graphs with ``scipy.spatial.cKDTree.query_pairs``, O(N log N)) and passed as ``.npz``.

Cases run interleaved ``--repeats`` times (round-robin over the methods, so load from other processes hits all
alike) and the table reports the median time.

Run: ``PYTHONPATH=$PWD python -m benchmarks.bench_linalg`` (``--quick`` for a small smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

K = 16
TOL = 1e-6
TIMEOUT_S = 300
#: LU of the 200k-node SBM fills in towards dense (see AUTO_DIRECT_MAX_NODES): cap it shorter.
DIRECT_TIMEOUT_S = 150
MEMORY_CAP_GB = 6
METHODS = ["ours-cg", "ours-pcg-jacobi", "ours-pcg-amg", "ours-auto", "ours-direct", "tsgu-cg", "scipy-splu"]
OURS = {"ours-cg": ("cg", None), "ours-pcg-jacobi": ("cg", "jacobi"), "ours-pcg-amg": ("cg", "amg"),
        "ours-auto": ("auto", "auto"), "ours-direct": ("direct", None)}


# ------------------------------------------------------------------------------------------------ graphs
def random_geometric_graph(n: int, avg_degree: float, seed: int = 0) -> np.ndarray:
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    pts = rng.random((n, 2))
    radius = np.sqrt(avg_degree / (np.pi * n))
    pairs = cKDTree(pts).query_pairs(radius, output_type="ndarray")
    return np.concatenate([pairs, pairs[:, ::-1]]).T.astype(np.int64)


def build_graph(name: str) -> tuple[np.ndarray, int]:
    if name == "cora":
        from pyg_em.datasets import load_planetoid

        root = os.environ.get("PYG_EM_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "planetoid"))
        data = load_planetoid("cora", root=root)
        return data.edge_index.numpy(), data.num_nodes
    if name.startswith("rgg"):
        n = {"rgg200k": 200_000, "rgg1m": 1_000_000, "rgg20k": 20_000}[name]
        return random_geometric_graph(n, 10.0), n
    if name.startswith("sbm"):
        from pyg_em.datasets import attributed_sbm

        n = {"sbm200k": 200_000, "sbm20k": 20_000}[name]
        data = attributed_sbm(num_nodes=n, num_blocks=10, avg_degree=10.0, p_in_ratio=10.0, num_features=2, seed=0)
        return data.edge_index.numpy(), n
    raise ValueError(name)


# ------------------------------------------------------------------------------------------------ one case
def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_case(graph_file: str, method: str, k: int, shift_factor: float = 1.0) -> dict:
    import torch

    torch.set_num_threads(1)
    from pyg_em.linalg import laplacian_coo, sparse_solve

    z = np.load(graph_file)
    edge_index, n = torch.from_numpy(z["edge_index"]), int(z["num_nodes"])
    mean_degree = edge_index.size(1) / n
    eps = shift_factor * 1e-2 * mean_degree
    indices, values, _ = laplacian_coo(edge_index, None, n, shift=eps, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    B = torch.randn(n, k, generator=gen, dtype=torch.float64)
    P = torch.randn(n, k, generator=gen, dtype=torch.float64)
    base = _peak_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    if method.startswith("ours"):
        v = values.clone().requires_grad_()
        Bv = B.clone().requires_grad_()
        kind = OURS[method]
        X = sparse_solve((indices, v, n), Bv, method=kind[0], preconditioner=kind[1], tol=TOL, maxiter=20000)
        (X * P).sum().backward()
        grad_values = v.grad
    elif method == "tsgu-cg":
        from torchsparsegradutils import sparse_generic_solve
        from torchsparsegradutils.utils.linear_cg import LinearCGSettings, linear_cg

        A = torch.sparse_coo_tensor(indices, values, (n, n)).coalesce().requires_grad_()
        Bv = B.clone().requires_grad_()
        settings = LinearCGSettings(max_cg_iterations=20000, cg_tolerance=TOL)
        X = sparse_generic_solve(A, Bv, solve=linear_cg, settings=settings)
        (X * P).sum().backward()
        grad_values = A.grad.coalesce().values()
    elif method == "scipy-splu":
        import scipy.sparse as sp
        from scipy.sparse.linalg import splu

        idx = indices.numpy()
        mat = sp.csc_matrix((values.numpy(), (idx[0], idx[1])), shape=(n, n))
        lu = splu(mat, permc_spec="COLAMD")
        Xn = lu.solve(B.numpy())
        U = lu.solve(P.numpy(), trans="T")  # the adjoint solve of the backward pass, same factor
        grad_values = torch.from_numpy(-(U[idx[0]] * Xn[idx[1]]).sum(1))
        X = torch.from_numpy(Xn)
    else:
        raise ValueError(method)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _peak_mb() - base
    with torch.no_grad():
        A = torch.sparse_coo_tensor(indices, values, (n, n)).coalesce()
        rel = float(torch.linalg.norm(A @ X.detach() - B) / torch.linalg.norm(B))
    return {"time_s": elapsed, "cpu_s": cpu, "peak_mb": peak, "rel_residual": rel, "n": n, "nnz": int(indices.size(1)),
            "eps": eps, "grad_finite": bool(torch.isfinite(grad_values).all())}


def _child(args: argparse.Namespace) -> None:
    cap = MEMORY_CAP_GB * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        out = run_case(args.graph_file, args.method, args.k, args.shift_factor)
    except MemoryError:
        out = {"error": f"out of memory (> {MEMORY_CAP_GB} GB address space)"}
    except Exception as exc:  # report, the parent prints the table
        out = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
    print("RESULT " + json.dumps(out))


def spawn(graph_file: str, method: str, k: int, timeout: float, shift_factor: float = 1.0) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "benchmarks.bench_linalg", "--child", "--graph-file", graph_file,
           "--method", method, "--k", str(k), "--shift-factor", str(shift_factor)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=str(Path(__file__).resolve().parents[1]))
    except subprocess.TimeoutExpired:
        return {"error": f"timeout (> {timeout:.0f} s)"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": f"crashed (rc {proc.returncode}): {proc.stderr.strip()[-160:]}"}


# ------------------------------------------------------------------------------------------------ driver
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--graph-file", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--shift-factor", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=K)
    parser.add_argument("--quick", action="store_true", help="small graphs only (smoke test)")
    parser.add_argument("--graphs", nargs="*", default=None)
    parser.add_argument("--methods", nargs="*", default=None, help="restrict every graph to these methods")
    parser.add_argument("--shift-factors", nargs="*", type=float, default=None,
                        help="eps = f * 1e-2 * mean degree for each f (default: 1; rgg1m also 0.01)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per case; the median is reported")
    parser.add_argument("--no-write", action="store_true", help="print the table without updating RESULTS.md")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="wall-clock cap per iterative case (s)")
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return

    from benchmarks._report import machine, markdown_table, write_section

    default_shifts = {"rgg1m": [1.0, 0.01]}
    plan = {"cora": METHODS, "rgg200k": METHODS, "sbm200k": METHODS,
            "rgg1m": ["ours-pcg-jacobi", "ours-pcg-amg", "ours-auto"]}
    if args.quick:
        plan = {"cora": METHODS, "rgg20k": METHODS}
    if args.graphs:
        plan = {g: plan.get(g, METHODS) for g in args.graphs}
    if args.methods:
        plan = {g: [m for m in ms if m in args.methods] for g, ms in plan.items()}
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for graph, methods in plan.items():
            edge_index, n = build_graph(graph)
            graph_file = str(Path(tmp) / f"{graph}.npz")
            np.savez(graph_file, edge_index=edge_index, num_nodes=n)
            for f in args.shift_factors or default_shifts.get(graph, [1.0]):
                runs: dict[str, list[dict]] = {m: [] for m in methods}
                for rep in range(args.repeats):  # interleaved: every method once per round
                    for method in methods:
                        if rep and "error" in runs[method][-1]:
                            continue  # a timeout or crash is not retried
                        direct = method in ("ours-direct", "scipy-splu")
                        res = spawn(graph_file, method, args.k, DIRECT_TIMEOUT_S if direct else args.timeout, f)
                        runs[method].append(res)
                        print(graph, f, rep, method, res, flush=True)
                for method in methods:
                    ok = [r for r in runs[method] if "error" not in r]
                    res = dict(ok[len(ok) // 2] if len(ok) % 2 else ok[0]) if ok else runs[method][0]
                    if ok:
                        times = sorted(r["time_s"] for r in ok)
                        res["time_s"] = float(np.median(times))
                        res["times"] = times
                    results[(graph, f, method)] = res
                    if "error" in res:
                        rows.append([graph, f"{n:,}", f"{f:g}", f"{edge_index.shape[1] + n:,}", method, "—", "—",
                                     "—", "—", res["error"]])
                    else:
                        runs_txt = ", ".join(f"{t:.1f}" for t in res["times"])
                        rows.append([graph, f"{n:,}", f"{f:g}", f"{res['nnz']:,}", method, f"{res['time_s']:.2f}",
                                     runs_txt, f"{res['peak_mb']:.0f}", f"{res['rel_residual']:.1e}", ""])
    header = ["graph", "nodes", "shift f", "nnz(L)", "method", "fwd+bwd s (median)", "runs s", "peak RSS +MB",
              "‖AX−B‖/‖B‖", "note"]
    table = markdown_table(header, rows)
    ratios = []
    for (graph, f, method), res in results.items():
        if method != "ours-pcg-jacobi" or "time_s" not in res:
            continue
        ours = res
        ts, amg = results.get((graph, f, "tsgu-cg"), {}), results.get((graph, f, "ours-pcg-amg"), {})
        auto = results.get((graph, f, "ours-auto"), {})
        lu, direct = results.get((graph, f, "scipy-splu"), {}), results.get((graph, f, "ours-direct"), {})
        tag = f"{graph} (f = {f:g})"
        if "time_s" in ts:
            ratios.append(f"- {tag}: tsgu-cg / ours-pcg-jacobi = {ts['time_s'] / ours['time_s']:.1f}x")
        elif "timeout" in ts.get("error", ""):
            ratios.append(f"- {tag}: tsgu-cg / ours-pcg-jacobi > {args.timeout / ours['time_s']:.1f}x (tsgu-cg hit "
                          f"the {args.timeout:.0f} s cap; a lower bound)")
        for name, other in (("ours-pcg-amg", amg), ("ours-auto", auto)):
            if "time_s" in other:
                ratios.append(f"- {tag}: ours-pcg-jacobi / {name} = {ours['time_s'] / other['time_s']:.2f}x")
        if "time_s" in lu and "time_s" in direct:
            ratios.append(f"- {tag}: ours-direct / scipy-splu = {direct['time_s'] / lu['time_s']:.2f}x")
    for (graph, f, method), res in results.items():  # Jacobi timed out: AMG's speed-up is a lower bound
        if method == "ours-pcg-jacobi" and "timeout" in res.get("error", ""):
            for name in ("ours-pcg-amg", "ours-auto"):
                other = results.get((graph, f, name), {})
                if "time_s" in other:
                    ratios.append(f"- {graph} (f = {f:g}): ours-pcg-jacobi / {name} > "
                                  f"{args.timeout / other['time_s']:.1f}x (Jacobi hit the {args.timeout:.0f} s cap)")
    text = "\n".join([
        "## Sparse solve, forward + backward (pyg_em.linalg)",
        "",
        f"Command: `PYTHONPATH=$PWD python -m {' '.join(['benchmarks.bench_linalg', *sys.argv[1:]])}`  ",
        f"Machine: {machine()}; shared with other jobs while measured (load average above the core count), "
        f"so only ratios within this run mean much; each case in its own subprocess with 1 thread, "
        f"{MEMORY_CAP_GB} GB address-space cap and a {args.timeout:.0f} s wall-clock cap ({DIRECT_TIMEOUT_S} s for "
        f"the LU cases); {args.repeats} interleaved rounds, median reported.  ",
        f"System: `(L + eps I) X = B`, unweighted Laplacian, eps = f x 1e-2 x mean degree, float64, k = {args.k} "
        f"right-hand sides, loss `(X * P).sum()` differentiated w.r.t. the nnz values and B; CG tolerance {TOL:g} "
        "(relative residual per column) for ours and torchsparsegradutils 0.2.7 (`sparse_generic_solve` with its "
        "`linear_cg`, COO). ours-pcg-amg: smoothed-aggregation AMG V-cycle (pyamg 5.4 setup, built once and reused "
        "by the backward); ours-auto: `sparse_solve`'s defaults (`method='auto', preconditioner='auto'`). "
        "scipy-splu: `splu` (COLAMD, as ours) + forward solve + transposed adjoint solve + the "
        "same gather, i.e. the work of a direct fwd+bwd without autograd. Peak RSS is the growth of the "
        "process's maximum resident set during the solve.",
        "",
        table,
        "",
        *ratios,
    ])
    print(text)
    if not args.no_write:
        write_section("linalg", text)


if __name__ == "__main__":
    main()

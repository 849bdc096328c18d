"""NTK Gram benchmark: closed-form mean-field NTK vs vmap(jacrev) + J J^T vs the seed's per-neuron loop, against
the one (n x m)(m x n) matrix product the closed form cannot avoid; and the memory of the chunked generic
``empirical_ntk`` at growing n.

Every case runs in its own subprocess (peak memory = high-water mark of the resident set during the timed call,
minus the resident set before it, via ``/proc/self/clear_refs``). All arithmetic is float64.

    PYTHONPATH=$PWD python -m benchmarks.bench_ntk            # full run (about 15 minutes on 2 busy cores)
    PYTHONPATH=$PWD python -m benchmarks.bench_ntk --quick    # small sizes only, seconds
    PYTHONPATH=$PWD python -m benchmarks.bench_ntk --graph-only --threads 1   # GCN node x node NTK, SBM and Cora
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import torch

SMALL = (2048, 64, 2048)
LARGE = (4096, 64, 4096)
F64 = torch.float64


# ------------------------------------------------------------------------------------------ measurement helpers
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _measure(fn):
    """Run ``fn`` once; return its result, wall seconds and peak extra resident memory in MiB."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset the high-water mark to the current resident set
    except OSError:
        pass
    before = _status_kb("VmRSS")
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    return out, seconds, max(_status_kb("VmHWM") - before, 0) / 1024


def _model_and_data(n, d, m, seed=0):
    from pyg_em.func import MeanFieldReLU

    torch.manual_seed(seed)
    model = MeanFieldReLU(d, m, dtype=F64).requires_grad_(False)
    return model, torch.randn(n, d, dtype=F64)


def _jacrev_jacobian(model, X):
    """Baseline: torch.func per-sample Jacobian (vmap over rows of jacrev of a one-row forward)."""
    from torch.func import functional_call, jacrev, vmap

    params = {name: p.detach() for name, p in model.named_parameters()}

    def one_row(p, x):
        return functional_call(model, p, (x.unsqueeze(0),))[0]

    grads = vmap(jacrev(one_row), in_dims=(None, 0))(params, X)
    return torch.cat([grads[name].reshape(X.size(0), -1) for name in params], dim=1)


def _seed_loop_jacobian(model, X):
    """Baseline: the seed's construction, one Python iteration per hidden neuron filling that neuron's columns."""
    n, d = X.shape
    m = model.width
    W, a = model.W, model.a
    pre = X @ W
    per_neuron = torch.zeros(n, d, m, dtype=X.dtype)
    for j in range(m):
        active = (pre[:, j] > 0).to(X.dtype).unsqueeze(1)
        per_neuron[:, :, j] = a[j] * X * active / m
    return torch.cat([per_neuron.reshape(n, -1), torch.relu(pre) / m], dim=1)


# ------------------------------------------------------------------------------------------ cases (subprocess)
def case_closed(n, d, m, reps):
    """Closed form and the floor GEMM, interleaved in one process so that both see the same machine load."""
    model, X = _model_and_data(n, d, m)
    A, B = torch.randn(n, m, dtype=F64), torch.randn(m, n, dtype=F64)
    closed, gemm, memory = [], [], 0.0
    with torch.no_grad():
        for _ in range(reps):
            _, t, _ = _measure(lambda: A @ B)
            gemm.append(t)
            K, t, mem = _measure(lambda: model.ntk(X))
            closed.append(t)
            memory = max(memory, mem)
        # Independent check on a principal submatrix: rows of the torch.func Jacobian, multiplied out.
        sub = torch.randperm(n, generator=torch.Generator().manual_seed(1))[:256]
        J = _jacrev_jacobian(model, X[sub])
        error = (K[sub][:, sub] - J @ J.T).abs().max().item()
    return {"closed_s": min(closed), "gemm_s": min(gemm), "closed_median": statistics.median(closed),
            "gemm_median": statistics.median(gemm), "closed_all": closed, "gemm_all": gemm,
            "closed_mib": memory, "sub_error": error, "K_mib": n * n * 8 / 2**20}


def _closed_reference(model, X):
    """Time the closed form in the same process as a slow path, so that their ratio sees one machine load.

    The result is printed at once (flushed) so that it survives a time-capped slow path."""
    with torch.no_grad():
        K, seconds, _ = _measure(lambda: model.ntk(X))
    print(json.dumps({"closed_same_process_s": seconds}), flush=True)
    return K, seconds


def case_jjt(n, d, m, reps):
    model, X = _model_and_data(n, d, m)
    reference, closed = _closed_reference(model, X)
    with torch.no_grad():
        K, t, mem = _measure(lambda: (lambda J: J @ J.T)(_jacrev_jacobian(model, X)))
    return {"seconds": t, "mib": mem, "error": (K - reference).abs().max().item(), "closed_same_process_s": closed}


def case_jjt_chunked(n, d, m, reps, chunk_size=512):
    from pyg_em.func import empirical_ntk

    model, X = _model_and_data(n, d, m)
    reference, closed = _closed_reference(model, X)
    model.requires_grad_(True)  # the generic tool differentiates the trainable parameters
    K, t, mem = _measure(lambda: empirical_ntk(model, X, chunk_size=chunk_size))
    return {"seconds": t, "mib": mem, "error": (K - reference).abs().max().item(), "closed_same_process_s": closed}


def case_seed_loop(n, d, m, reps):
    model, X = _model_and_data(n, d, m)
    reference, closed = _closed_reference(model, X)
    with torch.no_grad():
        K, t, mem = _measure(lambda: (lambda J: J @ J.T)(_seed_loop_jacobian(model, X)))
    return {"seconds": t, "mib": mem, "error": (K - reference).abs().max().item(), "closed_same_process_s": closed}


def case_generic_mlp(n, hidden, chunk_size, strategy):
    """Generic empirical_ntk on an MLP (independent rows), chunked or not (chunk_size 0 = unchunked)."""
    from pyg_em.func import empirical_ntk

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)).double()
    X = torch.randn(n, 64, dtype=F64)
    params = sum(p.numel() for p in model.parameters())
    _, t, mem = _measure(lambda: empirical_ntk(model, X, strategy=strategy, chunk_size=chunk_size or None))
    return {"seconds": t, "mib": mem, "P": params, "K_mib": n * n * 8 / 2**20, "J_mib": n * params * 8 / 2**20}


def case_generic_gcn(n, chunk_size, strategy):
    """Generic empirical_ntk on a 2-layer GCN over a stochastic block model (shared forward, per-node outputs)."""
    from torch_geometric.nn import GCN

    from pyg_em.datasets import attributed_sbm
    from pyg_em.func import empirical_ntk

    data = attributed_sbm(num_nodes=n, num_blocks=4, avg_degree=8, p_in_ratio=5.0, num_features=16,
                          feature_noise=1.0, seed=0)
    torch.manual_seed(0)
    model = GCN(16, 32, num_layers=2, out_channels=4).double()
    x = data.x.double()
    params = sum(p.numel() for p in model.parameters())
    _, t, mem = _measure(lambda: empirical_ntk(model, (x, data.edge_index), strategy=strategy,
                                               chunk_size=chunk_size or None, reduce="trace"))
    return {"seconds": t, "mib": mem, "P": params, "K_mib": n * n * 8 / 2**20, "J_mib": n * 4 * params * 8 / 2**20}


def _graph_case(name: str):
    """A float64 GCN in eval mode and its graph: the 400-node SBM of the generic table, or Cora 1433-16-7."""
    from torch_geometric.nn import GCN

    if name == "cora":
        from pyg_em.datasets import load_planetoid

        root = os.environ.get("PYG_EM_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                          "planetoid"))
        data = load_planetoid("cora", root=root)
        channels = (data.num_features, 16, 7)
    else:
        from pyg_em.datasets import attributed_sbm

        data = attributed_sbm(num_nodes=int(name.removeprefix("sbm")), num_blocks=4, avg_degree=8, p_in_ratio=5.0,
                              num_features=16, feature_noise=1.0, seed=0)
        channels = (16, 32, 4)
    torch.manual_seed(0)
    model = GCN(channels[0], channels[1], num_layers=2, out_channels=channels[2]).double().eval()
    return model, data.x.double(), data.edge_index


def _forward_backward_seconds(model, x, edge_index, reps=5) -> float:
    """Median time of one full forward + backward pass of the model (the unit the NTK's cost is read in)."""
    times = []
    for _ in range(reps):
        model.zero_grad()
        start = time.perf_counter()
        model(x, edge_index).sum().backward()
        times.append(time.perf_counter() - start)
    model.zero_grad()
    return statistics.median(times)


def _jacrev_trace_kernel(model, x, edge_index, nodes):
    """Independent oracle: ``torch.func.jacrev`` of the full-graph output restricted to ``nodes``, contracted."""
    from torch.func import functional_call, jacrev

    params = {name: p.detach() for name, p in model.named_parameters()}
    jac = jacrev(lambda p: functional_call(model, p, (x, edge_index))[nodes])(params)
    J = torch.cat([jac[name].reshape(nodes.numel(), -1, jac[name][0, 0].numel()) for name in params], dim=2)
    return torch.einsum("iap,jap->ij", J, J)


def case_graph_ntk(name, strategy, chunk_size, check_nodes):
    """Node x node trace NTK of a GCN with one strategy (``default`` = the library default), timed against one
    forward+backward in the same process, with its error against jacrev on ``check_nodes`` random nodes."""
    from pyg_em.func import empirical_ntk

    model, x, edge_index = _graph_case(name)
    forward_backward = _forward_backward_seconds(model, x, edge_index)
    print(json.dumps({"forward_backward_s": forward_backward}), flush=True)
    def call():
        return empirical_ntk(model, (x, edge_index), reduce="trace", strategy=None if strategy == "default"
                             else strategy, chunk_size=chunk_size or None)

    K, cold, mib = _measure(call)  # first call in the process: includes one-time torch.func/PyG set-up
    print(json.dumps({"seconds": cold, "cold_s": cold, "mib": mib}), flush=True)
    seconds = cold
    if cold < 30:  # repeat a short call: the table's time is the warm one, the memory the larger of the two
        del K
        K, seconds, warm_mib = _measure(call)
        mib = max(mib, warm_mib)
    nodes = torch.randperm(x.size(0), generator=torch.Generator().manual_seed(1))[:check_nodes]
    reference = _jacrev_trace_kernel(model, x, edge_index, nodes)
    error = ((K[nodes][:, nodes] - reference).abs().max() / reference.abs().max()).item()
    return {"seconds": seconds, "cold_s": cold, "mib": mib, "forward_backward_s": forward_backward,
            "rel_error": error,
            "P": sum(p.numel() for p in model.parameters()), "N": x.size(0),
            "data_mib": (x.numel() * 8 + edge_index.numel() * 8) / 2**20, "K_mib": K.numel() * 8 / 2**20}


CASES = {"graph_ntk": case_graph_ntk, "closed": case_closed,  # noqa: E501 "jjt": case_jjt, "jjt_chunked": case_jjt_chunked, "seed_loop": case_seed_loop,
         "generic_mlp": case_generic_mlp, "generic_gcn": case_generic_gcn}


def _run(case: str, *args, timeout: float = 900.0) -> dict:
    """Run one case in a fresh interpreter; on timeout keep the JSON lines it had already printed."""
    command = [sys.executable, "-m", "benchmarks.bench_ntk", "--case", case, *map(str, args)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.seek(0)
        err.seek(0)
        lines = [line for line in out.read().strip().splitlines() if line.startswith("{")]
        result = {}
        for line in lines:
            result.update(json.loads(line))
        if process.returncode == -signal.SIGKILL:
            result["timeout"] = timeout
        elif process.returncode != 0:
            result["failed"] = (err.read().strip().splitlines() or ["?"])[-1:]
        return result


# ------------------------------------------------------------------------------------------ report
def _fmt_time(result: dict, key: str = "seconds") -> str:
    if "timeout" in result:
        return f"> {result['timeout']:.0f} (stopped)"
    if "failed" in result:
        return f"failed: {result['failed']}"
    return f"{result[key]:.3f}"


def _floor_only(args, argv) -> None:
    from benchmarks._report import machine, markdown_table, write_section

    rows = []
    for n, d, m in ([(256, 32, 256)] if args.quick else [SMALL, LARGE]):
        r = _run("closed", n, d, m, args.reps)
        print("closed", (n, d, m), r, flush=True)
        rows.append([f"({n}, {d}, {m})", os.environ.get("OMP_NUM_THREADS", "default"),
                     ", ".join(f"{t:.2f}" for t in r["gemm_all"]), ", ".join(f"{t:.2f}" for t in r["closed_all"]),
                     f"{r['closed_s'] / r['gemm_s']:.2f}", f"{r['closed_median'] / r['gemm_median']:.2f}",
                     f"{r['sub_error']:.1e}"])
    table = markdown_table(["(n, d, m)", "threads", "GEMM runs (s)", "closed-form runs (s)", "ratio of minima",
                            "ratio of medians", "max abs error (256×256 block vs jacrev)"], rows)
    markdown = "\n\n".join([
        "## NTK closed form vs the one unavoidable GEMM, fixed thread count",
        f"Command: `PYTHONPATH=$PWD python -m benchmarks.bench_ntk {' '.join(argv or sys.argv[1:])}`  \n"
        f"Machine: {machine()}",
        table,
        "- Interleaved in one process (GEMM, closed form, GEMM, ...), float64, no autograd.",
    ])
    write_section("ntk_floor", markdown)
    print(markdown)


GRAPH_ROWS = [  # (graph, strategy, chunk, nodes checked against jacrev); the old ntk_vp row first, as in "ntk"
    ("sbm400", "ntk_vp", 32, 64), ("sbm400", "forward", 0, 64), ("sbm400", "reverse", 0, 64),
    ("sbm400", "default", 0, 64), ("cora", "default", 0, 32),
]


def _graph_only(args, argv) -> None:
    from benchmarks._report import machine, markdown_table, write_section

    rows, results = [], {}
    cases = GRAPH_ROWS + ([("cora", "forward", 0, 32)] if args.cora_generic else [])
    for graph, strategy, chunk, check in cases:
        r = _run("graph_ntk", graph, strategy, chunk, check, timeout=args.graph_timeout)
        print("graph_ntk", graph, strategy, r, flush=True)
        results[graph, strategy] = r
        label = {"sbm400": "GCN 16-32-4, 400-node SBM", "cora": "GCN 1433-16-7, Cora (2708 nodes)"}[graph]
        name = {"default": "default (GCN closed form)", "ntk_vp": "ntk_vp, per-node chunks of 32 (old default)",
                "forward": "forward mode, 64 directions/chunk", "reverse": "reverse mode, 64 outputs/chunk"}[strategy]
        seconds = r.get("seconds")
        fb = r.get("forward_backward_s")
        old = results.get((graph, "ntk_vp"), {}).get("seconds")
        cold = f" (first call {r['cold_s']:.2f})" if r.get("cold_s") not in (None, seconds) else ""
        rows.append([label, r.get("P", ""), name, _fmt_time(r) + cold,
                     f"{seconds / fb:.0f}" if seconds and fb else "",
                     f"{old / seconds:.1f}×" if old and seconds else "",
                     f"{r['mib']:.0f}" if "mib" in r else "", f"{r['rel_error']:.1e}" if "rel_error" in r else "",
                     f"{fb * 1e3:.1f}" if fb else ""])
    table = markdown_table(["model", "P", "strategy", "time (s)", "÷ one fwd+bwd", "speed-up vs ntk_vp",
                            "peak extra MiB", "max rel. error vs jacrev", "one fwd+bwd (ms)"], rows)
    markdown = "\n\n".join([
        "## Node × node NTK of a GCN on the full graph (float64, `reduce=\"trace\"`)",
        f"Command: `PYTHONPATH=$PWD python -m benchmarks.bench_ntk {' '.join(argv or sys.argv[1:])}`  \n"
        f"Machine: {machine()}; OMP/MKL threads: {os.environ.get('OMP_NUM_THREADS', 'default')}",
        table,
        "- Every row runs in its own subprocess, one after the other in this run, on a machine shared with other "
        "jobs; '÷ one fwd+bwd' divides by the median of 5 forward+backward passes of the same model measured in "
        "the same subprocess just before, so it can be read across machines.",
        "- Time: a second call in the same process when the first took under 30 s (the first call, in brackets, "
        "includes one-time torch.func / PyG set-up), else the first call.",
        "- Peak extra memory is the rise of the resident set during the call (after the model and data are "
        "loaded), the N×N kernel included; the larger of the two calls.",
        "- Error: max |K − K_ref| / max |K_ref| on random nodes (64 on the SBM, 32 on Cora), K_ref from "
        "`torch.func.jacrev` of the full-graph output restricted to those nodes.",
    ])
    write_section("ntk_graph", markdown)
    print(markdown)


def main(argv: list[str] | None = None) -> None:
    from benchmarks._report import machine, markdown_table, write_section

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes only (no 4096 case)")
    parser.add_argument("--jjt-timeout", type=float, default=480.0, help="time cap for the large J J^T path")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS/OpenMP threads in every case (default: torch's default)")
    parser.add_argument("--floor-only", action="store_true",
                        help="only the closed form vs the GEMM floor, written to the section 'ntk_floor'")
    parser.add_argument("--graph-only", action="store_true",
                        help="only the full-graph GCN NTK table, written to the section 'ntk_graph'")
    parser.add_argument("--graph-timeout", type=float, default=600.0, help="time cap per full-graph row")
    parser.add_argument("--cora-generic", action="store_true",
                        help="also run the generic forward mode on Cora (minutes)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)  # inherited by every case's subprocess
    if args.floor_only:
        return _floor_only(args, argv)
    if args.graph_only:
        return _graph_only(args, argv)
    sizes = [(256, 32, 256)] if args.quick else [SMALL, LARGE]
    rows, notes = [], []
    for n, d, m in sizes:
        closed = _run("closed", n, d, m, args.reps)
        print("closed", (n, d, m), closed, flush=True)
        large = (n, d, m) == LARGE
        if large:
            # J alone would be n (d+1) m * 8 B = 8.7 GB here: run the same J J^T product chunked (memory bounded),
            # with a time cap; the seed loop additionally needs an (n, d, m) array of the same size and is skipped.
            jjt = _run("jjt_chunked", n, d, m, args.reps, timeout=args.jjt_timeout)
            jjt_label = "vmap(jacrev)+JJᵀ, chunked 512 rows"
            seed = None
        else:
            jjt = _run("jjt", n, d, m, args.reps)
            jjt_label = "vmap(jacrev)+JJᵀ"
            seed = _run("seed_loop", n, d, m, args.reps)
        print("jjt", jjt, "seed", seed, flush=True)
        floor = closed["gemm_s"]
        rows.append([f"({n}, {d}, {m})", "one (n×m)(m×n) GEMM (floor)", f"{floor:.3f}", "1.00", "", "", ""])
        rows.append([f"({n}, {d}, {m})", "closed form `MeanFieldReLU.ntk`", f"{closed['closed_s']:.3f}",
                     f"{closed['closed_s'] / floor:.2f}", "1", f"{closed['closed_mib']:.0f}",
                     f"{closed['sub_error']:.1e} (256×256 block vs jacrev)"])
        jjt_time = jjt.get("seconds", jjt.get("timeout"))
        speedup = jjt_time / jjt.get("closed_same_process_s", closed["closed_s"]) if jjt_time else float("nan")
        rows.append([f"({n}, {d}, {m})", jjt_label, _fmt_time(jjt), f"{jjt_time / floor:.1f}" if jjt_time else "",
                     f"{'≥ ' if 'timeout' in jjt else ''}{speedup:.1f}× slower", f"{jjt.get('mib', float('nan')):.0f}",
                     f"{jjt['error']:.1e}" if "error" in jjt else ""])
        if seed is not None:
            seed_time = seed.get("seconds")
            rows.append([f"({n}, {d}, {m})", "seed per-neuron loop + JJᵀ", _fmt_time(seed),
                         f"{seed_time / floor:.1f}" if seed_time else "",
                         f"{seed_time / seed.get('closed_same_process_s', closed['closed_s']):.1f}× slower"
                         if seed_time else "",
                         f"{seed.get('mib', float('nan')):.0f}", f"{seed['error']:.1e}" if "error" in seed else ""])
        notes.append(f"({n}, {d}, {m}): {len(closed['closed_all'])} interleaved runs each; closed form "
                     f"{', '.join(f'{t:.2f}' for t in closed['closed_all'])} s, GEMM "
                     f"{', '.join(f'{t:.2f}' for t in closed['gemm_all'])} s; table shows the minima; ratio of "
                     f"medians {closed['closed_median'] / closed['gemm_median']:.2f}. K itself is "
                     f"{closed['K_mib']:.0f} MiB.")
    gram = markdown_table(["(n, d, m)", "path", "time (s)", "÷ GEMM", "vs closed form", "peak extra MiB",
                           "max abs error"], rows)

    generic_rows = []
    mlp_sizes = [256, 512] if args.quick else [512, 1024, 2048]
    mlp_cases = [(n, chunk, "jacobian") for n in mlp_sizes for chunk in (0, 128)] + [(mlp_sizes[0], 128, "ntk_vp")]
    for n, chunk, strategy in mlp_cases:
        r = _run("generic_mlp", n, 512, chunk, strategy)
        print("generic_mlp", n, chunk, strategy, r, flush=True)
        generic_rows.append([f"MLP 64-512-1 (P={r.get('P', '?')})", n, chunk or "none", strategy, _fmt_time(r),
                             f"{r.get('mib', float('nan')):.0f}", f"{r.get('K_mib', float('nan')):.0f}",
                             f"{r.get('J_mib', float('nan')):.0f}"])
    gcn_cases = [(100, "jacobian")] + [(n, "ntk_vp") for n in ([100] if args.quick else [100, 200, 400])]
    for n, strategy in gcn_cases:
        r = _run("generic_gcn", n, 32, strategy)
        print("generic_gcn", n, strategy, r, flush=True)
        generic_rows.append([f"GCN 16-32-4 on SBM (P={r.get('P', '?')})", n, 32, strategy, _fmt_time(r),
                             f"{r.get('mib', float('nan')):.0f}", f"{r.get('K_mib', float('nan')):.0f}",
                             f"{r.get('J_mib', float('nan')):.0f}"])
    generic = markdown_table(["model", "n", "chunk", "strategy", "time (s)", "peak extra MiB", "K MiB",
                              "full J MiB (not built when chunked)"], generic_rows)

    markdown = "\n\n".join([
        "## NTK Gram: closed form vs J Jᵀ (float64)",
        f"Command: `PYTHONPATH=$PWD python -m benchmarks.bench_ntk {' '.join(argv or sys.argv[1:])}`  \n"
        f"Machine: {machine()}",
        gram,
        "\n".join(f"- {note}" for note in notes),
        "- Peak memory is the rise of the resident set during one call (subprocess per case), output included.",
        "- 'vs closed form' divides by the closed-form time measured in the same subprocess just before the slow "
        "path (the machine is shared and its load drifts between cases); 'max abs error' compares each path with "
        "the closed form.",
        "- At the large size J alone would take n(d+1)m·8 B = 8.7 GB, so the J Jᵀ path runs through the chunked "
        "generic `empirical_ntk` (512-row chunks, same products) under a time cap; when stopped, the speed-up is a "
        "lower bound. The seed's loop (which also needs an (n, d, m) array of that size) runs at the small size only.",
        "## Generic `empirical_ntk`: memory bounded by the chunk size",
        generic,
    ])
    write_section("ntk", markdown)
    print(markdown)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--case":
        name, values = sys.argv[2], [int(v) if v.isdigit() else v for v in sys.argv[3:]]
        print(json.dumps(CASES[name](*values)))
    else:
        main()

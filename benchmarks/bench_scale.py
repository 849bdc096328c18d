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


def _data_gib(data) -> float:
    """The data's own bytes (``edge_index`` + ``x`` + ``y``), in GiB."""
    return (data.edge_index.numel() * 8 + data.x.numel() * 4 + data.y.numel() * 8) / 2**30


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
    data_gib = _data_gib(data)
    build_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    seed_everything(0)
    recipe, _ = DAEGCRecipe().resolved(data, 4)  # feature_weight='auto' as `pyg-em run daegc` resolves it
    model = DAEGC(data.num_features, 4, hidden_channels=hidden, embedding_channels=recipe.embedding_channels,
                  feature_weight=recipe.feature_weight)
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


def pyagc_worker(num_nodes: int, batch_size: int, hidden: int, fanout: list[int]) -> dict[str, float]:
    """PyAGC 1.1.2's mini-batch DAEGC on the same SBM, in this process: its ``train_batch`` with a
    ``NeighborLoader`` of our fan-out and batch size for one pretraining and one self-training epoch (our
    learning rates), its ``initialize_cluster_centers``, and its ``infer_batch`` prediction (at the training
    fan-out)."""
    from pyagc.models import DAEGC as PyAGCDAEGC
    from torch_geometric.loader import NeighborLoader

    from benchmarks.bench_daegc import _PyAGCEncoder
    from pyg_em.datasets import attributed_sbm
    from pyg_em.metrics import clustering_metrics
    from pyg_em.recipes import DAEGCRecipe
    from pyg_em.train import seed_everything

    class GuardedDAEGC(PyAGCDAEGC):
        """PyAGC's DAEGC with one guard: its ``loss_batch`` reconstructs only the edges *between* seeds, and a
        1024-seed batch of a 1M-node graph often has none, where its ``negative_sampling`` call fails
        (``IndexError``). Such a batch contributes a zero reconstruction loss here; everything else is PyAGC's."""

        empty_batches = 0

        def recon_loss(self, z, pos_edge_index, neg_edge_index=None):
            if pos_edge_index.size(1) == 0:
                GuardedDAEGC.empty_batches += 1
                return z.sum() * 0.0
            return super().recon_loss(z, pos_edge_index, neg_edge_index)

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    baseline = _rss_gib()
    data = attributed_sbm(num_nodes, 4, avg_degree=10, num_features=32, seed=0)
    data_gib = _data_gib(data)
    recipe = DAEGCRecipe()
    seed_everything(0)
    model = GuardedDAEGC(_PyAGCEncoder(data.num_features, hidden), 4, 16)  # the paper's GAT at our widths
    loader = NeighborLoader(data, num_neighbors=fanout, batch_size=batch_size, shuffle=True)
    times = {}
    start = time.perf_counter()
    optimizer = torch.optim.Adam(model.encoder.parameters(), lr=recipe.pretrain_lr)
    pretrain_loss = model.train_batch(loader, optimizer, 0, verbose=False, pretrain=True)
    times["pretrain_epoch_s"] = time.perf_counter() - start
    start = time.perf_counter()
    model.initialize_cluster_centers(data, num_layers=2, batch_size=4096, fan_out=-1, verbose=False)
    times["kmeans_s"] = time.perf_counter() - start
    start = time.perf_counter()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    self_train_loss = model.train_batch(loader, optimizer, 0, verbose=False)
    times["self_train_epoch_s"] = time.perf_counter() - start
    start = time.perf_counter()
    labels = model.infer_batch(NeighborLoader(data, num_neighbors=fanout, batch_size=4096, shuffle=False),
                               verbose=False)
    times["predict_s"] = time.perf_counter() - start
    scores = clustering_metrics(data.y, labels.cpu())
    return {"num_nodes": num_nodes, **times, "empty_batches": GuardedDAEGC.empty_batches,
            "batches": 2 * len(loader), "pretrain_loss": float(pretrain_loss),
            "self_train_loss": float(self_train_loss), "acc": scores["acc"], "nmi": scores["nmi"],
            "baseline_gib": baseline, "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "data_gib": data_gib, "load": os.getloadavg()[0]}


def pyagc_table(num_nodes: int, args: argparse.Namespace) -> str:
    """PyAGC's row (its own process) beside ours from ``--jsonl`` (the main table's row of the same size)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "benchmarks.bench_scale", "--pyagc-worker", str(num_nodes),
           "--batch-size", str(args.batch_size), "--hidden", str(args.hidden), "--fanout", *map(str, args.fanout)]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"PyAGC at {num_nodes} failed with exit code {proc.returncode}")
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(theirs), flush=True)
    ours = None
    if args.jsonl and Path(args.jsonl).is_file():
        ours = {r["num_nodes"]: r for r in map(json.loads, Path(args.jsonl).read_text().splitlines())}.get(num_nodes)
    rows = []
    for name, r, pretrain in (("PyAGC 1.1.2 DAEGC (GAT encoder, empty-batch guard)", theirs, "pretrain_epoch_s"),
                              ("pyg_em DAEGC (fit_daegc)", ours, "pretrain_s")):
        if r is None:
            continue
        rows.append([name, f"{r[pretrain]:.0f}", f"{r['kmeans_s']:.1f}", f"{r['self_train_epoch_s']:.0f}",
                     f"{r['predict_s']:.1f}", f"{100 * r['acc']:.1f} / {100 * r['nmi']:.1f}", f"{r['peak_gib']:.2f}",
                     f"{r['load']:.1f}"])
    note = (f"PyAGC's `loss_batch` reconstructs only the edges between a batch's seeds: {theirs['empty_batches']} of "
            f"its {theirs['batches']} training batches had none, where unmodified PyAGC stops with an `IndexError` "
            "in `negative_sampling`; `GuardedDAEGC` (in this file) gives those batches a zero reconstruction loss.\n")
    text = (f"### PyAGC side by side, {num_nodes:,}-node SBM (batch {args.batch_size}, fan-out {args.fanout}, "
            f"hidden {args.hidden}, embedding 16)\n\n"
            + markdown_table(["method", "pretraining s", "k-means s", "self-train epoch s", "predict s",
                              "ACC / NMI %", "peak RSS GiB", "load"], rows) + "\n\n" + note)
    if ours is not None:
        ratio = theirs["self_train_epoch_s"] / ours["self_train_epoch_s"]
        text += (f"\nSelf-training epoch, PyAGC ÷ ours: **{ratio:.2f}x**; "
                 f"peak RSS, ours ÷ PyAGC: {ours['peak_gib'] / theirs['peak_gib']:.2f}. Pretraining: PyAGC one whole "
                 f"epoch, ours the recipe's {_pretrain_steps(ours, args.batch_size)} steps.\n")
    return text + "\n" + run_line() + f"\n\n{machine()}\n"


def build_only(num_nodes: int) -> dict[str, float]:
    """The SBM build alone, in this process: seconds and peak RSS against the output's bytes."""
    from pyg_em.datasets import attributed_sbm, sbm_memory_bytes

    baseline = _rss_gib()
    start = time.perf_counter()
    data = attributed_sbm(num_nodes, 4, avg_degree=10, num_features=32, seed=0)
    build_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    data_gib = _data_gib(data)
    return {"num_nodes": num_nodes, "num_edges": int(data.edge_index.size(1)), "build_s": build_s,
            "baseline_gib": baseline, "peak_gib": peak, "data_gib": data_gib,
            "estimate_gib": sbm_memory_bytes(num_nodes, 10, 32) / 2**30, "load": os.getloadavg()[0]}


def kmeans_part(num_nodes: int, n_clusters: int = 4) -> str:
    """Exact scikit-learn k-means (20 restarts on all points) against the default sampled form, same points:
    L2-normalised 16-d points around 4 centres, as DAEGC's embeddings are."""
    from pyg_em.clusters import kmeans

    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(n_clusters, 16, generator=gen) * 0.5
    labels = torch.randint(n_clusters, (num_nodes,), generator=gen)
    z = torch.nn.functional.normalize(centres[labels] + 0.3 * torch.randn(num_nodes, 16, generator=gen), dim=1)
    rows = []
    for name, limit in (("exact (scikit-learn, 20 restarts on all points)", num_nodes),
                        ("default (20 restarts on 100k, chunked Lloyd on all)", None)):
        start = time.perf_counter()
        found, centers = kmeans(z, n_clusters, n_init=20, seed=0,
                                **({"exact_max_points": limit} if limit is not None else {}))
        seconds = time.perf_counter() - start
        inertia = float((z.double() - centers.double()[found]).pow(2).sum())
        rows.append([name, f"{seconds:.1f}", f"{inertia:.2f}"])
    return (f"### k-means initialisation on {num_nodes:,} points (16-d, {n_clusters} clusters)\n\n"
            + markdown_table(["form", "s", "inertia"], rows) + "\n\n" + run_line() + "\n")


def _run_worker(num_nodes: int, args: argparse.Namespace, timeout: float) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "benchmarks.bench_scale", "--worker", str(num_nodes), "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--hidden", str(args.hidden), "--fanout", *map(str, args.fanout)]
    # stderr (the progress bars with their ETAs) goes to this process's stderr
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"size {num_nodes} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _projection(row: dict[str, float], num_nodes: int, batch_size: int) -> dict[str, float]:
    """Times from a measured row: the epochs, refresh and prediction are O(N + E) at a fixed degree, so linear in
    N; pretraining is whole epochs reaching 100 steps (2 epochs at 100k nodes, 1 from about 102k on). k-means
    switches to the sampled form above ``EXACT_KMEANS_MAX_POINTS`` and memory is dominated by per-batch state
    at 100k, so neither is extrapolated (``nan``, shown as –)."""
    scale = num_nodes / row["num_nodes"]
    epochs = -(-100 // max(1, -(-num_nodes // batch_size)))
    keys = ("build_s", "self_train_epoch_s", "refresh_s", "predict_s")
    projected = {k: row[k] * scale for k in keys}
    projected["pretrain_s"] = row["pretrain_s"] / row["pretrain_epochs"] * scale * epochs
    projected["fit_s"] = projected["pretrain_s"] + projected["self_train_epoch_s"] + projected["refresh_s"]
    return {"num_nodes": num_nodes, **projected, "pretrain_epochs": epochs, "projected": True,
            "kmeans_s": float("nan"), "peak_gib": float("nan"), "data_gib": row["data_gib"] * scale}


def _pretrain_steps(row: dict, batch_size: int, budget: int = 100) -> int:
    """Optimizer steps of a row's pretraining (``fit_daegc``: whole epochs reaching the recipe's 100 steps, or
    the first 100 batches where one epoch is longer)."""
    batches = -(-row["num_nodes"] // batch_size)
    return budget if batches > budget else row["pretrain_epochs"] * batches


def _table(rows: list[dict], batch_size: int) -> str:
    header = ["nodes", "directed edges", "build s", "pretrain s (steps)", "k-means s", "self-train epoch s",
              "refresh s", "predict s", "ACC / NMI %", "peak RSS GiB", "data GiB", "peak ÷ data", "load"]
    out = []
    for r in rows:
        mark = " (projected)" if r.get("projected") else ""
        out.append([f"{r['num_nodes']:,}{mark}", f"{r.get('num_edges', 0):,}" if not mark else "≈ 10 N",
                    f"{r['build_s']:.1f}", f"{r['pretrain_s']:.0f} ({_pretrain_steps(r, batch_size)})",
                    f"{r['kmeans_s']:.1f}" if not mark else "–", f"{r['self_train_epoch_s']:.0f}",
                    f"{r['refresh_s']:.1f}",
                    f"{r['predict_s']:.1f}",
                    f"{100 * r['acc']:.1f} / {100 * r['nmi']:.1f}" if not mark else "–",
                    f"{r['peak_gib']:.2f}" if not mark else "–", f"{r['data_gib']:.2f}",
                    f"{r['peak_gib'] / r['data_gib']:.1f}" if not mark else "–",
                    f"{r['load']:.1f}" if not mark else "–"])
    return markdown_table(header, out)


_DDP_WORKER = """
import json, sys, itertools
import torch
from pyg_em.datasets import attributed_sbm
from pyg_em.models import DAEGC
from pyg_em.nn import proximity_graph
from pyg_em.recipes import daegc_neighbor_loader
from pyg_em.train import Trainer, init_distributed, seed_everything, share_across_local_ranks, shutdown_distributed
from pyg_em.utils.negative_sampling import forbidden_pair_keys


def memory():
    out = {}
    for line in open("/proc/self/status"):
        if line.split(":")[0] in ("VmRSS", "VmHWM", "RssAnon", "RssShmem"):
            out[line.split(":")[0]] = int(line.split()[1]) / 2**20
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("Pss:"):
            out["Pss"] = int(line.split()[1]) / 2**20
    return out


rank, world = init_distributed()
n, steps, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
seed_everything(0)
data = share_across_local_ranks(lambda: attributed_sbm(n, 4, avg_degree=10, num_features=32, seed=0))
model = DAEGC(32, 4, hidden_channels=64)
graph = model.conv1.graph(data.edge_index, n, build=lambda: share_across_local_ranks(
    lambda: proximity_graph(data.edge_index, n)))
loader = daegc_neighbor_loader(data, 1024, [10, 5], graph=graph)
keys = share_across_local_ranks(lambda: forbidden_pair_keys(data.edge_index, n))
trainer = Trainer(model, epochs=1, lr=5e-3, device="cpu", progress=False,
                  batch_step_fn=lambda m, b: m.pretrain_loss_batch(b, forbidden=keys, num_nodes=n),
                  ddp_kwargs={"find_unused_parameters": True})
trainer.fit(loader=list(itertools.islice(iter(loader), steps)))
data_gib = sum(t.numel() * t.element_size() for t in (data.edge_index, data.x, data.y)) / 2**30
with open(f"{path}.{rank}", "w") as handle:
    json.dump({"rank": rank, "world": world, "data_gib": data_gib, **memory()}, handle)
shutdown_distributed()
"""


def ddp_memory(num_nodes: int, steps: int) -> str:
    """Memory of 1 and of 2 ranks (torchrun, gloo) holding the shared data and loader, after ``steps`` steps."""
    import tempfile

    rows, results = [], {}
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "worker.py"
        script.write_text(_DDP_WORKER)
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
        for world in (1, 2):
            out = Path(folder) / f"w{world}"
            cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={world}",
                   "--master_addr=127.0.0.1", f"--master_port={29700 + world}", str(script), str(num_nodes),
                   str(steps), str(out)]
            subprocess.run(cmd, env=env, check=True, cwd=ROOT, timeout=3600)
            results[world] = [json.loads(Path(f"{out}.{r}").read_text()) for r in range(world)]
    for world, ranks in results.items():
        for r in ranks:
            rows.append([world, r["rank"], f"{r['VmRSS']:.2f}", f"{r['RssAnon']:.2f}", f"{r['RssShmem']:.2f}",
                         f"{r['Pss']:.2f}", f"{r['VmHWM']:.2f}"])
    one = results[1][0]["Pss"]
    two = sum(r["Pss"] for r in results[2])
    return (f"### Two DDP ranks sharing one graph ({num_nodes:,}-node SBM, gloo, {steps} pretraining steps)\n\n"
            f"Data {results[1][0]['data_gib']:.2f} GiB. Each rank maps the graph, its features, the proximity "
            "graph, the loader's CSC edges and lookup table and the negative-sampling keys from one `/dev/shm` copy "
            "(`share_across_local_ranks`); `Pss` divides shared pages among the processes that map them, so the "
            "sum of the ranks' `Pss` is the host's memory for the job (`VmRSS` counts shared pages in every "
            "process).\n\n"
            + markdown_table(["ranks", "rank", "VmRSS GiB", "RssAnon GiB", "RssShmem GiB", "Pss GiB", "peak VmHWM GiB"],
                             rows)
            + f"\n\nTotal Pss of the 2 ranks ÷ Pss of 1 rank: **{two / one:.2f}** (target ≤ 1.3).\n\n"
            + run_line() + "\n")


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
    parser.add_argument("--ddp", type=int, metavar="N", help="only the 2-rank shared-memory part, on an N-node SBM")
    parser.add_argument("--ddp-steps", type=int, default=20)
    parser.add_argument("--build-only", type=int, metavar="N", help="only the SBM build of an N-node graph")
    parser.add_argument("--kmeans", type=int, metavar="N", help="only exact vs sampled k-means on N points")
    parser.add_argument("--pyagc", type=int, metavar="N",
                        help="only PyAGC's mini-batch DAEGC on an N-node SBM, beside our row of --jsonl")
    parser.add_argument("--pyagc-worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pyagc_worker:
        print(json.dumps(pyagc_worker(args.pyagc_worker, args.batch_size, args.hidden, args.fanout)))
        return
    if args.pyagc:
        text = pyagc_table(args.pyagc, args)
        print(text)
        if args.write:
            write_section("scale-pyagc", text)
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.epochs, args.batch_size, args.hidden, args.fanout)))
        return
    if args.build_only:
        print(json.dumps(build_only(args.build_only)))
        return
    if args.kmeans:
        print(kmeans_part(args.kmeans))
        return
    if args.ddp:
        text = ddp_memory(args.ddp, args.ddp_steps)
        print(text)
        if args.write:
            write_section("scale-ddp", text)
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
            projected = _projection(measured[-1], size, args.batch_size)
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
            "0.4 GiB of Python/torch); data = `edge_index` + `x` + `y` bytes. Projected rows scale the largest "
            "measured row's epoch, refresh and prediction times linearly in N (O(N + E) at fixed degree), "
            "pretraining by its whole epochs; k-means and memory are not extrapolated.\n\n"
            + _table(rows, args.batch_size) + "\n\n" + run_line() + f"\n\n{machine()}\n")
    print(text)
    if args.write:
        write_section("scale", text)


if __name__ == "__main__":
    main()

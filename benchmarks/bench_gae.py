"""GAE / VGAE link prediction on Cora and CiteSeer: pyg_em versus PyG's autoencoder example, side by side.

Both sides get the same data and the same ``RandomLinkSplit`` per seed (``NormalizeFeatures``, val 5 %, test
10 %, undirected, ``split_labels=True``, no training negatives).

* PyG (peer): the recipe of ``torch_geometric/examples/autoencoder.py``: ``GCNConv(F, 32) -> GCNConv(32, 16)``
  (``cached=True``), Adam lr 0.01, 400 epochs, ``recon_loss`` with one sampled negative per positive
  (+ ``kl_loss() / N`` for the VGAE); the model after the last epoch is tested.
* pyg_em: the default recipes ``pyg_em.recipes.GAERecipe()`` / ``VGAERecipe()`` — exactly what
  ``pyg-em run gae|vgae`` trains: the normalised-propagation encoder with the GNAE authors' hyper-parameters
  (GNAE / VGNAE: linear map, row L2 norm 1.8, one propagation step without teleport, 128-dimensional embedding;
  VGAE KL weight 0.1 on top of the 1/N scaling),
  sampled negatives that exclude
  training and held-out edges, Adam lr 0.005, 300 epochs through :class:`pyg_em.train.Trainer`; the epoch
  is selected on validation AUC + AP (EarlyStopping with ``restore_best``) and the test split is evaluated once.

Timing: ms/epoch of the training step alone (forward, loss, backward, optimiser step), measured on the same
split for both sides in interleaved chunks; the fit wall time per run is reported too (ours includes the
per-epoch validation, PyG's loop has none).

Run: ``PYTHONPATH=$PWD OMP_NUM_THREADS=1 python -m benchmarks.bench_gae [--seeds 10] [--datasets cora citeseer]``.
Each invocation merges its datasets into ``benchmarks/gae_runs.json`` and rewrites the ``gae`` section of
``benchmarks/RESULTS.md`` from all datasets recorded there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch_geometric.nn as pygnn
import torch_geometric.transforms as T
from torch_geometric.nn import GCNConv

from benchmarks._report import data_root, machine, markdown_table, write_section
from pyg_em.datasets import load_planetoid
from pyg_em.models import GAE, evaluate_link_prediction, link_split
from pyg_em.recipes import GAERecipe, VGAERecipe
from pyg_em.train import Trainer, seed_everything

RUNS = Path(__file__).with_name("gae_runs.json")
#: Overrides of the default recipes (none: the benchmark measures the defaults; --epochs sets ``epochs``).
OURS: dict = {}
PYG = dict(out_channels=16, lr=0.01, epochs=400)


class PyGExampleEncoder(torch.nn.Module):
    """The encoders of PyG's examples/autoencoder.py (GCNEncoder / VariationalGCNEncoder)."""

    def __init__(self, in_channels: int, out_channels: int, variational: bool) -> None:
        super().__init__()
        self.conv1 = GCNConv(in_channels, 2 * out_channels, cached=True)
        self.conv2 = GCNConv(2 * out_channels, out_channels, cached=True)
        self.conv3 = GCNConv(2 * out_channels, out_channels, cached=True) if variational else None

    def forward(self, x, edge_index):
        h = self.conv1(x, edge_index).relu()
        if self.conv3 is None:
            return self.conv2(h, edge_index)
        return self.conv2(h, edge_index), self.conv3(h, edge_index)


def pyg_model(num_features: int, variational: bool) -> torch.nn.Module:
    enc = PyGExampleEncoder(num_features, PYG["out_channels"], variational)
    return pygnn.VGAE(enc) if variational else pygnn.GAE(enc)


def pyg_train_step(model, optimizer, train_data, variational: bool) -> float:
    """One epoch of the example's train()."""
    model.train()
    optimizer.zero_grad()
    z = model.encode(train_data.x, train_data.edge_index)
    loss = model.recon_loss(z, train_data.pos_edge_label_index)
    if variational:
        loss = loss + (1 / train_data.num_nodes) * model.kl_loss()
    loss.backward()
    optimizer.step()
    return float(loss)


def our_recipe(variational: bool) -> GAERecipe:
    return (VGAERecipe() if variational else GAERecipe()).with_settings(OURS)


def our_model(num_features: int, variational: bool) -> GAE:
    return our_recipe(variational).build_model(num_features, None)


def run_pyg(split, variational: bool, seed: int) -> dict:
    train, _, test = split
    seed_everything(seed)
    model = pyg_model(train.num_features, variational)
    optimizer = torch.optim.Adam(model.parameters(), lr=PYG["lr"])
    start = time.perf_counter()
    for _ in range(PYG["epochs"]):
        pyg_train_step(model, optimizer, train, variational)
    wall = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        z = model.encode(test.x, test.edge_index)
        auc, ap = model.test(z, test.pos_edge_label_index, test.neg_edge_label_index)
    return {"auc": float(auc), "ap": float(ap), "wall": wall, "epochs": PYG["epochs"]}


def run_ours(split, variational: bool, seed: int) -> dict:
    train, val, test = split
    seed_everything(seed)
    recipe = our_recipe(variational)
    model = recipe.build_model(train.num_features, None)
    start = time.perf_counter()
    history = recipe.fit(model, split, device="cpu")
    wall = time.perf_counter() - start
    scores = evaluate_link_prediction(model, test)  # the only look at the test split
    best = max(range(len(history["val_auc_ap"])), key=history["val_auc_ap"].__getitem__)
    return {"auc": scores["auc"], "ap": scores["ap"], "wall": wall, "epochs": len(history["total"]),
            "best_epoch": int(history["eval_epoch"][best])}


def time_epochs(split, variational: bool, epochs: int = 100, chunks: int = 4) -> tuple[float, float]:
    """Training-step ms/epoch of PyG and ours, alternating chunks so that machine noise hits both alike."""
    train = split.train
    seed_everything(0)
    peer = pyg_model(train.num_features, variational)
    peer_opt = torch.optim.Adam(peer.parameters(), lr=PYG["lr"])
    ours = our_model(train.num_features, variational)
    per_chunk = epochs // chunks
    trainer = Trainer(ours, epochs=per_chunk, lr=our_recipe(variational).lr, progress=False)
    pyg_step(peer, peer_opt, train, variational, 3)  # warm-up (PyG's cached normalisation, allocator)
    trainer.fit(train)
    t_peer = t_ours = 0.0
    for _ in range(chunks):
        t0 = time.perf_counter()
        pyg_step(peer, peer_opt, train, variational, per_chunk)
        t_peer += time.perf_counter() - t0
        trainer.epochs += per_chunk
        t0 = time.perf_counter()
        trainer.fit(train)
        t_ours += time.perf_counter() - t0
    n = per_chunk * chunks
    return 1000 * t_peer / n, 1000 * t_ours / n


def pyg_step(model, optimizer, train, variational: bool, epochs: int) -> None:
    for _ in range(epochs):
        pyg_train_step(model, optimizer, train, variational)


def mean_std(values: list[float], scale: float = 100.0) -> str:
    values = [scale * v for v in values]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {std:.2f}"


def run_dataset(name: str, seeds: list[int], save, reuse_peer: dict | None = None) -> dict:
    """All seeds of one dataset; ``save(results)`` is called after the timing and after every seed.

    ``reuse_peer`` (a previous result of this dataset) supplies PyG's quality runs for the seeds it holds: the
    split is a function of the seed and the peer's recipe is fixed, so its scores are the same; the timing is
    always measured side by side in this run.
    """
    data = load_planetoid(name, root=data_root(),
                          transform=T.NormalizeFeatures())
    results: dict = {"seeds": [], "runs": {}}
    split = link_split(data, seed=seeds[0])
    for variational in (False, True):
        kind = "VGAE" if variational else "GAE"
        results[f"ms-{kind}"] = time_epochs(split, variational)
        print(f"{name} {kind} ms/epoch pyg {results[f'ms-{kind}'][0]:.1f} ours {results[f'ms-{kind}'][1]:.1f}",
              flush=True)
    for seed in seeds:
        split = link_split(data, seed=seed)
        for variational in (False, True):
            kind = "VGAE" if variational else "GAE"
            for side, fn in (("pyg", run_pyg), ("ours", run_ours)):
                previous = _previous_run(reuse_peer, f"{side}-{kind}", seed) if side == "pyg" else None
                res = previous if previous is not None else fn(split, variational, seed)
                results["runs"].setdefault(f"{side}-{kind}", []).append(res)
                print(f"{name} seed {seed} {side:4s} {kind:4s} AUC {100 * res['auc']:.2f} AP {100 * res['ap']:.2f} "
                      f"wall {res['wall']:.1f}s", flush=True)
        results["seeds"].append(seed)
        save(results)
    return results


def _previous_run(results: dict | None, key: str, seed: int) -> dict | None:
    if not results or seed not in results.get("seeds", []):
        return None
    return {**results["runs"][key][results["seeds"].index(seed)], "reused": True}


def render(all_results: dict, cmd: str) -> str:
    rows = []
    for name, res in all_results.items():
        for kind in ("GAE", "VGAE"):
            ms_peer, ms_ours = res[f"ms-{kind}"]
            for side, label, ms in (("pyg", "PyG example", ms_peer), ("ours", "pyg_em", ms_ours)):
                runs = res["runs"][f"{side}-{kind}"]
                walls = statistics.mean(r["wall"] for r in runs)
                epochs = statistics.mean(r["epochs"] for r in runs)
                rows.append([name, kind, label, mean_std([r["auc"] for r in runs]), mean_std([r["ap"] for r in runs]),
                             f"{ms:.1f}", f"{walls:.1f} s / {epochs:.0f} ep", len(runs)])
    timing_cmds = sorted({res["timing_command"] for res in all_results.values() if "timing_command" in res})
    table = markdown_table(["dataset", "model", "implementation", "test AUC (%)", "test AP (%)",
                            "train ms/epoch", "fit wall per run", "seeds"], rows)
    return "\n".join([
        "## GAE / VGAE link prediction (bench_gae)",
        "",
        *[f"Command: `{c}`  " for c in sorted({res.get("command", cmd) for res in all_results.values()})],
        *([f"ms/epoch columns re-measured with: `{c}` (after the quality runs; same maths)  " for c in timing_cmds]),
        f"Machine: {machine()}",
        "",
        "Same `RandomLinkSplit` per seed for both sides (NormalizeFeatures, val 5 %, test 10 %). PyG: "
        "examples/autoencoder.py (GCN 2·16→16, lr 0.01, 400 epochs, last epoch tested). pyg_em: "
        "`NormalizedPropagationEncoder` / `VariationalNormalizedPropagationEncoder` (linear, row norm 1.8, "
        "one propagation step, no teleport, out 128; VGAE kl_weight 0.1), sampled negatives "
        "excluding training and held-out edges, lr 0.005, "
        "300 epochs via `fit_link_prediction` (Trainer + EarlyStopping on val AUC+AP, restore best), "
        "test evaluated once. ms/epoch: training step only, both sides interleaved on the same split "
        "(seed 0); fit wall: ours includes per-epoch validation, PyG's loop has none."
        + (" PyG's quality runs were reused from the previous run of this suite (`--reuse-peer`: the same "
           "seeded splits and the same peer recipe give the same scores); the ms/epoch columns are from this run."
           if any(r.get("reused") for res in all_results.values() for runs in res["runs"].values() for r in runs)
           else ""),
        "",
        table,
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer"])
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of both sides (default: 400 for PyG's example, the recipe's own for ours)")
    parser.add_argument("--timing-only", action="store_true",
                        help="re-measure only the ms/epoch columns of datasets already in gae_runs.json")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch RESULTS.md")
    parser.add_argument("--reuse-peer", action="store_true",
                        help="take PyG's quality runs of seeds already in gae_runs.json (same splits, same recipe)")
    args = parser.parse_args(argv)
    if args.epochs is not None:
        PYG["epochs"] = OURS["epochs"] = args.epochs
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    cmd = "PYTHONPATH=$PWD OMP_NUM_THREADS=1 python -m benchmarks.bench_gae " + " ".join(argv or [])

    def save(name: str, results: dict) -> None:
        all_results = json.loads(RUNS.read_text()) if RUNS.exists() else {}  # merge with a concurrent run
        results.setdefault("command", cmd.strip())
        all_results[name] = results
        text = render({k: v for k, v in all_results.items() if v.get("seeds")}, cmd.strip())
        if not args.no_write:
            RUNS.write_text(json.dumps(all_results, indent=1))
            write_section("gae", text)
        print(text, flush=True)

    for name in args.datasets:
        if args.timing_only:
            results = json.loads(RUNS.read_text())[name]
            data = load_planetoid(name, root=data_root(),
                                  transform=T.NormalizeFeatures())
            split = link_split(data, seed=0)
            for variational, kind in ((False, "GAE"), (True, "VGAE")):
                results[f"ms-{kind}"] = time_epochs(split, variational)
                print(f"{name} {kind} ms/epoch pyg {results[f'ms-{kind}'][0]:.1f} ours {results[f'ms-{kind}'][1]:.1f}",
                      flush=True)
            results["timing_command"] = cmd.strip()
            save(name, results)
            continue
        previous = json.loads(RUNS.read_text()).get(name) if args.reuse_peer and RUNS.exists() else None
        run_dataset(name, list(range(args.seeds)), lambda results, name=name: save(name, results), previous)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])

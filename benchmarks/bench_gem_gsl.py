"""Graph structure learning for a GNN: GEM reweights a corrupted Cora graph, trained jointly with a GCN.

Cora with 50 % extra random edges. Three GCNs (2 layers, 16 hidden, dropout 0.5, Adam lr 0.01, weight decay 5e-4,
the Kipf & Welling recipe) on the public split: on the clean graph, on the corrupted graph, and on the corrupted
graph with edge weights from a :class:`~pyg_em.em.GEMGraphLearner` (2 unrolled EM layers on the 32 leading
principal components of the features) whose parameters receive the classification loss through
``loss.backward()``. Test accuracy at the best validation epoch, mean ± std over seeds.

    PYTHONPATH=$PWD python -m benchmarks.bench_gem_gsl --seeds 10   # writes the 'gem-gsl' section
    PYTHONPATH=$PWD python -m benchmarks.bench_gem_gsl --seeds 1 --epochs 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv
from torch_geometric.utils import coalesce, to_undirected

from benchmarks._report import markdown_table, run_line, write_section

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "shared", "data",
                      "planetoid")


class GCN(torch.nn.Module):
    def __init__(self, num_features: int, num_classes: int, hidden: int = 16):
        super().__init__()
        self.conv1, self.conv2 = GCNConv(num_features, hidden), GCNConv(hidden, num_classes)

    def forward(self, x, edge_index, edge_weight=None):
        x = F.dropout(x, 0.5, self.training)
        x = F.relu(self.conv1(x, edge_index, edge_weight))
        return self.conv2(F.dropout(x, 0.5, self.training), edge_index, edge_weight)


def corrupt(edge_index: torch.Tensor, num_nodes: int, fraction: float, seed: int) -> torch.Tensor:
    """Add ``fraction`` x |E| random undirected edges (no self loops), both directions."""
    gen = torch.Generator().manual_seed(seed)
    extra = int(fraction * edge_index.size(1) / 2)
    pairs = torch.randint(0, num_nodes, (2, extra * 2), generator=gen)
    pairs = pairs[:, pairs[0] != pairs[1]][:, :extra]
    return coalesce(to_undirected(torch.cat([edge_index, pairs], dim=1)), num_nodes=num_nodes)


def signals(x: torch.Tensor, dim: int = 32) -> torch.Tensor:
    """Centred features on their ``dim`` leading principal directions, each scaled to unit variance."""
    x = x.double() - x.double().mean(0)
    _, _, v = torch.pca_lowrank(x, q=dim, center=False)
    x = x @ v
    return x / x.std(0)


def train(data, edge_index, seed: int, epochs: int, learner=None, x_signals=None) -> tuple[float, float]:
    """Train a GCN (and the GEM learner) and return (test accuracy at the best validation epoch, seconds)."""
    from pyg_em.em import GEMGraphLearner  # noqa: F401  (type of learner)

    torch.manual_seed(seed)
    model = GCN(data.num_features, int(data.y.max()) + 1)
    params = [{"params": model.parameters(), "weight_decay": 5e-4}]
    if learner is not None:
        params.append({"params": learner.parameters(), "weight_decay": 0.0})
    optimizer = torch.optim.Adam(params, lr=0.01)
    generator = torch.Generator().manual_seed(seed)
    best_val, best_test, start = -1.0, 0.0, time.perf_counter()
    for _ in range(epochs):
        model.train()
        optimizer.zero_grad()
        weight = None
        if learner is not None:
            weight, _ = learner(x_signals, generator=generator)
            weight = weight.float()
            edges = learner.edge_index
        else:
            edges = edge_index
        out = model(data.x, edges, weight)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():  # evaluated with this step's GEM weights (saves one GEM forward per epoch)
            pred = model(data.x, edges, None if weight is None else weight.detach()).argmax(1)
        val = float((pred[data.val_mask] == data.y[data.val_mask]).float().mean())
        if val > best_val:
            best_val, best_test = val, float((pred[data.test_mask] == data.y[data.test_mask]).float().mean())
    return best_test, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--layers", type=int, default=2)
    args, _ = parser.parse_known_args()
    from pyg_em.datasets import load_planetoid
    from pyg_em.em import GEMGraphLearner, GEMUnrolledEM

    torch.set_num_threads(1)
    data = load_planetoid("Cora", root=os.environ.get("PYG_EM_DATA", SHARED))
    corrupted = corrupt(data.edge_index, data.num_nodes, 0.5, seed=12345)
    x_signals = signals(data.x)
    results: dict[str, list[float]] = {"clean graph": [], "corrupted graph": [], "corrupted + GEM (joint)": []}
    seconds: dict[str, list[float]] = {k: [] for k in results}
    for seed in range(args.seeds):
        for name, edges in (("clean graph", data.edge_index), ("corrupted graph", corrupted)):
            acc, s = train(data, edges, seed, args.epochs)
            results[name].append(acc)
            seconds[name].append(s)
        learner = GEMGraphLearner(corrupted, data.num_nodes, layer=GEMUnrolledEM(num_layers=args.layers, eps=0.1))
        acc, s = train(data, corrupted, seed, args.epochs, learner=learner.double(), x_signals=x_signals)
        results["corrupted + GEM (joint)"].append(acc)
        seconds["corrupted + GEM (joint)"].append(s)
        print(seed, {k: v[-1] for k, v in results.items()}, flush=True)
    rows = [[name, f"{statistics.mean(v) * 100:.2f} ± {statistics.stdev(v) * 100 if len(v) > 1 else 0.0:.2f}",
             f"{statistics.mean(seconds[name]):.1f}"] for name, v in results.items()]
    table = markdown_table(["GCN on", f"test accuracy % ({args.seeds} seeds)", "train s per seed"], rows)
    print(table)
    text = "\n\n".join([
        "## GEM as graph-structure learning for a GCN (`benchmarks/bench_gem_gsl.py`)",
        run_line(),
        f"Cora (public split), {corrupted.size(1) // 2 - data.edge_index.size(1) // 2} random edges added to its "
        f"{data.edge_index.size(1) // 2} (50 %). GCN 2x16, dropout 0.5, Adam lr 0.01, wd 5e-4, {args.epochs} "
        f"epochs, test accuracy at the best validation epoch. GEM: `GEMGraphLearner` on the corrupted graph, "
        f"`GEMUnrolledEM(num_layers={args.layers}, eps=0.1)` (other settings default: logdet='auto' is Hutchinson "
        "here, N=2708), signals = 32 standardised principal components of the features, theta trained jointly "
        "with the GCN by the classification loss (no weight decay on theta).",
        table,
    ])
    if args.seeds >= 3:
        write_section("gem-gsl", text)


if __name__ == "__main__":
    main()

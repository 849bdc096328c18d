"""The ``pyg-em`` command.

``pyg-em run METHOD --dataset ...`` applies a recipe (:mod:`pyg_em.recipes`: the benchmarked default, or
``--recipe paper``) to any graph, prints its metrics and, with ``--out DIR``, writes the clusters
(``assignments.csv``), the embedding (``embedding.npy``), the model (``model.pt``), ``report.json`` and PNG
plots. ``pyg-em predict --model DIR/model.pt --dataset ...`` assigns the nodes of a graph with a saved model,
without retraining. ``pyg-em run --list-recipes`` lists the recipes; ``pyg-em bench <suite>`` runs benchmark
suites from a source checkout. Mistakes a user can fix (unknown names, missing or malformed files, bad
settings) exit with status 2 and a one-line message, never a traceback; Ctrl-C exits with 130.

Settings come from, in increasing priority: the recipe's defaults, the TOML file of ``--config``, ``--set
KEY=VALUE`` flags, and the dedicated flags (``--epochs``, ``--batch-size``). A config file looks like::

    dataset = "cora"        # top level: the command-line options (dashes written as underscores)
    seed = 1
    recipe = "default"      # or "paper"

    [plots]                 # report figures
    embedding = "tsne"      # "pca" (default), "tsne" or "none"

    [vgae]                  # one table per method: that recipe's own settings
    kl_weight = 0.2
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["main", "build_parser", "UsageError", "resolve_settings", "find_benchmarks"]

#: Top-level settings of ``pyg-em run`` with their defaults; the defaults' types are enforced for config files.
RUN_DEFAULTS: dict[str, Any] = {
    "dataset": "sbm",
    "root": None,
    "features": None,
    "labels": None,
    "recipe": "default",
    "seed": 0,
    "device": None,
    "n_clusters": None,
    "out": None,
    "progress": None,
    "deterministic": False,
    "checkpoint_dir": None,
    "resume": False,
}
_TYPES: dict[str, type] = {"dataset": str, "root": str, "features": str, "labels": str, "recipe": str, "seed": int,
                           "device": str, "n_clusters": int, "out": str, "progress": bool, "deterministic": bool,
                           "checkpoint_dir": str, "resume": bool}
#: Methods whose training writes per-epoch checkpoints (``--checkpoint-dir``) and resumes from them (``--resume``).
CHECKPOINTING_METHODS = ("daegc",)
#: Flags that set a recipe setting (``--epochs`` sets the recipe's own epoch count).
RECIPE_FLAGS = ("epochs", "batch_size")
PLOT_DEFAULTS: dict[str, Any] = {"embedding": "pca", "max_points": 5000, "dpi": 100}
PLOT_EMBEDDINGS = ("pca", "tsne", "none")
MAX_SEED = 2**63 - 1


class UsageError(Exception):
    """A mistake the user can fix; printed without a traceback and exits with status 2."""


def _dataset_help() -> str:
    from pyg_em.datasets import describe_dataset_spec

    return describe_dataset_spec()


def _add_data_arguments(parser: argparse.ArgumentParser, out_help: str) -> None:
    parser.add_argument("--dataset", help=f"the graph: {_dataset_help()} (default: sbm)")
    parser.add_argument("--root", help="data root of the Planetoid / torch_geometric datasets (default: $PYG_EM_DATA)")
    parser.add_argument("--features", help="node features of an edge list: .npy/.pt (row i = node i) or CSV "
                                           "'node_id,f1,f2,...'")
    parser.add_argument("--labels", help="node labels of an edge list: CSV 'node_id,label' or .npy/.pt")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: auto)")
    parser.add_argument("--out", help=out_help)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show progress bars (default: only on a terminal)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pyg-em`` (``run``, ``predict``, ``bench``)."""
    from pyg_em.recipes import RECIPES

    parser = argparse.ArgumentParser(prog="pyg-em", description="Run pyg_em methods on graph datasets.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train/evaluate one method on a graph, write its clusters and a report",
                         description="Apply a recipe to a graph; settings: recipe defaults < --config file < "
                                     "--set < flags.")
    run.add_argument("method", nargs="?", help=f"one of: {', '.join(RECIPES)}")
    run.add_argument("--list-recipes", action="store_true", help="list the recipes of every method and exit")
    run.add_argument("--recipe", help="recipe variant: 'default' (best benchmarked) or 'paper' (default: default)")
    _add_data_arguments(run, "folder for the results (assignments.csv, embedding.npy, model.pt, report.json, "
                             "test_scores.csv for gae/vgae, plots)")
    run.add_argument("--epochs", type=int, help="training epochs (GEM: EM layers; recipe default if omitted)")
    run.add_argument("--seed", type=int, help="random seed (default: 0)")
    run.add_argument("--batch-size", type=int, help="switch to mini-batch training with this many seeds per batch")
    run.add_argument("--n-clusters", type=int, help="number of clusters (default: number of classes)")
    run.add_argument("--config", help="TOML file with settings (flags given here override it)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="set one recipe setting, VALUE in TOML syntax (e.g. --set lr=0.01 --set "
                          "hidden_channels=[64]); repeatable")
    run.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=None,
                     help="deterministic algorithms for bit-identical reruns (slower)")
    run.add_argument("--embedding", choices=PLOT_EMBEDDINGS, help="2-D projection for embedding.png (default: pca)")
    run.add_argument("--checkpoint-dir", help="write an atomic checkpoint of each training phase after every epoch "
                                              f"into this folder ({', '.join(CHECKPOINTING_METHODS)})")
    run.add_argument("--resume", action="store_true", default=None,
                     help="continue a killed run from --checkpoint-dir (same command and settings)")
    predict = sub.add_parser("predict", help="assign the nodes of a graph with a saved model (no retraining)")
    predict.add_argument("--model", required=True, help="a model.pt written by `pyg-em run ... --out DIR`")
    _add_data_arguments(predict, "folder for assignments.csv, embedding.npy and report.json")
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
    from pyg_em.recipes import ConfigError, check_setting

    try:
        return check_setting(f"{where}{key}", value, expected)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _validate_file(file: dict[str, Any], method_names: list[str]) -> None:
    """Reject unknown top-level keys and wrongly typed values, naming the key."""
    known = [*RUN_DEFAULTS, *RECIPE_FLAGS, "plots", *method_names]
    for key, value in file.items():
        if key in RUN_DEFAULTS:
            _check_type("--config: ", key, value, _TYPES[key])
        elif key in RECIPE_FLAGS:
            _check_type("--config: ", key, value, int)
        elif key == "plots" or key in method_names:
            if not isinstance(value, dict):
                raise UsageError(f"--config: {key!r} must be a table ([{key}]), got {value!r}")
        else:
            raise UsageError(f"--config: unknown top-level key {key!r}; known keys: {', '.join(known)} "
                             f"(a method's own settings go in its table, e.g. [{method_names[0]}])")
    for key, value in file.get("plots", {}).items():
        if key not in PLOT_DEFAULTS:
            raise UsageError(f"--config: unknown key {key!r} in [plots]; known: {', '.join(PLOT_DEFAULTS)}")
        _check_type("--config: [plots] ", key, value, type(PLOT_DEFAULTS[key]))


def _parse_set(items: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. --set lr=0.01")
        try:
            values[key.strip()] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            values[key.strip()] = text  # a bare word is a string: --set encoder=gcn
    return values


def resolve_settings(args: argparse.Namespace, method_names: list[str]) -> tuple[dict, dict, dict]:
    """Merge defaults, the ``--config`` file and the flags; returns ``(run, plots, recipe_overrides)``."""
    file = _load_config(args.config)
    _validate_file(file, method_names)
    run = dict(RUN_DEFAULTS)
    run.update({k: v for k, v in file.items() if k in RUN_DEFAULTS})
    run.update({k: getattr(args, k) for k in RUN_DEFAULTS if getattr(args, k, None) is not None})
    plots = {**PLOT_DEFAULTS, **file.get("plots", {})}
    if args.embedding is not None:
        plots["embedding"] = args.embedding
    overrides = dict(file.get(args.method, {}))
    overrides.update({k: file[k] for k in RECIPE_FLAGS if k in file})
    overrides.update(_parse_set(args.set))
    overrides.update({k: getattr(args, k) for k in RECIPE_FLAGS if getattr(args, k) is not None})
    _check_values(run, plots)
    return run, plots, overrides


def _check_values(run: dict[str, Any], plots: dict[str, Any]) -> None:
    if run["n_clusters"] is not None and run["n_clusters"] < 1:
        raise UsageError(f"--n-clusters must be a positive integer, got {run['n_clusters']}")
    if not 0 <= run["seed"] <= MAX_SEED:
        raise UsageError(f"--seed must be an integer in [0, 2^63 - 1], got {run['seed']}")
    if plots["embedding"] not in PLOT_EMBEDDINGS:
        raise UsageError(f"[plots] embedding must be one of {', '.join(PLOT_EMBEDDINGS)}, "
                         f"got {plots['embedding']!r}")
    for name in ("max_points", "dpi"):
        if plots[name] < 1:
            raise UsageError(f"[plots] {name} must be a positive integer, got {plots[name]}")
    _check_output_folder(run["out"])
    _check_device(run["device"])


def _check_device(device: str | None) -> None:
    if device is None:
        return
    from pyg_em.train import select_device

    try:
        chosen = select_device(device)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise UsageError(f"--device {device!r}: {exc}") from exc
    if chosen.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {device!r}: pyg_em runs on cpu or cuda, not {chosen.type}")


def _check_output_folder(out: str | None) -> None:
    """Fail before a long run, not after it: the folder must be writable and its file names free."""
    if out is None:
        return
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".pyg-em-probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise UsageError(f"--out {out!r}: cannot write into the folder ({exc.strerror or exc})") from exc
    for name in _OUTPUT_FILES:
        if (folder / name).is_dir():
            raise UsageError(f"--out {out!r}: {name} exists there as a folder; remove it or choose another --out")


_OUTPUT_FILES = ("report.json", "assignments.csv", "embedding.npy", "model.pt", "test_scores.csv", "losses.png",
                 "embedding.png", "confusion.png")


# -- loading -------------------------------------------------------------------------------------------------
class _Stages:
    """A tqdm bar over the phases of a run (load, fit, report); the recipes draw their own epoch bars below it."""

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


def _load_graph(run: dict[str, Any]):
    from pyg_em.datasets import load_graph

    try:
        return load_graph(run["dataset"], root=run["root"], features=run["features"], labels=run["labels"],
                          seed=run["seed"])
    except FileNotFoundError as exc:
        hint = "pass --root DIR or set PYG_EM_DATA=DIR; nothing is downloaded (sbm and karate need no files)"
        raise UsageError(f"--dataset {run['dataset']}: {exc}; {hint}") from exc
    except (ValueError, OSError) as exc:  # malformed files, unreadable files, an unwritable cache
        raise UsageError(str(exc)) from exc


def _describe(data) -> dict[str, int]:
    info = {"num_nodes": int(data.num_nodes), "num_edges": int(data.edge_index.size(1))}
    if getattr(data, "x", None) is not None:
        info["num_features"] = int(data.x.size(1))
    y = getattr(data, "y", None)
    if y is not None and (y >= 0).any():
        info["num_classes"] = int(y.max()) + 1
    return info


# -- pyg-em run ----------------------------------------------------------------------------------------------
def _list_recipes() -> int:
    from pyg_em.recipes import list_recipes

    rows = list_recipes()
    width = max(len(f"{m} --recipe {n}") for m, n, _ in rows)
    for method, name, text in rows:
        print(f"{f'{method} --recipe {name}':<{width}}  {text}")
    return 0


def _build_recipe(method: str, run: dict[str, Any], overrides: dict[str, Any]):
    from pyg_em.recipes import ConfigError, get_recipe

    try:
        recipe = get_recipe(method, run["recipe"])
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    epochs_key = getattr(recipe, "epochs_setting", "epochs")
    if "epochs" in overrides and epochs_key != "epochs":
        overrides[epochs_key] = overrides.pop("epochs")
    settings = recipe.settings()
    for flag in RECIPE_FLAGS:
        if flag in overrides and flag not in settings:
            raise UsageError(f"--{flag.replace('_', '-')} (or {flag} in --config): {method} has no such setting "
                             f"(its settings: {', '.join(settings)})")
    try:
        return recipe.with_settings(overrides)
    except ConfigError as exc:
        raise UsageError(f"--config/--set: {exc}") from exc


def _run(args: argparse.Namespace) -> int:
    from pyg_em.recipes import RECIPES
    from pyg_em.train import init_distributed, seed_everything, share_across_local_ranks, shutdown_distributed

    # Under torchrun: one process group (gloo on CPU, nccl on CUDA), one copy of the graph per host, data-parallel
    # training through the Trainer; rank 0 alone prints the summary and writes the report and artifacts.
    rank, world = init_distributed(device=_launch_device(getattr(args, "device", None)))

    if args.list_recipes:
        return _list_recipes()
    if args.method is None:
        raise UsageError(f"name a method: pyg-em run METHOD; one of: {', '.join(RECIPES)} (or --list-recipes)")
    if args.method not in RECIPES:
        raise UsageError(f"unknown method {args.method!r}; choose one of: {', '.join(RECIPES)}")
    run, plots, overrides = resolve_settings(args, list(RECIPES))
    if world > 1 and run["device"] in (None, "auto"):
        run["device"] = _launch_device(None)  # each rank its own GPU (LOCAL_RANK), or the CPU
    recipe = _build_recipe(args.method, run, overrides)
    checkpoints = _checkpoint_arguments(args.method, run)
    progress = (run["progress"] if run["progress"] is not None else sys.stderr.isatty()) and rank == 0
    stages = _Stages(["load", args.method, "report"], progress)
    timings: dict[str, float] = {}
    wall = time.perf_counter()
    try:
        start = stages.start(f"loading {run['dataset']}")
        seed_everything(run["seed"], deterministic=run["deterministic"])
        graph = share_across_local_ranks(lambda: _load_graph(run))
        timings["load_s"] = time.perf_counter() - start
        stages.done()
        info = _describe(graph.data)
        if rank == 0:
            stages.bar.write(f"pyg-em run {args.method} ({recipe.name} recipe) on {run['dataset']}"
                             + (f" ({world} ranks)" if world > 1 else "") + ": "
                             + ", ".join(f"{v} {k[4:]}" for k, v in info.items()), file=sys.stdout)
            for note in graph.notes:
                stages.bar.write(f"note: {note}", file=sys.stdout)
        sys.stdout.flush()  # a pipe reader sees that training has started
        start = stages.start(f"running {args.method}")
        try:
            result = recipe.run(graph.data, n_clusters=run["n_clusters"], seed=run["seed"], device=run["device"],
                                progress=progress, **checkpoints)
        except FloatingPointError as exc:  # the trainer's divergence report: epoch, last finite loss, a hint
            raise UsageError(f"{args.method}: training diverged: {exc}") from exc
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{args.method}: {exc}") from exc
        timings["run_s"] = time.perf_counter() - start
        recipe = result.recipe or recipe  # 'auto' settings resolved from the data: the values actually used
        stages.done()
        if "num_classes" not in info:
            result.notes.append("the graph has no labels: unsupervised metrics only, no confusion matrix")
        written: dict[str, Path] = {}
        if run["out"] is not None and rank == 0:
            start = stages.start("writing results")
            timings["wall_s"] = time.perf_counter() - wall  # so far; the final figure is printed below
            written = _write_outputs(Path(run["out"]), args, run, plots, recipe, graph, info, result, timings)
            timings["write_s"] = time.perf_counter() - start
        stages.done()
    finally:
        stages.close()
    timings["wall_s"] = time.perf_counter() - wall
    if rank == 0:
        _print_summary(result, timings)
        for name, path in written.items():
            print(f"{name}: {path}")
    if world > 1:
        shutdown_distributed()
    return 0


def _checkpoint_arguments(method: str, run: dict[str, Any]) -> dict[str, Any]:
    """``checkpoint_dir``/``resume`` for :meth:`Recipe.run` of a checkpointing method (nothing otherwise)."""
    if run["checkpoint_dir"] is None:
        if run["resume"]:
            raise UsageError("--resume needs --checkpoint-dir, the folder the killed run wrote its checkpoints to")
        return {}
    if method not in CHECKPOINTING_METHODS:
        raise UsageError(f"--checkpoint-dir: {method} does not checkpoint its training (only "
                         f"{', '.join(CHECKPOINTING_METHODS)} does); drop the flag")
    folder = Path(run["checkpoint_dir"])
    if run["resume"] and not folder.is_dir():
        raise UsageError(f"--resume: --checkpoint-dir {str(folder)!r} does not exist; run once without --resume")
    folder.mkdir(parents=True, exist_ok=True)
    return {"checkpoint_dir": folder, "resume": bool(run["resume"])}


def _launch_device(device: str | None) -> str:
    """This rank's device: ``device`` when given, else ``cuda:LOCAL_RANK`` when CUDA is present, else the CPU."""
    import torch

    if device not in (None, "auto"):
        return device
    return f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if torch.cuda.is_available() else "cpu"


def _print_summary(result, timings: dict[str, float]) -> None:
    from pyg_em.report import format_table

    print(format_table(result.metrics) if result.metrics else "(no metrics)")
    times = {**timings, **result.timings}
    print("time: " + ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in times.items()), flush=True)
    for note in result.notes:
        print(f"note: {note}")


def _write_outputs(out: Path, args, run, plots, recipe, graph, info, result, timings) -> dict[str, Path]:
    """Write every result into a staging folder next to ``out``, then move each file in: an interrupted run
    never leaves a new plot beside the previous run's report."""
    from pyg_em.recipes import save_model
    from pyg_em.report import library_versions, write_assignments, write_link_scores, write_plots, write_report

    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent if out.parent.exists() else None))
    try:
        files: dict[str, Path] = {}
        if result.labels is not None:
            files["assignments"] = write_assignments(staging / "assignments.csv", result.labels, result.proba,
                                                     graph.node_ids)
        if result.embedding is not None:
            files["embedding"] = _save_npy(staging / "embedding.npy", result.embedding)
        if result.model is not None and result.labels is not None:
            in_channels = graph.data.num_features
            n_clusters = int(result.proba.size(1)) if result.proba is not None else None
            files["model"] = save_model(staging / "model.pt", recipe, result.model, in_channels, n_clusters)
        if result.link_scores is not None:
            files["test_scores"] = write_link_scores(staging / "test_scores.csv", result.link_scores, graph.node_ids)
        truth = getattr(graph.data, "y", None) if "num_classes" in info else None
        embedding = result.embedding if plots["embedding"] != "none" else None
        plots_written = write_plots(staging, history=result.history, labels=result.labels, embedding=embedding,
                                    truth=truth, embedding_method=plots["embedding"] if embedding is not None
                                    else "pca", seed=run["seed"], max_points=plots["max_points"], dpi=plots["dpi"],
                                    x_label=result.x_label, marks=_marks(result))
        files.update({f"plot ({k})": v for k, v in plots_written.items()})
        report = {
            "run_id": run_id,
            "command": "pyg-em " + " ".join(args.argv),
            "method": args.method,
            "recipe": recipe.name,
            "dataset": run["dataset"],
            "source": graph.source,
            "config": {**_resolved(run, graph, result), "plots": plots, args.method: recipe.settings()},
            "config_file": args.config,
            "data": info,
            "notes": [*graph.notes, *result.notes],
            "metrics": result.metrics,
            "selected_epoch": result.selected_epoch,
            "timings": {**timings, **result.timings},
            "history": result.history,
            "files": {name: path.name for name, path in files.items()},
            "versions": library_versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        files["report"] = write_report(staging / "report.json", report)
        moved = {}
        for name, path in files.items():
            target = out / path.name
            os.replace(path, target)
            moved[name] = target
        return moved
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _resolved(run: dict[str, Any], graph, result) -> dict[str, Any]:
    """The run settings with the values actually used where the user left a default (data root, device)."""
    resolved = dict(run)
    if resolved["root"] is None and graph.source not in ("", run["dataset"]) and not Path(run["dataset"]).is_file():
        resolved["root"] = graph.source
    if resolved["device"] is None:
        parameter = next(result.model.parameters(), None) if result.model is not None else None
        resolved["device"] = str(parameter.device) if parameter is not None else "cpu"
    return resolved


def _marks(result) -> dict[str, float]:
    return {} if result.selected_epoch is None else {"selected epoch": result.selected_epoch + 1}


def _save_npy(path: Path, tensor) -> Path:
    import numpy as np

    with open(path, "wb") as handle:
        np.save(handle, tensor.detach().cpu().numpy())
    return path


# -- pyg-em predict ------------------------------------------------------------------------------------------
def _predict(args: argparse.Namespace) -> int:
    from pyg_em.recipes import clustering_report, load_model
    from pyg_em.report import format_table, write_assignments, write_report

    model_path = Path(args.model)
    if not model_path.is_file():
        raise UsageError(f"--model {args.model!r}: no such file (write one with `pyg-em run METHOD --out DIR`)")
    _check_output_folder(args.out)
    _check_device(args.device)
    try:
        recipe, model, record = load_model(model_path)
    except (ValueError, OSError, RuntimeError) as exc:
        raise UsageError(f"--model {args.model!r}: {exc}") from exc
    run = {**RUN_DEFAULTS, **{k: getattr(args, k) for k in ("dataset", "root", "features", "labels")
                              if getattr(args, k) is not None}}
    graph = _load_graph(run)
    data = graph.data
    if getattr(data, "x", None) is None or data.num_features != record["in_channels"]:
        got = None if getattr(data, "x", None) is None else data.num_features
        raise UsageError(f"--dataset {run['dataset']}: the model was trained on {record['in_channels']} node "
                         f"features, this graph has {got}; give the same kind of features (--features)")
    if args.device is not None:
        from pyg_em.train import select_device

        model = model.to(select_device(args.device))
    labels, proba, embedding = recipe.assign(model, data)
    metrics = clustering_report(data, labels, embedding)
    print(format_table(metrics))
    if args.out is not None:
        out = Path(args.out)
        path = write_assignments(out / "assignments.csv", labels, proba, graph.node_ids)
        _save_npy(out / "embedding.npy", embedding)
        write_report(out / "report.json", {"command": "pyg-em " + " ".join(args.argv), "model": str(model_path),
                                           "method": record["method"], "recipe": record["recipe"],
                                           "dataset": run["dataset"], "notes": graph.notes, "metrics": metrics})
        print(f"assignments: {path}")
    return 0


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


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``pyg-em``; returns the exit status (0 ok, 2 usage error, 130 interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    previous = _on_sigterm(_terminate)  # SIGTERM exits as cleanly as Ctrl-C
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = argv
        if args.command == "run":
            return _run(args)
        if args.command == "predict":
            return _predict(args)
        if args.command == "bench":
            return _bench(args)
    except UsageError as exc:
        print(f"pyg-em: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pyg-em: interrupted", file=sys.stderr)
        return 130
    finally:
        _on_sigterm(previous)
    return 0


def _on_sigterm(handler: Any) -> Any:
    """Install ``handler`` for SIGTERM (main thread only); returns the previous handler."""
    import threading

    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

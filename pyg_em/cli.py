"""The ``pyg-em`` command: ``pyg-em run <method> --dataset ...`` prints a metrics table and writes a report."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["main", "build_parser"]


class UsageError(Exception):
    """A mistake the user can fix; printed without a traceback and exits with status 2."""


def build_parser() -> argparse.ArgumentParser:
    from pyg_em.datasets import DATASETS
    from pyg_em.runs import RUNNERS

    parser = argparse.ArgumentParser(prog="pyg-em", description="Run pyg_em methods on graph datasets.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train/evaluate one method and print its metrics")
    run.add_argument("method", help=f"one of: {', '.join(RUNNERS)}")
    run.add_argument("--dataset", default="sbm", help=f"one of: {', '.join(DATASETS)} (default: sbm)")
    run.add_argument("--root", default=None, help="Planetoid data root (default: $PYG_EM_DATA)")
    run.add_argument("--epochs", type=int, default=None, help="training epochs (method default if omitted)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default=None, help="cpu, cuda, or auto (default)")
    run.add_argument("--batch-size", type=int, default=None, help="switch to mini-batch training")
    run.add_argument("--n-clusters", type=int, default=None, help="number of clusters (default: #classes)")
    run.add_argument("--config", default=None, help="TOML file with method settings")
    run.add_argument("--out", default=None, help="folder for report.json")
    return parser


def _load_config(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--config: file {path!r} does not exist")
    try:
        return tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config: {path!r} is not valid TOML: {exc}") from exc


def _format_table(metrics: dict[str, float]) -> str:
    width = max(len(k) for k in metrics) if metrics else 6
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    lines += [f"{k:<{width}}  {v:.4f}" for k, v in metrics.items()]
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    import numpy
    import scipy
    import sklearn
    import torch
    import torch_geometric

    import pyg_em

    return {"python": platform.python_version(), "pyg_em": pyg_em.__version__, "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "scikit-learn": sklearn.__version__}


def _run(args: argparse.Namespace) -> int:
    from pyg_em.datasets import DATASETS, load_dataset
    from pyg_em.runs import RUNNERS, RunConfig
    from pyg_em.train import seed_everything

    if args.method not in RUNNERS:
        raise UsageError(f"unknown method {args.method!r}; choose one of: {', '.join(RUNNERS)}")
    if args.dataset.lower() not in DATASETS:
        raise UsageError(f"unknown dataset {args.dataset!r}; choose one of: {', '.join(DATASETS)}")
    for name in ("epochs", "batch_size", "n_clusters"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    extra = _load_config(args.config)
    config = RunConfig(seed=args.seed, epochs=args.epochs, device=args.device, batch_size=args.batch_size,
                       n_clusters=args.n_clusters, extra=extra)
    seed_everything(args.seed)
    try:
        data = load_dataset(args.dataset, root=args.root, seed=args.seed)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    print(f"pyg-em run {args.method} on {args.dataset}: {data.num_nodes} nodes, "
          f"{data.edge_index.size(1)} directed edges", flush=True)
    start = time.perf_counter()
    try:
        result = RUNNERS[args.method](data, config)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{args.method}: {exc}") from exc
    wall = time.perf_counter() - start
    print(_format_table(result.metrics))
    print(f"wall time: {wall:.2f} s")
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report = {"method": args.method, "dataset": args.dataset, "config": vars(args),
                  "metrics": result.metrics, "timings": {"wall_s": wall, **result.timings},
                  "history": result.history, "versions": _versions()}
        (out / "report.json").write_text(json.dumps(report, indent=2))
        print(f"report: {out / 'report.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
    except UsageError as exc:
        print(f"pyg-em: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

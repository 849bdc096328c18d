"""Text and JSON outputs of one run: the metrics table, library versions, ``report.json``."""

from __future__ import annotations

import json
import math
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["format_table", "library_versions", "to_jsonable", "write_report"]


def format_table(values: dict[str, float], header: tuple[str, str] = ("metric", "value")) -> str:
    """A two-column plain-text table, numbers with 4 decimals."""
    rows = [(str(k), f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in values.items()]
    left = max([len(header[0])] + [len(k) for k, _ in rows])
    right = max([len(header[1])] + [len(v) for _, v in rows])
    lines = [f"{header[0]:<{left}}  {header[1]:>{right}}", f"{'-' * left}  {'-' * right}"]
    lines += [f"{k:<{left}}  {v:>{right}}" for k, v in rows]
    return "\n".join(lines)


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a result depends on (plus the CUDA build, when present)."""
    import matplotlib
    import numpy
    import scipy
    import sklearn
    import torch
    import torch_geometric

    # The installed distribution's version: importing the `pyg_em` package here would make the report layer
    # depend on everything the package imports (see the import contracts in pyproject.toml).
    versions = {"python": platform.python_version(), "pyg_em": metadata.version("pyg_em"), "torch": torch.__version__,
                "torch_geometric": torch_geometric.__version__, "numpy": numpy.__version__,
                "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
                "matplotlib": matplotlib.__version__}
    for name in ("torch_scatter", "torch_sparse", "pyg_lib"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # optional extension: absent or broken builds are simply not listed
            pass
    if torch.version.cuda:
        versions["cuda"] = torch.version.cuda
    return versions


def to_jsonable(value: Any) -> Any:
    """Convert tensors, numpy values and paths to JSON types; NaN and infinities become ``None``."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().tolist()
    elif hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_report(path: str | Path, report: dict[str, Any]) -> Path:
    """Write ``report`` as strict, indented JSON (creating the folder); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(report), indent=2, allow_nan=False) + "\n")
    return path

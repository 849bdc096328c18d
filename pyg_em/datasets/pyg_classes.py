"""Any :mod:`torch_geometric.datasets` class by name, read from local raw files and never downloaded.

Spelled ``pyg:Class`` or ``pyg:Class/name``: ``pyg:Amazon/Photo`` is ``Amazon(root, name='Photo')``,
``pyg:WikiCS`` is ``WikiCS(root)``. The raw files are read from ``root`` as PyG lays them out; the processed
files are written into the cache (``$PYG_EM_CACHE``), never beside the source. There is no network here, so
missing raw files fail at once with the list of files expected and where to put them.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch
import torch_geometric.datasets as pyg_datasets
from torch_geometric.data import Data

__all__ = ["PYG_PREFIX", "load_pyg_dataset", "cache_root"]

PYG_PREFIX = "pyg:"


def cache_root() -> Path:
    """The writable cache folder: ``$PYG_EM_CACHE`` or ``~/.cache/pyg_em``."""
    return Path(os.environ.get("PYG_EM_CACHE") or Path.home() / ".cache" / "pyg_em")


def _dataset_class(name: str) -> type:
    cls = getattr(pyg_datasets, name, None)
    if not (inspect.isclass(cls) and hasattr(cls, "raw_file_names")):
        known = sorted(n for n in pyg_datasets.__all__ if hasattr(getattr(pyg_datasets, n), "raw_file_names"))
        raise ValueError(f"--dataset {PYG_PREFIX}{name}: torch_geometric.datasets has no dataset class {name!r}; "
                         f"e.g. {', '.join(known[:12])}, ...")
    return cls


def _offline(cls: type, processed: Path) -> type:
    """A subclass that raises instead of downloading and keeps its processed files in ``processed``."""

    def download(self) -> None:
        missing = [p for p in self.raw_paths if not os.path.exists(p)]
        names = self.raw_file_names if isinstance(self.raw_file_names, (list, tuple)) else [self.raw_file_names]
        raise FileNotFoundError(
            f"{cls.__name__}: raw file(s) missing, and nothing is downloaded here: "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}. Put the files of {cls.__name__} "
            f"({', '.join(map(str, names[:5]))}) in {self.raw_dir}, or pass --root to the folder that holds them")

    return type(f"Offline{cls.__name__}", (cls,), {"download": download,
                                                     "processed_dir": property(lambda self: str(processed))})


def load_pyg_dataset(spec: str, root: str | os.PathLike | None) -> Data:
    """The first graph of ``torch_geometric.datasets.<Class>(root[, name])`` for ``spec = 'pyg:Class[/name]'``.

    Raises:
        ValueError: For an unknown class or a missing ``root``.
        FileNotFoundError: When raw files are missing, naming them and the folder they belong in.
    """
    body = spec[len(PYG_PREFIX):] if spec.startswith(PYG_PREFIX) else spec
    class_name, _, name = body.partition("/")
    cls = _dataset_class(class_name)
    if root is None:
        raise ValueError(f"--dataset {spec}: give --root DIR (the folder holding the dataset's raw files) or set "
                         "PYG_EM_DATA")
    kwargs = {"name": name} if name else {}
    if name and "name" not in inspect.signature(cls.__init__).parameters:
        raise ValueError(f"--dataset {spec}: {class_name} takes no name; use {PYG_PREFIX}{class_name}")
    processed = cache_root() / "pyg" / class_name / (name or "default") / "processed"
    offline = _offline(cls, processed)
    from pyg_em.datasets.files import data_safe_globals

    # PyG reloads its processed file with torch.load(weights_only=True), falling back to full unpickling for
    # its own data classes; allow-listing them keeps that load code-free.
    with torch.serialization.safe_globals(data_safe_globals()):
        return offline(str(root), **kwargs)[0]

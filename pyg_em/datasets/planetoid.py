"""Load Cora / CiteSeer / PubMed from local raw Planetoid files, never writing beside the source."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from torch_geometric.data import Data
from torch_geometric.datasets import Planetoid

__all__ = ["load_planetoid", "planetoid_root", "PLANETOID_NAMES"]

PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
_RAW_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def _canonical(name: str) -> str:
    key = name.lower()
    if key not in PLANETOID_NAMES:
        raise ValueError(f"name must be one of {sorted(PLANETOID_NAMES.values())}, got {name!r}")
    return PLANETOID_NAMES[key]


def planetoid_root(root: str | os.PathLike | None = None) -> Path | None:
    """The data root: ``root`` if given, else ``$PYG_EM_DATA``, else ``None``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("PYG_EM_DATA")
    return Path(env) if env else None


def _raw_files(name: str) -> list[str]:
    return [f"ind.{name.lower()}.{suffix}" for suffix in _RAW_SUFFIXES]


def load_planetoid(
    name: str,
    root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    transform=None,
) -> Data:
    """Load a Planetoid citation graph from raw files on disk (no download).

    The raw files are looked up in ``{root}/{Name}/raw/`` (``root`` defaults to ``$PYG_EM_DATA``), copied into
    ``cache_dir`` (default ``$PYG_EM_CACHE`` or ``~/.cache/pyg_em``), and processed there by PyG's
    :class:`~torch_geometric.datasets.Planetoid`, so nothing is ever written next to the source files.

    Args:
        name (str): ``'Cora'``, ``'CiteSeer'`` or ``'PubMed'`` (case-insensitive).
        root (str or Path, optional): Folder holding ``{Name}/raw/ind.{name}.*``. (default: :obj:`None`)
        cache_dir (str or Path, optional): Writable cache folder. (default: :obj:`None`)
        transform (callable, optional): A PyG transform applied to the loaded graph. (default: :obj:`None`)

    Raises:
        FileNotFoundError: If no root is given or the raw files are missing; the message says where to put them.
    """
    canonical = _canonical(name)
    base = planetoid_root(root)
    if base is None:
        raise FileNotFoundError(
            f"no data root for {canonical}: pass root=... or set PYG_EM_DATA to a folder containing "
            f"{canonical}/raw/{_raw_files(canonical)[0]} (and the other ind.{canonical.lower()}.* files)"
        )
    raw = base / canonical / "raw"
    missing = [f for f in _raw_files(canonical) if not (raw / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"root={str(base)!r}: missing {len(missing)} raw {canonical} file(s) in {str(raw)!r}, e.g. "
            f"{missing[0]!r}. Put the Planetoid files ind.{canonical.lower()}.{{x,tx,allx,y,ty,ally,graph,"
            f"test.index}} there."
        )
    cache = Path(cache_dir or os.environ.get("PYG_EM_CACHE") or Path.home() / ".cache" / "pyg_em") / "planetoid"
    cached_raw = cache / canonical / "raw"
    cached_raw.mkdir(parents=True, exist_ok=True)
    for fname in _raw_files(canonical):
        target = cached_raw / fname
        if not target.is_file() or target.stat().st_size != (raw / fname).stat().st_size:
            shutil.copyfile(raw / fname, target)
            target.chmod(0o644)
    return Planetoid(str(cache), canonical, transform=transform)[0]

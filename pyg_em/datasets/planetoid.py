"""Load Cora / CiteSeer / PubMed from local raw Planetoid files, never writing beside the source.

The raw files are checked before PyG processes them: each is unpickled with an allow-list of the classes the
Planetoid format uses (so a hostile file cannot run code), and the sizes of features, labels, test ids and
the graph must agree. The processed cache is keyed by the source folder and the raw files' content hash, so
another root, or a changed file in the same root, is never served a stale graph.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from torch_geometric.data import Data
from torch_geometric.datasets import Planetoid

__all__ = ["load_planetoid", "planetoid_root", "PLANETOID_NAMES"]

PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
_RAW_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
_STAMP = "source.txt"  # records the source folder and content hash a cache folder was built from

# The globals the Planetoid pickles reference (numpy arrays, scipy CSR matrices, a defaultdict of lists), under
# their Python 2 and 3 module names. Anything else is refused: pickle.load would otherwise run arbitrary code.
_ALLOWED_GLOBALS = {
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("scipy.sparse.csr", "csr_matrix"), ("scipy.sparse._csr", "csr_matrix"),
    ("collections", "defaultdict"), ("__builtin__", "list"), ("builtins", "list"),
    ("__builtin__", "dict"), ("builtins", "dict"), ("__builtin__", "set"), ("builtins", "set"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of the Planetoid format")
        if module.startswith("scipy.sparse"):  # the old private module path is deprecated
            from scipy.sparse import csr_matrix

            return csr_matrix
        return super().find_class(module, name)


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


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise PermissionError(f"cannot read raw file {str(path)!r}: {error.strerror or error}. "
                              "Check its permissions.") from error


def _bad(path: Path, problem: str) -> ValueError:
    return ValueError(f"raw file {str(path)!r} {problem}. Replace it with an intact copy of the Planetoid file.")


def _unpickle(path: Path, blob: bytes) -> Any:
    if not blob:
        raise _bad(path, "is empty")
    try:
        return _RestrictedUnpickler(io.BytesIO(blob), encoding="latin1").load()
    except Exception as error:  # pickle raises many types on garbage: EOFError, UnpicklingError, ValueError...
        raise _bad(path, f"is truncated or not a Planetoid pickle ({type(error).__name__}: {error})") from error


def _matrix(path: Path, blob: bytes) -> tuple[int, int]:
    """Shape of a feature or one-hot label matrix, checked to be 2-D and finite."""
    value = _unpickle(path, blob)
    if not (hasattr(value, "shape") and len(value.shape) == 2):
        raise _bad(path, f"holds {type(value).__name__}, expected a 2-D matrix")
    data = value.data if hasattr(value, "tocsr") else np.asarray(value)
    if not np.issubdtype(np.asarray(data).dtype, np.number) or not np.all(np.isfinite(data)):
        raise _bad(path, "holds non-numeric or non-finite entries")
    return int(value.shape[0]), int(value.shape[1])


def _test_index(path: Path, blob: bytes) -> np.ndarray:
    try:
        lines = [line.strip() for line in blob.decode("ascii").splitlines() if line.strip()]
        ids = np.array([int(line) for line in lines], dtype=np.int64)
    except (UnicodeDecodeError, ValueError) as error:
        raise _bad(path, f"must hold one integer node id per line ({error})") from error
    if ids.size == 0:
        raise _bad(path, "is empty: it must list the test node ids")
    if np.unique(ids).size != ids.size:
        raise _bad(path, "lists some test node ids more than once")
    return ids


def _check_raw(raw: Path, name: str, blobs: dict[str, bytes]) -> None:
    """Check that the eight raw files parse and that their sizes agree; errors name the offending file."""
    prefix = f"ind.{name.lower()}."
    path = {suffix: raw / f"{prefix}{suffix}" for suffix in _RAW_SUFFIXES}
    shapes = {s: _matrix(path[s], blobs[s]) for s in ("x", "tx", "allx", "y", "ty", "ally")}
    for feats, labels in (("x", "y"), ("tx", "ty"), ("allx", "ally")):
        if shapes[feats][0] != shapes[labels][0]:
            raise _bad(path[labels], f"has {shapes[labels][0]} rows but {path[feats].name} has {shapes[feats][0]}")
    for group, kind in ((("x", "tx", "allx"), "features"), (("y", "ty", "ally"), "classes")):
        width = shapes[group[0]][1]
        for suffix in group[1:]:
            if shapes[suffix][1] != width:
                raise _bad(path[suffix], f"has {shapes[suffix][1]} {kind} but {path[group[0]].name} has {width}")
    if shapes["x"][0] > shapes["allx"][0]:
        raise _bad(path["x"], f"has {shapes['x'][0]} rows, more than the {shapes['allx'][0]} of {path['allx'].name}")
    test = _test_index(path["test.index"], blobs["test.index"])
    num_train_pool = shapes["allx"][0]
    # CiteSeer's test ids have gaps (isolated nodes, filled with zero rows by PyG); the others are contiguous.
    span = int(test.max() - test.min()) + 1 if name.lower() == "citeseer" else shapes["tx"][0]
    num_nodes = num_train_pool + span
    if test.size != shapes["tx"][0]:
        raise _bad(path["test.index"], f"lists {test.size} test ids but {path['tx'].name} has {shapes['tx'][0]} rows")
    if test.min() < num_train_pool or test.max() >= num_nodes:
        raise _bad(path["test.index"], f"holds node ids in [{test.min()}, {test.max()}], outside the test range "
                                       f"[{num_train_pool}, {num_nodes}) implied by {path['allx'].name} and "
                                       f"{path['tx'].name}")
    graph = _unpickle(path["graph"], blobs["graph"])
    if not isinstance(graph, dict) or not graph:
        raise _bad(path["graph"], f"holds {type(graph).__name__}, expected a non-empty dict of adjacency lists")
    try:
        ids = np.fromiter((int(v) for key, values in graph.items() for v in (key, *values)), dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as error:
        raise _bad(path["graph"], f"must map node ids to lists of node ids ({error})") from error
    if ids.min() < 0 or ids.max() >= num_nodes:
        raise _bad(path["graph"], f"holds node ids in [{ids.min()}, {ids.max()}] but the features describe "
                                  f"{num_nodes} nodes")


def _cache_base(cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir or os.environ.get("PYG_EM_CACHE") or Path.home() / ".cache" / "pyg_em") / "planetoid"


def _prepare_cache(folder: Path, raw_name: str, stamp: str, blobs: dict[str, bytes], names: list[str]) -> None:
    """(Re)build ``folder`` from the raw bytes unless it was built from exactly this source."""
    stamp_file = folder / _STAMP
    try:
        if stamp_file.is_file() and stamp_file.read_text() == stamp:
            return
        if folder.exists():
            shutil.rmtree(folder)  # a changed source: drop the stale raw copy and processed graph
        cached_raw = folder / raw_name / "raw"
        cached_raw.mkdir(parents=True)
        for suffix, fname in zip(_RAW_SUFFIXES, names):
            (cached_raw / fname).write_bytes(blobs[suffix])
        stamp_file.write_text(stamp)  # written last: an interrupted copy is rebuilt next time
    except OSError as error:
        raise PermissionError(
            f"cannot write the Planetoid cache in {str(folder)!r}: {error.strerror or error}. Pass a writable "
            "cache_dir=... or set PYG_EM_CACHE to a writable folder."
        ) from error


def load_planetoid(
    name: str,
    root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    transform=None,
) -> Data:
    """Load a Planetoid citation graph from raw files on disk (no download).

    The raw files are looked up in ``{root}/{Name}/raw/`` (``root`` defaults to ``$PYG_EM_DATA``), checked,
    copied into ``cache_dir`` (default ``$PYG_EM_CACHE`` or ``~/.cache/pyg_em``), and processed there by PyG's
    :class:`~torch_geometric.datasets.Planetoid`, so nothing is ever written next to the source files.

    The cache folder is keyed by the resolved source folder, and rebuilt whenever the SHA-256 of the raw files
    changes, so a different or edited root is always re-processed.

    Args:
        name (str): ``'Cora'``, ``'CiteSeer'`` or ``'PubMed'`` (case-insensitive).
        root (str or Path, optional): Folder holding ``{Name}/raw/ind.{name}.*``. (default: :obj:`None`)
        cache_dir (str or Path, optional): Writable cache folder. (default: :obj:`None`)
        transform (callable, optional): A PyG transform applied to the loaded graph. (default: :obj:`None`)

    Raises:
        FileNotFoundError: If no root is given or the raw files are missing; the message says where to put them.
        ValueError: If a raw file is empty, truncated, not a Planetoid file, or disagrees in size with the
            others; the message names the file.
        PermissionError: If a raw file cannot be read or the cache cannot be written.
    """
    canonical = _canonical(name)
    base = planetoid_root(root)
    if base is None:
        raise FileNotFoundError(
            f"no data root for {canonical}: pass root=... or set PYG_EM_DATA to a folder containing "
            f"{canonical}/raw/{_raw_files(canonical)[0]} (and the other ind.{canonical.lower()}.* files)"
        )
    raw = base / canonical / "raw"
    names = _raw_files(canonical)
    missing = [f for f in names if not (raw / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"root={str(base)!r}: missing {len(missing)} raw {canonical} file(s) in {str(raw)!r}, e.g. "
            f"{missing[0]!r}. Put the Planetoid files ind.{canonical.lower()}.{{x,tx,allx,y,ty,ally,graph,"
            f"test.index}} there."
        )
    # The bytes are read once: the same bytes are hashed, checked and copied, so the check cannot go stale.
    blobs = {suffix: _read_bytes(raw / fname) for suffix, fname in zip(_RAW_SUFFIXES, names)}
    digest = hashlib.sha256()
    for suffix in _RAW_SUFFIXES:
        digest.update(hashlib.sha256(blobs[suffix]).digest())
    source = str(raw.resolve())
    stamp = f"{source}\n{digest.hexdigest()}\n"
    folder = _cache_base(cache_dir) / f"{canonical}-{hashlib.sha256(source.encode()).hexdigest()[:16]}"
    stamp_file = folder / _STAMP
    if not (stamp_file.is_file() and stamp_file.read_text() == stamp):
        _check_raw(raw, canonical, blobs)
    _prepare_cache(folder, canonical, stamp, blobs, names)
    try:
        data = Planetoid(str(folder), canonical, transform=transform)[0]
    except OSError as error:
        raise PermissionError(f"cannot process {canonical} in the cache {str(folder)!r}: {error}. Pass a writable "
                              "cache_dir=... or set PYG_EM_CACHE to a writable folder.") from error
    _check_loaded(data, raw, canonical)
    return data


def _check_loaded(data: Data, raw: Path, name: str) -> None:
    """The processed graph must agree with itself: as many labels as feature rows, edge ids below that count."""
    num_nodes = data.x.size(0)
    if data.y.size(0) != num_nodes:
        raise ValueError(f"{str(raw)!r}: {data.y.size(0)} labels for {num_nodes} feature rows in {name}'s raw files")
    if data.edge_index.numel() and int(data.edge_index.max()) >= num_nodes:
        raise ValueError(f"{str(raw / f'ind.{name.lower()}.graph')!r} references node {int(data.edge_index.max())} "
                         f"but there are {num_nodes} nodes")

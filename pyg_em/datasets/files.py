"""A user's own graph from files: an edge list (CSV/TSV/whitespace), optional node features and labels, or a
saved :class:`~torch_geometric.data.Data`.

Node ids in an edge list may be any strings or integers; the loaded graph numbers the nodes ``0..N-1`` and
:attr:`LoadedGraph.node_ids` maps each index back to the original id. Every malformed file gets one
:class:`ValueError` naming the file and the line (or column) at fault.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, is_undirected, remove_self_loops, to_undirected

__all__ = ["LoadedGraph", "load_edge_list", "load_saved_data", "EDGE_LIST_SUFFIXES"]

EDGE_LIST_SUFFIXES = (".csv", ".tsv", ".txt", ".edges", ".edgelist", ".el")
_HEADER_WORDS = {"source", "target", "src", "dst", "from", "to", "u", "v", "node1", "node2", "node_1", "node_2",
                 "weight", "w", "id", "node", "i", "j", "head", "tail", "label", "class", "y"}


@dataclass
class LoadedGraph:
    """A graph ready for the methods, with what is needed to write results back in the user's terms.

    Args:
        data (Data): The graph (``x`` when features were given, ``y`` when labels were, ``edge_weight`` when
            the edge list has weights).
        node_ids (list[str], optional): Original id of node ``i``; ``None`` when the ids are ``0..N-1``.
            (default: :obj:`None`)
        class_names (list[str], optional): Original label of class ``c``. (default: :obj:`None`)
        notes (list[str]): What loading changed (e.g. made undirected), for the report. (default: :obj:`[]`)
        source (str): Where the graph came from. (default: :obj:`''`)
    """

    data: Data
    node_ids: list[str] | None = None
    class_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    source: str = ""


def _delimiter(path: Path) -> str | None:
    return {".csv": ",", ".tsv": "\t"}.get(path.suffix.lower())  # None: any whitespace


def _rows(path: Path):
    """``(line number, fields)`` of the non-empty, non-comment lines of a delimited text file."""
    delimiter = _delimiter(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            if delimiter is None:
                for number, line in enumerate(handle, 1):
                    if line.strip() and not line.lstrip().startswith(("#", "%")):
                        yield number, line.split()
            else:
                for number, fields in enumerate(csv.reader(handle, delimiter=delimiter), 1):
                    if fields and any(f.strip() for f in fields) and not fields[0].lstrip().startswith("#"):
                        yield number, [f.strip() for f in fields]
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _is_header(fields: list[str]) -> bool:
    return any(f.strip().lower() in _HEADER_WORDS for f in fields)


def _number(text: str, path: Path, line: int, column: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}, line {line}, column {column}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}, line {line}, column {column}: {what} is {text} (must be finite)")
    return value


def _read_edges(path: Path) -> tuple[list[str], list[str], list[float] | None]:
    src: list[str] = []
    dst: list[str] = []
    weights: list[float] = []
    width = None
    for position, (line, fields) in enumerate(_rows(path)):
        if position == 0 and _is_header(fields):
            continue
        if width is None:
            width = len(fields)
            if width not in (2, 3):
                raise ValueError(f"{path}, line {line}: {width} columns; an edge list has 2 (source, target) or "
                                 "3 (source, target, weight)")
        elif len(fields) != width:
            raise ValueError(f"{path}, line {line}: {len(fields)} columns where the first edge had {width} "
                             "(ragged rows)")
        src.append(fields[0])
        dst.append(fields[1])
        if width == 3:
            weight = _number(fields[2], path, line, 3, "weight")
            if weight < 0:
                raise ValueError(f"{path}, line {line}, column 3: negative weight {fields[2]}; edge weights "
                                 "must be >= 0")
            weights.append(weight)
    if not src:
        raise ValueError(f"{path}: no edges (an edge list has one 'source target [weight]' row per edge)")
    return src, dst, weights if width == 3 else None


def _array_file(path: Path) -> np.ndarray:
    """A matrix from ``.npy`` or ``.pt`` (rows indexed by integer node id)."""
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            array = torch.load(path, map_location="cpu", weights_only=True)
            array = array.numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    except Exception as exc:  # numpy/torch raise many types for a damaged file
        raise ValueError(f"{path}: cannot read it as a {path.suffix} array ({exc})") from None
    return array


def _keyed_rows(path: Path, what: str) -> dict[str, list[str]]:
    """``id -> remaining fields`` of a CSV/TSV/text file whose first column is the node id."""
    rows: dict[str, list[str]] = {}
    width = None
    for position, (line, fields) in enumerate(_rows(path)):
        if position == 0 and _is_header(fields):
            continue
        if len(fields) < 2:
            raise ValueError(f"{path}, line {line}: expected 'node_id, {what}...', got {len(fields)} column(s)")
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise ValueError(f"{path}, line {line}: {len(fields)} columns where the first row had {width} "
                             "(ragged rows)")
        if fields[0] in rows:
            raise ValueError(f"{path}, line {line}: node {fields[0]!r} appears twice")
        rows[fields[0]] = fields[1:]
    if not rows:
        raise ValueError(f"{path}: empty ({what} file with one row per node expected)")
    return rows


def _index_nodes(src: list[str], dst: list[str], extra: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for name in (*src, *dst, *extra):
        if name not in index:
            index[name] = len(index)
    return index


def _integer_ids(names: list[str]) -> list[int] | None:
    try:
        ids = [int(n) for n in names]
    except ValueError:
        return None
    return ids if all(i >= 0 for i in ids) else None


def _features(path: Path, index: dict[str, int], by_integer: bool) -> torch.Tensor:
    if path.suffix.lower() in (".npy", ".pt"):
        array = _array_file(path)
        if array.ndim != 2:
            raise ValueError(f"{path}: features must be a 2-D array (nodes x features), got shape {array.shape}")
        if not by_integer:
            raise ValueError(f"{path}: a {path.suffix} feature matrix is indexed by integer node id, but the edge "
                             "list has non-integer ids; give the features as CSV with the node id first")
        largest = max(int(n) for n in index)
        if array.shape[0] <= largest:
            raise ValueError(f"{path}: {array.shape[0]} rows, but the edge list names node {largest}: ids missing "
                             "from the feature file (row i holds node i)")
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{path}: features must be numeric, got dtype {array.dtype}")
        bad = np.argwhere(~np.isfinite(array.astype(np.float64)))
        if bad.size:
            raise ValueError(f"{path}: NaN or infinite feature at row {bad[0][0]}, column {bad[0][1]}")
        return torch.as_tensor(array, dtype=torch.float32)
    rows = _keyed_rows(path, "features")
    missing = [n for n in index if n not in rows]
    if missing:
        raise ValueError(f"{path}: no feature row for node {missing[0]!r} ({len(missing)} node(s) of the edge "
                         "list are missing from the feature file)")
    x = np.empty((len(index), len(next(iter(rows.values())))), dtype=np.float64)
    for name, i in index.items():
        for column, text in enumerate(rows[name], 2):
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise ValueError(f"{path}, node {name!r}, column {column}: feature {text!r} is not a finite number")
            x[i, column - 2] = value
    return torch.as_tensor(x, dtype=torch.float32)


def _labels(path: Path, index: dict[str, int], by_integer: bool) -> tuple[torch.Tensor, list[str]]:
    """Class of every node (``-1``: unlabelled) and the original class names."""
    if path.suffix.lower() in (".npy", ".pt"):
        if not by_integer:
            raise ValueError(f"{path}: a {path.suffix} label vector is indexed by integer node id, but the edge "
                             "list has non-integer ids; give the labels as CSV 'node_id,label'")
        array = _array_file(path).reshape(-1)
        if array.shape[0] <= max(int(n) for n in index):
            raise ValueError(f"{path}: {array.shape[0]} labels, fewer than the nodes of the edge list")
        raw = {name: str(array[int(name)]) for name in index}
    else:
        rows = _keyed_rows(path, "label")
        raw = {name: rows[name][0] for name in index if name in rows}
    names = sorted(set(raw.values()), key=lambda v: (not v.lstrip("-").isdigit(), int(v) if v.lstrip("-").isdigit()
                                                       else 0, v))
    names = [n for n in names if n not in ("-1", "")]  # "-1" / empty: unlabelled, as in PyG
    code = {name: c for c, name in enumerate(names)}
    y = torch.full((len(index),), -1, dtype=torch.long)
    for name, i in index.items():
        if name in raw and raw[name] in code:
            y[i] = code[raw[name]]
    return y, names


def load_edge_list(path: str | os.PathLike, features: str | os.PathLike | None = None,
                   labels: str | os.PathLike | None = None, undirected: bool = True) -> LoadedGraph:
    """Read a graph from an edge list, with optional node features and labels.

    Args:
        path (str or Path): ``.csv`` (commas), ``.tsv`` (tabs) or any other text file (whitespace): two id
            columns and an optional weight column (>= 0), an optional header row (recognised by names such as
            ``source,target,weight``), ``#`` comment lines.
        features (str or Path, optional): ``.npy`` / ``.pt`` matrix whose row ``i`` is node ``i`` (integer ids),
            or CSV/TSV rows ``node_id, f1, f2, ...``. Nodes that appear only here become isolated nodes.
            (default: :obj:`None`)
        labels (str or Path, optional): CSV/TSV rows ``node_id, label`` (any strings; nodes without a row are
            unlabelled, ``-1``), or a ``.npy`` / ``.pt`` vector indexed by integer id. (default: :obj:`None`)
        undirected (bool): Add the reverse of every edge that lacks one (weights of the two directions are
            averaged), as the undirected methods need; the change is recorded in ``LoadedGraph.notes``.
            (default: :obj:`True`)

    Raises:
        ValueError: For a malformed file, naming the file and the line or column.
    """
    path = Path(path)
    src, dst, weights = _read_edges(path)
    feature_rows: list[str] = []
    if features is not None and Path(features).suffix.lower() not in (".npy", ".pt"):
        feature_rows = list(_keyed_rows(Path(features), "features"))
    ints = _integer_ids(src + dst)
    by_integer = ints is not None
    if by_integer and (features is None or Path(features).suffix.lower() in (".npy", ".pt")) and \
            (labels is None or Path(labels).suffix.lower() in (".npy", ".pt")) and not feature_rows:
        num_nodes = max(ints) + 1
        if features is not None:
            num_nodes = max(num_nodes, _array_file(Path(features)).shape[0])
        index = {str(i): i for i in range(num_nodes)}
        edge_index = torch.tensor([ints[: len(src)], ints[len(src):]], dtype=torch.long)
        node_ids = None
    else:
        index = _index_nodes(src, dst, feature_rows)
        edge_index = torch.tensor([[index[s] for s in src], [index[d] for d in dst]], dtype=torch.long)
        node_ids = list(index)
    num_nodes = len(index)
    data = Data(edge_index=edge_index, num_nodes=num_nodes)
    notes: list[str] = []
    weight = torch.tensor(weights, dtype=torch.float32) if weights is not None else None
    edge_index, weight = remove_self_loops(edge_index, weight)
    if edge_index.size(1) < data.edge_index.size(1):
        notes.append(f"removed {data.edge_index.size(1) - edge_index.size(1)} self-loop(s)")
    edge_index, weight = coalesce(edge_index, weight, num_nodes, reduce="mean")
    if undirected and not is_undirected(edge_index, weight, num_nodes=num_nodes):
        before = edge_index.size(1)
        edge_index, weight = to_undirected(edge_index, weight, num_nodes, reduce="mean")
        notes.append(f"made undirected: {before} directed edges -> {edge_index.size(1)} (both directions; "
                     "weights of a pair averaged)")
    data.edge_index = edge_index
    if weight is not None:
        data.edge_weight = weight
    if features is not None:
        data.x = _features(Path(features), index, by_integer and node_ids is None)
    class_names = None
    if labels is not None:
        data.y, class_names = _labels(Path(labels), index, by_integer and node_ids is None)
    return LoadedGraph(data, node_ids=node_ids, class_names=class_names, notes=notes, source=str(path))


def data_safe_globals() -> list:
    """PyG's data classes, allow-listed for ``torch.load(weights_only=True)``."""
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import EdgeStorage, GlobalStorage, NodeStorage

    return [Data, DataEdgeAttr, DataTensorAttr, GlobalStorage, NodeStorage, EdgeStorage]


def load_saved_data(path: str | os.PathLike) -> LoadedGraph:
    """A :class:`~torch_geometric.data.Data` saved with ``torch.save(data, path)``.

    It is read with ``weights_only=True`` (PyG's data classes allow-listed), so a file can never run code.

    Raises:
        ValueError: If the file cannot be read, or holds something other than a ``Data`` with ``edge_index``.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(data_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle errors, foreign objects: all mean "not a saved Data"
        raise ValueError(f"{path}: not a saved torch_geometric Data (torch.save(data, path)): {exc}") from None
    if isinstance(obj, dict) and "edge_index" in obj:
        obj = Data(**obj)
    if not isinstance(obj, Data) or getattr(obj, "edge_index", None) is None:
        raise ValueError(f"{path}: holds a {type(obj).__name__}, not a torch_geometric Data with edge_index")
    return LoadedGraph(obj, source=str(path))

"""One shared input validator for every public entry point.

Each check raises ``TypeError`` (wrong type or dtype) or ``ValueError`` (wrong shape, range or
non-finite values) naming the offending argument and what was expected.

Checks such as ``edge_index.max() < num_nodes`` or ``torch.isfinite(x).all()`` read a value back to the host.
That is fine at an API boundary but not inside a training step, so :class:`~pyg_em.train.Trainer` validates its
data once and then runs the loop inside :func:`validation_disabled`.
"""

from __future__ import annotations

import contextlib
import numbers
import operator
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "check_edge_index",
    "check_edge_weight",
    "check_features",
    "check_graph",
    "check_graph_data",
    "check_int",
    "as_int",
    "check_n_clusters",
    "check_positive",
    "check_positive_int",
    "resolve_num_nodes",
    "is_validation_enabled",
    "validation_disabled",
]

_state = threading.local()


def is_validation_enabled() -> bool:
    """Whether data-dependent checks (range, finiteness) run; structural checks always run."""
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def validation_disabled() -> Iterator[None]:
    """Skip the data-dependent checks (those that synchronise with the device) inside the block."""
    previous = is_validation_enabled()
    _state.enabled = False
    try:
        yield
    finally:
        _state.enabled = previous


def _is_sparse_adjacency(obj: Any) -> bool:
    if isinstance(obj, Tensor) and obj.layout != torch.strided:
        return True
    return type(obj).__name__ == "SparseTensor"  # torch_sparse.SparseTensor, without importing it


def check_edge_index(edge_index: Any, num_nodes: int | None = None, name: str = "edge_index") -> Tensor:
    """Check that ``edge_index`` is a ``torch.long`` tensor of shape ``(2, E)`` with ids in ``[0, num_nodes)``.

    Sparse adjacency inputs (``torch.sparse`` tensors, ``torch_sparse.SparseTensor``) are passed through
    after a size check, since their indices are valid by construction.
    """
    if _is_sparse_adjacency(edge_index):
        if num_nodes is not None and edge_index.size(0) != num_nodes:
            raise ValueError(
                f"{name}: sparse adjacency has {edge_index.size(0)} rows but there are {num_nodes} nodes"
            )
        return edge_index
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (2, E), got {type(edge_index).__name__}")
    if edge_index.dtype != torch.long:
        raise TypeError(f"{name} must have dtype torch.long, got {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{name} must have shape (2, E), got {tuple(edge_index.shape)}")
    if num_nodes is not None and is_validation_enabled() and edge_index.numel() > 0:
        low, high = int(edge_index.min()), int(edge_index.max())
        if low < 0 or high >= num_nodes:
            raise ValueError(
                f"{name} holds node ids in [{low}, {high}] but must lie in [0, {num_nodes}) "
                f"for num_nodes={num_nodes}"
            )
    return edge_index


def check_features(x: Any, name: str = "x", num_nodes: int | None = None, dim: int = 2) -> Tensor:
    """Check that ``x`` is a finite floating-point tensor with ``dim`` dimensions (and ``num_nodes`` rows)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() != dim:
        raise ValueError(f"{name} must have {dim} dimensions, got shape {tuple(x.shape)}")
    if num_nodes is not None and x.size(0) != num_nodes:
        raise ValueError(f"{name} has {x.size(0)} rows but the graph has {num_nodes} nodes")
    if is_validation_enabled() and x.numel() > 0 and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf values")
    return x


def check_edge_weight(
    edge_weight: Any,
    num_edges: int,
    name: str = "edge_weight",
    nonnegative: bool = True,
) -> Tensor | None:
    """Check an optional per-edge weight vector of shape ``(E,)``: floating point, finite, and ``>= 0``."""
    if edge_weight is None:
        return None
    if not isinstance(edge_weight, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (E,), got {type(edge_weight).__name__}")
    if not torch.is_floating_point(edge_weight):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {edge_weight.dtype}")
    if edge_weight.dim() != 1 or edge_weight.numel() != num_edges:
        raise ValueError(f"{name} must have shape ({num_edges},) to match edge_index, got {tuple(edge_weight.shape)}")
    if is_validation_enabled() and edge_weight.numel() > 0:
        if not bool(torch.isfinite(edge_weight).all()):
            raise ValueError(f"{name} contains NaN or Inf values")
        if nonnegative and bool((edge_weight < 0).any()):
            raise ValueError(f"{name} must be non-negative")
    return edge_weight


def check_graph(
    x: Tensor | None,
    edge_index: Any,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    *,
    nonnegative_weights: bool = True,
    require_edges: bool = False,
) -> int:
    """Validate node features, connectivity and optional edge weights together; return the number of nodes.

    Args:
        x (Tensor, optional): Node features of shape ``(N, F)``.
        edge_index (Tensor): Graph connectivity of shape ``(2, E)``, or a sparse adjacency.
        edge_weight (Tensor, optional): Edge weights of shape ``(E,)``. (default: :obj:`None`)
        num_nodes (int, optional): Number of nodes; inferred from ``x`` when omitted. (default: :obj:`None`)
        nonnegative_weights (bool): Reject negative ``edge_weight``. (default: :obj:`True`)
        require_edges (bool): Reject graphs with no edges. (default: :obj:`False`)
    """
    if x is not None:
        check_features(x, "x")
        if num_nodes is not None and x.size(0) != num_nodes:
            raise ValueError(f"x has {x.size(0)} rows but num_nodes={num_nodes}")
        num_nodes = x.size(0)
    if num_nodes is None:
        if isinstance(edge_index, Tensor) and not _is_sparse_adjacency(edge_index) and edge_index.numel() > 0:
            num_nodes = int(edge_index.max()) + 1
        elif _is_sparse_adjacency(edge_index):
            num_nodes = edge_index.size(0)
        else:
            raise ValueError("num_nodes must be given when x is None and edge_index is empty")
    check_edge_index(edge_index, num_nodes)
    if not _is_sparse_adjacency(edge_index):
        if require_edges and edge_index.size(1) == 0:
            raise ValueError("edge_index is empty: this method needs a graph with at least one edge")
        check_edge_weight(edge_weight, edge_index.size(1), nonnegative=nonnegative_weights)
    return int(num_nodes)


def check_graph_data(data: Any, *, require_edges: bool = False, positive_weighted_degree: bool = False,
                     name: str = "data") -> int:
    """Validate the ``x``, ``edge_index`` and ``edge_weight`` of a PyG ``Data`` at a loss entry point.

    Structural checks (types, dtypes, shapes) always run; data-dependent ones (id range, finiteness, degrees)
    only while :func:`is_validation_enabled`, so a trainer's steps do not synchronise. Returns the node count.

    Args:
        data (Data): The graph.
        require_edges (bool): Reject graphs without edges. (default: :obj:`False`)
        positive_weighted_degree (bool): Reject nodes whose incident edges (self-loops aside) all have weight 0,
            for models that row-normalise by the weighted degree. (default: :obj:`False`)
        name (str): The argument's name in messages. (default: :obj:`'data'`)
    """
    edge_index = getattr(data, "edge_index", None)
    if edge_index is None:
        raise TypeError(f"{name} must be a torch_geometric Data with an edge_index, got {type(data).__name__}")
    x, edge_weight = getattr(data, "x", None), getattr(data, "edge_weight", None)
    num_nodes = check_graph(x, edge_index, edge_weight, num_nodes=None if x is not None else data.num_nodes,
                            require_edges=require_edges)
    if positive_weighted_degree and edge_weight is not None and edge_weight.numel() and is_validation_enabled():
        keep = edge_index[0] != edge_index[1]
        src, weight = edge_index[0][keep], edge_weight[keep]
        degree = torch.zeros(num_nodes, dtype=weight.dtype, device=weight.device).index_add_(0, src, weight)
        has_edges = torch.zeros(num_nodes, dtype=torch.bool, device=src.device)
        has_edges[src] = True
        bad = (has_edges & (degree == 0)).nonzero()
        if bad.numel():
            raise ValueError(
                f"edge_weight: node {int(bad[0])} has edges but all their weights are 0, so its row of the "
                "transition matrix D^-1 A is undefined; drop zero-weight edges (edge_index[:, edge_weight > 0]) "
                "or give them a positive weight"
            )
    return num_nodes


def _is_bool(value: Any) -> bool:
    if isinstance(value, Tensor):
        return value.dtype == torch.bool
    return isinstance(value, (bool, np.bool_)) or (isinstance(value, np.ndarray) and value.dtype == np.bool_)


def check_int(value: Any, name: str) -> int:
    """``value`` as a Python ``int``: anything with ``__index__`` (Python, NumPy and 0-d torch integers).

    Booleans (``True``, ``np.True_``, boolean tensors) and floats such as ``2.0`` raise ``TypeError``, so
    that a flag or a fractional value is never silently taken for a count.
    """
    if _is_bool(value) or (isinstance(value, Tensor) and value.dim() != 0):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {_describe(value)}") from None


def as_int(value: Any) -> int | None:
    """``value`` as a Python ``int`` when it is an integer (see :func:`check_int`), else ``None``."""
    try:
        return check_int(value, "value")
    except TypeError:
        return None


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"{value!r} ({type(value).__name__})"


def check_n_clusters(n_clusters: Any, num_nodes: int | None = None, name: str = "n_clusters") -> int:
    """Check a cluster count: an integer ``>= 2`` (any ``__index__`` type but ``bool``) and, when known, at most
    the number of nodes. Returns it as a Python ``int``."""
    n_clusters = check_int(n_clusters, name)
    if n_clusters < 2:
        raise ValueError(f"{name} must be at least 2, got {n_clusters}")
    if num_nodes is not None and n_clusters > num_nodes:
        raise ValueError(f"{name}={n_clusters} exceeds the number of nodes ({num_nodes})")
    return n_clusters


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Check that a scalar hyper-parameter is a finite positive number (or non-negative).

    Any real number is accepted (Python, NumPy, 0-d torch tensors), booleans excepted.
    """
    if isinstance(value, Tensor) and value.dim() == 0 and value.dtype != torch.bool:
        value = value.item()
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not value == value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_positive_int(value: Any, name: str) -> int:
    """Check a count-like hyper-parameter (epochs, iterations, sizes): an integer ``>= 1``; returns a Python int.

    Anything with ``__index__`` is accepted (NumPy and 0-d torch integers), ``bool`` excepted. Raises
    ``ValueError`` for any other value, floats such as ``1.0`` included, so that a count is never silently
    truncated.
    """
    try:
        number = check_int(value, name)
    except TypeError:
        number = None
    if number is None or number < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return number


def resolve_num_nodes(edge_index: Tensor, num_nodes: Any = None) -> int:
    """``num_nodes`` checked as a positive int, or inferred as ``edge_index.max() + 1`` when omitted."""
    if num_nodes is not None:
        return check_positive_int(num_nodes, "num_nodes")
    if edge_index.numel() == 0:
        raise ValueError("num_nodes must be given when edge_index is empty")
    return int(edge_index.max()) + 1

"""Symmetry of a sparse matrix given by its entries: one sort of the ``row * n + col`` keys."""

from __future__ import annotations

import torch
from torch import Tensor

from pyg_em.validation import is_validation_enabled

#: ``symmetrize`` values of the Laplacian entry points: how :func:`torch_geometric.utils.to_undirected` merges the
#: two directions' weights.
SYMMETRIZE_REDUCES = ("mean", "add", "max", "min")

UNDIRECTED_HINT = (
    "A Laplacian needs an undirected graph with equal weights in both directions. Store both directions with "
    "torch_geometric.utils.to_undirected(edge_index, edge_weight) (reduce='mean' averages per-direction "
    "weights), or pass symmetrize='mean' (or 'add', 'max', 'min') to symmetrise here"
)


def asymmetry(indices: Tensor, values: Tensor | None, n: int) -> tuple[int, int, float, float, int] | None:
    r"""Where the sparse matrix with entries ``values`` at ``indices`` differs from its transpose.

    Duplicate entries are summed (as in a sparse matrix); an entry of value 0 whose mirror is missing is
    symmetric. Values are compared to a relative tolerance of :math:`\sqrt{\epsilon}` of their dtype, so
    rounding in weights computed by symmetric formulas passes. Costs two sorts of the :math:`\mathrm{nnz}` keys:
    the keys, and their mirrors, which are the same sorted list exactly when the pattern is symmetric (a binary
    search per key instead was 4x slower on 1M random keys, from cache misses).

    Returns:
        :obj:`None` when symmetric, else ``(i, j, a_ij, a_ji, count)``: the first differing entry and how many
        entries differ (``count`` is -1 for a pattern mismatch, which is not counted; ``values=None`` checks the
        pattern only).
    """
    if indices.numel() == 0:
        return None
    keys = indices[0] * n + indices[1]
    unique, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    vals = None
    if values is not None:
        vals = values.detach().new_zeros(unique.numel()).index_add_(0, inverse, values.detach())
        nonzero = vals != 0
        if not bool(nonzero.all()):  # zero entries need no mirror
            unique, vals = unique[nonzero], vals[nonzero]
            if unique.numel() == 0:
                return None
    mirror = (unique % n) * n + torch.div(unique, n, rounding_mode="floor")
    mirror_sorted, order = torch.sort(mirror)
    differ = mirror_sorted != unique
    if bool(differ.any()):
        first = int(differ.nonzero()[0, 0])
        a, b = int(unique[first]), int(mirror_sorted[first])
        # Sorted lists equal up to `first`: the smaller of the two differing keys is missing from the other list.
        key = a if a < b else (b % n) * n + b // n
        value = float(vals[torch.searchsorted(unique, torch.tensor(key))]) if vals is not None else 1.0
        return key // n, key % n, value, 0.0, -1
    if vals is None:
        return None
    # unique[i] is the mirror of unique[order[i]]: its transposed entry's value is vals[order[i]].
    mirror_vals = vals[order]
    tol = torch.finfo(vals.dtype).eps ** 0.5
    bad = (vals - mirror_vals).abs() > tol * torch.maximum(vals.abs(), mirror_vals.abs())
    count = int(bad.sum())
    if count == 0:
        return None
    first = int(bad.nonzero()[0, 0])
    key = int(unique[first])
    return key // n, key % n, float(vals[first]), float(mirror_vals[first]), count


def check_undirected(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int,
                     name: str = "edge_index") -> None:
    """Raise a :class:`ValueError` that says how to fix it when the weighted graph is not undirected.

    Skipped inside :func:`~pyg_em.validation.validation_disabled` (it reads values back to the host).
    """
    if not is_validation_enabled():
        return
    found = asymmetry(edge_index, edge_weight, num_nodes)
    if found is None:
        return
    i, j, a, b, count = found
    what = (f"edge ({i}, {j}) has no reverse edge ({j}, {i})" if count < 0
            else f"edge ({i}, {j}) has weight {a:.6g} but ({j}, {i}) has {b:.6g} ({count} entries differ)")
    raise ValueError(f"{name} is not symmetric: {what}. {UNDIRECTED_HINT}")


def symmetrize_graph(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int,
                     reduce: str) -> tuple[Tensor, Tensor | None]:
    """Both directions of every edge with merged weights (:func:`torch_geometric.utils.to_undirected`)."""
    from torch_geometric.utils import to_undirected

    if reduce not in SYMMETRIZE_REDUCES:
        raise ValueError(f"symmetrize must be None or one of {SYMMETRIZE_REDUCES}, got {reduce!r}")
    if edge_weight is None:
        return to_undirected(edge_index, num_nodes=num_nodes), None
    return to_undirected(edge_index, edge_weight, num_nodes=num_nodes, reduce=reduce)

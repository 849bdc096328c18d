"""Sparse graph Laplacians on ``edge_index`` whose values are differentiable w.r.t. the edge weights."""

from __future__ import annotations

import torch
from torch import Tensor

from pyg_em.linalg._symmetry import check_undirected, symmetrize_graph
from pyg_em.validation import check_edge_index, check_edge_weight, check_features, check_positive, resolve_num_nodes

_NORMALIZATIONS = (None, "sym", "rw")


def undirected_graph(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int,
                     symmetrize: str | None) -> tuple[Tensor, Tensor | None]:
    """Check (``symmetrize=None``) or make (``"mean"``, ``"add"``, ``"max"``, ``"min"``) the graph undirected."""
    if symmetrize is None:
        check_undirected(edge_index, edge_weight, num_nodes)
        return edge_index, edge_weight
    return symmetrize_graph(edge_index, edge_weight, num_nodes, symmetrize)


def laplacian_coo(
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    shift: float = 0.0,
    dtype: torch.dtype | None = None,
    symmetrize: str | None = None,
) -> tuple[Tensor, Tensor, int]:
    r"""The Laplacian as an ``(indices, values, num_nodes)`` triplet, accepted directly by
    :func:`~pyg_em.linalg.sparse_solve`.

    Self-loops are dropped (they cancel in :math:`D - W`); the diagonal is stored once per node (``num_nodes``
    entries at the end), so ``indices`` has shape ``(2, E' + N)`` with :math:`E'` the non-loop edges. Duplicate
    edges are summed, as in a sparse matrix. See :func:`laplacian` for the arguments.
    """
    edge_index = check_edge_index(edge_index)
    n = resolve_num_nodes(edge_index, num_nodes)
    check_edge_index(edge_index, num_nodes=n)
    if normalization not in _NORMALIZATIONS:
        raise ValueError(f"normalization must be None, 'sym' or 'rw', got {normalization!r}")
    shift = check_positive(shift, "shift", allow_zero=True)
    if edge_weight is not None:
        edge_weight = check_edge_weight(edge_weight, edge_index.size(1))
    edge_index, edge_weight = undirected_graph(edge_index, edge_weight, n, symmetrize)
    num_edges = edge_index.size(1)
    if edge_weight is None:
        dtype = dtype or torch.get_default_dtype()
        edge_weight = torch.ones(num_edges, dtype=dtype, device=edge_index.device)
    elif dtype is not None:
        edge_weight = edge_weight.to(dtype)
    keep = edge_index[0] != edge_index[1]
    row, col = edge_index[0][keep], edge_index[1][keep]
    weight = edge_weight[keep]
    # Degree = weighted row sums of W (PyG's convention: undirected graphs store both directions).
    deg = weight.new_zeros(n).index_add(0, row, weight)
    diag_index = torch.arange(n, device=edge_index.device)
    if normalization is None:
        off, diag = -weight, deg
    else:
        # Isolated nodes have D^-1/2 = 0 (their row of D^-1/2 W D^-1/2 is empty); their diagonal stays 0 so that
        # the nullspace of the normalised Laplacian keeps one vector per connected component.
        safe = torch.where(deg > 0, deg, torch.ones_like(deg))
        if normalization == "sym":
            inv_sqrt = torch.where(deg > 0, safe.rsqrt(), torch.zeros_like(deg))
            off = -inv_sqrt[row] * weight * inv_sqrt[col]
        else:
            inv = torch.where(deg > 0, safe.reciprocal(), torch.zeros_like(deg))
            off = -inv[row] * weight
        diag = (deg > 0).to(weight.dtype)
    if shift:
        diag = diag + shift
    indices = torch.cat([torch.stack([row, col]), torch.stack([diag_index, diag_index])], dim=1)
    return indices, torch.cat([off, diag]), n


def laplacian(
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    shift: float = 0.0,
    dtype: torch.dtype | None = None,
    symmetrize: str | None = None,
) -> Tensor:
    r"""The (optionally normalised and shifted) graph Laplacian as a coalesced sparse COO matrix.

    .. math::
        \mathbf{L} = \mathbf{D} - \mathbf{W} + s\mathbf{I}, \qquad
        \mathbf{L}_{\mathrm{sym}} = \mathbf{I} - \mathbf{D}^{-1/2}\mathbf{W}\mathbf{D}^{-1/2} + s\mathbf{I}, \qquad
        \mathbf{L}_{\mathrm{rw}} = \mathbf{I} - \mathbf{D}^{-1}\mathbf{W} + s\mathbf{I},

    with :math:`W_{ij}` the weight of edge ``(i, j)`` and :math:`D_{ii} = \sum_j W_{ij}`. The values of the
    returned tensor are differentiable w.r.t. ``edge_weight`` (``A.values()`` after coalescing keeps the graph).
    The graph must be undirected: both directions stored (PyG's convention) with equal weights. This is checked
    (one sort of the edge keys) and a :class:`ValueError` says how to fix it; ``symmetrize`` merges the two
    directions instead (:func:`torch_geometric.utils.to_undirected`, so ``"add"`` doubles the weight of an edge
    already stored both ways and ``"mean"`` keeps it).

    Args:
        edge_index (torch.Tensor): graph connectivity.
        edge_weight (torch.Tensor, optional): non-negative edge weights. (default: :obj:`None`, all ones)
        num_nodes (int, optional): number of nodes. (default: :obj:`None`, ``edge_index.max() + 1``)
        normalization (str, optional): :obj:`None`, ``"sym"`` or ``"rw"``. (default: :obj:`None`)
        shift (float, optional): :math:`s \ge 0` added to the diagonal, e.g. the :math:`\varepsilon` of
            :math:`\mathbf{L} + \varepsilon\mathbf{I}`. (default: :obj:`0.0`)
        dtype (torch.dtype, optional): dtype of the values when ``edge_weight`` is :obj:`None`.
            (default: :obj:`None`, the default dtype)
        symmetrize (str, optional): :obj:`None` to require an undirected input (a :class:`ValueError`
            otherwise), or how to merge the weights of the two directions: ``"mean"``, ``"add"``, ``"max"``
            or ``"min"``. (default: :obj:`None`)

    Shapes:
        - **input:** edge_index :math:`(2, E)`, edge_weight :math:`(E,)`
        - **output:** sparse :math:`(N, N)` with at most :math:`E + N` stored entries
    """
    indices, values, n = laplacian_coo(edge_index, edge_weight, num_nodes, normalization, shift, dtype, symmetrize)
    return torch.sparse_coo_tensor(indices, values, (n, n), check_invariants=False).coalesce()


def laplacian_matvec(
    edge_index: Tensor,
    edge_weight: Tensor | None,
    x: Tensor,
    num_nodes: int | None = None,
    shift: float = 0.0,
    symmetrize: str | None = None,
) -> Tensor:
    r"""Compute :math:`(\mathbf{D} - \mathbf{W} + s\mathbf{I})\,\mathbf{x}` by gather/scatter in
    :math:`O(E \cdot F)`, differentiable w.r.t. ``edge_weight`` and ``x`` (CPU and CUDA, no sparse tensor).

    Uses :math:`(\mathbf{L}\mathbf{x})_i = \sum_{j} W_{ij}(x_i - x_j) + s x_i`.

    Args:
        edge_index (torch.Tensor): graph connectivity :math:`(2, E)`.
        edge_weight (torch.Tensor, optional): edge weights :math:`(E,)`; :obj:`None` means all ones.
        x (torch.Tensor): node signals :math:`(N,)` or :math:`(N, F)`.
        num_nodes (int, optional): number of nodes. (default: :obj:`None`, ``x.size(0)``)
        shift (float, optional): diagonal shift :math:`s`. (default: :obj:`0.0`)
        symmetrize (str, optional): as in :func:`laplacian`: :obj:`None` requires an undirected graph.
            (default: :obj:`None`)

    Raises:
        TypeError, ValueError: malformed ``edge_index``/``edge_weight``/``x`` (the shared validators of
            :mod:`pyg_em.validation`), or a graph that is not undirected.
    """
    if not isinstance(x, Tensor) or x.dim() not in (1, 2):
        raise TypeError(f"x must be a torch.Tensor of shape (N,) or (N, F), got "
                        f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    check_features(x, "x", dim=x.dim())
    n = x.size(0) if num_nodes is None else num_nodes
    if x.size(0) != n:
        raise ValueError(f"x has {x.size(0)} rows but num_nodes={n}")
    edge_index = check_edge_index(edge_index, num_nodes=n)
    edge_weight = check_edge_weight(edge_weight, edge_index.size(1))
    shift = check_positive(shift, "shift", allow_zero=True)
    if edge_weight is not None and edge_weight.dtype != x.dtype:
        raise TypeError(f"edge_weight has dtype {edge_weight.dtype} but x has dtype {x.dtype}")
    edge_index, edge_weight = undirected_graph(edge_index, edge_weight, n, symmetrize)
    row, col = edge_index[0], edge_index[1]
    diff = x.index_select(0, row) - x.index_select(0, col)
    if edge_weight is not None:
        diff = diff * (edge_weight if x.dim() == 1 else edge_weight.unsqueeze(-1))
    out = diff.new_zeros((n,) + tuple(x.shape[1:])).index_add(0, row, diff)
    return out + shift * x if shift else out

"""Sparse graph Laplacians on ``edge_index`` whose values are differentiable w.r.t. the edge weights."""

from __future__ import annotations

import torch
from torch import Tensor

from pyg_em.validation import check_edge_index, check_edge_weight, check_positive, resolve_num_nodes

_NORMALIZATIONS = (None, "sym", "rw")




def laplacian_coo(
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    normalization: str | None = None,
    shift: float = 0.0,
    dtype: torch.dtype | None = None,
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
    num_edges = edge_index.size(1)
    if edge_weight is None:
        dtype = dtype or torch.get_default_dtype()
        edge_weight = torch.ones(num_edges, dtype=dtype, device=edge_index.device)
    else:
        edge_weight = check_edge_weight(edge_weight, num_edges)
        if dtype is not None:
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
) -> Tensor:
    r"""The (optionally normalised and shifted) graph Laplacian as a coalesced sparse COO matrix.

    .. math::
        \mathbf{L} = \mathbf{D} - \mathbf{W} + s\mathbf{I}, \qquad
        \mathbf{L}_{\mathrm{sym}} = \mathbf{I} - \mathbf{D}^{-1/2}\mathbf{W}\mathbf{D}^{-1/2} + s\mathbf{I}, \qquad
        \mathbf{L}_{\mathrm{rw}} = \mathbf{I} - \mathbf{D}^{-1}\mathbf{W} + s\mathbf{I},

    with :math:`W_{ij}` the weight of edge ``(i, j)`` and :math:`D_{ii} = \sum_j W_{ij}`. The values of the
    returned tensor are differentiable w.r.t. ``edge_weight`` (``A.values()`` after coalescing keeps the graph).
    For an undirected graph store both directions (PyG's convention); only then is :math:`\mathbf{L}` symmetric.

    Args:
        edge_index (torch.Tensor): graph connectivity.
        edge_weight (torch.Tensor, optional): non-negative edge weights. (default: :obj:`None`, all ones)
        num_nodes (int, optional): number of nodes. (default: :obj:`None`, ``edge_index.max() + 1``)
        normalization (str, optional): :obj:`None`, ``"sym"`` or ``"rw"``. (default: :obj:`None`)
        shift (float, optional): :math:`s \ge 0` added to the diagonal, e.g. the :math:`\varepsilon` of
            :math:`\mathbf{L} + \varepsilon\mathbf{I}`. (default: :obj:`0.0`)
        dtype (torch.dtype, optional): dtype of the values when ``edge_weight`` is :obj:`None`.
            (default: :obj:`None`, the default dtype)

    Shapes:
        - **input:** edge_index :math:`(2, E)`, edge_weight :math:`(E,)`
        - **output:** sparse :math:`(N, N)` with at most :math:`E + N` stored entries
    """
    indices, values, n = laplacian_coo(edge_index, edge_weight, num_nodes, normalization, shift, dtype)
    return torch.sparse_coo_tensor(indices, values, (n, n), check_invariants=False).coalesce()


def laplacian_matvec(
    edge_index: Tensor,
    edge_weight: Tensor | None,
    x: Tensor,
    num_nodes: int | None = None,
    shift: float = 0.0,
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
    """
    n = x.size(0) if num_nodes is None else num_nodes
    if x.size(0) != n:
        raise ValueError(f"x has {x.size(0)} rows but num_nodes={n}")
    row, col = edge_index[0], edge_index[1]
    diff = x.index_select(0, row) - x.index_select(0, col)
    if edge_weight is not None:
        diff = diff * (edge_weight if x.dim() == 1 else edge_weight.unsqueeze(-1))
    out = diff.new_zeros((n,) + tuple(x.shape[1:])).index_add(0, row, diff)
    return out + shift * x if shift else out

"""Edge-node incidence matrices (discrete gradient on a graph)."""

from __future__ import annotations

import torch
from torch import Tensor

from pyg_em.validation import check_edge_index, check_edge_weight, resolve_num_nodes


def incidence_matrix(edge_index: Tensor, num_nodes: int | None = None, edge_weight: Tensor | None = None) -> Tensor:
    r"""The weighted incidence matrix :math:`\mathbf{B} \in \mathbb{R}^{E \times N}` as a sparse COO tensor.

    Row :math:`e` of edge :math:`(i \to j)` holds :math:`-w_e` in column :math:`i` and :math:`+w_e` in column
    :math:`j`, so :math:`(\mathbf{B}\phi)_e = w_e(\phi_j - \phi_i)` is a discrete gradient and
    :math:`\mathbf{B}^\top\mathbf{B}` is the Laplacian of the weights :math:`w_e^2`. Pass each undirected edge
    once (e.g. ``edge_index[:, edge_index[0] < edge_index[1]]``). Values are differentiable w.r.t.
    ``edge_weight``; self-loops give an all-zero row.

    Example (node potentials from edge flows): the flows :math:`f_e` measured on the edges of a connected
    graph determine potentials :math:`\phi` up to a constant; ground node 0 (drop its column, making
    :math:`\mathbf{B}` tall with full column rank) and solve the least-squares problem with
    :func:`~pyg_em.linalg.sparse_lstsq`::

        edge_index = torch.tensor([[0, 1, 2, 0], [1, 2, 3, 3]])       # 4 edges, 4 nodes
        phi_true = torch.tensor([0.0, 1.0, 3.0, 2.5], dtype=torch.float64)
        flows = phi_true[edge_index[1]] - phi_true[edge_index[0]]      # one flow per edge
        B = incidence_matrix(edge_index, 4, torch.ones(4, dtype=torch.float64))
        keep = B.indices()[1] > 0                                       # ground node 0: phi_0 = 0
        B0 = torch.sparse_coo_tensor(B.indices()[:, keep] - torch.tensor([[0], [1]]), B.values()[keep], (4, 3))
        phi = sparse_lstsq(B0, flows)                                   # tensor([1.0, 3.0, 2.5])

    Gradients of ``phi`` w.r.t. ``B0``'s values (e.g. learnable edge weights) and the flows follow
    Golub--Pereyra (see :func:`~pyg_em.linalg.sparse_lstsq`).

    Args:
        edge_index (torch.Tensor): edges :math:`(2, E)`, source in row 0.
        num_nodes (int, optional): number of nodes. (default: :obj:`None`, ``edge_index.max() + 1``)
        edge_weight (torch.Tensor, optional): edge weights :math:`(E,)` (any sign: they scale rows).
            (default: :obj:`None`, all ones)

    Shapes:
        - **output:** sparse :math:`(E, N)` with :math:`2E` stored entries
    """
    edge_index = check_edge_index(edge_index)
    num_nodes = resolve_num_nodes(edge_index, num_nodes)
    check_edge_index(edge_index, num_nodes=num_nodes)
    num_edges = edge_index.size(1)
    if edge_weight is None:
        edge_weight = torch.ones(num_edges, device=edge_index.device)
    else:
        edge_weight = check_edge_weight(edge_weight, num_edges, nonnegative=False)
    rows = torch.arange(num_edges, device=edge_index.device).repeat(2)
    cols = torch.cat([edge_index[0], edge_index[1]])
    values = torch.cat([-edge_weight, edge_weight])
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (num_edges, num_nodes),
                                   check_invariants=False).coalesce()

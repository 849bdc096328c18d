r"""Negative edge sampling that never returns a positive edge, a held-out edge or a self-loop.

PyG's :func:`~torch_geometric.utils.negative_sampling` rejects positives on the host (``np.isin``) and returns a
data-dependent number of samples. Here the forbidden pairs are kept as a sorted vector of pair keys
:math:`k = i\,N + j` (computed once per graph), candidates are checked with :func:`torch.searchsorted` on the
input's device, and rejected candidates are redrawn a fixed number of times; the output has a fixed size and a
validity mask, so a training step never has to synchronise with the device. Any candidate still forbidden
after the redraws (probability :math:`\rho^{r+1}` for a forbidden density :math:`\rho` and :math:`r` rounds) is
masked out of the loss rather than used.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pyg_em.utils.csc import SortedCSC, sort_in_place, write_pair_keys
from pyg_em.validation import check_edge_index

__all__ = ["forbidden_pair_keys", "sample_negative_edges", "sample_negatives_from", "is_forbidden", "masked_mean"]


def forbidden_pair_keys(edge_index: Tensor, num_nodes: int, exclude_edge_index: Tensor | None = None,
                        undirected: bool = True) -> Tensor:
    r"""Sorted unique keys :math:`i N + j` of every pair that must never be sampled as a negative.

    Args:
        edge_index (Tensor): Positive edges :math:`(2, E)`.
        num_nodes (int): Number of nodes :math:`N`.
        exclude_edge_index (Tensor, optional): Further pairs to exclude, e.g. held-out validation and test
            edges. (default: :obj:`None`)
        undirected (bool): Also forbid the reverse of every pair. (default: :obj:`True`)
    """
    parts = [edge_index] if exclude_edge_index is None else [edge_index, exclude_edge_index]
    directions = [(0, 1), (1, 0)] if undirected else [(0, 1)]
    keys = torch.empty(sum(p.size(1) for p in parts) * len(directions), dtype=torch.long,
                       device=edge_index.device)
    start = 0
    for pairs in parts:  # written into one buffer: no concatenated copies of the pairs or of their keys
        for i, j in directions:
            write_pair_keys(keys[start:start + pairs.size(1)], pairs[i], pairs[j], num_nodes)
            start += pairs.size(1)
    if keys.device.type != "cpu":
        return torch.unique(keys)  # sorted
    # On the host, sorted in place: torch.unique/sort would add the sorted copy and an int64 index per key,
    # about 8 GB of temporaries for the 100M edges of a 10M-node graph.
    sort_in_place(keys)
    first = torch.ones(keys.numel(), dtype=torch.bool)
    torch.ne(keys[1:], keys[:-1], out=first[1:])
    return keys[first]


def is_forbidden(src: Tensor, dst: Tensor, num_nodes: int, forbidden: Tensor | SortedCSC) -> Tensor:
    """Boolean mask: the pair is a self-loop or its key is in the sorted ``forbidden`` keys (or, for a
    :class:`~pyg_em.utils.SortedCSC` of an undirected graph, the pair is one of its edges)."""
    if isinstance(forbidden, SortedCSC):
        return forbidden.contains(src, dst) | (src == dst)
    keys = src * num_nodes + dst
    if forbidden.numel() == 0:
        return src == dst
    pos = torch.searchsorted(forbidden, keys).clamp_(max=forbidden.numel() - 1)
    return (forbidden[pos] == keys) | (src == dst)


def masked_mean(values: Tensor, valid: Tensor) -> Tensor:
    """Mean of ``values`` over the entries where ``valid`` is true (zero when none is).

    The loss of a fixed-size batch of candidates with a validity mask: unlike ``values[valid].mean()`` it sizes
    no tensor by a device-side count, so it never synchronises with the device.
    """
    weight = valid.to(values.dtype)
    return (values * weight).sum() / weight.sum().clamp(min=1.0)


def sample_negative_edges(
    edge_index: Tensor,
    num_nodes: int,
    num_samples: int,
    exclude_edge_index: Tensor | None = None,
    *,
    forbidden: Tensor | None = None,
    rounds: int = 4,
    return_mask: bool = False,
    undirected: bool = True,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Draw ``num_samples`` node pairs uniformly among the pairs that are not edges, self-loops or excluded.

    Args:
        edge_index (Tensor): Positive edges :math:`(2, E)` that must not be sampled.
        num_nodes (int): Number of nodes :math:`N`.
        num_samples (int): Number of candidate pairs to draw.
        exclude_edge_index (Tensor, optional): Held-out pairs that must not be sampled either.
            (default: :obj:`None`)
        forbidden (Tensor, optional): Precomputed :func:`~pyg_em.utils.forbidden_pair_keys` (skips recomputing them).
            (default: :obj:`None`)
        rounds (int): Redraws of rejected candidates. (default: :obj:`4`)
        return_mask (bool): Return all ``num_samples`` candidates plus a validity mask (no host
            synchronisation) instead of only the valid ones. (default: :obj:`False`)
        undirected (bool): Treat the positive and excluded pairs as undirected. (default: :obj:`True`)

    Returns:
        ``neg_edge_index`` :math:`(2, S)`, or ``(neg_edge_index, valid)`` when ``return_mask=True``.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"num_samples must be a non-negative int, got {num_samples!r}")
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 2:
        raise ValueError(f"num_nodes must be an int >= 2 to sample negative pairs, got {num_nodes!r}")
    check_edge_index(edge_index, num_nodes)
    if exclude_edge_index is not None:
        check_edge_index(exclude_edge_index, num_nodes, name="exclude_edge_index")
    if forbidden is None:
        forbidden = forbidden_pair_keys(edge_index, num_nodes, exclude_edge_index, undirected)
    device = edge_index.device
    src = torch.randint(num_nodes, (num_samples,), device=device)
    # dst uniform over the other N - 1 nodes: self-loops are excluded by construction.
    dst = torch.randint(num_nodes - 1, (num_samples,), device=device)
    dst = dst + (dst >= src).long()
    bad = is_forbidden(src, dst, num_nodes, forbidden)
    for _ in range(rounds):
        new_src = torch.randint(num_nodes, (num_samples,), device=device)
        new_dst = torch.randint(num_nodes - 1, (num_samples,), device=device)
        new_dst = new_dst + (new_dst >= new_src).long()
        src, dst = torch.where(bad, new_src, src), torch.where(bad, new_dst, dst)
        bad = is_forbidden(src, dst, num_nodes, forbidden)
    neg = torch.stack([src, dst])
    if return_mask:
        return neg, ~bad
    return neg[:, ~bad]


def sample_negatives_from(sources: Tensor, num_nodes: int, num_samples: int,
                          forbidden: Tensor) -> tuple[Tensor, Tensor]:
    """``num_samples`` candidate pairs whose source is drawn from ``sources`` (e.g. a mini-batch's seed nodes)
    and whose target is uniform over all nodes, with a mask of the true negatives: neither self-loops nor in the
    sorted ``forbidden`` keys (:func:`forbidden_pair_keys`).

    Collisions are masked rather than dropped or redrawn: dropping them would size a tensor by a device-side
    count, which synchronises CUDA with the host at every step.

    Args:
        sources (Tensor): Candidate source nodes :math:`(S,)`.
        num_nodes (int): Number of nodes :math:`N`.
        num_samples (int): Number of candidate pairs to draw.
        forbidden (Tensor): Sorted keys of the pairs that are never negatives.

    Returns:
        ``(candidates, valid)``: pairs of shape ``(2, num_samples)`` and their validity mask.
    """
    u = sources[torch.randint(sources.numel(), (num_samples,), device=sources.device)]
    v = torch.randint(num_nodes, (num_samples,), device=sources.device)
    return torch.stack([u, v]), ~is_forbidden(u, v, num_nodes, forbidden)

r"""One sorted CSC copy of an undirected graph: the layout ``NeighborLoader`` samples from, the adjacency rows
of whole-graph inference and the edge-membership test of negative sampling, all in :math:`2E + N` integers.

A mini-batch pipeline at scale would otherwise hold the same edges three more times: the sampler's CSC,
sorted pair keys :math:`iN + j` for rejecting negatives, and a CSR of the attention pattern. On an undirected
graph the column of node :math:`i` (its in-neighbours) is also its row (its out-neighbours), so one layout
sorted by (target, source) serves all three.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["SortedCSC", "symmetric_csc"]


class SortedCSC(NamedTuple):
    r"""An undirected graph's edges sorted by target, then source.

    ``edge_index[0]`` is the source :math:`j` and ``edge_index[1]`` the target :math:`i` of each edge (PyG's
    ``source_to_target`` flow, the order ``NeighborLoader(..., is_sorted=True)`` expects), ``colptr`` the
    :math:`N + 1` offsets of each target's run, and ``search_steps`` the bisection steps that resolve the
    longest run (:meth:`contains`).
    """

    edge_index: Tensor
    colptr: Tensor
    search_steps: int

    @property
    def num_nodes(self) -> int:
        """Number of nodes :math:`N`."""
        return self.colptr.numel() - 1

    def contains(self, src: Tensor, dst: Tensor) -> Tensor:
        r"""Boolean mask: :math:`(\mathrm{src}, \mathrm{dst})` is an edge.

        A bisection in each pair's run of sources, run for the fixed ``search_steps`` on every pair at once:
        no count is read from the device, and no key table of the :math:`E` edges is kept.
        """
        sources, num_edges = self.edge_index[0], self.edge_index.size(1)
        if num_edges == 0:
            return torch.zeros_like(src, dtype=torch.bool)
        lo, end = self.colptr[src], self.colptr[src + 1]
        hi = end.clone()
        for _ in range(self.search_steps):  # first position in [lo, end) whose source is >= dst
            mid = (lo + hi) // 2
            below = sources[mid.clamp(max=num_edges - 1)] < dst
            open_ = lo < hi
            lo = torch.where(open_ & below, mid + 1, lo)
            hi = torch.where(open_ & ~below, mid, hi)
        return (lo < end) & (sources[lo.clamp(max=num_edges - 1)] == dst)

    def to(self, device: torch.device | str) -> SortedCSC:
        """The same layout on ``device``."""
        return SortedCSC(self.edge_index.to(device), self.colptr.to(device), self.search_steps)


def write_pair_keys(out: Tensor, major: Tensor, minor: Tensor, num_nodes: int) -> Tensor:
    r"""Pair keys :math:`\mathrm{major} \cdot N + \mathrm{minor}` written into ``out`` (no temporary)."""
    return torch.mul(major, num_nodes, out=out).add_(minor)


def sort_in_place(keys: Tensor) -> Tensor:
    """Sort an int64 vector in its own memory and return it."""
    if keys.device.type == "cpu":
        # By NumPy: torch.sort would add a sorted copy and an int64 index per key (16 bytes per key, 1.6 GB for
        # the 100M edges of a 10M-node graph).
        keys.numpy().sort()
    else:
        keys.copy_(torch.sort(keys).values)
    return keys


def symmetric_csc(edge_index: Tensor, num_nodes: int) -> SortedCSC | None:
    r"""The :class:`SortedCSC` of ``edge_index`` when its edge set is symmetric (every :math:`j \to i` has its
    :math:`i \to j`, as many times), else ``None``.

    Two in-place sorts of :math:`E` keys (one of them the result's own memory): the transient above the
    result is one int64 per edge, where an argsort-based layout would hold three.

    Args:
        edge_index (Tensor): Edges :math:`(2, E)`.
        num_nodes (int): Number of nodes :math:`N`.
    """
    num_edges = edge_index.size(1)
    pairs = torch.empty(2, num_edges, dtype=torch.long, device=edge_index.device)
    sort_in_place(write_pair_keys(pairs[0], edge_index[1], edge_index[0], num_nodes))  # target-major: CSC order
    reverse = torch.empty(num_edges, dtype=torch.long, device=edge_index.device)
    sort_in_place(write_pair_keys(reverse, edge_index[0], edge_index[1], num_nodes))
    symmetric = torch.equal(pairs[0], reverse)
    del reverse
    if not symmetric:
        return None
    torch.div(pairs[0], num_nodes, rounding_mode="floor", out=pairs[1])
    torch.remainder(pairs[0], num_nodes, out=pairs[0])
    counts = torch.bincount(pairs[1], minlength=num_nodes)
    colptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=edge_index.device)
    torch.cumsum(counts, 0, out=colptr[1:])
    longest = int(counts.max()) if num_nodes > 0 else 0
    return SortedCSC(pairs, colptr, longest.bit_length() + 1)

r"""DAEGC's proximity :math:`M` of an undirected, unweighted graph, laid out on its one sorted CSC copy.

:func:`~pyg_em.nn.proximity_graph` keeps :math:`M` as a COO index, values and a CSR pattern with its
transpose (about :math:`7E` integers), and building it sorts the pattern and searches a global table of
:math:`E` pair keys for each of the :math:`\sum_k d_k^2` two-hop paths. At 10M nodes and 100M edges that
was 5.5 GiB held and 13 GiB at the peak of the build. Here :math:`M` is one value per edge of the
:class:`~pyg_em.utils.SortedCSC` the ``NeighborLoader`` already samples from (in its edge order, so a batch
gathers its values by ``e_id``) plus one per node, and it is built row chunk by row chunk, each chunk's
two-hop paths matched against that chunk's own sorted edges.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from pyg_em.utils.csc import SortedCSC, symmetric_csc
from pyg_em.validation import check_positive_int

__all__ = ["CSCProximity", "csc_proximity"]


class CSCProximity(NamedTuple):
    r"""The whole graph's :math:`M` on its :class:`~pyg_em.utils.SortedCSC`.

    ``values[e]`` is :math:`M_{ij}` for edge ``e`` of ``graph`` (target :math:`i` attends to source
    :math:`j`), zero for a listed self loop; ``loop_values[i]`` is :math:`M_{ii}`, the weight of the self loop
    every node attends through.
    """

    graph: SortedCSC
    values: Tensor
    loop_values: Tensor

    def chunk_rows(self, start: int, stop: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The attention rows of nodes ``start`` to ``stop - 1``: their local CSR row pointer, attended columns,
        proximity values and the local row of each entry (each row: the node itself, then its neighbours)."""
        colptr, (sources, targets) = self.graph.colptr, self.graph.edge_index
        first, last = int(colptr[start]), int(colptr[stop])
        source, target = sources[first:last], targets[first:last]
        keep = source != target
        size = stop - start
        local = target - start
        kept = torch.bincount(local[keep], minlength=size)
        crow = torch.zeros(size + 1, dtype=torch.long, device=colptr.device)
        torch.cumsum(kept + 1, 0, out=crow[1:])
        # The self loop opens each row, so a kept edge sits after the loops of its own and earlier rows
        # (local + 1 of them) and the kept edges before it (its rank).
        edge_pos = (torch.cumsum(keep, 0) + local)[keep]
        loop_pos = crow[:-1]
        total = int(crow[-1])
        rows = torch.empty(total, dtype=torch.long, device=colptr.device)
        cols = torch.empty_like(rows)
        prox = torch.empty(total, dtype=self.values.dtype, device=colptr.device)
        nodes = torch.arange(size, device=colptr.device)
        rows[loop_pos], cols[loop_pos], prox[loop_pos] = nodes, nodes + start, self.loop_values[start:stop]
        rows[edge_pos], cols[edge_pos], prox[edge_pos] = local[keep], source[keep], self.values[first:last][keep]
        return crow, cols, prox, rows

    def to(self, device: torch.device | str) -> CSCProximity:
        """The same proximity on ``device``."""
        return CSCProximity(self.graph.to(device), self.values.to(device), self.loop_values.to(device))


def _row_chunks(graph: SortedCSC, counts: Tensor, budget: int) -> list[tuple[int, int]]:
    """Consecutive row ranges whose two-hop paths (``sum of counts[k]`` over each row's neighbours ``k``) fit in
    ``budget`` (a single row may exceed it)."""
    sources, targets = graph.edge_index
    paths = torch.zeros(graph.num_nodes, dtype=torch.long, device=sources.device)
    step = 1 << 22
    for start in range(0, sources.numel(), step):
        paths.index_add_(0, targets[start:start + step], counts[sources[start:start + step]])
    ends = torch.cumsum(paths, 0)
    chunks, start, n = [], 0, graph.num_nodes
    while start < n:
        base = int(ends[start - 1]) if start > 0 else 0
        stop = max(int(torch.searchsorted(ends, base + budget, right=True)), start + 1)
        chunks.append((start, min(stop, n)))
        start = stop
    return chunks


def csc_proximity(edge_index: Tensor, num_nodes: int, chunk_size: int | None = None,
                  graph: SortedCSC | None = None) -> CSCProximity | None:
    r""":math:`M = (T + T^2)/2` of an undirected, unweighted graph on its sorted CSC, or ``None`` when the
    edge set is not symmetric (use :func:`~pyg_em.nn.proximity_graph` then).

    The same values as :func:`~pyg_em.nn.transition_proximity`: :math:`T = D^{-1}A` without self loops,
    :math:`M_{ij} = \tfrac12 T_{ij} + \tfrac12 \sum_k T_{ik} T_{kj}` on each edge and :math:`M_{ii}` per node.
    For the nodes of one row chunk, every two-hop path :math:`i \to k \to j` is enumerated from the CSC and
    matched against the chunk's own edges, which are sorted by :math:`(i, j)`: a search in a table of the
    chunk's size, not of the whole graph's.

    Args:
        edge_index (Tensor): Edges :math:`(2, E)`, each listed in both directions.
        num_nodes (int): Number of nodes :math:`N`.
        chunk_size (int, optional): Two-hop paths per chunk; ``None`` picks :math:`2^{21}` on CPU and
            :math:`2^{24}` on accelerators. (default: :obj:`None`)
        graph (SortedCSC, optional): :func:`~pyg_em.utils.symmetric_csc` of ``edge_index`` when already built.
            (default: :obj:`None`)
    """
    if chunk_size is None:
        chunk_size = 1 << 21 if edge_index.device.type == "cpu" else 1 << 24
    check_positive_int(chunk_size, "chunk_size")
    graph = symmetric_csc(edge_index, num_nodes) if graph is None else graph
    if graph is None:
        return None
    with torch.no_grad():
        return _proximity_on(graph, chunk_size)


def _proximity_on(graph: SortedCSC, chunk_size: int) -> CSCProximity:
    (sources, targets), colptr, n = graph.edge_index, graph.colptr, graph.num_nodes
    device = sources.device
    counts = colptr.diff()
    listed_loops = torch.bincount(targets[sources == targets], minlength=n)
    inv_degree = 1.0 / (counts - listed_loops).clamp(min=1).double()
    values = torch.zeros(sources.numel(), dtype=torch.get_default_dtype(), device=device)
    loop_values = torch.zeros(n, dtype=torch.float64, device=device)
    for start, stop in _row_chunks(graph, counts, chunk_size):
        first, last = int(colptr[start]), int(colptr[stop])
        neighbor, node = sources[first:last], targets[first:last]
        is_edge = neighbor != node
        keys = (node - start) * n + neighbor  # sorted: the CSC order within the chunk
        chunk = torch.where(is_edge, 0.5 * inv_degree[node], 0.0)
        # Paths node -> neighbor (= k) -> far (= j): one per entry of k's own run.
        fan = torch.where(is_edge, counts[neighbor], 0)
        entry = torch.repeat_interleave(torch.arange(last - first, device=device), fan)
        offset = torch.arange(entry.numel(), device=device) - torch.repeat_interleave(torch.cumsum(fan, 0) - fan, fan)
        k, i = neighbor[entry], node[entry]
        far = sources[colptr[k] + offset]
        weight = 0.5 * inv_degree[i] * inv_degree[k]
        path = far != k
        back = path & (far == i)
        loop_values.index_add_(0, i[back], weight[back])
        path_keys = (i - start) * n + far
        pos = torch.searchsorted(keys, path_keys).clamp_(max=keys.numel() - 1)
        hit = path & ~back & (keys[pos] == path_keys) & is_edge[pos]
        chunk.index_add_(0, pos[hit], weight[hit])
        values[first:last] = chunk.to(values.dtype)
    return CSCProximity(graph, values, loop_values.to(values.dtype))

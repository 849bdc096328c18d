"""Graph attention weighted by the t-step transition proximity (the DAEGC encoder layer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot
from torch_geometric.utils import add_self_loops, remove_self_loops, softmax

from pyg_em.nn._csc_proximity import CSCProximity, csc_proximity
from pyg_em.nn.sparse_matmul import (
    CSRPattern,
    _csr,
    constant_sparse_matmul,
    csr_pair,
    csr_pattern,
    edge_value_matmul,
    sparse_pair,
)
from pyg_em.utils.cache import TensorKeyedCache
from pyg_em.validation import check_edge_weight, check_features, check_positive_int

__all__ = ["ProximityAttentionConv", "ProximityGraph", "gather_proximity", "proximity_graph", "proximity_keys",
           "proximity_on_edges", "restrict_proximity", "transition_proximity", "whole_graph_proximity"]


def _row_normalised(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int) -> tuple[Tensor, Tensor]:
    edge_index, edge_weight = remove_self_loops(edge_index, edge_weight)
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), device=edge_index.device)
    degree = torch.zeros(num_nodes, dtype=edge_weight.dtype, device=edge_weight.device)
    degree.index_add_(0, edge_index[0], edge_weight)
    return edge_index, edge_weight / degree[edge_index[0]]


def transition_proximity(
    edge_index: Tensor,
    num_nodes: int,
    edge_weight: Tensor | None = None,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Proximity :math:`M = (T + T^2)/2` on the pattern of 1-hop edges plus self loops.

    :math:`T = D^{-1}A` is the row-normalised (weighted) adjacency without self loops. :math:`M` is only needed
    where attention is computed, so :math:`(T^2)_{ij} = \sum_k T_{ik} T_{kj}` is accumulated over two-hop
    paths and kept only where :math:`(i, j)` is an edge or :math:`i = j`: time :math:`O(\sum_k d_k^2)`, memory
    bounded by ``chunk_size`` paths at a time, never :math:`N \times N`.

    Args:
        chunk_size (int, optional): Two-hop paths handled at a time. ``None`` picks :math:`2^{18}` on CPU, where
            chunks that stay in cache were both faster and leaner (300k-node SBM, one thread: 5.5 s and +0.23 GiB
            against 7.5 s and +0.56 GiB at :math:`2^{22}`), and :math:`2^{22}` on accelerators, where fewer,
            larger kernels pay off. (default: :obj:`None`)

    Returns:
        ``(pattern, values)``: the edge pattern ``(2, E')`` (edges plus self loops, row = source ``i``) and
        :math:`M_{ij}` for each of its columns.
    """
    if chunk_size is None:
        chunk_size = 1 << 18 if edge_index.device.type == "cpu" else 1 << 22
    check_positive_int(chunk_size, "chunk_size")
    t_index, t_value = _row_normalised(edge_index, edge_weight, num_nodes)
    pattern, _ = add_self_loops(t_index, num_nodes=num_nodes)
    keys = pattern[0] * num_nodes + pattern[1]
    order = keys.argsort()
    sorted_keys = keys[order]

    def lookup(rows: Tensor, cols: Tensor) -> tuple[Tensor, Tensor]:
        """Positions in ``pattern`` of the pairs (rows, cols), and a mask of those that exist."""
        query = rows * num_nodes + cols
        pos = torch.searchsorted(sorted_keys, query).clamp_max(sorted_keys.numel() - 1)
        return order[pos], sorted_keys[pos] == query

    values = torch.zeros(pattern.size(1), dtype=t_value.dtype, device=t_value.device)
    pos, _ = lookup(t_index[0], t_index[1])
    values.index_add_(0, pos, 0.5 * t_value)

    # CSR view of T by source row, to enumerate the paths i -> k -> j.
    by_row = t_index[0].argsort()
    cols, vals = t_index[1][by_row], t_value[by_row]
    row_ptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=t_index.device)
    row_ptr[1:] = torch.bincount(t_index[0], minlength=num_nodes).cumsum(0)
    out_degree = row_ptr[1:] - row_ptr[:-1]
    paths_per_edge = out_degree[t_index[1]]
    edge_offsets = torch.cumsum(paths_per_edge, 0)
    start = 0
    while start < t_index.size(1):
        # Largest run of first hops whose second-hop fan-out fits in the chunk.
        budget_end = (edge_offsets[start - 1] if start > 0 else 0) + chunk_size
        stop = int(torch.searchsorted(edge_offsets, budget_end, right=True))
        stop = max(stop, start + 1)
        first = torch.arange(start, min(stop, t_index.size(1)), device=t_index.device)
        fan = paths_per_edge[first]
        hop1 = first.repeat_interleave(fan)
        within = torch.arange(hop1.numel(), device=t_index.device) - torch.repeat_interleave(
            torch.cumsum(fan, 0) - fan, fan
        )
        second = row_ptr[t_index[1][hop1]] + within
        pos, found = lookup(t_index[0][hop1], cols[second])
        values.index_add_(0, pos[found], 0.5 * (t_value[hop1] * vals[second])[found])
        start = int(first[-1]) + 1
    return pattern, values


class ProximityGraph(NamedTuple):
    r"""The attention pattern of one graph with its proximity values and CSR layout.

    ``index`` is :math:`(2, E')` with row 0 the attending node :math:`i` and row 1 the attended node :math:`j`
    (edges plus self loops), ``values`` holds :math:`M_{ij}` per column of ``index``, and ``csr`` is the
    :class:`~pyg_em.nn.sparse_matmul.CSRPattern` of ``index`` (rows = attending nodes).
    """

    index: Tensor
    values: Tensor
    csr: CSRPattern

    def chunk_rows(self, start: int, stop: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The attention rows of nodes ``start`` to ``stop - 1``: their local CSR row pointer, attended columns,
        proximity values and the local row of each entry (what :meth:`~pyg_em.nn.ProximityAttentionConv.forward_rows`
        reads; :class:`~pyg_em.nn.CSCProximity` has the same method)."""
        crow = self.csr.crow
        first, last = int(crow[start]), int(crow[stop])
        local_crow = crow[start:stop + 1] - first
        rows = torch.repeat_interleave(torch.arange(stop - start, device=crow.device), local_crow.diff(),
                                       output_size=last - first)
        return local_crow, self.csr.col[first:last], self.values[self.csr.order[first:last]], rows


def proximity_graph(edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None,
                    chunk_size: int | None = None) -> ProximityGraph:
    """The :class:`ProximityGraph` of a graph: :func:`transition_proximity` plus its CSR layout."""
    with torch.no_grad():
        pattern, prox = transition_proximity(edge_index, num_nodes, edge_weight, chunk_size=chunk_size)
        return ProximityGraph(pattern, prox, csr_pattern(pattern[0], pattern[1], (num_nodes, num_nodes)))


def whole_graph_proximity(edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None,
                          general: Callable[[], ProximityGraph] | None = None) -> ProximityGraph | CSCProximity:
    r"""The whole graph's :math:`M` in the leanest layout that holds it: :func:`~pyg_em.nn.csc_proximity` for an
    unweighted undirected graph, else ``general()`` (default: :func:`~pyg_em.nn.proximity_graph`), the COO and
    CSR layout that weighted and directed graphs need.

    Args:
        edge_index (Tensor): Edges :math:`(2, E)`.
        num_nodes (int): Number of nodes :math:`N`.
        edge_weight (Tensor, optional): Edge weights :math:`(E,)`. (default: :obj:`None`)
        general (callable, optional): Builds the general layout, e.g. through a layer's cache.
            (default: :obj:`None`)
    """
    lean = csc_proximity(edge_index, num_nodes) if edge_weight is None else None
    if lean is not None:
        return lean
    return general() if general is not None else proximity_graph(edge_index, num_nodes, edge_weight)


def proximity_keys(graph: ProximityGraph) -> tuple[Tensor, Tensor]:
    r"""Sorted pair keys :math:`i N + j` of a graph's attention pattern and :math:`M_{ij}` in the same order,
    the lookup table of :func:`restrict_proximity`."""
    csr, n = graph.csr, graph.csr.size[0]
    rows = torch.repeat_interleave(torch.arange(n, device=csr.crow.device), csr.crow.diff(),
                                   output_size=csr.col.numel())
    return rows * n + csr.col, graph.values[csr.order]


def _lookup_sorted(keys: Tensor, values: Tensor, query: Tensor) -> Tensor:
    """``values`` at the positions of ``query`` in the sorted ``keys``; 0 for a key that is absent."""
    pos = torch.searchsorted(keys, query).clamp_max(keys.numel() - 1)
    return torch.where(keys[pos] == query, values[pos], torch.zeros((), dtype=values.dtype, device=values.device))


def _batch_pattern(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """A batch's attention pattern: its sampled edges ``j -> i`` without listed self loops, then one self loop per
    node; returns ``(keep, target, source)`` with ``keep`` the mask of the sampled edges kept."""
    keep = edge_index[1] != edge_index[0]
    loops = torch.arange(num_nodes, device=edge_index.device)
    return keep, torch.cat([edge_index[1][keep], loops]), torch.cat([edge_index[0][keep], loops])


def _batch_graph(target: Tensor, source: Tensor, prox: Tensor, num_nodes: int) -> ProximityGraph:
    return ProximityGraph(torch.stack([target, source]), prox, csr_pattern(target, source, (num_nodes, num_nodes)))


def restrict_proximity(keys: Tensor, values: Tensor, num_nodes: int, n_id: Tensor,
                       edge_index: Tensor) -> ProximityGraph:
    r"""The attention pattern of a sampled subgraph, with the *whole graph's* proximity :math:`M_{ij}`.

    A ``NeighborLoader`` batch holds edges :math:`j \to i` (``edge_index[0]`` the sampled neighbour,
    ``edge_index[1]`` the node it was sampled for, local ids). Node :math:`i` attends to its sampled
    neighbours and itself with the values of :math:`M` of the full graph, looked up by global ids ``n_id`` in
    ``keys``/``values`` (:func:`proximity_keys`): :math:`M` is then the paper's proximity, independent of
    which neighbours were sampled, and no batch recomputes it; the softmax runs over the sampled neighbours.
    With every neighbour sampled at every hop, the seeds' outputs equal the full-graph forward. A pair absent
    from the full pattern (a sampled edge whose reverse is not an edge: directed graphs) gets :math:`M = 0`.

    The self-loop filter sizes a tensor by the data: call this where the batch is built (a loader transform on
    the CPU, see :func:`pyg_em.recipes.fit_daegc`), not inside a device step.

    Args:
        keys (Tensor): Sorted full-graph pair keys :math:`i N + j`.
        values (Tensor): :math:`M_{ij}` in the order of ``keys``.
        num_nodes (int): Nodes :math:`N` of the full graph (the base of ``keys``).
        n_id (Tensor): Global id of each local node :math:`(N_b,)`.
        edge_index (Tensor): Sampled edges :math:`(2, E_b)` in local ids.
    """
    _, target, source = _batch_pattern(edge_index, n_id.numel())
    prox = _lookup_sorted(keys, values, n_id[target] * num_nodes + n_id[source])
    return _batch_graph(target, source, prox, n_id.numel())


def proximity_on_edges(graph: ProximityGraph, edge_index: Tensor,
                       chunk_size: int = 1 << 22) -> tuple[Tensor, Tensor]:
    r"""The whole graph's :math:`M` laid out by edge id and by node: what a sampled batch reads by the global
    ids ``e_id`` and ``n_id`` a ``NeighborLoader`` gives it (:func:`gather_proximity`), so that no batch
    searches pair keys. A binary search per sampled edge into the :math:`E + N` keys of a 10M-node graph
    misses the cache at every step of the search; one gather per edge does not, and these two tensors
    (:math:`E + N` values) replace the key table (:math:`E + N` keys and values).

    Args:
        graph (ProximityGraph): :func:`proximity_graph` of the whole graph.
        edge_index (Tensor): The edges a loader samples from, :math:`(2, E)`, ``edge_index[0]`` the
            neighbour :math:`j` and ``edge_index[1]`` the node :math:`i` it is sampled for (PyG's
            ``source_to_target`` flow), in the order whose positions are the loader's ``e_id``.
        chunk_size (int): Edges looked up at a time, bounding the lookup's temporaries.
            (default: :math:`2^{22}`)

    Returns:
        ``(edge_values, loop_values)``: :math:`M_{ij}` of each edge :math:`(E,)`, :math:`0` where
        :math:`(i, j)` is not in the pattern (a directed edge without its reverse) and for a listed self
        loop (a node attends to itself through ``loop_values``); and :math:`M_{ii}` of each node :math:`(N,)`.
    """
    check_positive_int(chunk_size, "chunk_size")
    keys, values = proximity_keys(graph)
    n, edge_index = graph.csr.size[0], edge_index.to(keys.device)
    edge_values = torch.empty(edge_index.size(1), dtype=values.dtype, device=values.device)
    for start in range(0, edge_index.size(1), chunk_size):
        source, target = edge_index[0, start:start + chunk_size], edge_index[1, start:start + chunk_size]
        found = _lookup_sorted(keys, values, target * n + source)
        edge_values[start:start + chunk_size] = torch.where(target != source, found, torch.zeros_like(found))
    nodes = torch.arange(n, device=keys.device)
    return edge_values, _lookup_sorted(keys, values, nodes * n + nodes)


def gather_proximity(edge_values: Tensor, loop_values: Tensor, n_id: Tensor, e_id: Tensor,
                     edge_index: Tensor) -> ProximityGraph:
    r"""The attention pattern of a ``NeighborLoader`` batch with the whole graph's :math:`M`, gathered by
    global edge and node ids from :func:`proximity_on_edges`: the same :class:`ProximityGraph` as
    :func:`restrict_proximity`, at the cost of one gather per sampled edge and node.

    Node :math:`i` attends to its sampled neighbours (listed self loops dropped) and to itself.

    Args:
        edge_values (Tensor): :math:`M_{ij}` per edge of the loader's graph :math:`(E,)`.
        loop_values (Tensor): :math:`M_{ii}` per node :math:`(N,)`.
        n_id (Tensor): Global id of each local node :math:`(N_b,)`.
        e_id (Tensor): Global id of each sampled edge :math:`(E_b,)`.
        edge_index (Tensor): Sampled edges :math:`(2, E_b)` in local ids (row 0 the neighbour).
    """
    keep, target, source = _batch_pattern(edge_index, n_id.numel())
    return _batch_graph(target, source, torch.cat([edge_values[e_id[keep]], loop_values[n_id]]), n_id.numel())


class ProximityAttentionConv(MessagePassing):
    r"""Attention over 1-hop neighbours and self, weighted by the transition proximity (Wang et al., 2019).

    .. math::
        \alpha_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i) \cup \{i\}}
        \Big(\operatorname{LeakyReLU}\big(M_{ij}\,(\mathbf{a}_{s}^\top \mathbf{W}\mathbf{h}_i
        + \mathbf{a}_{n}^\top \mathbf{W}\mathbf{h}_j)\big)\Big), \qquad
        \mathbf{h}'_i = \sum_j \alpha_{ij} \mathbf{W}\mathbf{h}_j
        \;\big[+\, \mathbf{W}_{r}\mathbf{h}_i\big]

    with :math:`M = (T + T^2)/2` and :math:`T` the row-normalised adjacency (see :func:`transition_proximity`).
    The bracketed root term (``root_weight=True``, as in PyG's ``SAGEConv``/``TransformerConv``) is not in the
    paper: it passes a node's own input past the attention average. Attention of this form cannot single out the
    node itself (its ranking of :math:`j` ignores :math:`i`, and :math:`M` scales the logits towards uniform), so
    without it two layers average each node's features with those of its two-hop neighbourhood, which on a noisy
    graph washes out informative features.
    :math:`M` is computed sparsely and cached per graph (recomputed whenever ``edge_index``/``edge_weight``
    change, so a new mini-batch never sees a stale cache).

    Args:
        in_channels (int): Input feature size.
        out_channels (int): Output feature size.
        negative_slope (float): LeakyReLU slope. (default: :obj:`0.2`)
        dropout (float): Dropout on the attention coefficients. (default: :obj:`0.0`)
        bias (bool): Add a learnable bias. (default: :obj:`True`)
        sparse_input (bool, optional): Multiply constant input features as a sparse matrix (bag-of-words
            features are ~1 % non-zero); ``None`` decides by density (≤ 10 %). (default: :obj:`None`)
        proximity_cache (TensorKeyedCache, optional): Cache of :math:`M` and its sparse pattern; pass one
            instance to every layer that runs on the same graph (as :class:`~pyg_em.models.DAEGC` does), so a new
            mini-batch computes :math:`M` once instead of once per layer. (default: a cache of its own)
        root_weight (bool): Add the root term :math:`\mathbf{W}_r\mathbf{h}_i` (``self.lin_root``).
            (default: :obj:`False`)

    Shapes:
        - **input:** node features :math:`(N, F_{in})`, edge indices :math:`(2, E)`, optional edge weights
          :math:`(E,)`
        - **output:** node features :math:`(N, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, negative_slope: float = 0.2, dropout: float = 0.0,
                 bias: bool = True, sparse_input: bool | None = None,
                 proximity_cache: TensorKeyedCache | None = None, root_weight: bool = False) -> None:
        super().__init__(aggr="add", node_dim=0)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.negative_slope, self.dropout = negative_slope, dropout
        self.lin = torch.nn.Linear(in_channels, out_channels, bias=False)
        self.lin_root = torch.nn.Linear(in_channels, out_channels, bias=False) if root_weight else None
        self.att_self = Parameter(torch.empty(1, out_channels))
        self.att_neighbor = Parameter(torch.empty(1, out_channels))
        self.bias = Parameter(torch.empty(out_channels)) if bias else None
        self.sparse_input = sparse_input
        self._proximity_cache = TensorKeyedCache() if proximity_cache is None else proximity_cache
        self._sparse_x_cache = TensorKeyedCache()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the projection (PyTorch default), the attention vectors (Glorot) and the bias (zero)."""
        super().reset_parameters()
        self.lin.reset_parameters()
        if self.lin_root is not None:
            self.lin_root.reset_parameters()
        glorot(self.att_self)
        glorot(self.att_neighbor)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def graph(self, edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None,
              build: Callable[[], ProximityGraph] | None = None) -> ProximityGraph:
        """The :class:`ProximityGraph` of a graph, cached until ``edge_index``/``edge_weight`` change (``build``
        computes it on a miss instead of :func:`proximity_graph`, e.g. into memory shared between ranks)."""
        return self._proximity_cache.get(
            (edge_index, edge_weight), build or (lambda: proximity_graph(edge_index, num_nodes, edge_weight)),
            extra=(num_nodes,))

    def proximity(self, edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The attention pattern and its proximity values, cached until ``edge_index``/``edge_weight`` change."""
        graph = self.graph(edge_index, num_nodes, edge_weight)
        return graph.index, graph.values

    @property
    def root_weight(self) -> bool:
        """Whether the layer adds the root term :math:`\\mathbf{W}_r\\mathbf{h}_i`."""
        return self.lin_root is not None

    def project(self, x: Tensor) -> Tensor:
        """:math:`\\mathbf{W}\\mathbf{x}_i` for every node, as a sparse product for constant sparse features.

        Sparse CSR input (mini-batch rows gathered by :class:`~pyg_em.nn.FeatureRows`) is used as it is, its
        transpose built by one sort of its entries; dense input is converted once per feature tensor.
        """
        return self._project_with(self.lin, x)

    def project_root(self, x: Tensor) -> Tensor | None:
        """The root term :math:`\\mathbf{W}_r\\mathbf{x}_i` of every node (``None`` without ``root_weight``),
        by the same sparse-aware product as :meth:`project`."""
        return None if self.lin_root is None else self._project_with(self.lin_root, x)

    def _project_with(self, lin: torch.nn.Linear, x: Tensor) -> Tensor:
        if x.requires_grad or self.sparse_input is False:
            return lin(x)
        if x.layout == torch.sparse_csr:  # not cached: a batch's rows would evict the whole graph's features
            x, x_t = csr_pair(x)
            return constant_sparse_matmul(x, x_t, lin.weight.t())
        if x.layout != torch.strided:
            return lin(x)

        def compute() -> tuple[Tensor, Tensor] | None:
            if self.sparse_input is None and float((x != 0).float().mean()) > 0.1:
                return None
            return sparse_pair(x)

        pair = self._sparse_x_cache.get((x,), compute)
        if pair is None:
            return lin(x)
        return constant_sparse_matmul(pair[0], pair[1], lin.weight.t())

    def _alpha(self, h_target: Tensor, h_source: Tensor, prox: Tensor, target: Tensor, source: Tensor,
               num_targets: int) -> Tensor:
        return self._alpha_from_scores((h_target * self.att_self).sum(-1), (h_source * self.att_neighbor).sum(-1),
                                       prox, target, source, num_targets)

    def _alpha_from_scores(self, score_target: Tensor, score_source: Tensor, prox: Tensor, target: Tensor,
                           source: Tensor, num_targets: int) -> Tensor:
        logits = score_target[target] + score_source[source]
        logits = F.leaky_relu(prox.to(score_source.dtype) * logits, self.negative_slope)
        return softmax(logits, target, num_nodes=num_targets)

    def attention(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
                  h: Tensor | None = None, graph: ProximityGraph | None = None) -> tuple[Tensor, Tensor]:
        """Attention coefficients :math:`\\alpha_{ij}` and their ``(source j, target i)`` edge index.

        Row :math:`i` of :math:`M` belongs to the attending node, so the message flows from :math:`j` to :math:`i`.
        """
        h = self.project(x) if h is None else h
        graph = self.graph(edge_index, x.size(0), edge_weight) if graph is None else graph
        target, source = graph.index
        return torch.stack([source, target]), self._alpha(h, h, graph.values, target, source, x.size(0))

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
                graph: ProximityGraph | None = None) -> Tensor:
        """Attend over ``edge_index`` (``graph``: a precomputed :class:`ProximityGraph` of it, such as a
        mini-batch's :func:`restrict_proximity`, used instead of computing :math:`M`)."""
        if x.layout == torch.strided:
            check_features(x, "x")
        check_edge_weight(edge_weight, edge_index.size(1))
        h = self.project(x)
        graph = self.graph(edge_index, x.size(0), edge_weight) if graph is None else graph
        _, alpha = self.attention(x, edge_index, edge_weight, h=h, graph=graph)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        # One sparse product instead of propagate()'s gather-multiply-scatter: the (E, F) message array it
        # allocates in both passes made up most of a DAEGC step on CPU (see pyg_em.nn.sparse_matmul).
        out = edge_value_matmul(alpha, h, graph.csr)
        if self.lin_root is not None:
            out = out + self.project_root(x)
        return out + self.bias if self.bias is not None else out

    @torch.no_grad()
    def projected_scores(self, h: Tensor) -> tuple[Tensor, Tensor]:
        r"""The attention scores :math:`\mathbf{a}_s^\top \mathbf{h}_i` and :math:`\mathbf{a}_n^\top \mathbf{h}_i`
        of every node from its projection ``h``: computed once per layer for :meth:`forward_rows`, whose chunks
        would otherwise each score all :math:`N` nodes (quadratic in :math:`N` over a layer)."""
        return (h * self.att_self).sum(-1), (h * self.att_neighbor).sum(-1)

    @torch.no_grad()
    def forward_rows(self, h: Tensor, graph: ProximityGraph | CSCProximity, start: int, stop: int,
                     root: Tensor | None = None, scores: tuple[Tensor, Tensor] | None = None) -> Tensor:
        r"""The outputs of nodes ``start`` to ``stop - 1`` of the full graph, without dropout (inference).

        ``h`` is :meth:`project` of *every* node; only the attention rows of the chunk are formed, so the
        memory above ``h`` is bounded by the chunk's edges. ``root`` is the chunk's root term
        (:meth:`project_root` of its input rows), required with ``root_weight``; ``scores`` is
        :meth:`projected_scores` of ``h``, computed here when not given. Chunks over all nodes reproduce
        :meth:`forward` in evaluation mode (the layer-wise inference of :meth:`pyg_em.models.DAEGC.embed_data`).
        """
        if (root is None) != (self.lin_root is None):
            raise ValueError("forward_rows(root=...) takes the chunk's root term exactly when the layer has "
                             f"root_weight (root_weight={self.root_weight}, root given: {root is not None})")
        local_crow, cols, prox, rows = graph.chunk_rows(start, stop)
        scores = self.projected_scores(h) if scores is None else scores
        alpha = self._alpha_from_scores(scores[0][start:stop], scores[1], prox, rows, cols, stop - start)
        out = torch.sparse.mm(_csr(local_crow, cols, alpha, (stop - start, h.size(0))), h)
        if root is not None:
            out = out + root
        return out + self.bias if self.bias is not None else out

    @torch.no_grad()
    def input_scores(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""The attention scores :math:`\mathbf{a}_s^\top \mathbf{W}\mathbf{x}_i` and
        :math:`\mathbf{a}_n^\top \mathbf{W}\mathbf{x}_i` of every node, computed from the *input*
        (:math:`\mathbf{x}_i^\top (\mathbf{W}^\top \mathbf{a})`), without forming :math:`\mathbf{W}\mathbf{x}`."""
        weights = self.lin.weight.t() @ torch.cat([self.att_self, self.att_neighbor]).t()  # (F_in, 2)
        scores = x @ weights.to(x.dtype)
        return scores[:, 0], scores[:, 1]

    @torch.no_grad()
    def forward_rows_from_input(self, x: Tensor, scores: tuple[Tensor, Tensor],
                                graph: ProximityGraph | CSCProximity, start: int, stop: int) -> Tensor:
        r""":meth:`forward_rows` from the layer's input ``x`` instead of its projection:
        :math:`\mathbf{h}'_i = \mathbf{W} \sum_j \alpha_{ij} \mathbf{x}_j` (the projection is linear), with
        ``scores`` from :meth:`input_scores`. When the input is narrower than the output (the first DAEGC
        layer on 32 features and 256 hidden units) no :math:`N \times F_{out}` array is ever formed, so
        whole-graph inference needs memory for the input and a chunk only.
        """
        local_crow, cols, prox, rows = graph.chunk_rows(start, stop)
        alpha = self._alpha_from_scores(scores[0][start:stop], scores[1], prox, rows, cols, stop - start)
        out = self.lin(torch.sparse.mm(_csr(local_crow, cols, alpha.to(x.dtype), (stop - start, x.size(0))), x))
        if self.lin_root is not None:
            out = out + self.lin_root(x[start:stop])
        return out + self.bias if self.bias is not None else out

    def __repr__(self) -> str:
        root = ", root_weight=True" if self.lin_root is not None else ""
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}{root})"

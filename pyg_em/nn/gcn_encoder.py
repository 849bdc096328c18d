r"""GCN encoders for (variational) graph auto-encoders, with a normalised-adjacency cache that cannot go stale."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from pyg_em.nn.sparse_matmul import constant_sparse_matmul, csr_pair
from pyg_em.utils.cache import TensorKeyedCache, is_sparse_tensor
from pyg_em.validation import check_graph, check_positive, check_positive_int


def _gcn_norm(edge_index: Any, edge_weight: Tensor | None, num_nodes: int, improved: bool, add_self_loops: bool,
              dtype: torch.dtype | None) -> tuple[Any, Tensor | None]:
    """PyG's ``gcn_norm``, always as a pair (it returns a bare ``SparseTensor`` for ``SparseTensor`` input)."""
    out = gcn_norm(edge_index, edge_weight, num_nodes, improved, add_self_loops, dtype=dtype)
    return out if isinstance(out, tuple) else (out, None)


__all__ = ["GCNEncoder", "VariationalGCNEncoder", "GraphEncoderBase", "NormalizedAdjacencyCache"]

DEFAULT_CHUNK_SIZE = 8192  # target nodes per chunk of layer-wise inference (DAEGC.embed_data's default)


def _destination_csr(src: Tensor, dst: Tensor, values: Tensor, num_rows: int, num_cols: int) -> Tensor:
    """The ``(num_rows, num_cols)`` CSR matrix with entries ``values[e]`` at ``(dst[e], src[e])`` for an edge list
    grouped by increasing ``dst`` (the layout of PyG's neighbour samplers and of a CSR): the row pointers are
    the running sum of the row counts, with no sort and no device-dependent size."""
    crow = torch.zeros(num_rows + 1, dtype=dst.dtype, device=dst.device)
    crow.index_add_(0, dst + 1, torch.ones_like(dst)).cumsum_(0)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, src, values, (num_rows, num_cols), check_invariants=False)


def _ordered_gcn_norm(src: Tensor, dst: Tensor, edge_weight: Tensor | None, num_nodes: int, fill: float | None,
                      dtype: torch.dtype) -> tuple[Tensor, Tensor | None]:
    r"""``gcn_norm``'s weights :math:`\tilde d_j^{-1/2} w_{ij} \tilde d_i^{-1/2}` with PyG's
    ``add_remaining_self_loops`` semantics (a self-loop already in the list keeps its weight, others get
    ``fill``), but in the order of the input edges: a listed self-loop gets 0 here and its weight goes to the
    returned diagonal (``None`` without self-loops). ``gcn_norm`` instead drops listed loops and appends
    one per node, which breaks the hop-by-hop layout of a sampled batch."""
    weight = torch.ones(src.numel(), dtype=dtype, device=src.device) if edge_weight is None else edge_weight.to(dtype)
    diagonal = None
    if fill is not None:
        is_loop = src == dst
        slot = torch.where(is_loop, dst, torch.full_like(dst, num_nodes))  # non-loops go to a spare slot
        diagonal = weight.new_full((num_nodes + 1,), fill).scatter(0, slot, weight)[:num_nodes]
        weight = torch.where(is_loop, torch.zeros_like(weight), weight)
    degree = weight.new_zeros(num_nodes).index_add(0, dst, weight)
    degree = degree + diagonal if diagonal is not None else degree
    inv_sqrt = degree.pow(-0.5).masked_fill(degree == 0, 0.0)
    values = inv_sqrt[src] * weight * inv_sqrt[dst]
    return values, None if diagonal is None else inv_sqrt * diagonal * inv_sqrt


def _normalized_csr(edge_index: Tensor, weight: Tensor | None, num_nodes: int) -> Tensor:
    """The normalised adjacency (row = target) as a CSR matrix; duplicate edges are summed, as in message passing."""
    values = torch.ones(edge_index.size(1), device=edge_index.device) if weight is None else weight
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
        warnings.simplefilter("ignore", UserWarning)
        coo = torch.sparse_coo_tensor(edge_index.flip(0), values, (num_nodes, num_nodes)).coalesce()
        return coo.to_sparse_csr()


def _csr_row_block(a: Tensor, start: int, stop: int, first: int, last: int) -> Tensor:
    """Rows ``start:stop`` of the CSR ``a``, whose entries are ``first:last`` (host offsets)."""
    crow = a.crow_indices()[start:stop + 1] - first
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, a.col_indices()[first:last], a.values()[first:last],
                                       (stop - start, a.size(1)), check_invariants=False)


def _hop_counts(values: Any, name: str) -> list[int]:
    if isinstance(values, Tensor):
        values = values.tolist()
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, int) and v >= 0 for v in values):
        raise ValueError(f"{name} must be a list of non-negative ints (a PyG loader batch's num_sampled_nodes / "
                         f"num_sampled_edges), got {values!r}")
    return list(values)


class NormalizedAdjacencyCache(TensorKeyedCache):
    r"""Caches :math:`\hat{A} = \tilde{D}^{-1/2}(A + I)\tilde{D}^{-1/2}` for one graph at a time.

    PyG's ``GCNConv(cached=True)`` computes the normalisation on the first call and silently reuses it even
    when a different graph is passed later (a classic pitfall with mini-batches or edge dropout). This cache
    keys the result on the identity and version of the ``edge_index`` / ``edge_weight`` tensors (see
    :class:`~pyg_em.utils.TensorKeyedCache`), so any new or modified graph is re-normalised. Edge weights that require
    gradients are never cached, since the normalisation must then stay in the autograd graph.
    """

    def __call__(self, edge_index: Any, edge_weight: Tensor | None, num_nodes: int, improved: bool = False,
                 add_self_loops: bool = True, dtype: torch.dtype | None = None) -> tuple[Any, Tensor | None]:
        """Return ``(edge_index, normalised edge_weight)`` (or a normalised ``SparseTensor`` and ``None``)."""

        def compute() -> tuple[Any, Tensor | None]:
            return _gcn_norm(edge_index, edge_weight, num_nodes, improved, add_self_loops, dtype)

        if edge_weight is not None and edge_weight.requires_grad:
            return compute()
        return self.get((edge_index, edge_weight), compute, extra=(num_nodes, improved, add_self_loops, dtype))


class GraphEncoderBase(torch.nn.Module):
    """Shared plumbing of the encoders: cached graph normalisation, DropEdge, and sparse input features."""

    def _setup_graph_options(self, in_channels: int, input_dropout: float, edge_dropout: float, improved: bool,
                             add_self_loops: bool, cache_normalization: bool, sparse_features: bool | None) -> None:
        for name, value in (("input_dropout", input_dropout), ("edge_dropout", edge_dropout)):
            if not 0.0 <= check_positive(value, name, allow_zero=True) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {value}")
        self.in_channels = in_channels
        self.input_dropout, self.edge_dropout = input_dropout, edge_dropout
        self.improved, self.add_self_loops = improved, add_self_loops
        self.cache_normalization, self.sparse_features = cache_normalization, sparse_features
        self._sparse_x_cache = TensorKeyedCache()
        self._transpose_cache = TensorKeyedCache()
        self._norm_cache = NormalizedAdjacencyCache()
        self._csr_cache = TensorKeyedCache()

    def clear_cache(self) -> None:
        """Forget the cached normalisation and sparse features (they are also refreshed automatically)."""
        self._norm_cache.clear()
        self._csr_cache.clear()
        self._sparse_x_cache.clear()
        self._transpose_cache.clear()

    def sparse_linear(self, h: Tensor, weight: Tensor) -> Tensor:
        """:math:`\\mathbf{H}\\mathbf{W}^\\top` for a constant sparse CSR ``h`` (gathered mini-batch rows or
        cached features), with :math:`\\mathbf{H}^\\top` built once per ``h`` by one sort of its entries and
        reused in backward (:func:`~pyg_em.nn.sparse_matmul.constant_sparse_matmul`): no dense pass and no COO
        round trip per batch, and several times faster than ``F.linear`` on a CSR input."""
        pair = self._transpose_cache.get((h,), lambda: csr_pair(h))
        return constant_sparse_matmul(pair[0], pair[1], weight.t())

    def prepare(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None) -> tuple[Tensor, Any, Tensor | None]:
        """Validate the inputs; return the (dropped-out, possibly sparse) features and the normalised graph."""
        sparse_x = x.layout != torch.strided
        check_graph(None if sparse_x else x, edge_index, edge_weight, num_nodes=x.size(0))
        self._check_width(x)
        adj, weight = self.normalize(edge_index, edge_weight, x.size(0), dtype=x.dtype)
        return self._input(x), adj, weight

    def _check_width(self, x: Tensor) -> None:
        if x.size(1) != self.in_channels:
            raise ValueError(f"x has {x.size(1)} features but the encoder expects in_channels={self.in_channels}")

    def normalize(self, edge_index: Any, edge_weight: Tensor | None, num_nodes: int,
                  dtype: torch.dtype | None = None) -> tuple[Any, Tensor | None]:
        """The symmetric GCN normalisation of the graph, from the cache when the graph is unchanged."""
        if self.training and self.edge_dropout > 0 and not is_sparse_tensor(edge_index):
            keep = torch.rand(edge_index.size(1), device=edge_index.device) >= self.edge_dropout
            edge_index = edge_index[:, keep]
            edge_weight = edge_weight[keep] if edge_weight is not None else None
            return _gcn_norm(edge_index, edge_weight, num_nodes, self.improved, self.add_self_loops, dtype)
        if not self.cache_normalization:
            return _gcn_norm(edge_index, edge_weight, num_nodes, self.improved, self.add_self_loops, dtype)
        return self._norm_cache(edge_index, edge_weight, num_nodes, self.improved, self.add_self_loops, dtype)

    def _input(self, x: Tensor) -> Tensor:
        """Input features after dropout, as a sparse CSR matrix when that makes the first layer cheaper."""
        if x.layout != torch.strided or x.requires_grad or self.sparse_features is False:
            return F.dropout(x, self.input_dropout, self.training) if x.layout == torch.strided else x
        sparse = self._sparse_x_cache.get((x,), lambda: self._maybe_sparse(x))
        if sparse is None:
            return F.dropout(x, self.input_dropout, self.training)
        if not (self.training and self.input_dropout > 0):
            return sparse
        values = F.dropout(sparse.values(), self.input_dropout, True)
        return torch.sparse_csr_tensor(sparse.crow_indices(), sparse.col_indices(), values, sparse.size(),
                                       check_invariants=False)

    def _maybe_sparse(self, x: Tensor) -> Tensor | None:
        if self.sparse_features is None and float((x != 0).float().mean()) > 0.1:
            return None
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
            warnings.simplefilter("ignore", UserWarning)
            return x.to_sparse_csr()


class GCNEncoder(GraphEncoderBase):
    r"""A stack of :class:`~torch_geometric.nn.conv.GCNConv` layers (the GAE encoder of Kipf & Welling, 2016).

    .. math::
        \mathbf{H}^{(0)} = \mathbf{X}, \qquad
        \mathbf{H}^{(l+1)} = \mathrm{ReLU}\big(\hat{\mathbf{A}}\,\mathrm{drop}(\mathbf{H}^{(l)})
        \mathbf{W}^{(l)}\big), \qquad
        \mathbf{Z} = \hat{\mathbf{A}}\,\mathrm{drop}(\mathbf{H}^{(L-1)})\mathbf{W}^{(L-1)},

    with :math:`\hat{\mathbf{A}} = \tilde{\mathbf{D}}^{-1/2}(\mathbf{A} + \mathbf{I})\tilde{\mathbf{D}}^{-1/2}`
    (weighted by ``edge_weight`` when given) and no activation after the last layer.

    The normalisation is computed once per graph and reused while the same, unmodified ``edge_index`` /
    ``edge_weight`` tensors come back (see :class:`NormalizedAdjacencyCache`); a different graph is always
    re-normalised, so the stale-cache pitfall of ``GCNConv(cached=True)`` cannot happen. A
    ``torch_sparse.SparseTensor`` ``adj_t`` is accepted in place of ``edge_index``.

    Args:
        in_channels (int): Input feature dimension.
        hidden_channels (int or sequence of int): Width of each hidden layer; an int gives one hidden layer.
        out_channels (int): Embedding dimension.
        dropout (float): Dropout on the hidden representations. (default: :obj:`0.0`)
        input_dropout (float): Dropout on the input features. (default: :obj:`0.0`)
        edge_dropout (float): Fraction of edges dropped from message passing in training mode (DropEdge);
            such graphs are re-normalised at every call. (default: :obj:`0.0`)
        improved (bool): Use :math:`\mathbf{A} + 2\mathbf{I}` as in ``GCNConv``. (default: :obj:`False`)
        add_self_loops (bool): Add self-loops before normalising. (default: :obj:`True`)
        cache_normalization (bool): Reuse the normalisation for an unchanged graph. (default: :obj:`True`)
        sparse_features (bool, optional): Multiply the input features as a sparse CSR matrix in the first
            layer. Bag-of-words features (Cora: 1.3 % non-zeros) make the dense :math:`\mathbf{X}\mathbf{W}`
            the most expensive operation of a GAE epoch; the sparse product costs :math:`O(\mathrm{nnz}\cdot H)`.
            ``None`` converts when at most 10 % of the entries are non-zero (the conversion is cached per
            feature tensor). (default: :obj:`None`)
        bias (bool): Learn additive biases. (default: :obj:`True`)

    Shapes:
        - **input:** node features :math:`(N, F)`, edge indices :math:`(2, E)` or a sparse ``adj_t``
          :math:`(N, N)`, optional edge weights :math:`(E,)`
        - **output:** node embeddings :math:`(N, D)`
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int | Sequence[int],
        out_channels: int,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        edge_dropout: float = 0.0,
        improved: bool = False,
        add_self_loops: bool = True,
        cache_normalization: bool = True,
        sparse_features: bool | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        hidden = [hidden_channels] if isinstance(hidden_channels, int) else list(hidden_channels)
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        for i, h in enumerate(hidden):
            check_positive_int(h, f"hidden_channels[{i}]")
        if not 0.0 <= check_positive(dropout, "dropout", allow_zero=True) < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self._setup_graph_options(in_channels, input_dropout, edge_dropout, improved, add_self_loops,
                                  cache_normalization, sparse_features)
        self.hidden_channels, self.out_channels, self.dropout = hidden, out_channels, dropout
        widths = [in_channels, *hidden]
        # normalize=False: the (cached) normalisation is done once per forward here, not once per layer.
        self.convs = torch.nn.ModuleList(
            GCNConv(a, b, normalize=False, bias=bias) for a, b in zip(widths[:-1], widths[1:])
        )
        self.heads = torch.nn.ModuleList(self._make_heads(widths[-1], out_channels, bias))
        self.reset_parameters()

    def _make_heads(self, in_channels: int, out_channels: int, bias: bool) -> list[GCNConv]:
        return [GCNConv(in_channels, out_channels, normalize=False, bias=bias)]

    def reset_parameters(self) -> None:
        """Re-initialise every convolution."""
        for conv in (*self.convs, *self.heads):
            conv.reset_parameters()
        self.clear_cache()

    def hidden(self, x: Tensor, edge_index: Any,
               edge_weight: Tensor | None = None) -> tuple[Tensor, Any, Tensor | None]:
        """The last hidden representation (input of the output head(s)) and the normalised graph."""
        h, adj, weight = self.prepare(x, edge_index, edge_weight)
        for conv in self.convs:
            h = F.relu(self._conv(conv, h, adj, weight))
            h = F.dropout(h, self.dropout, self.training)
        return h, adj, weight

    def _conv(self, conv: GCNConv, h: Tensor, adj: Any, weight: Tensor | None) -> Tensor:
        """``conv(h, adj, weight)``; a CSR ``h`` is multiplied by :meth:`sparse_linear` first (the steps of
        ``GCNConv.forward`` with ``normalize=False``: linear map, propagation, bias)."""
        if h.layout != torch.sparse_csr or h.requires_grad:
            return conv(h, adj, weight)
        out = conv.propagate(adj, x=self.sparse_linear(h, conv.lin.weight), edge_weight=weight)
        return out + conv.bias if conv.bias is not None else out

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None,
                num_sampled_nodes_per_hop: list[int] | None = None,
                num_sampled_edges_per_hop: list[int] | None = None) -> Tensor:
        """Node embeddings :math:`(N, D)` of the graph ``(x, edge_index, edge_weight)``; with the hop counts of
        a neighbour-sampled batch, those of its seed nodes only (see :meth:`sampled_heads`)."""
        return self._heads(x, edge_index, edge_weight, num_sampled_nodes_per_hop, num_sampled_edges_per_hop)[0]

    def _heads(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None, nodes: Any, edges: Any) -> list[Tensor]:
        if nodes is not None or edges is not None:
            return self.sampled_heads(x, edge_index, edge_weight, nodes, edges)
        h, adj, weight = self.hidden(x, edge_index, edge_weight)
        return [self._conv(head, h, adj, weight) for head in self.heads]

    # -- neighbour-sampled batches ------------------------------------------------------------------------
    def sampled_heads(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None,
                      num_sampled_nodes_per_hop: Any, num_sampled_edges_per_hop: Any) -> list[Tensor]:
        r"""The output head(s) at the seed nodes of a neighbour-sampled batch, computing only what they need.

        A ``NeighborLoader`` / ``LinkNeighborLoader`` batch lists its nodes hop by hop (the seeds first) and its
        edges hop by hop, each hop's edges pointing into the previous hop's nodes, grouped by destination. Layer
        :math:`l` of :math:`L` then only needs the rows of hops :math:`0..L-1-l` and the edges into them, a
        prefix of each list (PyG's ``trim_to_layer``). Here each layer's prefix is multiplied as a CSR matrix
        (row pointers from the row counts, no sort), and the first layer aggregates the inputs before
        projecting them when they are dense and at most twice as wide as its output:
        :math:`(\hat{\mathbf{A}}\mathbf{X})\mathbf{W}` needs no sparse product in backward, since
        :math:`\mathbf{X}` is data. The result equals the rows ``[:num_sampled_nodes_per_hop[0]]`` of the
        full forward on the batch to float tolerance; the normalisation is the batch graph's, as in the full
        forward. A batch whose edge list does not have this layout raises (checked on the device, without a
        host synchronisation). Listed self-loops are normalised here as ``gcn_norm`` does for an
        ``edge_index``; ``SparseTensor`` input and DropEdge in training take the full forward (then sliced to
        the seeds).

        Args:
            x (Tensor): Node features of the batch :math:`(N, F)`, dense or sparse CSR.
            edge_index (Tensor): The batch's edges :math:`(2, E)`, in the sampler's order.
            edge_weight (Tensor, optional): Edge weights :math:`(E,)`.
            num_sampled_nodes_per_hop (list[int]): The batch's ``num_sampled_nodes`` (seeds first).
            num_sampled_edges_per_hop (list[int]): The batch's ``num_sampled_edges``.

        Returns:
            One tensor per head (one for :class:`GCNEncoder`, :math:`\mu` and :math:`\log\sigma` for
            :class:`VariationalGCNEncoder`), each :math:`(S, D)` for the :math:`S` seed nodes.
        """
        nodes = _hop_counts(num_sampled_nodes_per_hop, "num_sampled_nodes_per_hop")
        edges = _hop_counts(num_sampled_edges_per_hop, "num_sampled_edges_per_hop")
        depth = len(self.convs) + 1
        if len(nodes) < depth + 1 or len(edges) < depth:
            raise ValueError(f"the batch was sampled over {len(edges)} hop(s) but the encoder has {depth} layers: "
                             f"sample num_neighbors of length {depth}")
        seeds = nodes[0]
        if sum(nodes) != x.size(0) or (not is_sparse_tensor(edge_index) and sum(edges) != edge_index.size(1)):
            raise ValueError(f"the hop counts sum to {sum(nodes)} nodes and {sum(edges)} edges but the batch has "
                             f"{x.size(0)} nodes and {edge_index.size(1)} edges: pass the batch's own "
                             "num_sampled_nodes and num_sampled_edges")
        if is_sparse_tensor(edge_index) or (self.training and self.edge_dropout > 0):
            h, adj, weight = self.prepare(x, edge_index, edge_weight)  # DropEdge happens in here
            return self._sampled_fallback(h, adj, weight, seeds)
        sparse_x = x.layout != torch.strided
        check_graph(None if sparse_x else x, edge_index, edge_weight, num_nodes=x.size(0))
        self._check_width(x)
        src, dst = edge_index[0], edge_index[1]
        fill = (2.0 if self.improved else 1.0) if self.add_self_loops else None
        weight, loop_weights = _ordered_gcn_norm(src, dst, edge_weight, x.size(0), fill, x.dtype)
        h = self._input(x)
        self._check_sampled_layout(src, dst, nodes, edges, depth)
        layers = [*[(conv,) for conv in self.convs], tuple(self.heads)]
        for layer, convs in enumerate(layers):
            rows, count = sum(nodes[: depth - layer]), sum(edges[: depth - layer])
            a = _destination_csr(src[:count], dst[:count], weight[:count], rows, h.size(0))
            loop_weight = loop_weights[:rows].unsqueeze(-1) if loop_weights is not None else None
            outs = self._sampled_layer(convs, h, a, loop_weight, first=layer == 0)
            if layer == depth - 1:
                return outs
            h = F.dropout(F.relu(outs[0]), self.dropout, self.training)
        raise AssertionError("unreachable")

    # -- layer-wise inference --------------------------------------------------------------------------------
    @torch.no_grad()
    def layerwise_forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None,
                          chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[Tensor]:
        r"""The output head(s) for every node, one layer at a time over all nodes in chunks of ``chunk_size``
        target nodes (PyG's ``inference`` pattern, exact, without gradients).

        Each layer multiplies the rows of a chunk of the normalised adjacency :math:`\hat{\mathbf{A}}` (a CSR
        matrix built once per graph and cached) with the layer's projected input; the first layer aggregates
        dense inputs before projecting them when they are at most twice as wide as its output. No
        :math:`E \times F` message array is formed, so the memory above the graph and the layers' outputs is a
        chunk's product. The result equals :meth:`forward` in evaluation mode to float tolerance.

        Args:
            x (Tensor): Node features :math:`(N, F)`, dense or sparse.
            edge_index (Tensor): Edges :math:`(2, E)` (a ``SparseTensor`` takes :meth:`forward`).
            edge_weight (Tensor, optional): Edge weights :math:`(E,)`. (default: :obj:`None`)
            chunk_size (int): Target nodes per chunk. (default: :obj:`8192`)

        Returns:
            One :math:`(N, D)` tensor per head.
        """
        check_positive_int(chunk_size, "chunk_size")
        if is_sparse_tensor(edge_index):
            return self._heads(x, edge_index, edge_weight, None, None)
        h, adj, weight = self.prepare(x, edge_index, edge_weight)
        a = self._csr_cache.get((adj, weight), lambda: _normalized_csr(adj, weight, x.size(0)))
        bounds = a.crow_indices()[::chunk_size].tolist() + [a._nnz()]  # entry offsets of the chunks (host ints)
        layers = [*[(conv,) for conv in self.convs], tuple(self.heads)]
        for layer, convs in enumerate(layers):
            narrow = layer == 0 and h.layout == torch.strided and self.in_channels <= 2 * convs[0].out_channels
            sources = [h] if narrow else [self._project(conv, h) for conv in convs]
            outs = [torch.empty(x.size(0), conv.out_channels, dtype=x.dtype, device=x.device) for conv in convs]
            for chunk, start in enumerate(range(0, x.size(0), chunk_size)):
                rows = _csr_row_block(a, start, min(start + chunk_size, x.size(0)), bounds[chunk],
                                      bounds[chunk + 1])
                for i, conv in enumerate(convs):
                    block = torch.sparse.mm(rows, sources[0 if narrow else i])
                    block = F.linear(block, conv.lin.weight) if narrow else block
                    outs[i][start:start + rows.size(0)] = block + conv.bias if conv.bias is not None else block
            if layer == len(layers) - 1:
                return outs
            h = F.relu(outs[0])
        raise AssertionError("unreachable")

    def _project(self, conv: GCNConv, h: Tensor) -> Tensor:
        if h.layout != torch.strided:
            return torch.sparse.mm(h, conv.lin.weight.t())
        return conv.lin(h)

    def _sampled_fallback(self, h: Tensor, adj: Any, weight: Tensor | None, seeds: int) -> list[Tensor]:
        for conv in self.convs:
            h = F.dropout(F.relu(self._conv(conv, h, adj, weight)), self.dropout, self.training)
        return [self._conv(head, h, adj, weight)[:seeds] for head in self.heads]

    @staticmethod
    def _check_sampled_layout(src: Tensor, dst: Tensor, nodes: list[int], edges: list[int], depth: int) -> None:
        """Raise (asynchronously on accelerators) unless the edges are grouped by increasing destination and
        each hop's edges point from the first ``sum(nodes[:h + 1])`` nodes into the first ``sum(nodes[:h])``."""
        if dst.numel() == 0:
            return
        ok = (dst[1:] >= dst[:-1]).all()
        for hop in range(1, depth + 1):
            count = sum(edges[:hop])
            if count:
                ok = ok & (dst[count - 1] < sum(nodes[:hop])) & (src[:count].max() < sum(nodes[:hop + 1]))
        if dst.device.type != "cpu":  # on an accelerator: checked without a host synchronisation
            torch._assert_async(ok)
        elif not bool(ok):
            raise ValueError("num_sampled_nodes_per_hop/num_sampled_edges_per_hop do not describe this edge list: "
                             "pass the batches of a PyG NeighborLoader/LinkNeighborLoader unchanged (edges hop by "
                             "hop, grouped by destination), or leave the hop counts out")

    def _sampled_layer(self, convs: tuple, h: Tensor, a: Tensor, loop_weight: Tensor | None,
                       first: bool) -> list[Tensor]:
        rows = a.size(0)
        narrow = first and h.layout == torch.strided and not h.requires_grad and len(convs) == 1 and (
            self.in_channels <= 2 * convs[0].out_channels)
        if narrow:  # (A X) W: X is data, so backward needs no sparse product
            p = torch.sparse.mm(a, h)
            p = p + loop_weight * h[:rows] if loop_weight is not None else p
            outs = [F.linear(p, convs[0].lin.weight)]
        else:
            a_t = csr_pair(a)[1]
            outs = []
            for conv in convs:
                hw = self.sparse_linear(h, conv.lin.weight) if h.layout == torch.sparse_csr else conv.lin(h)
                out = constant_sparse_matmul(a, a_t, hw)
                outs.append(out + loop_weight * hw[:rows] if loop_weight is not None else out)
        return [out + conv.bias if conv.bias is not None else out for out, conv in zip(outs, convs)]

    def __repr__(self) -> str:
        widths = "->".join(str(c) for c in (self.in_channels, *self.hidden_channels, self.out_channels))
        return f"{type(self).__name__}({widths}, dropout={self.dropout}, edge_dropout={self.edge_dropout})"


class VariationalGCNEncoder(GCNEncoder):
    r"""The VGAE encoder: shared GCN layers followed by two GCN heads for :math:`\mu` and :math:`\log\sigma`.

    .. math::
        \mathbf{H} = \mathrm{GCN}_{\mathrm{shared}}(\mathbf{X}, \mathbf{A}), \qquad
        \boldsymbol{\mu} = \hat{\mathbf{A}}\mathbf{H}\mathbf{W}_{\mu}, \qquad
        \log\boldsymbol{\sigma} = \hat{\mathbf{A}}\mathbf{H}\mathbf{W}_{\sigma}

    Takes the same arguments as :class:`GCNEncoder` and returns the tuple ``(mu, logstd)``, which is what
    :class:`pyg_em.models.VGAE` (and PyG's ``VGAE``) expect from their encoder.

    Shapes:
        - **input:** node features :math:`(N, F)`, edge indices :math:`(2, E)`, optional edge weights
          :math:`(E,)`
        - **output:** :math:`\mu` and :math:`\log\sigma`, each :math:`(N, D)`
    """

    def _make_heads(self, in_channels: int, out_channels: int, bias: bool) -> list[GCNConv]:
        return [GCNConv(in_channels, out_channels, normalize=False, bias=bias) for _ in range(2)]

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None,
                num_sampled_nodes_per_hop: list[int] | None = None,
                num_sampled_edges_per_hop: list[int] | None = None) -> tuple[Tensor, Tensor]:
        """:math:`(\\boldsymbol\\mu, \\log\\boldsymbol\\sigma)`, each :math:`(N, D)`, of the graph
        ``(x, edge_index, edge_weight)``; with the hop counts of a neighbour-sampled batch, those of its seed
        nodes only (see :meth:`~GCNEncoder.sampled_heads`)."""
        mu, logstd = self._heads(x, edge_index, edge_weight, num_sampled_nodes_per_hop, num_sampled_edges_per_hop)
        return mu, logstd

r"""Normalised-propagation encoders for graph auto-encoders (GNAE / VGNAE, Ahn & Kim, CIKM 2021)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import APPNP

from pyg_em.nn.gcn_encoder import GraphEncoderBase
from pyg_em.nn.sparse_matmul import constant_sparse_matmul, sparse_pair
from pyg_em.utils.cache import TensorKeyedCache
from pyg_em.validation import check_positive, check_positive_int

__all__ = ["NormalizedPropagationEncoder", "VariationalNormalizedPropagationEncoder"]



class NormalizedPropagationEncoder(GraphEncoderBase):
    r"""Linear map, row-wise L2 normalisation to a fixed norm :math:`s`, then personalised-PageRank propagation.

    .. math::
        \mathbf{H} = s\,\frac{\mathbf{X}\mathbf{W}}{\lVert\mathbf{X}\mathbf{W}\rVert_{\mathrm{row}}}, \qquad
        \mathbf{Z}^{(0)} = \mathbf{H}, \quad
        \mathbf{Z}^{(k+1)} = (1 - \alpha)\,\hat{\mathbf{A}}\mathbf{Z}^{(k)} + \alpha\,\mathbf{H}, \qquad
        \mathbf{Z} = \mathbf{Z}^{(K)}.

    With an inner-product decoder a GCN encoder can raise an edge's score simply by growing the norms of
    high-degree nodes; fixing every node's pre-propagation norm to :math:`s` removes that shortcut, and the
    :math:`K`-step propagation (PyG's :class:`~torch_geometric.nn.conv.APPNP`, normalisation cached as in
    :class:`~pyg_em.nn.GCNEncoder`) spreads each node's direction over its neighbourhood. This is the GNAE
    encoder of Ahn & Kim (2021); on Cora link prediction it measured above a two-layer GCN encoder here (see
    ``benchmarks/RESULTS.md``).

    Args:
        in_channels (int): Input feature dimension.
        out_channels (int): Embedding dimension.
        K (int): Propagation steps. (default: :obj:`10`)
        alpha (float): Teleport probability :math:`\alpha`. (default: :obj:`0.1`)
        scale (float): Row norm :math:`s` before propagation. (default: :obj:`1.8`)
        input_dropout (float): Dropout on the input features. (default: :obj:`0.0`)
        edge_dropout (float): DropEdge rate in training mode. (default: :obj:`0.0`)
        add_self_loops (bool): Add self-loops before normalising. (default: :obj:`True`)
        cache_normalization (bool): Reuse the normalisation for an unchanged graph. (default: :obj:`True`)
        sparse_features (bool, optional): Multiply sparse features as a CSR matrix (``None``: when at most
            10 % of the entries are non-zero). (default: :obj:`None`)
        dense_propagation (bool, optional): Apply the :math:`K` steps as one precomputed dense
            :math:`N \times N` operator :math:`\mathbf{P}` with :math:`\mathbf{Z} = \mathbf{P}\mathbf{H}`
            (one GEMM instead of :math:`K` sparse products and their backward; :math:`\mathbf{P}` is
            cached per graph like the normalisation); ``False``/``None`` run the :math:`K` steps as sparse
            products with a cached adjacency. Measured on Cora (2 busy cores) the sparse steps were faster, so
            the dense operator is opt-in. (default: :obj:`None`)

    Shapes:
        - **input:** node features :math:`(N, F)`, edge indices :math:`(2, E)` or a sparse ``adj_t``,
          optional edge weights :math:`(E,)`
        - **output:** node embeddings :math:`(N, D)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        K: int = 10,
        alpha: float = 0.1,
        scale: float = 1.8,
        input_dropout: float = 0.0,
        edge_dropout: float = 0.0,
        add_self_loops: bool = True,
        cache_normalization: bool = True,
        sparse_features: bool | None = None,
        dense_propagation: bool | None = None,
    ) -> None:
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        check_positive_int(K, "K")
        if not 0.0 <= check_positive(alpha, "alpha", allow_zero=True) <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        self._setup_graph_options(in_channels, input_dropout, edge_dropout, False, add_self_loops,
                                  cache_normalization, sparse_features)
        self.out_channels, self.K, self.alpha = out_channels, K, alpha
        self.scale = check_positive(scale, "scale")
        self.lins = torch.nn.ModuleList(torch.nn.Linear(in_channels, out_channels) for _ in range(self._num_heads))
        # normalize=False: the graph is normalised (and cached) once per forward by GraphEncoderBase.
        self.propagate_sparse = APPNP(K, alpha, normalize=False)
        self.dense_propagation = dense_propagation
        self._operator_cache = TensorKeyedCache()
        self._feature_t_cache = TensorKeyedCache()
        self.reset_parameters()

    _num_heads = 1

    def reset_parameters(self) -> None:
        """Re-initialise the linear layers."""
        for lin in self.lins:
            lin.reset_parameters()
        self.clear_cache()
        self._operator_cache.clear()
        self._feature_t_cache.clear()

    def _use_dense(self, num_nodes: int) -> bool:
        if self.dense_propagation is None:
            return False
        return self.dense_propagation

    @staticmethod
    def _adjacency(adj: Any, weight: Tensor | None, num_nodes: int, like: Tensor) -> Tensor:
        """The normalised adjacency as a sparse COO matrix whose row ``i`` aggregates into node ``i``."""
        if type(adj).__name__ == "SparseTensor":  # adj_t: rows are targets already
            row, col, value = adj.coo()
        else:
            (col, row), value = adj, weight  # message j -> i is entry (i, j)
        if value is None:
            value = torch.ones(row.numel(), dtype=like.dtype, device=like.device)
        return torch.sparse_coo_tensor(torch.stack([row, col]), value.detach().to(like.dtype),
                                       (num_nodes, num_nodes), check_invariants=False).coalesce()

    def _operator(self, adj: Any, weight: Tensor | None, num_nodes: int, like: Tensor) -> Tensor:
        r"""The dense PPR operator :math:`\mathbf{P}` with :math:`\mathbf{P}\mathbf{H}` = APPNP(:math:`\mathbf{H}`).

        Built by running the same recursion on the identity, :math:`\mathbf{P}_0 = \mathbf{I}`,
        :math:`\mathbf{P}_{k+1} = (1-\alpha)\hat{\mathbf{A}}\mathbf{P}_k + \alpha\mathbf{I}`, with sparse
        products (:math:`O(K \cdot \mathrm{nnz} \cdot N)` once per graph).
        """
        a_hat = self._adjacency(adj, weight, num_nodes, like)
        eye = torch.eye(num_nodes, dtype=like.dtype, device=like.device)
        op = eye
        with torch.no_grad():
            for _ in range(self.K):
                op = (1.0 - self.alpha) * torch.sparse.mm(a_hat, op) + self.alpha * eye
        return op

    def propagate(self, h: Tensor, adj: Any, weight: Tensor | None) -> Tensor:
        """K personalised-PageRank steps: a cached sparse matrix (or dense operator), or PyG's APPNP.

        PyG's message passing is used when the edge weights need gradients or DropEdge is active (a new
        graph every step); otherwise the normalised adjacency and its transpose are cached as CSR matrices
        and the steps run as sparse products with a cached-transpose backward (:mod:`pyg_em.nn.sparse_matmul`).
        """
        n = h.size(0)
        if (self.training and self.edge_dropout > 0) or (weight is not None and weight.requires_grad):
            return self.propagate_sparse(h, adj, weight)
        if self._use_dense(n):
            op = self._operator_cache.get((adj, weight), lambda: self._operator(adj, weight, n, h),
                                          extra=("dense", n, h.dtype, h.device))
            return op @ h
        a, a_t = self._operator_cache.get((adj, weight), lambda: sparse_pair(self._adjacency(adj, weight, n, h)),
                                          extra=("sparse", n, h.dtype, h.device))
        z = h
        for _ in range(self.K):
            z = (1.0 - self.alpha) * constant_sparse_matmul(a, a_t, z) + self.alpha * h
        return z

    def _linear(self, h: Tensor, index: int) -> Tensor:
        """``lins[index](h)``; sparse features use the cached transpose in backward (no per-step CSR rebuild)."""
        lin = self.lins[index]
        if h.layout == torch.sparse_csr:  # gathered rows or cached features: transpose by one sort, no COO trip
            return self.sparse_linear(h, lin.weight) + lin.bias
        if h.layout == torch.strided or (self.training and self.input_dropout > 0):
            return lin(h)
        h_t = self._feature_t_cache.get((h,), lambda: sparse_pair(h)[1])
        return constant_sparse_matmul(h, h_t, lin.weight.t()) + lin.bias

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """Node embeddings :math:`(N, D)` of the graph ``(x, edge_index, edge_weight)``."""
        h, adj, weight = self.prepare(x, edge_index, edge_weight)
        return self.propagate(self.scale * F.normalize(self._linear(h, 0), dim=1), adj, weight)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}->{self.out_channels}, K={self.K}, alpha={self.alpha}, "
                f"scale={self.scale})")


class VariationalNormalizedPropagationEncoder(NormalizedPropagationEncoder):
    r"""The VGNAE encoder: :math:`\mu` as in :class:`NormalizedPropagationEncoder`, :math:`\log\sigma` from a
    second linear map propagated without normalisation.

    .. math::
        \boldsymbol{\mu} = \mathrm{PPR}_K\Big(s\,\frac{\mathbf{X}\mathbf{W}_\mu}{\lVert\mathbf{X}\mathbf{W}_\mu
        \rVert_{\mathrm{row}}}\Big), \qquad
        \log\boldsymbol{\sigma} = \mathrm{PPR}_K(\mathbf{X}\mathbf{W}_\sigma)

    Takes the arguments of :class:`NormalizedPropagationEncoder` and returns ``(mu, logstd)``.

    Shapes:
        - **input:** node features :math:`(N, F)`, edge indices :math:`(2, E)`, optional edge weights
          :math:`(E,)`
        - **output:** :math:`\mu` and :math:`\log\sigma`, each :math:`(N, D)`
    """

    _num_heads = 2

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """:math:`(\\boldsymbol\\mu, \\log\\boldsymbol\\sigma)`, each :math:`(N, D)`, of the graph
        ``(x, edge_index, edge_weight)``."""
        h, adj, weight = self.prepare(x, edge_index, edge_weight)
        # The propagation acts on each column independently: run both heads through it at once.
        both = torch.cat([self.scale * F.normalize(self._linear(h, 0), dim=1), self._linear(h, 1)], dim=1)
        mu, logstd = self.propagate(both, adj, weight).split(self.out_channels, dim=1)
        return mu, logstd

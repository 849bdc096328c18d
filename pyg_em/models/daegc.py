"""DAEGC: deep attentional embedded graph clustering (Wang et al., IJCAI 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn.models import InnerProductDecoder

from pyg_em.clusters.dec import DECClusterHead
from pyg_em.models.base import ClusteringModel, LossOutput
from pyg_em.nn.proximity_attention import ProximityAttentionConv
from pyg_em.utils.cache import TensorKeyedCache
from pyg_em.utils.negative_sampling import forbidden_pair_keys, masked_mean, sample_negatives_from
from pyg_em.validation import check_positive, check_positive_int

__all__ = ["DAEGC"]


class DAEGC(ClusteringModel):
    r"""Graph attentional auto-encoder with a DEC self-training head.

    .. math::
        Z = \operatorname{normalize}\big(\mathrm{ELU}(\mathrm{PAConv}_2(\mathrm{ELU}(\mathrm{PAConv}_1(X, A)), A))\big),
        \qquad
        \hat A_{ij} = \sigma(z_i^\top z_j), \qquad
        \mathcal{L} = \mathcal{L}_r + \gamma\,\mathrm{KL}(P \,\|\, Q)

    :math:`\mathrm{PAConv}` is :class:`~pyg_em.nn.ProximityAttentionConv`, :math:`\mathcal{L}_r` the binary
    cross-entropy on the graph's edges and ``neg_ratio`` times as many sampled non-edges, and :math:`P, Q` come
    from :class:`~pyg_em.clusters.DECClusterHead`. The model holds the losses only;
    :func:`pyg_em.recipes.fit_daegc` (or :class:`pyg_em.recipes.DAEGCRecipe`) runs the paper's protocol:
    reconstruction pretraining, k-means initialisation of the centres, then self-training with :math:`P`
    refreshed every ``update_interval`` epochs — full batch, or with
    :class:`~torch_geometric.loader.NeighborLoader` mini-batches.

    Args:
        in_channels (int): Input feature size.
        n_clusters (int): Number of clusters.
        hidden_channels (int): First attention layer size. (default: :obj:`256`)
        embedding_channels (int): Embedding size. (default: :obj:`16`)
        gamma (float): Weight of the clustering loss. (default: :obj:`10.0`)
        update_interval (int): Epochs between target refreshes. (default: :obj:`1`)
        alpha (float): Student-t degrees of freedom. (default: :obj:`1.0`)
        neg_ratio (float): Sampled non-edges per edge in :math:`\mathcal{L}_r`. (default: :obj:`3.0`)
        dropout (float): Dropout on the attention coefficients during reconstruction pretraining (self-training
            runs without it, as in the paper). (default: :obj:`0.5`)

    Shapes:
        - **input:** :class:`~torch_geometric.data.Data` with ``x`` :math:`(N, F)` and ``edge_index``
          :math:`(2, E)`; mini-batches from ``NeighborLoader`` with ``n_id`` and ``batch_size``
        - **output:** embeddings :math:`(N, D)`, soft assignment :math:`(N, K)`
    """

    def __init__(self, in_channels: int, n_clusters: int, hidden_channels: int = 256, embedding_channels: int = 16,
                 gamma: float = 10.0, update_interval: int = 1, alpha: float = 1.0, neg_ratio: float = 3.0,
                 dropout: float = 0.5) -> None:
        super().__init__(n_clusters)
        self.update_interval = check_positive_int(update_interval, "update_interval")
        self.gamma = check_positive(gamma, "gamma", allow_zero=True)
        self.neg_ratio = check_positive(neg_ratio, "neg_ratio")
        # Both layers attend over the same graph: one shared cache computes M once per (mini-batch) graph.
        shared = TensorKeyedCache()
        self.conv1 = ProximityAttentionConv(in_channels, hidden_channels, dropout=dropout, proximity_cache=shared)
        self.conv2 = ProximityAttentionConv(hidden_channels, embedding_channels, dropout=dropout,
                                            proximity_cache=shared)
        self.head = DECClusterHead(n_clusters, embedding_channels, alpha)
        self.decoder = InnerProductDecoder()
        self._edge_key_cache = TensorKeyedCache()
        self.reset_parameters()

    # -- encoder / decoder ----------------------------------------------------------------------------
    def embed(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        h = F.elu(self.conv1(x, edge_index, edge_weight))
        return F.normalize(F.elu(self.conv2(h, edge_index, edge_weight)), p=2, dim=-1)

    def decode(self, z: Tensor, edge_index: Tensor, sigmoid: bool = True) -> Tensor:
        """Edge probabilities :math:`\\sigma(z_i^\\top z_j)` (logits with ``sigmoid=False``), by PyG's
        :class:`~torch_geometric.nn.models.InnerProductDecoder` (``self.decoder``)."""
        return self.decoder(z, edge_index, sigmoid=sigmoid)

    def recon_loss(self, z: Tensor, pos_edge_index: Tensor, neg_edge_index: Tensor | None = None,
                   sources: Tensor | None = None) -> Tensor:
        """BCE on ``pos_edge_index`` and on non-edges (sampled from ``sources`` when not given).

        Sampled pairs that hit an edge of ``pos_edge_index`` or a self-loop are masked out of the negative mean.
        A batch without positive edges contributes an exact zero that stays connected to the graph.
        """
        if pos_edge_index.size(1) == 0:
            return z.sum() * 0.0
        pos = self.decode(z, pos_edge_index, sigmoid=False)
        pos_loss = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
        if neg_edge_index is not None:
            neg = self.decode(z, neg_edge_index, sigmoid=False)
            return pos_loss + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
        sources = pos_edge_index[0] if sources is None else sources
        count = max(1, int(round(self.neg_ratio * pos_edge_index.size(1))))
        # The sorted keys are cached per graph: a full-batch graph is the same tensor at every step.
        keys = self._edge_key_cache.get((pos_edge_index,), lambda: forbidden_pair_keys(pos_edge_index, z.size(0)),
                                        extra=(z.size(0),))
        candidates, is_negative = sample_negatives_from(sources, z.size(0), count, keys)
        neg = self.decode(z, candidates, sigmoid=False)
        neg_nll = F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg), reduction="none")
        return pos_loss + masked_mean(neg_nll, is_negative)

    # -- losses -----------------------------------------------------------------------------------------
    def pretrain_loss(self, data: Data) -> LossOutput:
        z = self.embed(data.x, data.edge_index, getattr(data, "edge_weight", None))
        recon = self.recon_loss(z, data.edge_index)
        return LossOutput(recon, {"recon": recon})

    def loss(self, data: Data, refresh_target: bool = False) -> LossOutput:
        """Full-batch self-training loss; ``refresh_target=True`` first recomputes :math:`P` from this step's
        own soft assignment (equal to a separate inference pass when dropout is off, at no extra cost)."""
        z = self.embed(data.x, data.edge_index, getattr(data, "edge_weight", None))
        recon = self.recon_loss(z, data.edge_index)
        q = self.head.soft_assignment(z)
        if refresh_target:
            self.head.refresh_target(q)
        cluster = self.head.kl_loss(q)
        return LossOutput(recon + self.gamma * cluster, {"recon": recon, "cluster": cluster})

    def _batch_parts(self, batch: Data) -> tuple[Tensor, int, Tensor]:
        """Embeddings of the sampled subgraph, the seed count, and every sampled edge incident to a seed."""
        z = self.embed(batch.x, batch.edge_index, getattr(batch, "edge_weight", None))
        seeds = batch.batch_size
        incident = (batch.edge_index[0] < seeds) | (batch.edge_index[1] < seeds)
        # Orient each edge seed -> neighbour so that negatives are drawn for the seeds.
        edges = batch.edge_index[:, incident]
        edges = torch.where(edges[0] < seeds, edges, edges.flip(0))
        return z, seeds, edges

    def pretrain_loss_batch(self, batch: Data) -> LossOutput:
        z, seeds, edges = self._batch_parts(batch)
        recon = self.recon_loss(z, edges, sources=torch.arange(seeds, device=z.device))
        return LossOutput(recon, {"recon": recon})

    def loss_batch(self, batch: Data) -> LossOutput:
        z, seeds, edges = self._batch_parts(batch)
        recon = self.recon_loss(z, edges, sources=torch.arange(seeds, device=z.device))
        cluster = self.head.kl_loss(self.head.soft_assignment(z[:seeds]), batch.n_id[:seeds])
        return LossOutput(recon + self.gamma * cluster, {"recon": recon, "cluster": cluster})

    # -- clustering -------------------------------------------------------------------------------------
    @torch.no_grad()
    def initialize_cluster_centers(self, data: Data, n_init: int = 20, seed: int | None = 0) -> Tensor:
        z = self.embed_data(data)
        self.head.initialize(z, n_init=n_init, seed=seed)
        return self.head.centers.detach()

    @torch.no_grad()
    def refresh_target(self, data: Data) -> None:
        """Recompute the DEC target :math:`P` from a full-graph inference pass."""
        self.head.refresh_target(self.head.soft_assignment(self.embed_data(data)))

    @torch.no_grad()
    def predict_proba(self, data: Data) -> Tensor:
        return self.head.soft_assignment(self.embed_data(data))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.conv1.in_channels}, n_clusters={self.n_clusters}, "
                f"hidden={self.conv1.out_channels}, embedding={self.conv2.out_channels}, gamma={self.gamma})")

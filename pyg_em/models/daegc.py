"""DAEGC: deep attentional embedded graph clustering (Wang et al., IJCAI 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from pyg_em.clusters.dec import DECClusterHead
from pyg_em.models.base import ClusteringModel, LossOutput
from pyg_em.nn.proximity_attention import ProximityAttentionConv
from pyg_em.utils.cache import TensorKeyedCache
from pyg_em.utils.negative_sampling import forbidden_pair_keys, masked_mean, sample_negatives_from
from pyg_em.train import LambdaCallback, Trainer, shard_indices
from pyg_em.validation import check_graph, check_n_clusters, check_positive, check_positive_int

__all__ = ["DAEGC"]


class DAEGC(ClusteringModel):
    r"""Graph attentional auto-encoder with a DEC self-training head.

    .. math::
        Z = \operatorname{normalize}\big(\mathrm{ELU}(\mathrm{PAConv}_2(\mathrm{ELU}(\mathrm{PAConv}_1(X, A)), A))\big),
        \qquad
        \hat A_{ij} = \sigma(z_i^\top z_j), \qquad
        \mathcal{L} = \mathcal{L}_r + \gamma\,\mathrm{KL}(P \,\|\, Q)

    :math:`\mathrm{PAConv}` is :class:`~pyg_em.nn.ProximityAttentionConv`, :math:`\mathcal{L}_r` the binary
    cross-entropy on the graph's edges and as many sampled non-edges, and :math:`P, Q` come from
    :class:`~pyg_em.clusters.DECClusterHead`. :meth:`fit` runs the paper's protocol: reconstruction pretraining,
    k-means initialisation of the centres, then self-training with :math:`P` refreshed every
    ``update_interval`` epochs — full batch, or with :class:`~torch_geometric.loader.NeighborLoader` mini-batches.

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
        self._edge_key_cache = TensorKeyedCache()
        self.reset_parameters()

    # -- encoder / decoder ----------------------------------------------------------------------------
    def embed(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        h = F.elu(self.conv1(x, edge_index, edge_weight))
        return F.normalize(F.elu(self.conv2(h, edge_index, edge_weight)), p=2, dim=-1)

    @staticmethod
    def decode(z: Tensor, edge_index: Tensor, sigmoid: bool = True) -> Tensor:
        logits = (z[edge_index[0]] * z[edge_index[1]]).sum(-1)
        return torch.sigmoid(logits) if sigmoid else logits

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

    # -- training ---------------------------------------------------------------------------------------
    def fit(self, data: Data, pretrain_steps: int = 100, epochs: int = 100, pretrain_lr: float = 5e-3,
            lr: float = 1e-4, weight_decay: float = 0.0, n_init: int = 20, seed: int | None = 0,
            batch_size: int | None = None, num_neighbors: list[int] | None = None, device=None,
            progress: bool | None = None, pretrain_epochs: int | None = None) -> dict[str, list[float]]:
        """Pretrain on reconstruction, initialise the centres by k-means, then self-train.

        Pretraining length is counted in optimizer steps: ``pretrain_steps`` full-batch epochs, or with mini-batches
        the fewest whole epochs that reach ``pretrain_steps`` steps (at least one). Counting epochs instead would
        multiply the pretraining by the number of batches per epoch, and over-trained embeddings cluster worse
        (Cora, 512-seed batches, 10 seeds: 100 epochs = 600 steps gave ACC 70.05 ± 4.13, 17 epochs = 102 steps
        71.51 ± 1.18).
        ``pretrain_epochs`` overrides this with an exact epoch count.

        The defaults (100 pretraining steps, no weight decay; ``neg_ratio=3`` and attention ``dropout=0.5`` in
        the constructor) are the recipe measured in ``benchmarks/bench_daegc.py``; the paper's protocol is
        30 pretraining epochs, ``weight_decay=5e-3``, no dropout and a dense reconstruction, which scored lower
        here.

        With ``batch_size`` training uses :class:`~torch_geometric.loader.NeighborLoader` (``num_neighbors``
        per layer, default ``[10, 10]``); under ``torch.distributed`` each rank samples its own shard of seed
        nodes (:func:`~pyg_em.train.shard_indices`).

        Args:
            data (Data): The graph, with ``x`` and ``edge_index`` (optionally ``edge_weight``).
            pretrain_steps (int): Reconstruction pretraining length in optimizer steps. (default: :obj:`100`)
            epochs (int): Self-training epochs. (default: :obj:`100`)
            pretrain_lr (float): Adam learning rate of pretraining. (default: :obj:`5e-3`)
            lr (float): Adam learning rate of self-training. (default: :obj:`1e-4`)
            weight_decay (float): Adam weight decay of both phases. (default: :obj:`0.0`)
            n_init (int): k-means restarts for the centre initialisation. (default: :obj:`20`)
            seed (int, optional): Seed of k-means and of the seed-node sharding. (default: :obj:`0`)
            batch_size (int, optional): Seed nodes per mini-batch; ``None`` trains full batch.
                (default: :obj:`None`)
            num_neighbors (list[int], optional): Neighbours sampled per layer with ``batch_size``.
                (default: :obj:`[10, 10]`)
            device (str or torch.device, optional): Training device; ``None`` picks CUDA when available.
                (default: :obj:`None`)
            progress (bool, optional): Show progress bars; ``None`` shows them on a terminal. (default: :obj:`None`)
            pretrain_epochs (int, optional): Exact pretraining epochs, overriding ``pretrain_steps``.
                (default: :obj:`None`)

        Returns:
            dict[str, list[float]]: The self-training history, plus the pretraining history under keys prefixed
            with ``pretrain_``.
        """
        num_nodes = check_graph(data.x, data.edge_index, getattr(data, "edge_weight", None), require_edges=True)
        check_n_clusters(self.n_clusters, num_nodes)
        check_positive_int(pretrain_steps, "pretrain_steps")
        if pretrain_epochs is not None:
            check_positive_int(pretrain_epochs, "pretrain_epochs")
        loader = None
        if batch_size is not None:
            from torch_geometric.loader import NeighborLoader

            loader = NeighborLoader(data, num_neighbors=num_neighbors or [10, 10], batch_size=batch_size,
                                    shuffle=True,
                                    input_nodes=shard_indices(num_nodes, seed=seed or 0, equal_size=True))
        common = {"device": device, "progress": progress, "weight_decay": weight_decay,
                  "ddp_kwargs": {"find_unused_parameters": True}}
        if pretrain_epochs is None:
            steps_per_epoch = 1 if loader is None else max(1, len(loader))
            pretrain_epochs = -(-pretrain_steps // steps_per_epoch)
        pre = Trainer(self, epochs=pretrain_epochs, lr=pretrain_lr, desc="pretrain",
                      step_fn=lambda m, d: m.pretrain_loss(d),
                      batch_step_fn=lambda m, b: m.pretrain_loss_batch(b), **common)
        pre_history = pre.fit(data if loader is None else None, loader=loader)
        data = data.to(pre.device)
        self.initialize_cluster_centers(data, n_init=n_init, seed=seed)

        # Attention dropout regularises the reconstruction pretraining; self-training runs without it (the paper's
        # loop), so in full batch the step's own soft assignment is the refreshed one and the step refreshes P
        # itself instead of a separate inference pass over the whole graph.
        dropouts = (self.conv1.dropout, self.conv2.dropout)
        self.conv1.dropout = self.conv2.dropout = 0.0
        refresh_in_step = loader is None
        due = {"now": False}

        def refresh(trainer: Trainer, epoch: int) -> None:
            due["now"] = epoch > 0 and epoch % self.update_interval == 0
            if due["now"] and not refresh_in_step:
                self.refresh_target(data)

        train = Trainer(self, epochs=epochs, lr=lr, desc="self-train",
                        step_fn=lambda m, d: m.loss(d, refresh_target=due["now"] and refresh_in_step),
                        callbacks=[LambdaCallback(on_epoch_start=refresh)], **common)
        try:
            history = train.fit(data if loader is None else None, loader=loader)
        finally:
            self.conv1.dropout, self.conv2.dropout = dropouts
        history.update({f"pretrain_{k}": v for k, v in pre_history.items()})
        return history

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.conv1.in_channels}, n_clusters={self.n_clusters}, "
                f"hidden={self.conv1.out_channels}, embedding={self.conv2.out_channels}, gamma={self.gamma})")

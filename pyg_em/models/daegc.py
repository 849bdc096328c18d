"""DAEGC: deep attentional embedded graph clustering (Wang et al., IJCAI 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn.models import InnerProductDecoder
from tqdm.auto import tqdm

from pyg_em.clusters.dec import DECClusterHead
from pyg_em.models.base import ClusteringModel, LossOutput
from pyg_em.nn._csc_proximity import CSCProximity
from pyg_em.nn.proximity_attention import ProximityAttentionConv, ProximityGraph, whole_graph_proximity
from pyg_em.utils.cache import TensorKeyedCache
from pyg_em.utils.csc import SortedCSC
from pyg_em.utils.negative_sampling import forbidden_pair_keys, is_forbidden, masked_mean, sample_negatives_from
from pyg_em.validation import check_graph_data, check_positive, check_positive_int

__all__ = ["DAEGC"]


class DAEGC(ClusteringModel):
    r"""Graph attentional auto-encoder with a DEC self-training head.

    .. math::
        Z = \operatorname{normalize}\big(\mathrm{ELU}(\mathrm{PAConv}_2(\mathrm{ELU}(\mathrm{PAConv}_1(X, A)), A))\big),
        \qquad
        \hat A_{ij} = \sigma(z_i^\top z_j), \qquad
        \mathcal{L} = \mathcal{L}_r + \gamma\,\mathrm{KL}(P \,\|\, Q) + \lambda\,\mathcal{L}_x, \qquad
        \mathcal{L}_x = \frac{\lVert Z W_x + b_x - X \rVert_F^2}{\lVert X - \bar X \rVert_F^2}

    :math:`\mathrm{PAConv}` is :class:`~pyg_em.nn.ProximityAttentionConv`, :math:`\mathcal{L}_r` the binary
    cross-entropy on the graph's edges and ``neg_ratio`` times as many sampled non-edges, and :math:`P, Q` come
    from :class:`~pyg_em.clusters.DECClusterHead`. With ``feature_weight`` :math:`\lambda > 0` (not in the paper)
    both layers get a root term (``root_weight``) and a linear decoder reconstructs the features from :math:`Z`:
    :math:`\mathcal{L}_x` is the squared error relative to the features' total variance (:math:`\bar X` the
    column means; scale-free, so :math:`\lambda` means the same on any features). On a graph whose edges mix the
    clusters, the graph term alone learns the noise and averages informative features away; the feature term
    keeps them (see :class:`~pyg_em.recipes.DAEGCRecipe`, whose default sets :math:`\lambda` from the data).
    With :math:`\lambda = 0` the model is the paper's. The model holds the losses only;
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
        feature_weight (float): Weight :math:`\lambda` of the feature reconstruction; ``> 0`` also adds the
            layers' root terms. (default: :obj:`0.0`, the paper's model)

    Shapes:
        - **input:** :class:`~torch_geometric.data.Data` with ``x`` :math:`(N, F)` and ``edge_index``
          :math:`(2, E)`; mini-batches from ``NeighborLoader`` with ``n_id`` and ``batch_size``
        - **output:** embeddings :math:`(N, D)`, soft assignment :math:`(N, K)`
    """

    def __init__(self, in_channels: int, n_clusters: int, hidden_channels: int = 256, embedding_channels: int = 16,
                 gamma: float = 10.0, update_interval: int = 1, alpha: float = 1.0, neg_ratio: float = 3.0,
                 dropout: float = 0.5, feature_weight: float = 0.0) -> None:
        super().__init__(n_clusters)
        self.update_interval = check_positive_int(update_interval, "update_interval")
        self.gamma = check_positive(gamma, "gamma", allow_zero=True)
        self.neg_ratio = check_positive(neg_ratio, "neg_ratio")
        self.feature_weight = check_positive(feature_weight, "feature_weight", allow_zero=True)
        root = self.feature_weight > 0
        # Both layers attend over the same graph: one shared cache computes M once per (mini-batch) graph.
        shared = TensorKeyedCache()
        self.conv1 = ProximityAttentionConv(in_channels, hidden_channels, dropout=dropout, proximity_cache=shared,
                                            root_weight=root)
        self.conv2 = ProximityAttentionConv(hidden_channels, embedding_channels, dropout=dropout,
                                            proximity_cache=shared, root_weight=root)
        self.head = DECClusterHead(n_clusters, embedding_channels, alpha)
        self.decoder = InnerProductDecoder()
        self.feature_decoder = torch.nn.Linear(embedding_channels, in_channels) if root else None
        #: Mean squared distance of a feature row to the column means of the whole graph (set by
        #: :meth:`set_feature_scale`); ``None`` scores each loss against the variance of the rows it is given.
        self.feature_variance: float | None = None
        self._edge_key_cache = TensorKeyedCache()
        self._inference_cache = TensorKeyedCache(capacity=1)
        self.reset_parameters()

    # -- encoder / decoder ----------------------------------------------------------------------------
    #: The message-passing depth, i.e. the hops a mini-batch loader must sample.
    num_layers = 2

    def embed(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
              graph: ProximityGraph | None = None) -> Tensor:
        """Embeddings :math:`Z`; ``graph`` is a precomputed :class:`~pyg_em.nn.ProximityGraph` of ``edge_index``
        (a mini-batch's, see :func:`~pyg_em.nn.restrict_proximity`), computed and cached otherwise."""
        h = F.elu(self.conv1(x, edge_index, edge_weight, graph=graph))
        return F.normalize(F.elu(self.conv2(h, edge_index, edge_weight, graph=graph)), p=2, dim=-1)

    @torch.no_grad()
    def embed_data(self, data: Data, chunk_size: int = 8192, progress: bool = False) -> Tensor:
        """Embeddings of every node of ``data`` in evaluation mode, layer by layer in node chunks (exact).

        PyG's ``inference(loader)`` pattern: each layer attends ``chunk_size`` target nodes at a time, so the
        memory above the layer's input and output is bounded by a chunk's edges rather than by the whole
        graph's attention arrays. When the input features are narrower than the first layer (dense features,
        e.g. 32 features and 256 hidden units) the first layer aggregates the inputs and projects per chunk
        (:meth:`~pyg_em.nn.ProximityAttentionConv.forward_rows_from_input`), and each chunk's output is
        projected by the second layer at once: no :math:`N \\times` ``hidden_channels`` array is formed, only
        :math:`N \\times` ``embedding_channels`` ones. The proximity :math:`M` of ``data`` comes from
        :meth:`inference_graph`'s cache: repeated calls on the same graph (every DEC target refresh) compute it
        once.
        Equals :meth:`embed` in evaluation mode to float tolerance.

        Args:
            data (Data): The graph, with ``x`` and ``edge_index`` (optionally ``edge_weight``).
            chunk_size (int): Target nodes per chunk. (default: :obj:`8192`)
            progress (bool): Show a progress bar over the chunks. (default: :obj:`False`)
        """
        check_positive_int(chunk_size, "chunk_size")
        was_training = self.training
        device = self.head.centers.device
        x, edge_index = data.x.to(device), data.edge_index.to(device)
        edge_weight = getattr(data, "edge_weight", None)
        edge_weight = None if edge_weight is None else edge_weight.to(device)
        self.eval()
        try:
            graph = self.inference_graph(edge_index, x.size(0), edge_weight)
            chunks = range(0, x.size(0), chunk_size)
            narrow = x.layout == torch.strided and self.conv1.in_channels <= self.conv1.out_channels
            bars = tqdm(total=2 * len(chunks), desc="inference", disable=not progress, leave=False)
            root2 = None
            if narrow:
                scores = self.conv1.input_scores(x)
                h = x.new_empty(x.size(0), self.conv2.out_channels)  # layer 2's projection of layer 1's output
                if self.conv2.root_weight:
                    root2 = torch.empty_like(h)
                for start in chunks:
                    stop = min(start + chunk_size, x.size(0))
                    rows = F.elu(self.conv1.forward_rows_from_input(x, scores, graph, start, stop))
                    h[start:stop] = self.conv2.lin(rows)
                    if root2 is not None:
                        root2[start:stop] = self.conv2.lin_root(rows)
                    bars.update()
            else:
                hidden = self._layer_rows(self.conv1, self.conv1.project(x), graph, chunks, bars,
                                          self.conv1.project_root(x))
                h, root2 = self.conv2.project(hidden), self.conv2.project_root(hidden)
            out = self._layer_rows(self.conv2, h, graph, chunks, bars, root2)
            bars.close()
            del h, root2
            # F.normalize in place: at 10M nodes another N x D copy is 0.6 GiB.
            return out.div_(out.norm(dim=-1, keepdim=True).clamp_(min=1e-12))
        finally:
            self.train(was_training)

    def inference_graph(self, edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None,
                        build=None) -> ProximityGraph | CSCProximity:
        """The whole graph's proximity :math:`M` in the form :meth:`embed_data` reads, cached until
        ``edge_index``/``edge_weight`` change: :func:`~pyg_em.nn.csc_proximity` (one value per edge of the
        graph's sorted CSC) for an unweighted undirected graph, else :func:`~pyg_em.nn.proximity_graph` (the
        layers' own cache). ``build`` computes it on a miss instead (:func:`~pyg_em.recipes.fit_daegc` passes
        the one its loader samples from)."""
        def default() -> ProximityGraph | CSCProximity:
            return whole_graph_proximity(edge_index, num_nodes, edge_weight,
                                         general=lambda: self.conv1.graph(edge_index, num_nodes, edge_weight))

        return self._inference_cache.get((edge_index, edge_weight), build or default, extra=(num_nodes,))

    @staticmethod
    def _layer_rows(conv: ProximityAttentionConv, h: Tensor, graph: ProximityGraph | CSCProximity, chunks: range,
                    bars, root: Tensor | None = None) -> Tensor:
        """ELU of ``conv``'s output for every node from its projection ``h`` (and root term), chunk by chunk."""
        out = h.new_empty(h.size(0), conv.out_channels)
        scores = conv.projected_scores(h)  # once per layer, not once per chunk
        for start in chunks:
            stop = min(start + chunks.step, h.size(0))
            rows = None if root is None else root[start:stop]
            out[start:stop] = F.elu(conv.forward_rows(h, graph, start, stop, rows, scores=scores))
            bars.update()
        return out

    def decode(self, z: Tensor, edge_index: Tensor, sigmoid: bool = True) -> Tensor:
        """Edge probabilities :math:`\\sigma(z_i^\\top z_j)` (logits with ``sigmoid=False``), by PyG's
        :class:`~torch_geometric.nn.models.InnerProductDecoder` (``self.decoder``)."""
        return self.decoder(z, edge_index, sigmoid=sigmoid)

    def recon_loss(self, z: Tensor, pos_edge_index: Tensor, neg_edge_index: Tensor | None = None,
                   sources: Tensor | None = None, *, num_targets: int | None = None, n_id: Tensor | None = None,
                   forbidden: Tensor | SortedCSC | None = None, num_nodes: int | None = None) -> Tensor:
        """BCE on ``pos_edge_index`` and on non-edges (sampled when ``neg_edge_index`` is not given).

        Sampled pairs :math:`(u, v)` take :math:`u` from ``sources`` (default: the positive edges' first
        nodes, i.e. in proportion to degree) and :math:`v` uniformly among the first ``num_targets`` nodes
        (default: all). Pairs that hit an edge of ``pos_edge_index`` or a self-loop are masked out of the
        negative mean; with ``forbidden`` (sorted global pair keys, :func:`~pyg_em.utils.forbidden_pair_keys`
        of the whole graph, or its :class:`~pyg_em.utils.SortedCSC`) and ``n_id`` (global ids of ``z``'s rows)
        they are checked against every edge of the whole graph instead, as a mini-batch needs. A batch without
        positive edges contributes an exact zero that stays connected to the graph.
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
        if forbidden is not None:
            if n_id is None or num_nodes is None:
                raise ValueError("recon_loss(forbidden=...) needs n_id (global ids of z's rows) and num_nodes "
                                 "(the node count the keys were built with)")
            u = sources[torch.randint(sources.numel(), (count,), device=z.device)]
            v = torch.randint(num_targets or z.size(0), (count,), device=z.device)
            candidates, is_negative = torch.stack([u, v]), ~is_forbidden(n_id[u], n_id[v], num_nodes, forbidden)
        else:
            # The sorted keys are cached per graph: a full-batch graph is the same tensor at every step.
            keys = self._edge_key_cache.get((pos_edge_index,),
                                            lambda: forbidden_pair_keys(pos_edge_index, z.size(0)),
                                            extra=(z.size(0),))
            if num_targets is None:
                candidates, is_negative = sample_negatives_from(sources, z.size(0), count, keys)
            else:
                u = sources[torch.randint(sources.numel(), (count,), device=z.device)]
                v = torch.randint(num_targets, (count,), device=z.device)
                candidates, is_negative = torch.stack([u, v]), ~is_forbidden(u, v, z.size(0), keys)
        neg = self.decode(z, candidates, sigmoid=False)
        neg_nll = F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg), reduction="none")
        return pos_loss + masked_mean(neg_nll, is_negative)

    @torch.no_grad()
    def set_feature_scale(self, x: Tensor) -> float:
        r"""Fix the denominator of :meth:`feature_loss` to the whole graph's feature variance,
        :math:`v = \frac{1}{N}\lVert X - \bar X \rVert_F^2`, so that a mini-batch's rows are scored against the
        same scale as the full batch (a batch of one seed has no variance of its own).
        :func:`~pyg_em.recipes.fit_daegc` calls it once before mini-batch training; returns :math:`v`.
        """
        x = x.coalesce() if x.layout == torch.sparse_coo else x
        if x.layout == torch.strided:
            x = x.double()
            variance = (x - x.mean(dim=0)).pow(2).sum(dim=1).mean()
        else:  # E||x||^2 - ||mean x||^2, without densifying the features
            values = x.values().double()
            mean = torch.sparse.sum(x.double(), dim=0).to_dense() / x.size(0)
            variance = values.pow(2).sum() / x.size(0) - mean.pow(2).sum()
        self.feature_variance = float(variance)  # once per fit, outside the training steps
        return self.feature_variance

    def feature_loss(self, z: Tensor, x: Tensor) -> Tensor:
        r"""Relative squared error of the feature reconstruction,
        :math:`\lVert Z W_x + b_x - X \rVert_F^2 / (n\,v)` over the :math:`n` rows given (every node in full
        batch, the seeds of a mini-batch), with :math:`v` the whole graph's feature variance
        (:meth:`set_feature_scale`) or, before it is set, that of these rows,
        :math:`n\,v = \lVert X - \bar X \rVert_F^2`. Needs ``feature_weight > 0`` (the decoder exists only then).

        Args:
            z (Tensor): Embeddings :math:`(n, D)`.
            x (Tensor): Their feature rows :math:`(n, F)`, dense or sparse (densified: ``n`` rows only).
        """
        if self.feature_decoder is None:
            raise ValueError("DAEGC.feature_loss needs feature_weight > 0 (the model has no feature decoder); "
                             "build it with DAEGC(..., feature_weight=0.5)")
        x = x.to_dense() if x.layout != torch.strided else x
        x = x.to(z.dtype)
        error = (self.feature_decoder(z) - x).pow(2).sum()
        tiny = torch.finfo(z.dtype).tiny  # constant features have no variance to explain: 0/0 gives 0, not NaN
        if self.feature_variance is None:
            return error / (x - x.mean(dim=0, keepdim=True)).pow(2).sum().clamp_min(tiny)
        return error / max(x.size(0) * self.feature_variance, tiny)  # a Python number: no host-device copy

    def _with_features(self, parts: dict[str, Tensor], total: Tensor, z: Tensor, x: Tensor) -> LossOutput:
        r"""``total`` plus :math:`\lambda\,\mathcal{L}_x` (and its part) when ``feature_weight > 0``."""
        if self.feature_weight > 0:
            parts["features"] = self.feature_loss(z, x)
            total = total + self.feature_weight * parts["features"]
        return LossOutput(total, parts)

    # -- losses -----------------------------------------------------------------------------------------
    def pretrain_loss(self, data: Data) -> LossOutput:
        r"""Full-batch reconstruction loss of the pretraining phase (no clustering term): the graph's, plus
        :math:`\lambda\,\mathcal{L}_x` when ``feature_weight > 0``."""
        check_graph_data(data, require_edges=True, positive_weighted_degree=True)  # sync-free inside a Trainer
        z = self.embed(data.x, data.edge_index, getattr(data, "edge_weight", None))
        recon = self.recon_loss(z, data.edge_index)
        return self._with_features({"recon": recon}, recon, z, data.x)

    def loss(self, data: Data, refresh_target: bool = False) -> LossOutput:
        """Full-batch self-training loss; ``refresh_target=True`` first recomputes :math:`P` from this step's
        own soft assignment (equal to a separate inference pass when dropout is off, at no extra cost)."""
        check_graph_data(data, require_edges=True, positive_weighted_degree=True)  # sync-free inside a Trainer
        z = self.embed(data.x, data.edge_index, getattr(data, "edge_weight", None))
        recon = self.recon_loss(z, data.edge_index)
        q = self.head.soft_assignment(z)
        if refresh_target:
            self.head.refresh_target(q)
        cluster = self.head.kl_loss(q)
        return self._with_features({"recon": recon, "cluster": cluster}, recon + self.gamma * cluster, z, data.x)

    def _batch_parts(self, batch: Data) -> tuple[Tensor, int, Tensor]:
        """Embeddings of the sampled subgraph, the seed count, and the seeds' sampled edges (seed -> neighbour).

        The seeds' sampled edges are the first hop of a ``NeighborLoader`` batch (its ``num_sampled_edges[0]``
        leading columns; a slice, so no host synchronisation). A batch prepared by :func:`pyg_em.recipes.fit_daegc`
        carries ``proximity_graph`` (the whole graph's :math:`M` on the batch) and the gathered features.
        """
        n_id = getattr(batch, "n_id", None)
        if n_id is None or getattr(batch, "batch_size", None) is None:
            raise ValueError("DAEGC.loss_batch needs NeighborLoader batches with n_id (global node ids) and "
                             "batch_size (seed count); got a batch without them. Use "
                             "torch_geometric.loader.NeighborLoader or pyg_em.recipes.fit_daegc(batch_size=...)")
        hops = getattr(batch, "num_sampled_edges", None)
        if hops is not None and len(hops) != self.num_layers:
            raise ValueError(f"the loader samples {len(hops)} hop(s) (num_neighbors has {len(hops)} entries) but "
                             f"DAEGC has {self.num_layers} attention layers: pass num_neighbors with "
                             f"{self.num_layers} fan-outs, e.g. [15, 10]")
        z = self.embed(batch.x, batch.edge_index, getattr(batch, "edge_weight", None),
                       graph=getattr(batch, "proximity_graph", None))
        seeds = batch.batch_size
        if hops is not None:
            edges = batch.edge_index[:, : int(hops[0])]
        else:  # not from a NeighborLoader: the edges sampled for a seed end at the seed
            edges = batch.edge_index[:, batch.edge_index[1] < seeds]
        return z, seeds, edges.flip(0)

    def _batch_recon(self, batch: Data, forbidden: Tensor | SortedCSC | None,
                     num_nodes: int | None) -> tuple[Tensor, Tensor, int]:
        if forbidden is not None and num_nodes is None:
            raise ValueError("loss_batch(forbidden=...) needs num_nodes, the node count the keys were built with")
        z, seeds, edges = self._batch_parts(batch)
        # Negatives (u, v): u a seed in proportion to its sampled edges, v uniform over the seeds. Over an epoch
        # the seeds cover every node once, so this is the full-batch distribution (u by degree, v uniform).
        recon = self.recon_loss(z, edges, num_targets=seeds, n_id=batch.n_id if forbidden is not None else None,
                                forbidden=forbidden, num_nodes=num_nodes)
        return z, recon, seeds

    def pretrain_loss_batch(self, batch: Data, forbidden: Tensor | SortedCSC | None = None,
                            num_nodes: int | None = None) -> LossOutput:
        """Reconstruction loss of one ``NeighborLoader`` batch (see :meth:`loss_batch` for the arguments)."""
        z, recon, seeds = self._batch_recon(batch, forbidden, num_nodes)
        return self._with_features({"recon": recon}, recon, z[:seeds], self._seed_features(batch))

    def loss_batch(self, batch: Data, forbidden: Tensor | SortedCSC | None = None,
                   num_nodes: int | None = None) -> LossOutput:
        """Self-training loss of one ``NeighborLoader`` batch: reconstruction on the seeds' sampled edges plus
        the KL term on the seeds.

        Args:
            batch (Data): A ``NeighborLoader`` batch (``n_id``, ``batch_size``, two sampled hops).
            forbidden (Tensor or SortedCSC, optional): Sorted global pair keys of every edge of the whole graph
                (:func:`~pyg_em.utils.forbidden_pair_keys`), or the whole undirected graph's
                :class:`~pyg_em.utils.SortedCSC`; sampled negatives that are edges of the graph
                but not of the batch are then masked too. Without it only the batch's sampled edges are
                checked. :func:`~pyg_em.recipes.fit_daegc` passes it. (default: :obj:`None`)
            num_nodes (int, optional): Nodes of the whole graph, the base of ``forbidden``'s keys.
                (default: :obj:`None`)
        """
        z, recon, seeds = self._batch_recon(batch, forbidden, num_nodes)
        cluster = self.head.kl_loss(self.head.soft_assignment(z[:seeds]), batch.n_id[:seeds])
        return self._with_features({"recon": recon, "cluster": cluster}, recon + self.gamma * cluster, z[:seeds],
                                   self._seed_features(batch))

    def _seed_features(self, batch: Data) -> Tensor | None:
        """The seeds' feature rows: ``batch.seed_x`` (dense, gathered by the loader of
        :func:`~pyg_em.recipes.fit_daegc`), else the first ``batch_size`` rows of a dense ``batch.x``."""
        if self.feature_weight == 0:
            return None
        seed_x = getattr(batch, "seed_x", None)
        if seed_x is not None:
            return seed_x
        if batch.x.layout != torch.strided:
            raise ValueError("DAEGC with feature_weight > 0 needs the seeds' dense feature rows of a sparse batch: "
                             "batch.seed_x, as the loader of pyg_em.recipes.fit_daegc(batch_size=...) adds")
        return batch.x[: batch.batch_size]

    # -- clustering -------------------------------------------------------------------------------------
    @torch.no_grad()
    def initialize_cluster_centers(self, data: Data, n_init: int = 20, seed: int | None = 0,
                                   progress: bool = False) -> Tensor:
        """Set the centres by :func:`~pyg_em.clusters.kmeans` on the embeddings of every node (exact up to
        ``EXACT_KMEANS_MAX_POINTS`` nodes, sampled restarts plus chunked Lloyd passes above); returns them."""
        z = self.embed_data(data, progress=progress)
        self.head.initialize(z, n_init=n_init, seed=seed, progress=progress)
        return self.head.centers.detach()

    @torch.no_grad()
    def refresh_target(self, data: Data, progress: bool = False) -> None:
        """Recompute the DEC target :math:`P` from a full-graph inference pass."""
        self.head.refresh_target(self.head.soft_assignment(self.embed_data(data, progress=progress)))

    @torch.no_grad()
    def predict_proba(self, data: Data, progress: bool = False) -> Tensor:
        """Student-t soft assignment :math:`Q` :math:`(N, K)` of every node of ``data`` (evaluation mode)."""
        return self.head.soft_assignment(self.embed_data(data, progress=progress))

    def __repr__(self) -> str:
        weight = getattr(self, "feature_weight", 0.0)  # never raise, even on a half-built model
        features = f", feature_weight={weight:g}" if weight > 0 else ""
        return (f"{self.__class__.__name__}({self.conv1.in_channels}, n_clusters={self.n_clusters}, "
                f"hidden={self.conv1.out_channels}, embedding={self.conv2.out_channels}, gamma={self.gamma}"
                f"{features})")

r"""Graph auto-encoders (GAE) and variational graph auto-encoders (VGAE) as drop-in PyG models.

The public methods and call patterns are those of :class:`torch_geometric.nn.GAE` / :class:`~torch_geometric.nn.VGAE`
(``encode``, ``decode``, ``recon_loss``, ``kl_loss``, ``test``, ``reparametrize``), so existing training
loops keep working. On top, the models follow the package's :class:`~pyg_em.models.ClusteringModel`
template (``loss(data)``, ``loss_batch(batch)``, ``embed``, k-means clustering of the embeddings) and are
trained by :class:`pyg_em.train.Trainer`.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn.inits import reset
from torch_geometric.nn.models import InnerProductDecoder

from pyg_em.clusters import kmeans
from pyg_em.clusters.dec import student_t_assignment
from pyg_em.models.base import BaseModel, ClusteringModel, LossOutput
from pyg_em.nn.gcn_encoder import DEFAULT_CHUNK_SIZE
from pyg_em.utils.cache import TensorKeyedCache
from pyg_em.utils.negative_sampling import forbidden_pair_keys, is_forbidden, masked_mean, sample_negative_edges
from pyg_em.validation import check_edge_index, check_n_clusters, check_positive, check_positive_int

__all__ = ["GAE", "VGAE", "MAX_LOGSTD", "accepts_edge_weight"]

MAX_LOGSTD = 10
RECON_MODES = ("sampled", "full")
FULL_GRAPH_MAX_NODES = 30_000  # N^2 logits in memory: 3.6 GB in float32 at this size


def _check_decoder(decoder: Any, need_forward_all: bool) -> None:
    if not callable(decoder):
        raise TypeError(f"decoder must be a callable module, got {type(decoder).__name__}")
    if need_forward_all and not callable(getattr(decoder, "forward_all", None)):
        raise TypeError(
            f"decoder {type(decoder).__name__} has no forward_all(z, sigmoid=True) method, which the full-graph "
            "reconstruction (recon='full') needs; use recon='sampled' or add forward_all"
        )


def _check_nonempty(edge_index: Tensor, name: str) -> None:
    check_edge_index(edge_index, name=name)
    if edge_index.size(1) == 0:
        raise ValueError(f"{name} is empty: the reconstruction loss needs at least one positive edge")


def _forward_parameters(encoder: Any) -> list[inspect.Parameter] | None:
    """The parameters of the encoder's ``forward`` (or of the function itself); ``None`` without a signature."""
    target = encoder.forward if isinstance(encoder, torch.nn.Module) else encoder
    try:
        return list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature
        return None


def _takes_hops(encoder: Any) -> bool:
    """Whether the encoder's ``forward`` takes PyG's ``num_sampled_nodes_per_hop`` keyword."""
    params = _forward_parameters(encoder)
    return params is not None and any(p.name == "num_sampled_nodes_per_hop" for p in params)


def accepts_edge_weight(encoder: Any) -> bool:
    """Whether ``encoder(x, edge_index, edge_weight)`` is a valid call: its ``forward`` (or the function
    itself) takes a third positional argument, ``edge_weight``, or ``*args``."""
    params = _forward_parameters(encoder)
    if params is None:  # no signature: assume PyG's convention
        return True
    if any(p.kind is p.VAR_POSITIONAL for p in params) or any(p.name == "edge_weight" for p in params):
        return True
    return len([p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) >= 3


class GAE(ClusteringModel):
    r"""The Graph Auto-Encoder of Kipf & Welling (2016), a drop-in replacement for :class:`torch_geometric.nn.GAE`.

    .. math::
        \mathbf{Z} = \mathrm{Enc}(\mathbf{X}, \mathbf{A}), \qquad
        p(A_{ij} = 1 \mid \mathbf{z}_i, \mathbf{z}_j) = \sigma\big(\mathrm{Dec}(\mathbf{z}_i, \mathbf{z}_j)\big)
        \quad(\text{default } \mathbf{z}_i^{\top}\mathbf{z}_j).

    Two reconstruction losses are available through :meth:`loss` (``recon``):

    * ``'sampled'`` (PyG's): mean BCE over the positive edges plus mean BCE over ``neg_ratio`` times as many
      sampled negative pairs; negatives are never positive edges, self-loops or (when the training data
      carries ``held_out_edge_index``) held-out validation/test edges.
    * ``'full'`` (the paper's): weighted BCE over all :math:`N^2` entries of :math:`\mathbf{A} + \mathbf{I}`,

      .. math::
          \mathcal{L}_{rec} = \frac{N^2}{2(N^2 - E)}\cdot\frac{1}{N^2}\sum_{i,j}
          \Big[w\,A_{ij}\log\sigma(\mathbf{z}_i^\top\mathbf{z}_j)
          + (1 - A_{ij})\log\big(1-\sigma(\mathbf{z}_i^\top\mathbf{z}_j)\big)\Big],
          \qquad w = \frac{N^2 - E}{E},

      with :math:`E` the number of non-zeros of :math:`\mathbf{A} + \mathbf{I}`; held-out pairs get weight 0.

    Clustering: :meth:`initialize_cluster_centers` runs k-means on the embeddings (:math:`\mu` for the VGAE);
    :meth:`predict_proba` is the Student-t soft assignment
    :math:`q_{ik} \propto (1 + \lVert\mathbf{z}_i - \mathbf{c}_k\rVert^2/\alpha)^{-(\alpha+1)/2}`. Unlike other
    :class:`~pyg_em.models.ClusteringModel` subclasses, ``n_clusters`` is optional here (pure link
    prediction needs none); it can also be given to :meth:`initialize_cluster_centers`.

    Args:
        encoder (torch.nn.Module): Maps ``(x, edge_index[, edge_weight])`` to embeddings, e.g.
            :class:`pyg_em.nn.GCNEncoder`.
        decoder (torch.nn.Module, optional): Has ``forward(z, edge_index, sigmoid=True)`` (and
            ``forward_all(z, sigmoid=True)`` for ``recon='full'``). (default: PyG's
            :class:`~torch_geometric.nn.models.InnerProductDecoder`)
        n_clusters (int, optional): Number of clusters for the clustering methods. (default: :obj:`None`)
        recon (str): ``'sampled'`` or ``'full'``, the reconstruction used by :meth:`loss`.
            (default: :obj:`'sampled'`)
        neg_ratio (float): Sampled negatives per positive edge in ``'sampled'`` mode. (default: :obj:`1.0`)
        exclude_held_out (bool): Never use ``data.held_out_edge_index`` as negatives. (default: :obj:`True`)
        alpha (float): Degrees of freedom of the Student-t soft assignment. (default: :obj:`1.0`)

    Shapes:
        - **input:** ``Data`` with ``x`` :math:`(N, F)`, ``edge_index`` :math:`(2, E)` (message passing) and
          optionally ``pos_edge_label_index`` :math:`(2, E_{pos})` (edges to reconstruct; default
          ``edge_index``), ``edge_weight`` :math:`(E,)`, ``held_out_edge_index``
        - **output:** embeddings :math:`(N, D)`; :meth:`predict_proba` :math:`(N, K)`
    """

    def __init__(
        self,
        encoder: torch.nn.Module,
        decoder: torch.nn.Module | None = None,
        *,
        n_clusters: int | None = None,
        recon: str = "sampled",
        neg_ratio: float = 1.0,
        exclude_held_out: bool = True,
        alpha: float = 1.0,
    ) -> None:
        # ClusteringModel.__init__ insists on n_clusters >= 2; link prediction needs none, so only the
        # BaseModel part is initialised here and n_clusters is checked when it is given.
        BaseModel.__init__(self)
        if not callable(encoder):  # PyG accepts any callable (its own tests pass lambdas)
            raise TypeError(f"encoder must be callable (a torch.nn.Module or a function), got {type(encoder).__name__}")
        if recon not in RECON_MODES:
            raise ValueError(f"recon must be one of {RECON_MODES}, got {recon!r}")
        decoder = InnerProductDecoder() if decoder is None else decoder
        _check_decoder(decoder, need_forward_all=recon == "full")
        self.encoder, self.decoder = encoder, decoder
        self.n_clusters = None if n_clusters is None else check_n_clusters(n_clusters)
        self.recon = recon
        self.neg_ratio = check_positive(neg_ratio, "neg_ratio")
        self.exclude_held_out = exclude_held_out
        self.alpha = check_positive(alpha, "alpha")
        self.register_buffer("cluster_centers", None)
        self._forbidden_cache = TensorKeyedCache()
        self._target_cache = TensorKeyedCache()
        self._label_cache = TensorKeyedCache()
        self._warned_edge_weight = False
        self._batch_labels_checked = False
        GAE.reset_parameters(self)

    def reset_parameters(self) -> None:
        """Re-initialise the encoder and decoder (PyG's ``reset``) and forget the cluster centres."""
        reset(self.encoder)
        reset(self.decoder)
        self.cluster_centers = None

    # -- PyG API ------------------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """Alias for :meth:`encode`."""
        return self.encode(*args, **kwargs)

    def encode(self, *args: Any, **kwargs: Any) -> Tensor:
        """Run the encoder: node embeddings :math:`\\mathbf{Z}`."""
        return self.encoder(*args, **kwargs)

    def decode(self, *args: Any, **kwargs: Any) -> Tensor:
        """Run the decoder: edge probabilities (or logits with ``sigmoid=False``)."""
        return self.decoder(*args, **kwargs)

    def recon_loss(self, z: Tensor, pos_edge_index: Tensor, neg_edge_index: Tensor | None = None,
                   *, exclude_edge_index: Tensor | None = None) -> Tensor:
        r"""Mean BCE of the positive edges plus mean BCE of the negative pairs (PyG's ``recon_loss``).

        Args:
            z (Tensor): Embeddings :math:`(N, D)`.
            pos_edge_index (Tensor): Positive edges :math:`(2, E)`.
            neg_edge_index (Tensor, optional): Explicit negatives; when omitted, ``neg_ratio`` times as many
                pairs are sampled that are neither positives, self-loops nor in ``exclude_edge_index``.
                (default: :obj:`None`)
            exclude_edge_index (Tensor, optional): Pairs never sampled as negatives (keyword only).
                (default: :obj:`None`)
        """
        _check_nonempty(pos_edge_index, "pos_edge_index")
        pos_logits = self.decoder(z, pos_edge_index, sigmoid=False)
        pos_loss = -F.logsigmoid(pos_logits).mean()
        if neg_edge_index is not None:
            _check_nonempty(neg_edge_index, "neg_edge_index")
            neg_loss = -F.logsigmoid(-self.decoder(z, neg_edge_index, sigmoid=False)).mean()
            return pos_loss + neg_loss
        neg_edge_index, valid = self.sample_negatives(pos_edge_index, z.size(0), exclude_edge_index)
        neg_nll = -F.logsigmoid(-self.decoder(z, neg_edge_index, sigmoid=False))
        # Rejected candidates (vanishingly rare) simply do not count.
        return pos_loss + masked_mean(neg_nll, valid)

    def sample_negatives(self, pos_edge_index: Tensor, num_nodes: int,
                         exclude_edge_index: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``neg_ratio`` negatives per positive and their validity mask (see :func:`sample_negative_edges`)."""
        forbidden = self._forbidden_cache.get(
            (pos_edge_index, exclude_edge_index),
            lambda: forbidden_pair_keys(pos_edge_index, num_nodes, exclude_edge_index),
            extra=(num_nodes,),
        )
        num = max(1, int(round(self.neg_ratio * pos_edge_index.size(1))))
        return sample_negative_edges(pos_edge_index, num_nodes, num, forbidden=forbidden, return_mask=True)

    def full_recon_loss(self, z: Tensor, pos_edge_index: Tensor, exclude_edge_index: Tensor | None = None,
                        self_loops: bool = True) -> Tensor:
        r"""The paper's weighted BCE over all :math:`N^2` pairs (see the class docstring).

        Args:
            z (Tensor): Embeddings :math:`(N, D)`.
            pos_edge_index (Tensor): Positive edges (both directions of an undirected graph).
            exclude_edge_index (Tensor, optional): Held-out pairs, given weight 0. (default: :obj:`None`)
            self_loops (bool): Count the diagonal as positive, as in the paper. (default: :obj:`True`)
        """
        _check_nonempty(pos_edge_index, "pos_edge_index")
        n = z.size(0)
        if n > FULL_GRAPH_MAX_NODES:
            raise ValueError(f"recon='full' builds N^2 logits; N={n} > {FULL_GRAPH_MAX_NODES}: use recon='sampled'")
        target, weight, norm = self._target_cache.get(
            (pos_edge_index, exclude_edge_index),
            lambda: self._dense_target(pos_edge_index, exclude_edge_index, n, self_loops, z.dtype),
            extra=(n, self_loops, z.dtype, z.device),
        )
        logits = self.decoder.forward_all(z, sigmoid=False)
        return norm * F.binary_cross_entropy_with_logits(logits, target, weight=weight)

    @staticmethod
    def _dense_target(pos: Tensor, exclude: Tensor | None, n: int, self_loops: bool,
                      dtype: torch.dtype) -> tuple[Tensor, Tensor, float]:
        target = torch.zeros(n, n, dtype=dtype, device=pos.device)
        target[pos[0], pos[1]] = 1.0
        if self_loops:
            target.fill_diagonal_(1.0)
        num_pos = float(target.sum())  # once per graph, outside the training steps that reuse it
        pos_weight = (n * n - num_pos) / num_pos
        norm = n * n / (2.0 * (n * n - num_pos))
        weight = torch.where(target > 0, torch.full_like(target, pos_weight), torch.ones_like(target))
        if exclude is not None:
            weight[exclude[0], exclude[1]] = 0.0
            weight[exclude[1], exclude[0]] = 0.0
        return target, weight, norm

    @torch.no_grad()
    def test(self, z: Tensor, pos_edge_index: Tensor, neg_edge_index: Tensor) -> tuple[float, float]:
        """ROC-AUC and average precision of the decoder scores of positive versus negative pairs."""
        from pyg_em.metrics import link_prediction_metrics

        scores = link_prediction_metrics(self.decoder(z, pos_edge_index, sigmoid=True),
                                         self.decoder(z, neg_edge_index, sigmoid=True))
        return scores["auc"], scores["ap"]

    # -- BaseModel contract -------------------------------------------------------------------------------
    def _encoder_args(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> tuple:
        """``(x, edge_index[, edge_weight])``: the weights go only to an encoder whose ``forward`` takes them
        (PyG's example encoders are ``forward(x, edge_index)``)."""
        if edge_weight is None:
            return x, edge_index
        if not accepts_edge_weight(self.encoder):
            if not self._warned_edge_weight:
                warnings.warn(f"the encoder {type(self.encoder).__name__} takes no edge_weight: the graph's edge "
                              "weights are ignored", UserWarning, stacklevel=3)
                self._warned_edge_weight = True
            return x, edge_index
        return x, edge_index, edge_weight

    def _encode_data(self, data: Data) -> Tensor:
        return self.encode(*self._encoder_args(data.x, data.edge_index, getattr(data, "edge_weight", None)))

    def _encode_batch(self, batch: Data) -> Tensor:
        """Encode a link-loader batch; an encoder that takes PyG's ``num_sampled_nodes_per_hop`` /
        ``num_sampled_edges_per_hop`` (:class:`~pyg_em.nn.GCNEncoder`, PyG's ``BasicGNN`` models) gets the
        batch's hop counts and computes only what its seed nodes, the endpoints of ``edge_label_index``, need
        (the first rows of the batch; see :meth:`~pyg_em.nn.GCNEncoder.sampled_heads`)."""
        nodes, edges = getattr(batch, "num_sampled_nodes", None), getattr(batch, "num_sampled_edges", None)
        if nodes is None or edges is None or getattr(batch, "edge_label", None) is None or not _takes_hops(
                self.encoder):
            return self._encode_data(batch)
        args = self._encoder_args(batch.x, batch.edge_index, getattr(batch, "edge_weight", None))
        return self.encode(*args, num_sampled_nodes_per_hop=list(nodes), num_sampled_edges_per_hop=list(edges))

    def embed(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """Deterministic embeddings: the encoder output (the mean :math:`\\mu` for the VGAE)."""
        return self.encoder(*self._encoder_args(x, edge_index, edge_weight))

    @torch.no_grad()
    def embed_data(self, data: Data, chunk_size: int | None = DEFAULT_CHUNK_SIZE) -> Tensor:
        """Deterministic embeddings of every node of ``data`` in evaluation mode (restores the previous mode).

        With an encoder that has ``layerwise_forward`` (:class:`~pyg_em.nn.GCNEncoder`,
        :class:`~pyg_em.nn.VariationalGCNEncoder`) they are computed one layer at a time in chunks of
        ``chunk_size`` target nodes, exactly (:meth:`~pyg_em.nn.GCNEncoder.layerwise_forward`): no
        :math:`E \\times F` message array, so the memory above the graph and the layer outputs is bounded by a
        chunk. ``chunk_size=None``, or another encoder, runs :meth:`embed` on the whole graph.

        Args:
            data (Data): The graph (moved to the model's device first).
            chunk_size (int, optional): Target nodes per chunk. (default: :obj:`8192`)
        """
        layerwise = getattr(self.encoder, "layerwise_forward", None)
        if chunk_size is None or not callable(layerwise):
            return super().embed_data(data)
        check_positive_int(chunk_size, "chunk_size")
        return self._evaluate_on(data, lambda d: layerwise(d.x, d.edge_index, getattr(d, "edge_weight", None),
                                                           chunk_size=chunk_size)[0])

    def _held_out(self, data: Data) -> Tensor | None:
        return getattr(data, "held_out_edge_index", None) if self.exclude_held_out else None

    def reconstruction(self, z: Tensor, data: Data) -> Tensor:
        """The reconstruction term of :meth:`loss` for ``data`` (mode ``recon``).

        The edges to reconstruct are ``data.pos_edge_label_index`` (``RandomLinkSplit(split_labels=True)``),
        else the labelled pairs ``edge_label_index`` / ``edge_label`` of PyG's default ``RandomLinkSplit``
        output (its negatives are used as given), else ``edge_index``.
        """
        pos = getattr(data, "pos_edge_label_index", None)
        if pos is None and getattr(data, "edge_label_index", None) is not None and self.recon == "sampled":
            return self._labelled_recon(z, data.edge_label_index, getattr(data, "edge_label", None),
                                        exclude_edge_index=self._held_out(data))
        pos = data.edge_index if pos is None else pos
        if self.recon == "full":
            # The full-graph target is the training adjacency: the message-passing edges.
            return self.full_recon_loss(z, data.edge_index, self._held_out(data))
        return self.recon_loss(z, pos, exclude_edge_index=self._held_out(data))

    def loss(self, data: Data) -> LossOutput:
        """Full-batch loss: ``recon`` reconstruction of ``data.pos_edge_label_index`` (or ``edge_index``)."""
        z = self._encode_data(data)
        recon = self.reconstruction(z, data)
        return LossOutput(recon, {"recon": recon.detach()})

    def _labelled_recon(self, z: Tensor, label_index: Tensor, labels: Tensor | None,
                        exclude_edge_index: Tensor | None = None, valid: Tensor | None = None) -> Tensor:
        """Mean BCE over the positive labelled pairs plus mean BCE over the negative ones (``valid`` masks pairs
        out). Full-batch labels without a single negative fall back to sampled negatives: training on
        positives alone would drive every score to one."""
        if labels is None or not self._has_negatives(labels):
            positives = label_index if labels is None else label_index[:, labels > 0]
            return self.recon_loss(z, positives, exclude_edge_index=exclude_edge_index)
        return self._labelled_bce(z, label_index, labels, valid)

    def _labelled_bce(self, z: Tensor, label_index: Tensor, labels: Tensor, valid: Tensor | None) -> Tensor:
        logits = self.decoder(z, label_index, sigmoid=False)
        is_pos = labels > 0
        nll = F.binary_cross_entropy_with_logits(logits, is_pos.to(logits.dtype), reduction="none")
        keep = torch.ones_like(is_pos) if valid is None else valid
        return masked_mean(nll, is_pos & keep) + masked_mean(nll, ~is_pos & keep)

    def _has_negatives(self, labels: Tensor) -> bool:
        # Read once per label tensor (a host sync), not at every step of a full-batch run.
        return self._label_cache.get((labels,), lambda: bool((labels <= 0).any()))

    def _batch_recon(self, z: Tensor, batch: Data, forbidden: Tensor | None, num_nodes: int | None) -> Tensor:
        label_index = getattr(batch, "edge_label_index", None)
        if label_index is None:
            raise ValueError("loss_batch expects a LinkNeighborLoader batch with edge_label_index")
        labels = getattr(batch, "edge_label", None)
        valid = None
        if forbidden is not None and labels is not None:
            n_id = getattr(batch, "n_id", None)
            if n_id is None:
                raise ValueError("loss_batch(forbidden=...) needs batches with n_id (global node ids), as "
                                 "LinkNeighborLoader yields them")
            # The loader draws its negatives blindly: a drawn pair that is a training or held-out edge (global
            # ids) is masked out, never taught as a non-edge.
            src, dst = n_id[label_index[0]], n_id[label_index[1]]
            valid = (labels > 0) | ~is_forbidden(src, dst, num_nodes, forbidden)
        if labels is None:  # positives only: negatives sampled among the batch's nodes
            return self.recon_loss(z, label_index, exclude_edge_index=batch.edge_index)
        if not self._batch_labels_checked:
            # Once per model, not per step (it reads a device value): a loader built without negative sampling
            # would train on positives alone, the loss would go to zero and every score to one.
            if not bool((labels <= 0).any()):
                raise ValueError("the link loader's batches carry only positive labels (edge_label all 1): "
                                 "build LinkNeighborLoader with neg_sampling='binary' (or "
                                 "pyg_em.recipes.link_neighbor_loader), or drop edge_label so that negatives "
                                 "are sampled inside each batch")
            self._batch_labels_checked = True
        return self._labelled_bce(z, label_index, labels, valid)

    def loss_batch(self, batch: Data, forbidden: Tensor | None = None, num_nodes: int | None = None) -> LossOutput:
        """Loss on a :class:`~torch_geometric.loader.LinkNeighborLoader` batch (``neg_sampling='binary'``).

        Args:
            batch (Data): A link-loader batch with ``edge_label_index``, ``edge_label`` (1 for edges, 0 for
                sampled negatives) and ``n_id``. Positive-only labels get sampled negatives instead.
            forbidden (Tensor, optional): Sorted global pair keys
                (:func:`~pyg_em.utils.forbidden_pair_keys` of the training and held-out edges); sampled
                negatives that hit them are masked out. (default: :obj:`None`)
            num_nodes (int, optional): Nodes of the whole graph, the base of ``forbidden``'s keys.
                (default: :obj:`None`)
        """
        if forbidden is not None and num_nodes is None:
            raise ValueError("loss_batch(forbidden=...) needs num_nodes, the node count the keys were built with")
        z = self._encode_batch(batch)
        recon = self._batch_recon(z, batch, forbidden, num_nodes)
        return LossOutput(recon, {"recon": recon.detach()})

    # -- clustering ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def initialize_cluster_centers(self, data: Data, n_clusters: int | None = None, n_init: int = 10,
                                   seed: int | None = 0) -> Tensor:
        """k-means (scikit-learn, k-means++) on the embeddings of ``data``; stores and returns the centres."""
        if n_clusters is not None:
            self.n_clusters = check_n_clusters(n_clusters)
        if self.n_clusters is None:
            raise ValueError("n_clusters is not set: pass n_clusters= here or to the constructor")
        z = self.embed_data(data)
        _, centers = kmeans(z, self.n_clusters, n_init=n_init, seed=seed)
        self.cluster_centers = centers.to(z.device, z.dtype)
        return self.cluster_centers

    @torch.no_grad()
    def predict_proba(self, data: Data) -> Tensor:
        """Student-t soft assignment of the embeddings to the k-means centres, rows summing to one."""
        if self.cluster_centers is None:
            raise RuntimeError("no cluster centres yet: call initialize_cluster_centers(data) first")
        return student_t_assignment(self.embed_data(data), self.cluster_centers, self.alpha)

    def extra_repr(self) -> str:
        # getattr: repr must work on a half-built object too (e.g. in a debugger after a failed __init__).
        """The reconstruction mode, negative ratio and cluster count, for ``repr(model)``."""
        return (f"recon={getattr(self, 'recon', None)!r}, neg_ratio={getattr(self, 'neg_ratio', None)}, "
                f"n_clusters={getattr(self, 'n_clusters', None)}")

    def __repr__(self) -> str:
        encoder = self.__dict__.get("encoder", self._modules.get("encoder") if "_modules" in self.__dict__ else None)
        if encoder is not None and not isinstance(encoder, torch.nn.Module):
            return f"{type(self).__name__}(encoder={encoder!r}, {self.extra_repr()})"
        return super().__repr__() if "_modules" in self.__dict__ else f"{type(self).__name__}(<uninitialised>)"


class VGAE(GAE):
    r"""The Variational Graph Auto-Encoder of Kipf & Welling (2016), a drop-in for :class:`torch_geometric.nn.VGAE`.

    The encoder returns :math:`(\boldsymbol{\mu}, \log\boldsymbol{\sigma})`;
    :math:`\mathbf{z}_i = \boldsymbol{\mu}_i + \boldsymbol{\sigma}_i \odot \boldsymbol{\varepsilon}_i` in
    training and :math:`\mathbf{z}_i = \boldsymbol{\mu}_i` in evaluation. The ELBO is

    .. math::
        \mathcal{L} = \mathbb{E}_{q(\mathbf{Z})}\Big[\sum_{i,j}\log p(A_{ij}\mid\mathbf{z}_i,\mathbf{z}_j)\Big]
        - \sum_{i=1}^{N}\mathrm{KL}\big(q(\mathbf{z}_i)\,\|\,\mathcal{N}(0, I)\big),
        \qquad
        \mathrm{KL}_i = -\tfrac12\sum_{d}\big(1 + 2\log\sigma_{id} - \mu_{id}^2 - \sigma_{id}^2\big).

    **KL scaling.** :meth:`kl_loss` returns :math:`\overline{\mathrm{KL}} = \frac1N\sum_i \mathrm{KL}_i` (PyG's
    convention). Both reconstruction losses are *averages over pairs*, i.e. the pair sum divided by
    :math:`N^2` (the full-graph BCE literally averages the :math:`N^2` entries; the sampled loss is an
    unbiased estimate of such an average for each class). Dividing the whole ELBO by :math:`N^2` gives

    .. math::
        \frac{1}{N^2}\sum_{i}\mathrm{KL}_i = \frac{1}{N}\,\overline{\mathrm{KL}},

    so :meth:`loss` adds ``kl_weight * kl_loss() / N``; this is exactly the paper's code
    (``0.5 / N * mean(sum(1 + 2 log σ - μ² - σ²))``) and PyG's example (``kl_loss() / N``). Using the
    un-scaled :math:`\overline{\mathrm{KL}}` would weigh the prior :math:`N` times too strongly and collapse
    the embeddings. In a mini-batch, :math:`N` is the number of nodes of the sampled subgraph, and the mean is
    over the rows the encoder returns (the seed nodes with a hop-aware encoder such as
    :class:`~pyg_em.nn.GCNEncoder`, whose outer-hop rows have truncated receptive fields).

    Args:
        encoder (torch.nn.Module): Returns ``(mu, logstd)``, e.g. :class:`pyg_em.nn.VariationalGCNEncoder`.
        decoder (torch.nn.Module, optional): As in :class:`GAE`. (default: :obj:`None`)
        kl_weight (float): Multiplier of the (scaled) KL term in :meth:`loss`. (default: :obj:`1.0`)
        **kwargs: The keyword arguments of :class:`GAE`.
    """

    def __init__(self, encoder: torch.nn.Module, decoder: torch.nn.Module | None = None, *,
                 kl_weight: float = 1.0, **kwargs: Any) -> None:
        super().__init__(encoder, decoder, **kwargs)
        self.kl_weight = check_positive(kl_weight, "kl_weight", allow_zero=True)
        self.__mu__: Tensor | None = None
        self.__logstd__: Tensor | None = None

    def reparametrize(self, mu: Tensor, logstd: Tensor) -> Tensor:
        """:math:`\\mu + \\sigma\\varepsilon` in training mode, :math:`\\mu` in evaluation mode."""
        if self.training:
            return mu + torch.randn_like(logstd) * torch.exp(logstd)
        return mu

    def _split(self, out: Any) -> tuple[Tensor, Tensor]:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError("a VGAE encoder must return the pair (mu, logstd), e.g. VariationalGCNEncoder")
        return out[0], out[1]

    def encode(self, *args: Any, **kwargs: Any) -> Tensor:
        """Run the encoder, store :math:`\\mu` and :math:`\\log\\sigma` (clamped), return a sample :math:`z`."""
        mu, logstd = self._split(self.encoder(*args, **kwargs))
        self.__mu__, self.__logstd__ = mu, logstd.clamp(max=MAX_LOGSTD)
        return self.reparametrize(self.__mu__, self.__logstd__)

    def kl_loss(self, mu: Tensor | None = None, logstd: Tensor | None = None) -> Tensor:
        """Mean over nodes of :math:`\\mathrm{KL}(q(z_i)\\,\\|\\,\\mathcal{N}(0, I))` (of the last encoding)."""
        mu = self.__mu__ if mu is None else mu
        logstd = self.__logstd__ if logstd is None else logstd.clamp(max=MAX_LOGSTD)
        if mu is None or logstd is None:
            raise RuntimeError("kl_loss() needs mu and logstd: call encode() first or pass them")
        return -0.5 * torch.mean(torch.sum(1 + 2 * logstd - mu**2 - logstd.exp() ** 2, dim=1))

    def embed(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """Deterministic embeddings: the posterior mean :math:`\\mu`."""
        return self._split(self.encoder(*self._encoder_args(x, edge_index, edge_weight)))[0]

    def loss(self, data: Data) -> LossOutput:
        """Negative ELBO per pair: reconstruction ``+ kl_weight * kl_loss() / N`` (see the class docstring)."""
        z = self._encode_data(data)
        recon = self.reconstruction(z, data)
        kl = self.kl_loss() / z.size(0)
        total = recon + self.kl_weight * kl
        return LossOutput(total, {"recon": recon.detach(), "kl": kl.detach()})

    def loss_batch(self, batch: Data, forbidden: Tensor | None = None, num_nodes: int | None = None) -> LossOutput:
        """Mini-batch negative ELBO: :meth:`GAE.loss_batch`'s reconstruction plus the scaled KL term."""
        if forbidden is not None and num_nodes is None:
            raise ValueError("loss_batch(forbidden=...) needs num_nodes, the node count the keys were built with")
        z = self._encode_batch(batch)
        recon = self._batch_recon(z, batch, forbidden, num_nodes)
        # Averaged over the rows encoded (the seeds with a hop-aware encoder), scaled by the batch's node count.
        kl = self.kl_loss() / batch.num_nodes
        return LossOutput(recon + self.kl_weight * kl, {"recon": recon.detach(), "kl": kl.detach()})

    def extra_repr(self) -> str:
        """The :class:`GAE` settings plus ``kl_weight``, for ``repr(model)``."""
        return f"{super().extra_repr()}, kl_weight={getattr(self, 'kl_weight', None)}"

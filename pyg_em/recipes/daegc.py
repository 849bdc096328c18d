"""DAEGC recipes: the training protocol of Wang et al. (IJCAI 2019) around the loss-only
:class:`~pyg_em.models.DAEGC` model — reconstruction pretraining, k-means initialisation, DEC self-training."""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Data

from pyg_em.clusters import feature_silhouette
from pyg_em.metrics import clustering_metrics
from pyg_em.models import DAEGC
from pyg_em.nn import (
    CSCProximity,
    FeatureRows,
    ProximityGraph,
    gather_proximity,
    proximity_on_edges,
    whole_graph_proximity,
)
from pyg_em.recipes.base import ConfigError, Recipe, RecipeResult, clustering_report, resolve_n_clusters
from pyg_em.train import (
    Callback,
    LambdaCallback,
    Trainer,
    load_checkpoint,
    process_rank,
    seed_everything,
    shard_indices,
    share_across_local_ranks,
)
from pyg_em.utils.csc import SortedCSC
from pyg_em.utils.negative_sampling import forbidden_pair_keys
from pyg_em.validation import as_int, check_graph, check_n_clusters, check_positive_int

__all__ = ["fit_daegc", "DAEGCRecipe", "daegc_neighbor_loader", "check_num_neighbors", "auto_feature_weight"]

#: The ``feature_weight='auto'`` rule, :math:`\lambda = \min(3, 40\,\max(0, s - 0.025))` of the features'
#: silhouette :math:`s` (:func:`~pyg_em.clusters.feature_silhouette`). Chosen on 2,000-node SBMs and Planetoid
#: (``benchmarks/bench_recipes.py``): where the features cluster (s = 0.05-0.11) a weight of 1-3 lifted DAEGC
#: from NMI 0.05-0.37 to 0.44-0.90 (seed 0); where they are noise (s = 0.023 at feature noise 6) the paper's
#: model is kept. The floor sits above bag-of-words features, whose silhouette depends on the k-means seed
#: (Cora 0.004-0.019 over 10 seeds, CiteSeer 0.003-0.008): there the root terms alone cost up to 8 ACC points
#: on Cora, so the model must stay the paper's.
FEATURE_SILHOUETTE_FLOOR = 0.025
FEATURE_WEIGHT_SLOPE = 40.0
FEATURE_WEIGHT_CAP = 3.0


def auto_feature_weight(silhouette: float) -> float:
    r"""The feature-reconstruction weight :math:`\lambda` that ``feature_weight='auto'`` picks for features
    whose k-means silhouette is ``silhouette`` (rule and constants above)."""
    return float(min(FEATURE_WEIGHT_CAP, FEATURE_WEIGHT_SLOPE * max(0.0, silhouette - FEATURE_SILHOUETTE_FLOOR)))


def _pretrain_epochs(pretrain_steps: int, pretrain_epochs: int | None, loader: Any) -> int:
    """Pretraining length in whole epochs: the fewest that reach ``pretrain_steps`` optimizer steps."""
    if pretrain_epochs is not None:
        return pretrain_epochs
    steps_per_epoch = 1 if loader is None else max(1, len(loader))
    return -(-pretrain_steps // steps_per_epoch)


class _FirstBatches:
    """The first ``steps`` batches of each pass over ``loader`` (a fresh shuffle per pass): pretraining on a
    graph whose one epoch has more batches than the step budget, so that its cost stays ``steps`` batches
    however large the graph (one whole epoch of a 10M-node graph is 9,766 steps of 1,024 seeds, about 100x
    the budget that clusters best)."""

    def __init__(self, loader: Any, steps: int) -> None:
        self.loader, self.steps = loader, steps

    def __len__(self) -> int:
        return min(self.steps, len(self.loader))

    def __iter__(self):
        return itertools.islice(iter(self.loader), self.steps)


def _pretrain_loader(loader: Any, pretrain_steps: int, pretrain_epochs: int | None) -> Any:
    """The pretraining loader: ``loader``, or its first ``pretrain_steps`` batches when one epoch is longer."""
    if loader is None or pretrain_epochs is not None or len(loader) <= pretrain_steps:
        return loader
    return _FirstBatches(loader, pretrain_steps)


def check_num_neighbors(num_neighbors: Any, depth: int, name: str = "num_neighbors") -> list[int]:
    """``num_neighbors`` as a list of ``depth`` fan-outs, each a positive int or -1 (all neighbours)."""
    if isinstance(num_neighbors, (str, bytes)) or not hasattr(num_neighbors, "__len__"):
        raise ValueError(f"{name} must be a list of {depth} fan-outs (one per layer), got {num_neighbors!r}")
    fanouts = [as_int(k) if as_int(k) is not None else k for k in num_neighbors]  # NumPy/torch integers too
    if len(fanouts) != depth:
        raise ValueError(f"{name} must have {depth} fan-outs, one per message-passing layer of the model, got "
                         f"{fanouts!r}; e.g. {[15, 10][:depth] + [10] * max(0, depth - 2)}")
    for k in fanouts:
        if isinstance(k, bool) or not isinstance(k, int) or not (k > 0 or k == -1):
            raise ValueError(f"{name} entries must be positive ints (or -1 for every neighbour), got {fanouts!r}: "
                             "a fan-out of 0 samples batches without edges")
    return fanouts


class _DAEGCBatch:
    """``NeighborLoader`` transform: the batch's feature rows (gathered from one CSR/dense copy) and its
    attention pattern with the whole graph's proximity :math:`M` (gathered by edge id, not recomputed), both
    built on the CPU where the loader builds the batch, so a training step reads no count from the device.
    ``edge_values``/``loop_values`` are :math:`M` per edge of the loader's graph (the order of its ``e_id``)
    and per node."""

    def __init__(self, x: torch.Tensor, edge_values: torch.Tensor, loop_values: torch.Tensor,
                 seed_features: bool = False) -> None:
        self.features = FeatureRows(x)
        self.seed_features = seed_features
        self.edge_values, self.loop_values = edge_values, loop_values

    def __call__(self, batch: Data) -> Data:
        batch = self.features.transform(batch)
        if self.seed_features:  # the dense rows the feature reconstruction compares with (seeds only)
            rows = self.features(batch.n_id[: batch.batch_size])
            batch.seed_x = rows.to_dense() if rows.layout != torch.strided else rows
        batch.proximity_graph = gather_proximity(self.edge_values, self.loop_values, batch.n_id, batch.e_id,
                                                 batch.edge_index)
        return batch


def daegc_neighbor_loader(data: Data, batch_size: int, num_neighbors: list[int] | None = None, *,
                          seed: int = 0, shuffle: bool = True, graph: ProximityGraph | CSCProximity | None = None,
                          seed_features: bool = False):
    """The :class:`~torch_geometric.loader.NeighborLoader` of :func:`fit_daegc`: ``batch_size`` seed nodes per
    batch (this rank's shard under ``torch.distributed``), ``num_neighbors`` per attention layer, features
    gathered by :class:`~pyg_em.nn.FeatureRows` and the whole graph's proximity on each batch, gathered by
    edge id (:func:`~pyg_em.nn.gather_proximity`).

    An unweighted undirected graph is sampled from the sorted CSC of its :class:`~pyg_em.nn.CSCProximity`,
    which also holds :math:`M` in that edge order: one copy of the edges serves the sampler, the proximity and
    (in :func:`fit_daegc`) the rejection of negatives. Other graphs are sampled from a CSC copy sorted by PyG's
    ``sort_csc``, with :math:`M` looked up once per edge in :func:`~pyg_em.nn.proximity_graph`.

    Args:
        data (Data): The whole graph (``x``, ``edge_index``, optional ``edge_weight``).
        batch_size (int): Seed nodes per batch.
        num_neighbors (list[int], optional): Fan-out per layer (positive, or -1 for all).
            (default: ``[15, 10]``)
        seed (int): Seed of the seed-node sharding. (default: :obj:`0`)
        shuffle (bool): Shuffle the seeds every epoch. (default: :obj:`True`)
        graph (ProximityGraph or CSCProximity, optional): The proximity of ``data`` when already computed
            (:meth:`~pyg_em.models.DAEGC.inference_graph`, :func:`~pyg_em.nn.proximity_graph`).
            (default: computed here)
        seed_features (bool): Add ``seed_x``, the seeds' dense feature rows, to every batch (what a
            :class:`~pyg_em.models.DAEGC` with ``feature_weight > 0`` reconstructs). (default: :obj:`False`)
    """
    from torch_geometric.loader import NeighborLoader

    check_positive_int(batch_size, "batch_size")
    fanouts = check_num_neighbors([15, 10] if num_neighbors is None else num_neighbors, DAEGC.num_layers)
    edge_weight = getattr(data, "edge_weight", None)
    if graph is None:
        graph = _whole_graph_proximity(data)
    if isinstance(graph, CSCProximity):
        loader_data = Data(edge_index=graph.graph.edge_index.cpu(), num_nodes=data.num_nodes)
        edge_values, loop_values = graph.values.cpu(), graph.loop_values.cpu()
    else:
        # The sampler's CSC layout, sorted once by PyG's own sort_csc (so sampling is what NeighborLoader would
        # do) and, under torch.distributed, shared by the ranks of a host instead of sorted again by each.
        loader_data = share_across_local_ranks(lambda: _csc_sorted(data.edge_index, edge_weight, data.num_nodes))
        edge_values, loop_values = share_across_local_ranks(
            lambda: tuple(t.cpu() for t in proximity_on_edges(graph, loader_data.edge_index)))
    transform = _DAEGCBatch(data.x.cpu(), edge_values, loop_values, seed_features)
    return NeighborLoader(loader_data, num_neighbors=fanouts, batch_size=batch_size, shuffle=shuffle,
                          input_nodes=shard_indices(data.num_nodes, seed=seed or 0, equal_size=True),
                          transform=transform, is_sorted=True)


def _whole_graph_proximity(data: Data) -> ProximityGraph | CSCProximity:
    """:func:`~pyg_em.nn.whole_graph_proximity` of ``data`` on the host; under ``torch.distributed`` one copy per
    host (:func:`~pyg_em.train.share_across_local_ranks`, a collective)."""
    edge_weight = getattr(data, "edge_weight", None)
    return share_across_local_ranks(lambda: whole_graph_proximity(
        data.edge_index.cpu(), data.num_nodes, None if edge_weight is None else edge_weight.cpu()))


def _csc_sorted(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int) -> Data:
    """The loader's graph (no ``x``: rows are gathered) with its edges in PyG's CSC order."""
    from torch_geometric.sampler.utils import sort_csc

    row, col, perm = sort_csc(edge_index[0].cpu(), edge_index[1].cpu())
    data = Data(edge_index=torch.stack([row, col]), num_nodes=num_nodes)
    if edge_weight is not None:
        data.edge_weight = edge_weight.cpu()[perm]
    return data


@contextlib.contextmanager
def _batch_density_decided(model: DAEGC, loader: Any):
    """Mini-batch training with the first layer told whether its input is sparse, as the loader's
    :class:`~pyg_em.nn.FeatureRows` decided once for the whole feature matrix: otherwise the layer's automatic
    choice counts the non-zeros of every batch's rows again, a host synchronisation per step on an accelerator."""
    conv, before = model.conv1, model.conv1.sparse_input
    if loader is not None and before is None:
        conv.sparse_input = loader.transform.features.sparse
    try:
        yield
    finally:
        conv.sparse_input = before


class _SelfTrainingMonitor(Callback):
    """Records, per refresh of the target, the fraction of nodes whose cluster changed (``assignment_change``)
    and, when ground truth exists, ``acc``/``nmi`` of the current assignment: the KL loss of self-training
    rises by design, and these show what it changes. Its state (the last assignment) goes into the
    checkpoints, so a resumed run records the same changes as an uninterrupted one."""

    def __init__(self, model: DAEGC, labels: torch.Tensor | None) -> None:
        self.model, self.labels = model, labels

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        """Append the records of a refresh that happened in this epoch (once per refresh)."""
        head = self.model.head
        change, assignment = head.assignment_change, head.assignment
        if change is None or assignment is None or getattr(head, "_logged", None) is assignment:
            return
        head._logged = assignment  # one record per refresh
        trainer.history.setdefault("assignment_change", []).append(float(change))
        if self.labels is not None:
            known = self.labels >= 0
            scores = clustering_metrics(self.labels[known], assignment.cpu()[known])
            for key in ("acc", "nmi"):
                trainer.history.setdefault(key, []).append(scores[key])

    def state_dict(self) -> dict:
        """The last hard assignment (the reference of the next ``assignment_change``)."""
        assignment = self.model.head.assignment
        return {"assignment": None if assignment is None else assignment.cpu()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the last assignment, already logged."""
        assignment = state.get("assignment")
        head = self.model.head
        head.assignment = None if assignment is None else assignment.to(head.centers.device)
        head._logged = head.assignment


class _Stopwatch(Callback):
    """Seconds per epoch of a Trainer, appended to ``timings[key]`` (wall clock; host-side only)."""

    def __init__(self, timings: dict[str, Any], key: str) -> None:
        self.timings, self.key, self._start = timings, key, 0.0

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Start the clock."""
        self._start = time.perf_counter()

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        """Record the epoch's duration."""
        self.timings.setdefault(self.key, []).append(time.perf_counter() - self._start)


def fit_daegc(model: DAEGC, data: Data, *, pretrain_steps: int = 100, epochs: int = 100, pretrain_lr: float = 5e-3,
              lr: float = 1e-4, weight_decay: float = 0.0, n_init: int = 20, seed: int | None = 0,
              batch_size: int | None = None, num_neighbors: list[int] | None = None, device: Any = None,
              progress: bool | None = None, pretrain_epochs: int | None = None,
              track_labels: bool = True, checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
              timings: dict[str, Any] | None = None) -> dict[str, list[float]]:
    """Pretrain ``model`` on reconstruction, initialise the centres by k-means, then self-train.

    Pretraining length is counted in optimizer steps: ``pretrain_steps`` full-batch epochs, or with mini-batches
    the fewest whole epochs that reach ``pretrain_steps`` steps. Counting epochs instead would
    multiply the pretraining by the number of batches per epoch, and over-trained embeddings cluster worse
    (Cora, 512-seed batches, 10 seeds: 100 epochs = 600 steps gave ACC 70.05 ± 4.13, 17 epochs = 102 steps
    71.51 ± 1.18). Where one epoch alone has more batches than ``pretrain_steps`` (graphs of more than about
    ``pretrain_steps × batch_size`` nodes), pretraining is the first ``pretrain_steps`` batches of one shuffled
    epoch, so that its cost does not grow with the graph. ``pretrain_epochs`` overrides this with an exact
    count of whole epochs.

    Attention dropout regularises the pretraining only; self-training runs without it (the paper's loop) and
    restores it afterwards. With ``batch_size`` training uses :class:`~torch_geometric.loader.NeighborLoader`
    (``num_neighbors`` per layer, default ``[15, 10]``); under ``torch.distributed`` each rank samples its own
    shard of seed nodes (:func:`~pyg_em.train.shard_indices`).

    At scale: the k-means initialisation is :func:`~pyg_em.clusters.kmeans`, exact up to
    ``EXACT_KMEANS_MAX_POINTS`` nodes and sampled restarts plus chunked Lloyd passes above; the k-means
    input, every target refresh and prediction are layer-wise chunked inference
    (:meth:`~pyg_em.models.DAEGC.embed_data`). With ``progress`` each phase shows a bar with its ETA (epochs,
    and the batches of each epoch; k-means passes; inference chunks). With ``checkpoint_dir`` both training
    phases write an atomic checkpoint (:class:`~pyg_em.train.Trainer`) after every epoch, ``pretrain.ckpt``
    and ``self_train.ckpt``; a killed run called again with ``resume=True`` and the same settings continues
    where it stopped (a finished pretraining is not repeated; k-means reruns from the pretrained weights,
    deterministically) and ends with the same weights and history as an uninterrupted run.

    Args:
        model (DAEGC): The model, e.g. ``DAEGC(data.num_features, n_clusters)``.
        data (Data): The graph, with ``x`` and ``edge_index`` (optionally ``edge_weight``, ``y``).
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
            (default: ``[15, 10]``)
        device (str or torch.device, optional): Training device; ``None`` picks CUDA when available.
            (default: :obj:`None`)
        progress (bool, optional): Show progress bars; ``None`` shows them on a terminal. (default: :obj:`None`)
        pretrain_epochs (int, optional): Exact pretraining epochs, overriding ``pretrain_steps``.
            (default: :obj:`None`)
        track_labels (bool): Record ``acc``/``nmi`` per refresh when ``data.y`` exists (monitoring only; the
            labels never enter training). (default: :obj:`True`)
        checkpoint_dir (str or Path, optional): Folder of the per-epoch checkpoints. (default: :obj:`None`)
        resume (bool): Continue from the checkpoints in ``checkpoint_dir``. (default: :obj:`False`)
        timings (dict, optional): Filled with wall-clock seconds per phase: ``pretrain``, ``kmeans``,
            ``self_train_epoch`` and ``refresh`` (lists, one entry per epoch/refresh). (default: :obj:`None`)

    Returns:
        dict[str, list[float]]: The self-training history (with ``assignment_change`` per refresh), plus the
        pretraining history under keys prefixed with ``pretrain_``.
    """
    num_nodes = check_graph(data.x, data.edge_index, getattr(data, "edge_weight", None), require_edges=True)
    check_n_clusters(model.n_clusters, num_nodes)
    check_positive_int(pretrain_steps, "pretrain_steps")
    check_positive_int(epochs, "epochs")
    if pretrain_epochs is not None:
        check_positive_int(pretrain_epochs, "pretrain_epochs")
    if resume and checkpoint_dir is None:
        raise ValueError("fit_daegc(resume=True) needs checkpoint_dir, the folder the killed run wrote its "
                         "checkpoints to")
    timings = {} if timings is None else timings
    if batch_size is not None and model.feature_weight > 0:
        model.set_feature_scale(data.x)  # every batch's feature term on the whole graph's scale
    else:
        model.feature_variance = None  # full batch: the rows are the whole graph already
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    show = progress if progress is not None else sys.stderr.isatty()
    loader, forbidden = None, []
    if batch_size is not None:
        # The whole graph's M, computed once: the loader gathers the batches' values from it, and the k-means
        # input and every target refresh (DAEGC.inference_graph) reuse it. Under torch.distributed the ranks of
        # a host share one copy of it.
        edge_weight = getattr(data, "edge_weight", None)
        full = model.inference_graph(data.edge_index, num_nodes, edge_weight,
                                     build=(lambda: _whole_graph_proximity(data))  # shared memory: host only
                                     if data.edge_index.device.type == "cpu" else None)
        loader = daegc_neighbor_loader(data, batch_size, num_neighbors, seed=seed or 0, graph=full,
                                       seed_features=model.feature_weight > 0)
        if isinstance(full, CSCProximity):  # its CSC is also the edge-membership test of the negatives
            forbidden.append(full.graph)
    elif num_neighbors is not None:
        check_num_neighbors(num_neighbors, DAEGC.num_layers)

    def keys(batch: Data) -> torch.Tensor | SortedCSC:
        """Every edge of the whole graph, as sorted global pair keys or the undirected graph's sorted CSC, on
        the training device (built or moved once)."""
        device = batch.edge_index.device
        if not forbidden:
            forbidden.append(forbidden_pair_keys(data.edge_index.to(device), num_nodes))
        if isinstance(forbidden[0], SortedCSC) and forbidden[0].colptr.device != device:
            forbidden[0] = forbidden[0].to(device)
        return forbidden[0]

    common = {"device": device, "progress": progress, "weight_decay": weight_decay,
              "ddp_kwargs": {"find_unused_parameters": True}}
    pre_path = folder / "pretrain.ckpt" if folder is not None else None
    train_path = folder / "self_train.ckpt" if folder is not None else None
    resume_self_training = resume and train_path is not None and train_path.is_file()
    pre_loader = _pretrain_loader(loader, pretrain_steps, pretrain_epochs)
    pre = Trainer(model, epochs=_pretrain_epochs(pretrain_steps, pretrain_epochs, pre_loader), lr=pretrain_lr,
                  desc="pretrain", step_fn=lambda m, d: m.pretrain_loss(d),
                  batch_step_fn=lambda m, b: m.pretrain_loss_batch(b, forbidden=keys(b), num_nodes=num_nodes),
                  checkpoint_path=pre_path, callbacks=[_Stopwatch(timings, "pretrain")], **common)
    if not forbidden and loader is not None and pre.device.type == "cpu" and data.edge_index.device.type == "cpu":
        # On the host, the ranks of a host share one copy of the keys (built at once instead of at the first step).
        forbidden.append(share_across_local_ranks(lambda: forbidden_pair_keys(data.edge_index, num_nodes)))
    if resume_self_training:  # pretraining and k-means are done: their result is in the self-training checkpoint
        pre_history = load_checkpoint(pre_path)["history"] if pre_path.is_file() else {}
    else:
        with _batch_density_decided(model, loader):
            pre_history = pre.fit(data if loader is None else None, loader=pre_loader, resume=resume)
    data = data.to(pre.device)
    if not resume_self_training:
        start = time.perf_counter()
        model.initialize_cluster_centers(data, n_init=n_init, seed=seed, progress=show)
        timings["kmeans"] = [time.perf_counter() - start]

    # In full batch the step's own soft assignment (dropout off) is the refreshed one, so the step refreshes P
    # itself instead of a separate inference pass over the whole graph.
    dropouts = (model.conv1.dropout, model.conv2.dropout)
    model.conv1.dropout = model.conv2.dropout = 0.0
    refresh_in_step = loader is None
    due = {"now": False}

    def refresh(trainer: Trainer, epoch: int) -> None:
        due["now"] = epoch > 0 and epoch % model.update_interval == 0
        if due["now"] and not refresh_in_step:
            start = time.perf_counter()
            model.refresh_target(data, progress=show)
            timings.setdefault("refresh", []).append(time.perf_counter() - start)

    y = getattr(data, "y", None)
    labels = y.cpu() if track_labels and y is not None and y.dim() == 1 and y.numel() == num_nodes else None
    callbacks = [LambdaCallback(on_epoch_start=refresh), _SelfTrainingMonitor(model, labels),
                 _Stopwatch(timings, "self_train_epoch")]
    train = Trainer(model, epochs=epochs, lr=lr, desc="self-train",
                    step_fn=lambda m, d: m.loss(d, refresh_target=due["now"] and refresh_in_step),
                    batch_step_fn=lambda m, b: m.loss_batch(b, forbidden=keys(b), num_nodes=num_nodes),
                    callbacks=callbacks, checkpoint_path=train_path, **common)
    try:
        with _batch_density_decided(model, loader):
            history = train.fit(data if loader is None else None, loader=loader, resume=resume_self_training)
    finally:
        model.conv1.dropout, model.conv2.dropout = dropouts
    history.update({f"pretrain_{k}": v for k, v in pre_history.items()})
    return history


@dataclass
class DAEGCRecipe(Recipe):
    r"""DAEGC: proximity-attention auto-encoder pretraining, k-means initialisation, DEC self-training.

    The default is the recipe measured in ``benchmarks/bench_daegc.py`` and ``benchmarks/bench_recipes.py``;
    ``DAEGCRecipe.paper()`` is the paper's protocol (30 pretraining epochs, weight decay 5e-3, no attention
    dropout, one sampled non-edge per edge in place of the paper's dense reconstruction, no feature term).

    ``feature_weight='auto'`` (the default) sets the weight :math:`\lambda` of the model's feature
    reconstruction from the data before training (:meth:`~pyg_em.recipes.DAEGCRecipe.resolved`):
    :func:`~pyg_em.recipes.auto_feature_weight` of the
    features' k-means silhouette (:func:`~pyg_em.clusters.feature_silhouette`, on a sample of 5,000 rows).
    Features without cluster structure of their own (bag-of-words, noise) get :math:`\lambda = 0`, the
    paper's model; clustered features get up to 3, so that a graph whose edges mix the clusters does not
    average them away. The resolved value is what ``report.json`` and ``model.pt`` record.

    Args:
        hidden_channels (int): First attention layer size. (default: :obj:`256`)
        embedding_channels (int): Embedding size. (default: :obj:`16`)
        gamma (float): Weight of the clustering loss. (default: :obj:`10.0`)
        neg_ratio (float): Sampled non-edges per edge in the reconstruction. (default: :obj:`3.0`)
        dropout (float): Attention dropout during pretraining. (default: :obj:`0.5`)
        update_interval (int): Self-training epochs between target refreshes. (default: :obj:`1`)
        pretrain_steps (int): Pretraining optimizer steps. (default: :obj:`100`)
        pretrain_lr (float): Pretraining learning rate. (default: :obj:`5e-3`)
        lr (float): Self-training learning rate. (default: :obj:`1e-4`)
        weight_decay (float): Adam weight decay of both phases. (default: :obj:`0.0`)
        epochs (int): Self-training epochs. (default: :obj:`100`)
        n_init (int): k-means restarts. (default: :obj:`20`)
        batch_size (int, optional): Seed nodes per ``NeighborLoader`` batch; ``None`` trains full batch.
            (default: :obj:`None`)
        num_neighbors (list[int]): Neighbours sampled per layer in mini-batches. (default: ``[15, 10]``)
        feature_weight (float or str): Weight of the feature reconstruction (see
            :class:`~pyg_em.models.DAEGC`), or ``'auto'`` to set it from the features. (default: ``'auto'``)
    """

    method = "daegc"

    hidden_channels: int = 256
    embedding_channels: int = 16
    gamma: float = 10.0
    neg_ratio: float = 3.0
    dropout: float = 0.5
    update_interval: int = 1
    pretrain_steps: int = 100
    pretrain_lr: float = 5e-3
    lr: float = 1e-4
    weight_decay: float = 0.0
    epochs: int = 100
    n_init: int = 20
    batch_size: int | None = None
    num_neighbors: list[int] = field(default_factory=lambda: [15, 10])
    feature_weight: float | str = "auto"

    @classmethod
    def paper(cls) -> DAEGCRecipe:
        """Wang et al. (2019): 30 pretraining epochs at lr 5e-3, weight decay 5e-3, no attention dropout, no
        feature term."""
        recipe = cls(pretrain_steps=30, weight_decay=5e-3, dropout=0.0, neg_ratio=1.0, feature_weight=0.0)
        recipe.name = "paper"
        return recipe

    def validate(self) -> None:
        self._positive("hidden_channels", "embedding_channels", "neg_ratio", "update_interval", "pretrain_steps",
                       "pretrain_lr", "lr", "epochs", "n_init", "batch_size")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"[daegc] dropout must be in [0, 1), got {self.dropout!r}")
        if self.gamma < 0 or self.weight_decay < 0:
            raise ConfigError("[daegc] gamma and weight_decay must be >= 0, got "
                              f"{self.gamma!r} and {self.weight_decay!r}")
        if isinstance(self.feature_weight, str) and self.feature_weight != "auto":
            raise ConfigError(f"[daegc] feature_weight must be a number >= 0 or 'auto', got {self.feature_weight!r}")
        if not isinstance(self.feature_weight, str) and not self.feature_weight >= 0:
            raise ConfigError(f"[daegc] feature_weight must be >= 0 (0 is the paper's model), "
                              f"got {self.feature_weight!r}")
        if len(self.num_neighbors) != 2 or any(k <= 0 and k != -1 for k in self.num_neighbors):
            raise ConfigError("[daegc] num_neighbors must be two positive fan-outs (or -1 for all), one per "
                              f"attention layer, got {self.num_neighbors!r}")

    def resolved(self, data: Data, n_clusters: int, seed: int = 0) -> tuple[DAEGCRecipe, list[str]]:
        """This recipe with ``feature_weight='auto'`` replaced by its value for ``data``, and a note saying what
        was chosen (no note when nothing was ``'auto'``)."""
        if self.feature_weight != "auto":
            return self, []
        silhouette = feature_silhouette(data.x, n_clusters, seed=seed)
        weight = auto_feature_weight(silhouette)
        note = (f"feature_weight auto -> {weight:.3g} (k-means silhouette of the features {silhouette:.3f}; "
                + ("clustered features, kept by a feature reconstruction)" if weight > 0
                   else "no cluster structure of their own: the paper's model)"))
        return self.with_settings(feature_weight=weight), [note]

    def build_model(self, in_channels: int, n_clusters: int | None) -> DAEGC:
        if self.feature_weight == "auto":
            raise ValueError("DAEGCRecipe.build_model needs a numeric feature_weight: resolve 'auto' for the "
                             "graph first with recipe.resolved(data, n_clusters), or set feature_weight")
        return DAEGC(in_channels, n_clusters, hidden_channels=self.hidden_channels,
                     embedding_channels=self.embedding_channels, gamma=self.gamma,
                     update_interval=self.update_interval, neg_ratio=self.neg_ratio, dropout=self.dropout,
                     feature_weight=self.feature_weight)

    def fit(self, model: DAEGC, data: Data, *, seed: int = 0, device: Any = None, progress: bool | None = False,
            checkpoint_dir: str | os.PathLike | None = None, resume: bool = False) -> dict[str, list[float]]:
        """:func:`fit_daegc` with this recipe's schedule (``checkpoint_dir``/``resume`` as there)."""
        return fit_daegc(model, data, pretrain_steps=self.pretrain_steps, epochs=self.epochs,
                         pretrain_lr=self.pretrain_lr, lr=self.lr, weight_decay=self.weight_decay,
                         n_init=self.n_init, seed=seed, batch_size=self.batch_size,
                         num_neighbors=self.num_neighbors, device=device, progress=progress,
                         checkpoint_dir=checkpoint_dir, resume=resume)

    def assign(self, model: torch.nn.Module, data: Data) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        proba = model.predict_proba(data)
        return proba.argmax(dim=-1).cpu(), proba.cpu(), model.embed_data(data).cpu()

    def run(self, data: Data, *, n_clusters: int | None = None, seed: int = 0, device: Any = None,
            progress: bool | None = False, checkpoint_dir: str | os.PathLike | None = None,
            resume: bool = False) -> RecipeResult:
        """Build the model, :meth:`fit` it, and assign every node; with ``checkpoint_dir`` both training phases
        checkpoint every epoch and ``resume=True`` continues a killed run (``pyg-em run daegc --checkpoint-dir
        DIR [--resume]``)."""
        n_clusters = resolve_n_clusters(data, n_clusters)
        check_n_clusters(n_clusters, data.num_nodes)
        start = time.perf_counter()
        recipe, notes = self.resolved(data, n_clusters, seed)
        resolve_s = time.perf_counter() - start
        seed_everything(seed)
        model = recipe.build_model(data.num_features, n_clusters)
        start = time.perf_counter()
        history = recipe.fit(model, data, seed=seed, device=device, progress=progress,
                             checkpoint_dir=checkpoint_dir, resume=resume)
        fit_s = time.perf_counter() - start
        timings, used = {"resolve_s": resolve_s, "fit_s": fit_s}, recipe if recipe is not self else None
        if process_rank():
            # Under torchrun rank 0 alone reports and writes: the other ranks skip the whole-graph inference.
            return RecipeResult(metrics={}, model=model, history=history, timings=timings, notes=notes, recipe=used)
        labels, proba, embedding = recipe.assign(model, data)
        return RecipeResult(metrics=clustering_report(data, labels, embedding), model=model, history=history,
                            labels=labels, proba=proba, embedding=embedding, timings=timings, notes=notes,
                            recipe=used)

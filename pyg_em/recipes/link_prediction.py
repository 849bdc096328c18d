r"""GAE / VGAE recipes: one fitting routine for full batch and ``LinkNeighborLoader`` mini-batches, and the
benchmarked recipe as the default of ``pyg-em run gae|vgae``.

The default recipe (measured in ``benchmarks/bench_gae.py``, which calls these objects) is the normalised-
propagation encoder of GNAE / VGNAE (Ahn & Kim, 2021) on row-normalised features, Adam at lr 0.005 for up to
400 epochs, the VGAE's KL term weighted by 0.1 (on top of the 1/N scaling), and the epoch with the best
validation AUC + AP kept. ``GAERecipe.paper()`` is Kipf & Welling's (2016) protocol: a 32-16 GCN encoder on raw
features, lr 0.01, 200 epochs, the last epoch kept.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch_geometric.transforms as T
from torch_geometric.data import Data

from pyg_em.models import GAE, VGAE, evaluate_link_prediction, link_split
from pyg_em.nn import (
    FeatureRows,
    GCNEncoder,
    NormalizedPropagationEncoder,
    VariationalGCNEncoder,
    VariationalNormalizedPropagationEncoder,
)
from pyg_em.recipes.base import ConfigError, Recipe, RecipeResult, clustering_report, resolve_n_clusters
from pyg_em.recipes.daegc import check_num_neighbors
from pyg_em.train import EarlyStopping, Trainer, seed_everything
from pyg_em.train.callbacks import Callback
from pyg_em.utils.negative_sampling import forbidden_pair_keys
from pyg_em.validation import (
    check_graph,
    check_n_clusters,
    check_positive,
    check_positive_int,
    validation_disabled,
)

__all__ = ["fit_link_prediction", "link_neighbor_loader", "GAERecipe", "VGAERecipe", "MONITORS"]

#: Validation metrics an epoch can be selected on; ``None`` keeps the last epoch.
MONITORS = ("val_auc", "val_ap", "val_auc_ap")
ENCODERS = ("gcn", "propagation")
FEATURE_NORMALIZATIONS = ("auto", "row", "none")


def _encoder_depth(model: torch.nn.Module) -> int:
    """Message-passing depth to sample for: the GCN layers, or ``min(K, 2)`` hops for a ``K``-step propagation
    encoder (exact up to two steps; past two hops a sample already spans most of a small-world graph)."""
    hidden = getattr(model.encoder, "hidden_channels", None)
    if isinstance(hidden, (list, tuple)):
        return len(hidden) + 1
    return min(int(getattr(model.encoder, "K", 2)), 2)


def link_neighbor_loader(train_data: Data, model: torch.nn.Module, batch_size: int, num_neighbors: Any = 10,
                         neg_ratio: float = 1.0, shuffle: bool = True):
    """A :class:`~torch_geometric.loader.LinkNeighborLoader` over the positive training edges, with
    ``neg_ratio`` uniformly drawn negatives per positive (``neg_sampling='binary'``).

    The loader draws its negatives without looking at any edge; :meth:`~pyg_em.models.GAE.loss_batch` masks
    those that are training or held-out edges (see :func:`fit_link_prediction`), so held-out edges are never
    taught as non-edges, exactly as in full batch. The batches' features are gathered from one copy of
    ``train_data.x`` (CSR when sparse, :class:`~pyg_em.nn.FeatureRows`), so the encoder never converts a
    batch's features to a sparse matrix again.

    Args:
        train_data (Data): The training split of :func:`~pyg_em.models.link_split`.
        model (Module): The GAE/VGAE; its encoder's depth sets the number of sampled hops.
        batch_size (int): Positive edges per batch.
        num_neighbors (int or list[int]): Fan-out per hop (positive, or -1 for all); an int is used at every
            hop. (default: :obj:`10`)
        neg_ratio (float): Negatives per positive. (default: :obj:`1.0`)
        shuffle (bool): Shuffle the edges every epoch. (default: :obj:`True`)
    """
    from torch_geometric.loader import LinkNeighborLoader
    from torch_geometric.sampler import NegativeSampling

    check_positive_int(batch_size, "batch_size")
    check_positive(neg_ratio, "neg_ratio")
    depth = _encoder_depth(model)
    if isinstance(num_neighbors, int) and not isinstance(num_neighbors, bool):
        num_neighbors = [num_neighbors] * depth
    fanouts = check_num_neighbors(num_neighbors, depth)
    loader_data = Data(**{key: value for key, value in train_data.items() if key != "x"})
    loader_data.num_nodes = train_data.num_nodes
    features = FeatureRows(train_data.x)
    return LinkNeighborLoader(loader_data, num_neighbors=fanouts, edge_label_index=train_data.pos_edge_label_index,
                              neg_sampling=NegativeSampling("binary", amount=neg_ratio),
                              batch_size=batch_size, shuffle=shuffle, transform=features.transform)


def check_loader_depth(model: torch.nn.Module, batch: Data) -> None:
    """Raise when a loader samples fewer hops than the model's GCN encoder has layers (its seeds would miss
    part of their receptive field) or when its batches carry no ``n_id``."""
    if getattr(batch, "n_id", None) is None:
        raise ValueError("the loader's batches have no n_id (global node ids): use PyG's LinkNeighborLoader (or "
                         "pyg_em.recipes.link_neighbor_loader), which sets it")
    hops = getattr(batch, "num_sampled_nodes", None)
    hidden = getattr(getattr(model, "encoder", None), "hidden_channels", None)
    if hops is None or not isinstance(hidden, (list, tuple)):
        return
    depth = len(hidden) + 1
    if len(hops) - 1 != depth:
        raise ValueError(f"the loader samples {len(hops) - 1} hop(s) but the model's encoder has {depth} GCN "
                         f"layers: build the loader with num_neighbors of length {depth} "
                         "(link_neighbor_loader does so from the model)")


def _validation_fn(val_data: Data):
    on_device: list[Data] = []

    def evaluate(model: torch.nn.Module, _: Any) -> dict[str, float]:
        if not on_device:  # validated and moved once, on the trainer's device
            check_graph(val_data.x, val_data.edge_index, getattr(val_data, "edge_weight", None),
                        num_nodes=val_data.num_nodes)
            on_device.append(val_data.to(next(model.parameters()).device))
        with validation_disabled():  # the same graph every evaluation: its finiteness/id scans are not repeated
            scores = evaluate_link_prediction(model, on_device[0])
        return {"val_auc": scores["auc"], "val_ap": scores["ap"], "val_auc_ap": scores["auc"] + scores["ap"]}

    return evaluate


def fit_link_prediction(
    model: torch.nn.Module,
    train_data: Data,
    val_data: Data | None = None,
    *,
    epochs: int = 400,
    lr: float = 0.005,
    weight_decay: float = 0.0,
    monitor: str | None = "val_auc_ap",
    patience: int | None = None,
    eval_every: int = 1,
    loader: Any = None,
    callbacks: Sequence[Callback] = (),
    device: str | torch.device | None = None,
    progress: bool | None = False,
) -> dict[str, list[float]]:
    r"""Train a GAE/VGAE with :class:`~pyg_em.train.Trainer`, full batch or on a link loader, selecting the
    epoch on the validation split.

    Full batch trains on ``model.loss(train_data)``; with ``loader`` (e.g. :func:`link_neighbor_loader`) on
    ``model.loss_batch(batch, forbidden=...)``, where ``forbidden`` holds the training and held-out
    (``train_data.held_out_edge_index``) pairs, so the loader's negatives are checked against the same pairs
    as the full-batch sampler's. The validation metrics ``val_auc``, ``val_ap`` and ``val_auc_ap`` are
    computed every ``eval_every`` epochs; with a ``monitor``, :class:`~pyg_em.train.EarlyStopping` keeps the
    weights of its best value and restores them at the end. The test split is never touched.

    Args:
        model: A :class:`~pyg_em.models.GAE` / :class:`~pyg_em.models.VGAE`.
        train_data (Data): The training split of :func:`~pyg_em.models.link_split`.
        val_data (Data, optional): The validation split; without it the last epoch is kept.
            (default: :obj:`None`)
        epochs (int): Maximum number of epochs. (default: :obj:`400`)
        lr (float): Adam learning rate. (default: :obj:`0.005`)
        weight_decay (float): Adam weight decay. (default: :obj:`0.0`)
        monitor (str, optional): ``'val_auc'``, ``'val_ap'``, ``'val_auc_ap'``, or ``None`` to keep the last
            epoch. (default: :obj:`'val_auc_ap'`)
        patience (int, optional): Evaluations without improvement before stopping; ``None`` trains all
            epochs. (default: :obj:`None`)
        eval_every (int): Validate every this many epochs. (default: :obj:`1`)
        loader (Iterable, optional): Mini-batches from a link loader; ``None`` trains full batch.
            (default: :obj:`None`)
        callbacks (sequence of Callback): Extra callbacks. (default: :obj:`()`)
        device (str or torch.device, optional): Training device. (default: :obj:`None`, CUDA when available)
        progress (bool, optional): Show a progress bar. (default: :obj:`False`)

    Returns:
        The trainer's history (losses per epoch, validation metrics per evaluation).
    """
    if monitor is not None and monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {MONITORS} or None, got {monitor!r}")
    eval_fn = None
    all_callbacks = list(callbacks)
    if val_data is not None:
        eval_fn = _validation_fn(val_data)
        if monitor is not None:
            all_callbacks.append(EarlyStopping(monitor=monitor, mode="max", patience=patience or epochs + 1))
    def step_fn(m: torch.nn.Module, data: Data):
        with validation_disabled():  # train_data was validated by the trainer before the first step
            return m.loss(data)

    batch_step_fn = None
    if loader is not None:
        forbidden: list[torch.Tensor] = []

        def batch_step_fn(m: torch.nn.Module, batch: Data):
            if not forbidden:  # once, on the training device: training positives plus held-out pairs
                check_loader_depth(model, batch)
                pos = getattr(train_data, "pos_edge_label_index", train_data.edge_index)
                held = getattr(train_data, "held_out_edge_index", None)
                keys = forbidden_pair_keys(pos.to(batch.edge_index.device), train_data.num_nodes,
                                           None if held is None else held.to(batch.edge_index.device))
                forbidden.append(keys)
            # The batches are rows and edges of train_data, which the trainer validated: their data-dependent
            # checks (finiteness, id ranges) would only synchronise with the device at every step.
            with validation_disabled():
                return m.loss_batch(batch, forbidden=forbidden[0], num_nodes=train_data.num_nodes)

    trainer = Trainer(model, epochs=epochs, lr=lr, weight_decay=weight_decay, device=device, eval_fn=eval_fn,
                      eval_every=eval_every, log_every=eval_every, callbacks=all_callbacks, progress=progress,
                      step_fn=step_fn, batch_step_fn=batch_step_fn, desc="link prediction")
    return trainer.fit(train_data, loader=loader)


def selected_epoch(history: dict[str, list[float]], monitor: str | None) -> int:
    """The (0-based) epoch whose weights :func:`fit_link_prediction` kept."""
    if monitor is None or not history.get(monitor):
        return len(history["total"]) - 1
    values = history[monitor]
    best = max(range(len(values)), key=values.__getitem__)
    return int(history["eval_epoch"][best])


@dataclass
class GAERecipe(Recipe):
    """Graph auto-encoder: link prediction on a leak-free edge split, then k-means on the embedding.

    Args:
        encoder (str): ``'propagation'`` (GNAE: linear map, fixed row norm, personalised-PageRank propagation,
            :class:`~pyg_em.nn.NormalizedPropagationEncoder`) or ``'gcn'``
            (:class:`~pyg_em.nn.GCNEncoder`). (default: :obj:`'propagation'`)
        hidden_channels (list[int]): Hidden widths of the GCN encoder. (default: ``[32]``)
        out_channels (int): Embedding size. The defaults of ``out_channels``, ``propagation_steps``,
            ``teleport``, ``scale`` and ``epochs`` are the GNAE authors' hyper-parameters, which scored above the
            previous 64-wide, 10-step recipe on Cora and CiteSeer (``benchmarks/RESULTS.md``, ``gae`` and
            ``gnae_protocol`` sections). (default: :obj:`128`)
        propagation_steps (int): Propagation steps :math:`K` of the propagation encoder. (default: :obj:`1`)
        teleport (float): Teleport probability :math:`\\alpha` of the propagation. (default: :obj:`0.0`)
        scale (float): Row norm :math:`s` before propagation. (default: :obj:`1.8`)
        normalize_features (str): ``'row'`` divides each feature row by its sum (PyG's ``NormalizeFeatures``,
            for counts such as bag-of-words), ``'none'`` keeps the features, ``'auto'`` row-normalises when every
            feature is non-negative (a row sum of signed features can be near zero). (default: :obj:`'auto'`)
        lr (float): Adam learning rate. (default: :obj:`0.005`)
        weight_decay (float): Adam weight decay. (default: :obj:`0.0`)
        epochs (int): Training epochs. (default: :obj:`300`)
        monitor (str): Epoch selection: ``'val_auc_ap'``, ``'val_auc'``, ``'val_ap'``, or ``'last'``.
            (default: :obj:`'val_auc_ap'`)
        recon (str): ``'sampled'`` or ``'full'`` reconstruction. (default: :obj:`'sampled'`)
        neg_ratio (float): Sampled negatives per positive edge. (default: :obj:`1.0`)
        val_ratio (float): Fraction of edges held out for validation. (default: :obj:`0.05`)
        test_ratio (float): Fraction of edges held out for testing. (default: :obj:`0.1`)
        n_init (int): k-means restarts. (default: :obj:`10`)
        batch_size (int, optional): Positive edges per ``LinkNeighborLoader`` batch; ``None`` trains full
            batch. (default: :obj:`None`)
        num_neighbors (int): Neighbours sampled per layer in mini-batches. (default: :obj:`10`)
    """

    method = "gae"

    encoder: str = "propagation"
    hidden_channels: list[int] = field(default_factory=lambda: [32])
    out_channels: int = 128
    propagation_steps: int = 1
    teleport: float = 0.0
    scale: float = 1.8
    normalize_features: str = "auto"
    lr: float = 0.005
    weight_decay: float = 0.0
    epochs: int = 300
    monitor: str = "val_auc_ap"
    recon: str = "sampled"
    neg_ratio: float = 1.0
    val_ratio: float = 0.05
    test_ratio: float = 0.1
    n_init: int = 10
    batch_size: int | None = None
    num_neighbors: int = 10

    @classmethod
    def paper(cls) -> GAERecipe:
        """Kipf & Welling (2016): a 32-16 GCN on raw features, lr 0.01, 200 epochs, the last epoch kept."""
        recipe = cls(encoder="gcn", hidden_channels=[32], out_channels=16, normalize_features="none", lr=0.01,
                     epochs=200, monitor="last")
        recipe.name = "paper"
        return recipe

    def validate(self) -> None:
        if self.encoder not in ENCODERS:
            raise ConfigError(f"[{self.method}] encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.monitor not in (*MONITORS, "last"):
            raise ConfigError(f"[{self.method}] monitor must be one of {(*MONITORS, 'last')}, got {self.monitor!r}")
        if self.normalize_features not in FEATURE_NORMALIZATIONS:
            raise ConfigError(f"[{self.method}] normalize_features must be one of {FEATURE_NORMALIZATIONS}, got "
                              f"{self.normalize_features!r}")
        if self.recon not in ("sampled", "full"):
            raise ConfigError(f"[{self.method}] recon must be 'sampled' or 'full', got {self.recon!r}")
        self._positive("out_channels", "propagation_steps", "scale", "lr", "epochs", "neg_ratio", "n_init",
                       "batch_size", "num_neighbors")
        if not self.hidden_channels or any(h <= 0 for h in self.hidden_channels):
            raise ConfigError(f"[{self.method}] hidden_channels must be a non-empty list of positive widths, "
                              f"got {self.hidden_channels!r}")
        if not 0.0 <= self.teleport <= 1.0:
            raise ConfigError(f"[{self.method}] teleport must be in [0, 1], got {self.teleport!r}")

    # -- model -----------------------------------------------------------------------------------------------
    variational = False

    def build_encoder(self, in_channels: int) -> torch.nn.Module:
        """The encoder this recipe names, for ``in_channels`` input features."""
        if self.encoder == "gcn":
            cls = VariationalGCNEncoder if self.variational else GCNEncoder
            return cls(in_channels, list(self.hidden_channels), self.out_channels)
        cls = VariationalNormalizedPropagationEncoder if self.variational else NormalizedPropagationEncoder
        return cls(in_channels, self.out_channels, K=self.propagation_steps, alpha=self.teleport, scale=self.scale)

    def build_model(self, in_channels: int, n_clusters: int | None) -> GAE:
        return GAE(self.build_encoder(in_channels), n_clusters=n_clusters, recon=self.recon,
                   neg_ratio=self.neg_ratio)

    def transform(self, data: Data) -> Data:
        """The feature transform of the recipe (applied to a copy)."""
        row = self.normalize_features == "row" or (
            self.normalize_features == "auto" and data.x is not None and bool((data.x >= 0).all()))
        return T.NormalizeFeatures()(data.clone()) if row else data

    def assign(self, model: torch.nn.Module, data: Data) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return _assign_transformed(model, self.transform(data))

    # -- run ---------------------------------------------------------------------------------------------
    def fit(self, model: torch.nn.Module, split, *, device: Any = None,
            progress: bool | None = False) -> dict[str, list[float]]:
        """Train ``model`` on a :func:`~pyg_em.models.link_split` with this recipe's optimiser, schedule and
        selection rule (full batch, or mini-batch when ``batch_size`` is set)."""
        loader = None
        if self.batch_size is not None:
            loader = link_neighbor_loader(split.train, model, self.batch_size, self.num_neighbors, self.neg_ratio)
        return fit_link_prediction(model, split.train, split.val, epochs=self.epochs, lr=self.lr,
                                   weight_decay=self.weight_decay,
                                   monitor=None if self.monitor == "last" else self.monitor, loader=loader,
                                   device=device, progress=progress)

    def run(self, data: Data, *, n_clusters: int | None = None, seed: int = 0, device: Any = None,
            progress: bool | None = False) -> RecipeResult:
        """Split the edges (leak-free), train, test once on the held-out edges, then cluster the embedding of the
        whole graph by k-means (test edges enter only after the test scores are taken)."""
        n_clusters = resolve_n_clusters(data, n_clusters)
        check_n_clusters(n_clusters, data.num_nodes)
        seed_everything(seed)  # also seeds Python's `random`, which the split's negative sampling draws from
        data = self.transform(data)
        split = link_split(data, val_ratio=self.val_ratio, test_ratio=self.test_ratio, seed=seed)
        model = self.build_model(data.num_features, n_clusters)
        start = time.perf_counter()
        history = self.fit(model, split, device=device, progress=progress)
        fit_s = time.perf_counter() - start
        dev = next(model.parameters()).device
        test = split.test.to(dev)
        scores = evaluate_link_prediction(model, test)
        link_scores = _test_pair_scores(model, test)
        start = time.perf_counter()
        model.initialize_cluster_centers(data, n_init=self.n_init, seed=seed)
        labels, proba, embedding = _assign_transformed(model, data)
        metrics = {"auc": scores["auc"], "ap": scores["ap"], **clustering_report(data, labels, embedding)}
        monitor = None if self.monitor == "last" else self.monitor
        return RecipeResult(metrics=metrics, model=model, history=history, labels=labels, proba=proba,
                            embedding=embedding, link_scores=link_scores,
                            selected_epoch=selected_epoch(history, monitor),
                            timings={"fit_s": fit_s, "clustering_s": time.perf_counter() - start})


def _assign_transformed(model: torch.nn.Module, data: Data) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    proba = model.predict_proba(data)
    return proba.argmax(dim=-1).cpu(), proba.cpu(), model.embed_data(data).cpu()


@torch.no_grad()
def _test_pair_scores(model: torch.nn.Module, test: Data) -> dict[str, torch.Tensor]:
    z = model.embed_data(test)
    pairs = torch.cat([test.pos_edge_label_index, test.neg_edge_label_index], dim=1)
    label = torch.cat([torch.ones(test.pos_edge_label_index.size(1)), torch.zeros(test.neg_edge_label_index.size(1))])
    return {"edge_index": pairs.cpu(), "score": model.decode(z, pairs, sigmoid=True).cpu(), "label": label}


@dataclass
class VGAERecipe(GAERecipe):
    """Variational graph auto-encoder: the GAE recipe with a KL term weighted by ``kl_weight``.

    Args:
        kl_weight (float): Weight of the KL term (on top of its 1/N scaling); the paper's ELBO is 1.0.
            (default: :obj:`0.1`)
        **kwargs: The settings of :class:`GAERecipe`.
    """

    method = "vgae"
    variational = True

    kl_weight: float = 0.1

    @classmethod
    def paper(cls) -> VGAERecipe:
        """Kipf & Welling (2016): the GAE paper recipe with the full ELBO (``kl_weight=1``)."""
        recipe = super().paper()
        recipe.kl_weight = 1.0
        return recipe

    def validate(self) -> None:
        super().validate()
        if self.kl_weight < 0:
            raise ConfigError(f"[vgae] kl_weight must be >= 0, got {self.kl_weight!r}")

    def build_model(self, in_channels: int, n_clusters: int | None) -> VGAE:
        return VGAE(self.build_encoder(in_channels), n_clusters=n_clusters, recon=self.recon,
                    neg_ratio=self.neg_ratio, kl_weight=self.kl_weight)

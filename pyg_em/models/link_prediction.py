r"""The link-prediction protocol: a leak-free edge split, AUC/AP evaluation, and Trainer-driven model selection.

The split is PyG's :class:`~torch_geometric.transforms.RandomLinkSplit` (undirected, ``split_labels=True``):
validation and test edges are removed from the message-passing graph of every split that must not see them,
and their negatives are drawn from non-edges of the *whole* graph. The training split additionally carries
``held_out_edge_index`` (validation and test positives), which :class:`~pyg_em.models.GAE` excludes from its
sampled training negatives and gives zero weight in the full-graph loss, so a held-out edge is never taught
as a non-edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch_geometric.transforms as T
from torch_geometric.data import Data

from pyg_em.metrics import link_prediction_metrics
from pyg_em.train import EarlyStopping, Trainer
from pyg_em.train.callbacks import Callback
from pyg_em.validation import check_graph

__all__ = ["LinkSplit", "link_split", "evaluate_link_prediction", "fit_link_prediction"]


class LinkSplit(NamedTuple):
    """The three graphs of a link split; each is a :class:`~torch_geometric.data.Data`."""

    train: Data
    val: Data
    test: Data


def _check_ratio(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def link_split(data: Data, val_ratio: float = 0.05, test_ratio: float = 0.1, seed: int | None = None,
               is_undirected: bool = True) -> LinkSplit:
    r"""Split the edges of ``data`` into train / validation / test graphs for link prediction.

    Args:
        data (Data): Graph with ``x`` and ``edge_index`` (both directions of each undirected edge).
        val_ratio (float): Fraction of edges held out for validation. (default: :obj:`0.05`)
        test_ratio (float): Fraction of edges held out for testing. (default: :obj:`0.1`)
        seed (int, optional): Seed of the split (the global RNG state is restored afterwards).
            (default: :obj:`None`)
        is_undirected (bool): Treat ``edge_index`` as undirected. (default: :obj:`True`)

    Returns:
        :class:`LinkSplit` ``(train, val, test)``. Each has ``edge_index`` (its message-passing graph: training
        edges only for train and val, train + val edges for test), ``pos_edge_label_index`` and, for val and
        test, ``neg_edge_label_index``. ``train.held_out_edge_index`` holds the val and test positives.
    """
    check_graph(data.x, data.edge_index, getattr(data, "edge_weight", None), num_nodes=data.num_nodes,
                require_edges=True)
    val_ratio, test_ratio = _check_ratio(val_ratio, "val_ratio"), _check_ratio(test_ratio, "test_ratio")
    if val_ratio + test_ratio >= 1.0:
        raise ValueError(f"val_ratio + test_ratio must be < 1, got {val_ratio} + {test_ratio}")
    transform = T.RandomLinkSplit(num_val=val_ratio, num_test=test_ratio, is_undirected=is_undirected,
                                  split_labels=True, add_negative_train_samples=False)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        train, val, test = transform(data)
    if train.pos_edge_label_index.size(1) == 0:
        raise ValueError("the training split has no edges: the graph is too small for these ratios")
    held = [s.pos_edge_label_index for s in (val, test) if "pos_edge_label_index" in s]
    train.held_out_edge_index = torch.cat(held, dim=1) if held else train.edge_index.new_empty((2, 0))
    return LinkSplit(train, val, test)


@torch.no_grad()
def evaluate_link_prediction(model: torch.nn.Module, data: Data, embed_data: Data | None = None) -> dict[str, float]:
    """ROC-AUC and AP of ``model``'s decoder on ``data.pos_edge_label_index`` vs ``data.neg_edge_label_index``.

    Args:
        model: A :class:`~pyg_em.models.GAE`-like model with ``embed_data`` and ``decode``.
        data (Data): A split graph (``val`` or ``test`` of :func:`link_split`); its ``edge_index`` is the
            message-passing graph used to embed the nodes.
        embed_data (Data, optional): Embed with this graph instead (e.g. the training graph).
            (default: :obj:`None`)

    Returns:
        ``{'auc': float, 'ap': float}``.
    """
    for key in ("pos_edge_label_index", "neg_edge_label_index"):
        if getattr(data, key, None) is None:
            raise ValueError(f"data has no {key}: evaluate on a split from link_split()")
    parameter = next(model.parameters(), None)
    if parameter is not None:  # evaluate wherever the model lives, whatever device the split is on
        data = data.to(parameter.device)
        embed_data = embed_data.to(parameter.device) if embed_data is not None else None
    z = model.embed_data(embed_data if embed_data is not None else data)
    pos = model.decode(z, data.pos_edge_label_index, sigmoid=False)
    neg = model.decode(z, data.neg_edge_label_index, sigmoid=False)
    return link_prediction_metrics(pos, neg)


def fit_link_prediction(
    model: torch.nn.Module,
    train_data: Data,
    val_data: Data | None = None,
    *,
    epochs: int = 400,
    lr: float = 0.01,
    weight_decay: float = 0.0,
    patience: int | None = None,
    monitor: str = "val_auc_ap",
    eval_every: int = 1,
    callbacks: Sequence[Callback] = (),
    device: str | torch.device | None = None,
    progress: bool | None = False,
) -> dict[str, list[float]]:
    r"""Train a GAE/VGAE with :class:`~pyg_em.train.Trainer`, selecting the epoch on the validation split.

    The validation metrics ``val_auc``, ``val_ap`` and ``val_auc_ap`` (their sum) are computed every
    ``eval_every`` epochs; :class:`~pyg_em.train.EarlyStopping` keeps the weights of the best ``monitor`` value
    and restores them at the end (stopping early when ``patience`` is given). The test split is not touched.

    Args:
        model: The model; trained through its ``loss(data)``.
        train_data (Data): The training split.
        val_data (Data, optional): The validation split; without it the last epoch is kept.
            (default: :obj:`None`)
        epochs (int): Maximum number of epochs. (default: :obj:`400`)
        lr (float): Adam learning rate. (default: :obj:`0.01`)
        weight_decay (float): Adam weight decay. (default: :obj:`0.0`)
        patience (int, optional): Evaluations without improvement before stopping; ``None`` trains all
            epochs but still restores the best. (default: :obj:`None`)
        monitor (str): ``'val_auc'``, ``'val_ap'`` or ``'val_auc_ap'``. (default: :obj:`'val_auc_ap'`)
        eval_every (int): Validate every this many epochs. (default: :obj:`1`)
        callbacks (sequence of Callback): Extra callbacks. (default: :obj:`()`)
        device (str or torch.device, optional): Training device. (default: :obj:`None`, CUDA when available)
        progress (bool, optional): Show a progress bar. (default: :obj:`False`)

    Returns:
        The trainer's history (losses per epoch, validation metrics per evaluation).
    """
    if monitor not in ("val_auc", "val_ap", "val_auc_ap"):
        raise ValueError(f"monitor must be 'val_auc', 'val_ap' or 'val_auc_ap', got {monitor!r}")
    eval_fn = None
    all_callbacks = list(callbacks)
    if val_data is not None:
        val_on_device: list[Data] = []

        def eval_fn(m: torch.nn.Module, _: Data) -> dict[str, float]:
            if not val_on_device:  # moved once, on the trainer's device
                val_on_device.append(val_data.to(next(m.parameters()).device))
            scores = evaluate_link_prediction(m, val_on_device[0])
            return {"val_auc": scores["auc"], "val_ap": scores["ap"], "val_auc_ap": scores["auc"] + scores["ap"]}

        all_callbacks.append(EarlyStopping(monitor=monitor, mode="max", patience=patience or epochs + 1))
    trainer = Trainer(model, epochs=epochs, lr=lr, weight_decay=weight_decay, device=device, eval_fn=eval_fn,
                      eval_every=eval_every, log_every=eval_every, callbacks=all_callbacks, progress=progress,
                      desc="link prediction")
    return trainer.fit(train_data)


r"""The link-prediction protocol: a leak-free edge split and AUC/AP evaluation (training lives in
:func:`pyg_em.recipes.fit_link_prediction`).

The split is PyG's :class:`~torch_geometric.transforms.RandomLinkSplit` (undirected, ``split_labels=True``):
validation and test edges are removed from the message-passing graph of every split that must not see them,
and their negatives are drawn from non-edges of the *whole* graph. The training split additionally carries
``held_out_edge_index`` (validation and test positives), which :class:`~pyg_em.models.GAE` excludes from its
sampled training negatives and gives zero weight in the full-graph loss, so a held-out edge is never taught
as a non-edge.
"""

from __future__ import annotations

import numbers
import random
import warnings
from typing import Any, NamedTuple

import numpy as np
import torch
import torch_geometric.transforms as T
from torch_geometric.data import Data
from torch_geometric.utils import is_undirected, to_undirected

from pyg_em.metrics import link_prediction_metrics
from pyg_em.validation import check_graph

__all__ = ["LinkSplit", "link_split", "evaluate_link_prediction", "labelled_pairs"]


class LinkSplit(NamedTuple):
    """The three graphs of a link split; each is a :class:`~torch_geometric.data.Data`."""

    train: Data
    val: Data
    test: Data


def _check_ratio(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def link_split(data: Data, val_ratio: float = 0.05, test_ratio: float = 0.1, seed: int | None = None,
               is_undirected: bool = True) -> LinkSplit:
    r"""Split the edges of ``data`` into train / validation / test graphs for link prediction.

    Args:
        data (Data): Graph with ``x`` and ``edge_index`` (both directions of each undirected edge).
        val_ratio (float): Fraction of edges held out for validation. (default: :obj:`0.05`)
        test_ratio (float): Fraction of edges held out for testing. (default: :obj:`0.1`)
        seed (int, optional): Seed of the split; torch's and Python's global RNG states are restored
            afterwards, so the split depends on ``data`` and ``seed`` only.
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
    weight = getattr(data, "edge_weight", None)
    if is_undirected and not is_undirected_graph(data.edge_index, weight, data.num_nodes):
        # RandomLinkSplit(is_undirected=True) keeps only the pairs with i < j: a list holding each edge once in
        # an arbitrary direction would silently lose about half of its edges.
        before = data.edge_index.size(1)
        data = data.clone()
        if weight is None:
            data.edge_index = to_undirected(data.edge_index, num_nodes=data.num_nodes)
        else:
            data.edge_index, data.edge_weight = to_undirected(data.edge_index, weight, data.num_nodes, reduce="mean")
        warnings.warn(f"link_split: edge_index holds some edges in one direction only; made undirected "
                      f"({before} -> {data.edge_index.size(1)} directed edges) before splitting", UserWarning,
                      stacklevel=2)
    transform = T.RandomLinkSplit(num_val=val_ratio, num_test=test_ratio, is_undirected=is_undirected,
                                  split_labels=True, add_negative_train_samples=False)
    # PyG's negative sampling draws from Python's `random` as well as torch: both are seeded here and restored
    # afterwards, so that a split depends on (data, seed) only, whatever ran before it.
    python_state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
            random.seed(seed)
        try:
            train, val, test = transform(data)
        finally:
            random.setstate(python_state)
    if train.pos_edge_label_index.size(1) == 0:
        raise ValueError("the training split has no edges: the graph is too small for these ratios")
    held = [s.pos_edge_label_index for s in (val, test) if "pos_edge_label_index" in s]
    train.held_out_edge_index = torch.cat(held, dim=1) if held else train.edge_index.new_empty((2, 0))
    return LinkSplit(train, val, test)


def is_undirected_graph(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int) -> bool:
    """Whether every edge also appears reversed (with the same weight)."""
    return is_undirected(edge_index, edge_weight, num_nodes=num_nodes)


def labelled_pairs(data: Data) -> tuple[torch.Tensor, torch.Tensor]:
    """``(positive pairs, negative pairs)`` of a split graph, from ``pos_/neg_edge_label_index``
    (``RandomLinkSplit(split_labels=True)``) or from ``edge_label_index`` with ``edge_label`` (its default)."""
    if getattr(data, "pos_edge_label_index", None) is not None and getattr(data, "neg_edge_label_index", None) \
            is not None:
        return data.pos_edge_label_index, data.neg_edge_label_index
    index, label = getattr(data, "edge_label_index", None), getattr(data, "edge_label", None)
    if index is None or label is None:
        raise ValueError("data has neither pos_edge_label_index/neg_edge_label_index nor edge_label_index/"
                         "edge_label: evaluate on a split from link_split() or RandomLinkSplit")
    if label.numel() != index.size(1):
        raise ValueError(f"edge_label has {label.numel()} entries for {index.size(1)} pairs in edge_label_index")
    return index[:, label > 0], index[:, label <= 0]


@torch.no_grad()
def evaluate_link_prediction(model: torch.nn.Module, data: Data, embed_data: Data | None = None) -> dict[str, float]:
    """ROC-AUC and AP of ``model``'s decoder on the positive versus the negative labelled pairs of ``data``
    (:func:`labelled_pairs`: ``pos_/neg_edge_label_index``, or ``edge_label_index`` with ``edge_label``).

    Args:
        model: A :class:`~pyg_em.models.GAE`-like model with ``embed_data`` and ``decode``.
        data (Data): A split graph (``val`` or ``test`` of :func:`link_split`); its ``edge_index`` is the
            message-passing graph used to embed the nodes.
        embed_data (Data, optional): Embed with this graph instead (e.g. the training graph).
            (default: :obj:`None`)

    Returns:
        ``{'auc': float, 'ap': float}``.
    """
    pos_pairs, neg_pairs = labelled_pairs(data)
    parameter = next(model.parameters(), None)
    if parameter is not None:  # evaluate wherever the model lives, whatever device the split is on
        data = data.to(parameter.device)
        embed_data = embed_data.to(parameter.device) if embed_data is not None else None
    z = model.embed_data(embed_data if embed_data is not None else data)
    pos = model.decode(z, pos_pairs.to(z.device), sigmoid=False)
    neg = model.decode(z, neg_pairs.to(z.device), sigmoid=False)
    if not bool(torch.isfinite(pos).all() & torch.isfinite(neg).all()):
        raise FloatingPointError("the model's link scores are not finite (NaN or Inf): training diverged; lower "
                                 "the learning rate, set grad_clip, or check the inputs for extreme values")
    return link_prediction_metrics(pos, neg)

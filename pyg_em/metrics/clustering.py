"""Clustering quality against ground truth: matched accuracy and F1, NMI, ARI."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, f1_score, normalized_mutual_info_score

__all__ = ["clustering_accuracy", "match_clusters", "nmi", "ari", "f1_macro", "clustering_metrics"]


def _as_labels(values: Any, name: str) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of labels, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if array.dtype.kind in "fc":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise TypeError(f"{name} must hold integer labels, got dtype {array.dtype}")
        array = array.real.astype(np.int64)
    elif array.dtype.kind == "b":
        array = array.astype(np.int64)
    elif array.dtype.kind == "O":  # e.g. a list mixing types: only all-str or all-int lists are labels
        if all(isinstance(v, str) for v in array):
            array = array.astype(str)
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in array):
            array = array.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer or string labels of one type, got {type(array[0]).__name__} "
                            "values")
    elif array.dtype.kind not in "iuUS":
        raise TypeError(f"{name} must hold integer or string labels, got dtype {array.dtype}")
    return array


def _pair(y_true: Any, y_pred: Any, ignore_label: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Both label arrays, with the nodes whose true label is ``ignore_label`` removed."""
    y_true, y_pred = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {y_true.size} and {y_pred.size}")
    keep = _labelled_mask(y_true, ignore_label)
    return y_true[keep], y_pred[keep]


def _labelled_mask(y_true: np.ndarray, ignore_label: Any) -> np.ndarray:
    keep = np.ones(y_true.size, dtype=bool) if ignore_label is None else y_true != ignore_label
    if not keep.any():
        raise ValueError(f"every node has y_true == ignore_label ({ignore_label!r}): there is nothing to score")
    # Negative ids are PyG's mark for unlabelled nodes: scoring them as a class would reward a wrong partition.
    if y_true.dtype.kind in "iu" and bool((y_true[keep] < 0).any()):
        bad = int(y_true[keep][y_true[keep] < 0][0])
        hint = "pass ignore_label=-1 to leave unlabelled nodes out" if bad == -1 else "relabel the classes"
        raise ValueError(f"y_true holds the negative label {bad}: negative labels mark unlabelled nodes and are "
                         f"never scored as a class; {hint}")
    return keep


def _matching(true_idx: np.ndarray, pred_idx: np.ndarray, n_classes: int, n_clusters: int) -> np.ndarray:
    """For each cluster index, the matched class index, or ``-1`` for clusters left unmatched."""
    table = np.zeros((n_clusters, n_classes), dtype=np.int64)
    np.add.at(table, (pred_idx, true_idx), 1)
    # Among the matchings with the most agreements, prefer the one with the best macro-F1, so that F1 (like
    # ACC) does not depend on how ties are broken: F1 of class j matched to cluster i is 2 n_ij / (|i| + |j|),
    # and the tie-break weight is scaled so that it can never outweigh one agreement.
    f1_pairs = 2.0 * table / (table.sum(1, keepdims=True) + table.sum(0, keepdims=True))
    scale = 0.5 / (min(table.shape) + 1)
    rows, cols = linear_sum_assignment(table + scale * f1_pairs, maximize=True)
    mapping = np.full(n_clusters, -1, dtype=np.int64)
    mapping[rows] = cols
    return mapping


def _matched_indices(y_true: Any, y_pred: Any, ignore_label: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Class index of each scored node, the class index its cluster was matched to (``-1``: none), #classes."""
    y_true, y_pred = _pair(y_true, y_pred, ignore_label)
    classes, true_idx = np.unique(y_true, return_inverse=True)
    clusters, pred_idx = np.unique(y_pred, return_inverse=True)
    mapping = _matching(true_idx, pred_idx, classes.size, clusters.size)
    return true_idx, mapping[pred_idx], classes.size


def match_clusters(y_true: Any, y_pred: Any, ignore_label: Any = None) -> np.ndarray:
    """Map predicted cluster ids to class ids by a one-to-one Hungarian matching of the contingency table.

    The matching is rectangular: with more clusters than classes, the surplus clusters stay unmatched and
    their nodes are mapped to ``-1`` (``None`` for string classes), which is never a class (negative true labels
    are refused), so a partition is never rewarded for being merged or split.

    Args:
        y_true (array-like): True class of each node (integers or strings).
        y_pred (array-like): Cluster id of each node.
        ignore_label (optional): True label of unlabelled nodes (PyG uses ``-1``): they take no part in the
            matching, and are relabelled like the others. (default: :obj:`None`)

    Returns:
        numpy.ndarray: The relabelled predictions, one per node.
    """
    y_true, y_pred = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {y_true.size} and {y_pred.size}")
    keep = _labelled_mask(y_true, ignore_label)
    classes, true_idx = np.unique(y_true[keep], return_inverse=True)
    clusters, pred_idx = np.unique(y_pred, return_inverse=True)
    mapping = _matching(true_idx, pred_idx[keep], classes.size, clusters.size)
    if classes.dtype.kind in "iu":
        relabel = np.where(mapping >= 0, classes[np.maximum(mapping, 0)], -1)
    else:
        relabel = np.array([classes[m] if m >= 0 else None for m in mapping], dtype=object)
    return relabel[pred_idx]


def clustering_accuracy(y_true: Any, y_pred: Any, ignore_label: Any = None) -> float:
    r"""Accuracy after the best one-to-one matching of clusters to classes.

    .. math::
        \mathrm{ACC} = \max_{\pi} \frac{1}{N} \sum_i \mathbb{1}[y_i = \pi(\hat y_i)]

    with :math:`\pi` an injective map from clusters to classes (scipy's ``linear_sum_assignment``); nodes of
    unmatched clusters always count as wrong.

    Args:
        y_true (array-like): True class of each node (integers or strings; negative integers are refused).
        y_pred (array-like): Cluster id of each node.
        ignore_label (optional): Leave out the nodes whose true label is this value (PyG marks unlabelled nodes
            with ``-1``: pass ``ignore_label=-1``). :math:`N` counts the remaining nodes. (default: :obj:`None`)
    """
    true_idx, matched, _ = _matched_indices(y_true, y_pred, ignore_label)
    return float(np.mean(matched == true_idx))


def f1_macro(y_true: Any, y_pred: Any, ignore_label: Any = None) -> float:
    """Macro-averaged F1 over the true classes after the same matching as :func:`clustering_accuracy`
    (``ignore_label`` as there)."""
    true_idx, matched, n_classes = _matched_indices(y_true, y_pred, ignore_label)
    return float(f1_score(true_idx, matched, labels=np.arange(n_classes), average="macro", zero_division=0))


def nmi(y_true: Any, y_pred: Any, ignore_label: Any = None) -> float:
    """Normalised mutual information (arithmetic mean normalisation), on the raw labels (``ignore_label`` as in
    :func:`clustering_accuracy`)."""
    return float(normalized_mutual_info_score(*_pair(y_true, y_pred, ignore_label)))


def ari(y_true: Any, y_pred: Any, ignore_label: Any = None) -> float:
    """Adjusted Rand index, on the raw labels (``ignore_label`` as in :func:`clustering_accuracy`)."""
    return float(adjusted_rand_score(*_pair(y_true, y_pred, ignore_label)))


def clustering_metrics(y_true: Any, y_pred: Any, ignore_label: Any = None) -> dict[str, float]:
    """``{'acc', 'nmi', 'ari', 'f1'}`` in one call (``ignore_label`` as in :func:`clustering_accuracy`)."""
    return {
        "acc": clustering_accuracy(y_true, y_pred, ignore_label),
        "nmi": nmi(y_true, y_pred, ignore_label),
        "ari": ari(y_true, y_pred, ignore_label),
        "f1": f1_macro(y_true, y_pred, ignore_label),
    }

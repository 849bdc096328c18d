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
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise TypeError(f"{name} must hold integer labels, got dtype {array.dtype}")
        array = array.astype(np.int64)
    return array


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {y_true.size} and {y_pred.size}")
    return y_true, y_pred


def match_clusters(y_true: Any, y_pred: Any) -> np.ndarray:
    """Map predicted cluster ids to class ids by a one-to-one Hungarian matching of the contingency table.

    The matching is rectangular: with more clusters than classes, the surplus clusters stay unmatched and
    their nodes are mapped to ``-1`` (always wrong), so a partition is never rewarded for being merged or split.
    Returns the relabelled predictions.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    classes, true_idx = np.unique(y_true, return_inverse=True)
    clusters, pred_idx = np.unique(y_pred, return_inverse=True)
    table = np.zeros((clusters.size, classes.size), dtype=np.int64)
    np.add.at(table, (pred_idx, true_idx), 1)
    # Among the matchings with the most agreements, prefer the one with the best macro-F1, so that F1 (like
    # ACC) does not depend on how ties are broken: F1 of class j matched to cluster i is 2 n_ij / (|i| + |j|),
    # and the tie-break weight is scaled so that it can never outweigh one agreement.
    f1_pairs = 2.0 * table / (table.sum(1, keepdims=True) + table.sum(0, keepdims=True))
    scale = 0.5 / (min(table.shape) + 1)
    rows, cols = linear_sum_assignment(table + scale * f1_pairs, maximize=True)
    mapping = np.full(clusters.size, -1, dtype=np.int64)
    mapping[rows] = classes[cols]
    return mapping[pred_idx]


def clustering_accuracy(y_true: Any, y_pred: Any) -> float:
    r"""Accuracy after the best one-to-one matching of clusters to classes.

    .. math::
        \mathrm{ACC} = \max_{\pi} \frac{1}{N} \sum_i \mathbb{1}[y_i = \pi(\hat y_i)]

    with :math:`\pi` an injective map from clusters to classes (scipy's ``linear_sum_assignment``).
    """
    y_true, _ = _pair(y_true, y_pred)
    return float(np.mean(match_clusters(y_true, y_pred) == y_true))


def f1_macro(y_true: Any, y_pred: Any) -> float:
    """Macro-averaged F1 over the true classes after the same matching as :func:`clustering_accuracy`."""
    y_true, _ = _pair(y_true, y_pred)
    matched = match_clusters(y_true, y_pred)
    return float(f1_score(y_true, matched, labels=np.unique(y_true), average="macro", zero_division=0))


def nmi(y_true: Any, y_pred: Any) -> float:
    """Normalised mutual information (arithmetic mean normalisation), on the raw labels."""
    return float(normalized_mutual_info_score(*_pair(y_true, y_pred)))


def ari(y_true: Any, y_pred: Any) -> float:
    """Adjusted Rand index, on the raw labels."""
    return float(adjusted_rand_score(*_pair(y_true, y_pred)))


def clustering_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """``{'acc', 'nmi', 'ari', 'f1'}`` in one call."""
    return {
        "acc": clustering_accuracy(y_true, y_pred),
        "nmi": nmi(y_true, y_pred),
        "ari": ari(y_true, y_pred),
        "f1": f1_macro(y_true, y_pred),
    }

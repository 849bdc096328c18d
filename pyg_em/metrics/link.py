"""Link-prediction quality: ROC-AUC and average precision of positive versus negative edge scores."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

__all__ = ["link_auc", "link_ap", "link_prediction_metrics"]


def _scores(pos: Any, neg: Any) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, values in (("pos_scores", pos), ("neg_scores", neg)):
        if hasattr(values, "detach"):
            # float64 holds every torch float exactly; a float32 cast would tie saturated scores (AUC 0.5).
            values = values.detach().cpu().double().numpy()
        try:
            values = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} must be an array of real scores ({error})") from None
        if values.size == 0:
            raise ValueError(f"{name} is empty: AUC/AP need at least one positive and one negative edge")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} contains NaN or Inf")
        arrays.append(values)
    scores = np.concatenate(arrays)
    labels = np.concatenate([np.ones(arrays[0].size), np.zeros(arrays[1].size)])
    return labels, scores


def link_auc(pos_scores: Any, neg_scores: Any) -> float:
    """Area under the ROC curve (scikit-learn), positives labelled 1 and negatives 0."""
    return float(roc_auc_score(*_scores(pos_scores, neg_scores)))


def link_ap(pos_scores: Any, neg_scores: Any) -> float:
    """Average precision (scikit-learn), positives labelled 1 and negatives 0."""
    return float(average_precision_score(*_scores(pos_scores, neg_scores)))


def link_prediction_metrics(pos_scores: Any, neg_scores: Any) -> dict[str, float]:
    """``{'auc', 'ap'}`` in one call."""
    labels, scores = _scores(pos_scores, neg_scores)
    return {"auc": float(roc_auc_score(labels, scores)), "ap": float(average_precision_score(labels, scores))}

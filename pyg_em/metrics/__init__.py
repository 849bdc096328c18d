"""Clustering, graph and link-prediction metrics."""

from pyg_em.metrics.clustering import (
    ari,
    clustering_accuracy,
    clustering_metrics,
    f1_macro,
    match_clusters,
    nmi,
)
from pyg_em.metrics.graph import conductance, modularity
from pyg_em.metrics.link import link_ap, link_auc, link_prediction_metrics

__all__ = [
    "clustering_accuracy",
    "match_clusters",
    "nmi",
    "ari",
    "f1_macro",
    "clustering_metrics",
    "modularity",
    "conductance",
    "link_auc",
    "link_ap",
    "link_prediction_metrics",
]

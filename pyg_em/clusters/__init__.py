"""Clustering heads and classical baselines."""

from pyg_em.clusters.clusterability import feature_silhouette
from pyg_em.clusters.dec import DECClusterHead
from pyg_em.clusters.kmeans import EXACT_KMEANS_MAX_POINTS, KMEANS_SAMPLE_SIZE, kmeans, lloyd_refine
from pyg_em.clusters.spectral import spectral_clustering, spectral_embedding

__all__ = ["DECClusterHead", "kmeans", "lloyd_refine", "spectral_clustering", "spectral_embedding",
           "feature_silhouette", "EXACT_KMEANS_MAX_POINTS", "KMEANS_SAMPLE_SIZE"]

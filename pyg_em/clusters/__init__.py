"""Clustering heads and classical baselines."""

from pyg_em.clusters.dec import DECClusterHead
from pyg_em.clusters.kmeans import kmeans
from pyg_em.clusters.spectral import spectral_clustering, spectral_embedding

__all__ = ["DECClusterHead", "kmeans", "spectral_clustering", "spectral_embedding"]

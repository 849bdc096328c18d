"""Clustering heads and classical baselines."""

from pyg_em.clusters.kmeans import kmeans
from pyg_em.clusters.spectral import spectral_clustering, spectral_embedding

__all__ = ["kmeans", "spectral_clustering", "spectral_embedding"]

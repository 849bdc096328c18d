"""Trainable models on the :class:`~pyg_em.models.base.BaseModel` template."""

from pyg_em.models.base import BaseModel, ClusteringModel, LossOutput

__all__ = ["LossOutput", "BaseModel", "ClusteringModel"]

"""Trainable models on the :class:`~pyg_em.models.base.BaseModel` template."""

from pyg_em.models.base import BaseModel, ClusteringModel, LossOutput
from pyg_em.models.daegc import DAEGC

__all__ = ["LossOutput", "BaseModel", "ClusteringModel", "DAEGC"]

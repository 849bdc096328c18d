"""Trainable models on the :class:`~pyg_em.models.BaseModel` template."""

from pyg_em.models.base import BaseModel, ClusteringModel, LossOutput
from pyg_em.models.daegc import DAEGC
from pyg_em.models.gae import GAE, VGAE
from pyg_em.models.link_prediction import LinkSplit, evaluate_link_prediction, labelled_pairs, link_split
from pyg_em.utils.negative_sampling import sample_negative_edges

__all__ = [
    "LossOutput", "BaseModel", "ClusteringModel", "DAEGC",
    "GAE", "VGAE", "LinkSplit", "link_split", "evaluate_link_prediction", "labelled_pairs",
    "sample_negative_edges",
]

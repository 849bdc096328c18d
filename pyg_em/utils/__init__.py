"""General utilities below every layer: tensor-keyed caches and negative sampling of node pairs."""

from pyg_em.utils.cache import TensorKeyedCache, is_sparse_tensor
from pyg_em.utils.csc import SortedCSC, symmetric_csc
from pyg_em.utils.negative_sampling import (
    forbidden_pair_keys,
    is_forbidden,
    masked_mean,
    sample_negative_edges,
    sample_negatives_from,
)

__all__ = ["TensorKeyedCache", "is_sparse_tensor", "forbidden_pair_keys", "is_forbidden", "masked_mean",
           "sample_negative_edges", "sample_negatives_from", "SortedCSC", "symmetric_csc"]

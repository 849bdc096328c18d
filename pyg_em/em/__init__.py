"""GEM: unrolled and implicit EM layers that learn graph weights on ``edge_index``."""

from pyg_em.em.base import LOGDET_EXACT_MAX_NODES, GEMBase, GEMConfig, observation_mask
from pyg_em.em.candidates import complete_graph, knn_candidate_graph, pairs_to_edge_index, undirected_pairs
from pyg_em.em.implicit import FixedPointReport, GEMImplicitEM, gmres
from pyg_em.em.impute import gmrf_impute
from pyg_em.em.learner import GEMGraphLearner
from pyg_em.em.synthetic import edge_labels, smooth_graph_signals
from pyg_em.em.unrolled import GEMUnrolledEM, gem_unrolled

__all__: list[str] = [
    "LOGDET_EXACT_MAX_NODES",
    "FixedPointReport",
    "GEMBase",
    "GEMConfig",
    "GEMGraphLearner",
    "GEMImplicitEM",
    "GEMUnrolledEM",
    "complete_graph",
    "edge_labels",
    "gem_unrolled",
    "gmres",
    "gmrf_impute",
    "knn_candidate_graph",
    "observation_mask",
    "pairs_to_edge_index",
    "smooth_graph_signals",
    "undirected_pairs",
]

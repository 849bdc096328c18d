"""GEM: unrolled and implicit EM layers that learn graph weights on ``edge_index``."""

from pyg_em.em.candidates import complete_graph, knn_candidate_graph, pairs_to_edge_index, undirected_pairs
from pyg_em.em.implicit import GEMImplicitEM
from pyg_em.em.learner import GEMGraphLearner
from pyg_em.em.synthetic import edge_labels, smooth_graph_signals
from pyg_em.em.unrolled import GEMUnrolledEM, gem_unrolled

__all__: list[str] = [
    "GEMGraphLearner",
    "GEMImplicitEM",
    "GEMUnrolledEM",
    "complete_graph",
    "edge_labels",
    "gem_unrolled",
    "knn_candidate_graph",
    "pairs_to_edge_index",
    "smooth_graph_signals",
    "undirected_pairs",
]

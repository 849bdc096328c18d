"""Layers, encoders and decoders (PyG ``MessagePassing`` modules)."""

from pyg_em.nn._csc_proximity import CSCProximity, csc_proximity
from pyg_em.nn.feature_rows import FeatureRows
from pyg_em.nn.gcn_encoder import GCNEncoder, NormalizedAdjacencyCache, VariationalGCNEncoder
from pyg_em.nn.propagation_encoder import NormalizedPropagationEncoder, VariationalNormalizedPropagationEncoder
from pyg_em.nn.proximity_attention import (
    ProximityAttentionConv,
    ProximityGraph,
    gather_proximity,
    proximity_graph,
    proximity_keys,
    proximity_on_edges,
    restrict_proximity,
    transition_proximity,
    whole_graph_proximity,
)

__all__: list[str] = [
    "GCNEncoder", "VariationalGCNEncoder", "NormalizedAdjacencyCache",
    "NormalizedPropagationEncoder", "VariationalNormalizedPropagationEncoder",
    "ProximityAttentionConv", "transition_proximity", "ProximityGraph", "proximity_graph", "proximity_keys",
    "restrict_proximity", "proximity_on_edges", "gather_proximity", "FeatureRows",
    "CSCProximity", "csc_proximity", "whole_graph_proximity",
]

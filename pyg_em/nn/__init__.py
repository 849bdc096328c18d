"""Layers, encoders and decoders (PyG ``MessagePassing`` modules)."""

from pyg_em.nn.gcn_encoder import GCNEncoder, NormalizedAdjacencyCache, VariationalGCNEncoder
from pyg_em.nn.propagation_encoder import NormalizedPropagationEncoder, VariationalNormalizedPropagationEncoder
from pyg_em.nn.proximity_attention import ProximityAttentionConv, transition_proximity

__all__: list[str] = [
    "GCNEncoder", "VariationalGCNEncoder", "NormalizedAdjacencyCache",
    "NormalizedPropagationEncoder", "VariationalNormalizedPropagationEncoder",
    "ProximityAttentionConv", "transition_proximity",
]

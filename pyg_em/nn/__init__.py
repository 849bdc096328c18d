"""Layers, encoders and decoders (PyG ``MessagePassing`` modules)."""

from pyg_em.nn.gcn_encoder import GCNEncoder, NormalizedAdjacencyCache, VariationalGCNEncoder
from pyg_em.nn.propagation_encoder import NormalizedPropagationEncoder, VariationalNormalizedPropagationEncoder

__all__: list[str] = [
    "GCNEncoder", "VariationalGCNEncoder", "NormalizedAdjacencyCache",
    "NormalizedPropagationEncoder", "VariationalNormalizedPropagationEncoder",
]

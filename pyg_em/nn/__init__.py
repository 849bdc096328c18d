"""Layers, encoders and decoders (PyG ``MessagePassing`` modules)."""

from pyg_em.nn.gcn_encoder import GCNEncoder, NormalizedAdjacencyCache, VariationalGCNEncoder

__all__: list[str] = ["GCNEncoder", "VariationalGCNEncoder", "NormalizedAdjacencyCache"]

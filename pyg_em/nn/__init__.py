"""Layers, encoders and decoders (PyG ``MessagePassing`` modules)."""

from pyg_em.nn.proximity_attention import ProximityAttentionConv, transition_proximity

__all__ = ["ProximityAttentionConv", "transition_proximity"]

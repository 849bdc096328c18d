"""Layers, encoders and decoders (PyG ``MessagePassing`` modules)."""

__all__: list[str] = []

"""Sparse Laplacian linear algebra with sparse-aware gradients."""

__all__: list[str] = []

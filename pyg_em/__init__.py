"""pyg_em: PyTorch Geometric extensions for graph auto-encoders, deep clustering, graph learning by EM,
sparse Laplacian linear algebra and neural tangent kernels."""

__version__ = "0.1.0"

from pyg_em import clusters, datasets, em, func, linalg, metrics, models, nn, train, validation  # noqa: E402

__all__ = ["clusters", "datasets", "em", "func", "linalg", "metrics", "models", "nn", "train", "validation",
           "__version__"]

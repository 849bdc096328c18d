"""pyg_em: PyTorch Geometric extensions for graph auto-encoders, deep clustering, graph learning by EM,
sparse Laplacian linear algebra and neural tangent kernels."""

__version__ = "0.1.0"

from pyg_em import (  # noqa: E402
    clusters,
    datasets,
    em,
    func,
    linalg,
    metrics,
    models,
    nn,
    recipes,
    train,
    utils,
    validation,
)

__all__ = ["clusters", "datasets", "em", "func", "linalg", "metrics", "models", "nn", "recipes", "train", "utils",
           "validation",
           "__version__"]

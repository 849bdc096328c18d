"""pyg_em: PyTorch Geometric extensions for graph auto-encoders, deep clustering, graph learning by EM,
sparse Laplacian linear algebra and neural tangent kernels."""

import importlib

__version__ = "0.1.0"

#: The subpackages, imported on first access (``pyg_em.models``, ``from pyg_em import recipes``): importing the
#: ``pyg-em`` command itself then loads no torch, so a Ctrl-C while torch loads is caught by the command.
SUBPACKAGES = ("clusters", "datasets", "em", "func", "linalg", "metrics", "models", "nn", "recipes", "report", "train",
               "utils", "validation")

__all__ = [*SUBPACKAGES, "__version__"]


def __getattr__(name: str):
    if name in SUBPACKAGES:
        return importlib.import_module(f"pyg_em.{name}")
    raise AttributeError(f"module 'pyg_em' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

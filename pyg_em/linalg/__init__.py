"""Sparse Laplacian linear algebra with sparse-aware gradients."""

from pyg_em.linalg.cg import batched_pcg
from pyg_em.linalg.errors import ConvergenceError, ConvergenceWarning
from pyg_em.linalg.fixed_point import fixed_point
from pyg_em.linalg.incidence import incidence_matrix
from pyg_em.linalg.laplacian import laplacian, laplacian_coo, laplacian_matvec
from pyg_em.linalg.lsmr import batched_lsmr
from pyg_em.linalg.lstsq import sparse_lstsq
from pyg_em.linalg.pinv import LaplacianPseudoInverse, connected_components
from pyg_em.linalg.sparse_solve import sparse_solve

__all__: list[str] = [
    "ConvergenceError",
    "ConvergenceWarning",
    "LaplacianPseudoInverse",
    "batched_lsmr",
    "batched_pcg",
    "connected_components",
    "fixed_point",
    "incidence_matrix",
    "laplacian",
    "laplacian_coo",
    "laplacian_matvec",
    "sparse_lstsq",
    "sparse_solve",
]

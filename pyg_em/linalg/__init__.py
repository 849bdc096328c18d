"""Sparse Laplacian linear algebra with sparse-aware gradients.

Modules whose main function has the module's name are private (``_sparse_solve``, ``_laplacian``,
``_fixed_point``), so ``pyg_em.linalg.sparse_solve`` is always the function.
"""

from pyg_em.linalg._fixed_point import fixed_point
from pyg_em.linalg._laplacian import laplacian, laplacian_coo, laplacian_matvec
from pyg_em.linalg._sparse_solve import AUTO_DIRECT_MAX_NODES, SparseSolveFunction, sparse_solve
from pyg_em.linalg.amg import AMGPreconditioner
from pyg_em.linalg.cg import batched_pcg
from pyg_em.linalg.errors import ConvergenceError, ConvergenceWarning
from pyg_em.linalg.incidence import incidence_matrix
from pyg_em.linalg.lsmr import batched_lsmr
from pyg_em.linalg.lstsq import sparse_lstsq
from pyg_em.linalg.pattern import SparsityPattern
from pyg_em.linalg.pinv import LaplacianPseudoInverse, connected_components

__all__: list[str] = [
    "AMGPreconditioner",
    "AUTO_DIRECT_MAX_NODES",
    "ConvergenceError",
    "ConvergenceWarning",
    "LaplacianPseudoInverse",
    "SparseSolveFunction",
    "SparsityPattern",
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

"""The structure of a sparse matrix, analysed once and reused by every solve with the same stored positions."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from pyg_em.linalg._symmetry import asymmetry

__all__ = ["SparsityPattern"]


def _rcm_order(rows: Tensor, cols: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Reverse Cuthill-McKee order of the symmetrised pattern: ``perm[new] = old`` and its inverse."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    r, c = rows.cpu().numpy(), cols.cpu().numpy()
    pattern = sp.csr_matrix((np.ones(r.shape[0], dtype=np.int8), (r, c)), shape=(n, n))
    perm = torch.from_numpy(reverse_cuthill_mckee(pattern, symmetric_mode=False).astype(np.int64))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    return perm.to(rows.device), inv.to(rows.device)


class SparsityPattern:
    r"""The stored positions of a sparse :math:`N \times N` matrix, analysed once for any number of value sets.

    Everything :func:`~pyg_em.linalg.sparse_solve` derives from ``indices`` alone is computed here once: the
    sorted unique positions (duplicates are summed when values are read), the position of every entry's mirror
    (so checking that a matrix is symmetric is one gather, not a sort), the diagonal, the reverse
    Cuthill-McKee renumbering and the CSR layout CG multiplies with. Solving many matrices with the same
    pattern -- the layers of an unrolled EM, an optimiser updating edge weights, forward and backward solves --
    then costs :math:`O(\mathrm{nnz})` per matrix for the set-up instead of several sorts. The pattern never holds
    values: each solve reads its own, so new values can never meet stale numbers.

    Pass it as ``sparse_solve(A, B, pattern=pattern)`` with ``A = (indices, values, N)``. The solve checks that
    ``A``'s indices are the pattern's (free when it is the same, unmodified tensor; one comparison otherwise) and
    raises a :class:`ValueError` if not.

    Example::

        >>> import torch
        >>> from pyg_em.linalg import SparsityPattern, laplacian_coo, sparse_solve
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> indices, values, n = laplacian_coo(edge_index, torch.ones(4, dtype=torch.float64), shift=0.1)
        >>> pattern = SparsityPattern(indices, n)
        >>> for scale in (1.0, 2.0):  # new values, same structure: the analysis is reused
        ...     X = sparse_solve((indices, scale * values, n), torch.ones(n, dtype=torch.float64), pattern=pattern)

    Args:
        indices (torch.Tensor): Stored positions ``(2, nnz)`` (``torch.long``, rows then columns); duplicates
            allowed.
        num_nodes (int): The matrix size :math:`N`.

    Shapes:
        - **input:** indices :math:`(2, \mathrm{nnz})`
    """

    def __init__(self, indices: Tensor, num_nodes: int) -> None:
        if not isinstance(indices, Tensor) or indices.dtype != torch.long or indices.dim() != 2 \
                or indices.size(0) != 2:
            raise TypeError("indices must be a torch.long tensor of shape (2, nnz); build it with "
                            "pyg_em.linalg.laplacian_coo or torch.stack([rows, cols])")
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 1:
            raise ValueError(f"num_nodes must be a positive int, got {num_nodes!r}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= num_nodes):
            raise ValueError(f"indices has entries outside [0, {num_nodes}); pass the matrix size as num_nodes")
        n = num_nodes
        self.num_nodes = n
        self.indices = indices.clone()  # a private copy: the caller's tensor may later change in place
        self._source, self._version = indices, indices._version
        keys = indices[0] * n + indices[1]
        unique, self._inverse = torch.unique(keys, sorted=True, return_inverse=True)
        self._keys = unique
        self.rows = torch.div(unique, n, rounding_mode="floor")
        self.cols = unique - self.rows * n
        mirror = self.cols * n + self.rows
        position = torch.searchsorted(unique, mirror).clamp_max(max(unique.numel() - 1, 0))
        found = unique[position] == mirror if unique.numel() else torch.ones(0, dtype=torch.bool)
        #: Whether every stored position ``(i, j)`` has its mirror ``(j, i)`` stored.
        self.symmetric = bool(found.all())
        self._mirror = position if self.symmetric else None
        on_diagonal = self.rows == self.cols
        self._diagonal_positions, self._diagonal_nodes = on_diagonal.nonzero().view(-1), self.rows[on_diagonal]
        self._layouts: dict[bool, tuple[Tensor, Tensor, Tensor | None]] = {}
        self._renumbering: tuple[Tensor, Tensor] | None = None

    @property
    def nnz(self) -> int:
        """Number of stored positions (duplicates counted once)."""
        return int(self._keys.numel())

    def matches(self, indices: Tensor, num_nodes: int) -> bool:
        """Whether ``indices`` (of an ``num_nodes``-sized matrix) are this pattern's: the same unmodified tensor,
        or equal entries."""
        if num_nodes != self.num_nodes:
            return False
        if indices is self._source and indices._version == self._version:
            return True
        return indices.shape == self.indices.shape and indices.device == self.indices.device \
            and torch.equal(indices, self.indices)

    def coalesce(self, values: Tensor) -> Tensor:
        """The values at the sorted unique positions, duplicates summed (differentiable)."""
        return values.new_zeros(self.nnz).index_add(0, self._inverse, values)

    def diagonal(self, values: Tensor) -> Tensor:
        """The diagonal ``(N,)`` of the matrix with stored ``values`` (duplicates summed)."""
        coalesced = self.coalesce(values.detach())
        return values.new_zeros(self.num_nodes).index_add_(0, self._diagonal_nodes,
                                                           coalesced[self._diagonal_positions])

    def asymmetry(self, values: Tensor) -> tuple[int, int, float, float, int] | None:
        r"""Where the matrix with stored ``values`` differs from its transpose, as
        the general check of ``sparse_solve`` reports it (same tolerance, :math:`\sqrt{\epsilon}`
        relative), by one gather at the mirror positions when the pattern is symmetric."""
        if self._mirror is None:
            return asymmetry(self.indices, values, self.num_nodes)
        vals = self.coalesce(values.detach())
        mirror_vals = vals[self._mirror]
        tol = torch.finfo(vals.dtype).eps ** 0.5
        bad = (vals - mirror_vals).abs() > tol * torch.maximum(vals.abs(), mirror_vals.abs())
        if not bool(bad.any()):
            return None
        first = int(bad.nonzero()[0, 0])
        return int(self.rows[first]), int(self.cols[first]), float(vals[first]), float(mirror_vals[first]), \
            int(bad.sum())

    def renumbering(self) -> tuple[Tensor, Tensor]:
        """Reverse Cuthill-McKee order ``(perm, inverse)`` with ``perm[new] = old`` (computed once)."""
        if self._renumbering is None:
            self._renumbering = _rcm_order(self.rows, self.cols, self.num_nodes)
        return self._renumbering

    def csr_layout(self, renumber: bool) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(crow_indices, col_indices, order)`` of the CSR matrix (rows and columns renumbered by
        :meth:`renumbering` when ``renumber``); ``order`` takes coalesced values to CSR order (:obj:`None`:
        already in it)."""
        if renumber not in self._layouts:
            rows, cols, order = self.rows, self.cols, None
            if renumber:
                inverse = self.renumbering()[1]
                rows, cols = inverse[rows], inverse[cols]
                order = torch.argsort(rows * self.num_nodes + cols)
                rows, cols = rows[order], cols[order]
            counts = torch.bincount(rows, minlength=self.num_nodes)
            crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
            self._layouts[renumber] = crow, cols, order
        return self._layouts[renumber]

    def csr(self, values: Tensor, renumber: bool = False, scale: Tensor | None = None) -> Tensor:
        r"""The CSR tensor with stored ``values`` (detached; duplicates summed), as
        :math:`\mathrm{diag}(s)\,\mathbf{A}\,\mathrm{diag}(s)` with ``scale`` :math:`s` (the Jacobi scaling)
        and renumbered when ``renumber``."""
        crow, col, order = self.csr_layout(renumber)
        vals = self.coalesce(values.detach())
        if scale is not None:
            vals = vals * scale[self.rows] * scale[self.cols]
        if order is not None:
            vals = vals[order]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(crow, col, vals, (self.num_nodes, self.num_nodes), check_invariants=False)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, nnz={self.nnz}, "
                f"symmetric={self.symmetric})")

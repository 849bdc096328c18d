r"""Product of a constant sparse matrix with a dense, differentiable one, using a cached transpose in backward.

``torch.sparse.mm(A, B)`` with a CSR ``A`` rebuilds :math:`A^\top` in CSR form in every backward pass (measured
as a quarter of a GAE training step on Cora). When ``A`` is constant across steps (a normalised adjacency, a
bag-of-words feature matrix), :math:`A^\top` can be built once and reused:

.. math::
    \mathbf{Y} = \mathbf{A}\mathbf{B}, \qquad
    \frac{\partial L}{\partial \mathbf{B}} = \mathbf{A}^\top \frac{\partial L}{\partial \mathbf{Y}}.

No gradient flows to ``A`` (it is data, not a parameter).

:func:`edge_value_matmul` is the counterpart for a fixed sparsity pattern with *learned* values (attention
coefficients): the gradient of the values is a sampled dense-dense product (SDDMM) at the pattern only,

.. math::
    \frac{\partial L}{\partial a_{ij}} = \Big(\frac{\partial L}{\partial \mathbf{Y}}\Big)_{i,:}
    \cdot \mathbf{B}_{j,:},

so neither pass materialises an :math:`E \times F` array of per-edge messages (gather, multiply, scatter),
which dominates a gather/scatter attention layer on CPU.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["ConstantSparseMatmul", "CSRPattern", "EdgeValueMatmul", "constant_sparse_matmul", "csr_pair",
           "csr_pattern", "csr_rows", "edge_value_matmul", "sparse_pair"]


def sparse_pair(matrix: Tensor) -> tuple[Tensor, Tensor]:
    """``(A, A^T)`` as CSR tensors, from a dense or sparse ``A`` (computed once, then cached by callers)."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the kernels used here are stable
        warnings.simplefilter("ignore", UserWarning)
        coo = matrix.to_sparse_coo().coalesce() if matrix.layout != torch.sparse_coo else matrix.coalesce()
        return coo.to_sparse_csr(), coo.t().coalesce().to_sparse_csr()


def csr_rows(matrix: Tensor, index: Tensor) -> Tensor:
    r"""Rows ``index`` of a sparse CSR ``matrix``, as a CSR matrix (a vectorised gather of the rows' entries).

    Costs :math:`O(|\mathrm{index}| + \mathrm{nnz\ of\ the\ rows})`, against a dense-to-sparse conversion of
    the gathered rows that scans all :math:`|\mathrm{index}| \cdot F` entries. The output size depends on the
    data, so this reads one count on the host: run it where mini-batches are built (a loader transform on
    the CPU), not inside a device step.
    """
    crow, col, values = matrix.crow_indices(), matrix.col_indices(), matrix.values()
    start = crow[index]
    counts = crow[index + 1] - start
    new_crow = torch.zeros(index.numel() + 1, dtype=crow.dtype, device=crow.device)
    torch.cumsum(counts, 0, out=new_crow[1:])
    total = int(new_crow[-1])
    # Entry k of output row r sits at start[r] + (k - new_crow[r]) in the input.
    offsets = torch.repeat_interleave(start - new_crow[:-1], counts, output_size=total)
    positions = offsets + torch.arange(total, dtype=crow.dtype, device=crow.device)
    return _csr(new_crow, col[positions], values[positions], (index.numel(), matrix.size(1)))


def csr_pair(matrix: Tensor) -> tuple[Tensor, Tensor]:
    """``(A, A^T)`` as CSR tensors from a CSR ``A``, the transpose by one sort of its entries (no dense pass and
    no COO round trip, unlike :func:`sparse_pair`)."""
    crow, col, values = matrix.crow_indices(), matrix.col_indices(), matrix.values()
    rows = torch.repeat_interleave(torch.arange(matrix.size(0), device=crow.device), crow.diff(),
                                   output_size=col.numel())
    t_crow, t_col, order = _compressed(col, rows, matrix.size(1), matrix.size(0))
    return matrix, _csr(t_crow, t_col, values[order], (matrix.size(1), matrix.size(0)))


class ConstantSparseMatmul(torch.autograd.Function):
    """``A @ B`` for a constant sparse ``A`` with a precomputed transpose ``A_t`` (see the module docstring)."""

    @staticmethod
    def forward(ctx, a: Tensor, a_t: Tensor, b: Tensor) -> Tensor:
        """``A @ B``; saves ``A_t`` for the backward."""
        ctx.save_for_backward(a_t)
        return torch.sparse.mm(a, b)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor | None]:
        """``A^T @ grad`` for ``b`` (``A`` is constant: no gradient)."""
        (a_t,) = ctx.saved_tensors
        return None, None, torch.sparse.mm(a_t, grad) if ctx.needs_input_grad[2] else None


def constant_sparse_matmul(a: Tensor, a_t: Tensor, b: Tensor) -> Tensor:
    """:math:`\\mathbf{A}\\mathbf{B}` with gradients for ``b`` only, ``a_t`` being :math:`\\mathbf{A}^\\top`."""
    if a.dim() != 2 or b.dim() != 2 or a.size(1) != b.size(0):
        raise ValueError(f"shapes do not match for a @ b: {tuple(a.shape)} and {tuple(b.shape)}")
    if tuple(a_t.shape) != (a.size(1), a.size(0)):
        raise ValueError(f"a_t must have shape {(a.size(1), a.size(0))}, got {tuple(a_t.shape)}")
    return ConstantSparseMatmul.apply(a, a_t, b)


class CSRPattern(NamedTuple):
    r"""A fixed sparsity pattern in CSR form for :math:`\mathbf{A}` and :math:`\mathbf{A}^\top`.

    ``order``/``t_order`` map the caller's entry order to the CSR entry order of :math:`\mathbf{A}` and of
    :math:`\mathbf{A}^\top`, so per-entry values given in the caller's order can be laid out for either.
    """

    crow: Tensor
    col: Tensor
    order: Tensor
    t_crow: Tensor
    t_col: Tensor
    t_order: Tensor
    size: tuple[int, int]


def _compressed(major: Tensor, minor: Tensor, num_major: int, num_minor: int) -> tuple[Tensor, Tensor, Tensor]:
    order = (major * num_minor + minor).argsort()
    crow = torch.zeros(num_major + 1, dtype=torch.long, device=major.device)
    crow[1:] = torch.bincount(major, minlength=num_major).cumsum(0)
    return crow, minor[order], order


def csr_pattern(row: Tensor, col: Tensor, size: tuple[int, int]) -> CSRPattern:
    """The :class:`CSRPattern` of the entries ``(row[e], col[e])`` of a ``size`` matrix (duplicates allowed)."""
    crow, ccol, order = _compressed(row, col, size[0], size[1])
    t_crow, t_col, t_order = _compressed(col, row, size[1], size[0])
    return CSRPattern(crow, ccol, order, t_crow, t_col, t_order, (int(size[0]), int(size[1])))


def _csr(crow: Tensor, col: Tensor, values: Tensor, size: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the kernels used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, size)


def _sampled_row_dots(left: Tensor, right: Tensor, pattern: CSRPattern) -> Tensor:
    """``left[i] · right[j]`` for each CSR entry ``(i, j)`` of ``pattern``, in CSR order (an SDDMM)."""
    try:
        mask = _csr(pattern.crow, pattern.col, left.new_zeros(pattern.col.numel()), pattern.size)
        return torch.sparse.sampled_addmm(mask, left, right.t(), beta=0.0).values()
    except (RuntimeError, NotImplementedError):
        # Backends without an SDDMM kernel for this dtype/layout: gather rows (allocates (nnz, F) once).
        rows = torch.repeat_interleave(torch.arange(pattern.size[0], device=left.device), pattern.crow.diff())
        return (left[rows] * right[pattern.col]).sum(-1)


class EdgeValueMatmul(torch.autograd.Function):
    """``A(values) @ B`` on a fixed :class:`CSRPattern`, differentiable in ``values`` and ``B``."""

    @staticmethod
    def forward(ctx, values: Tensor, b: Tensor, pattern: CSRPattern) -> Tensor:
        """``A(values) @ B`` on the fixed pattern."""
        ctx.pattern = pattern
        ctx.save_for_backward(values, b)
        return torch.sparse.mm(_csr(pattern.crow, pattern.col, values[pattern.order], pattern.size), b)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        """Gradients for ``values`` (``grad_i . B_j`` on the pattern, an SDDMM) and for ``B`` (``A^T @ grad``)."""
        values, b = ctx.saved_tensors
        pattern: CSRPattern = ctx.pattern
        grad = grad.contiguous()
        grad_values = grad_b = None
        if ctx.needs_input_grad[0]:
            sampled = _sampled_row_dots(grad, b, pattern)
            grad_values = torch.empty_like(values).index_copy_(0, pattern.order, sampled)
        if ctx.needs_input_grad[1]:
            transposed = _csr(pattern.t_crow, pattern.t_col, values[pattern.t_order], pattern.size[::-1])
            grad_b = torch.sparse.mm(transposed, grad)
        return grad_values, grad_b, None


def edge_value_matmul(values: Tensor, b: Tensor, pattern: CSRPattern) -> Tensor:
    r""":math:`\mathbf{A}\mathbf{B}` where :math:`\mathbf{A}` has ``pattern`` and entries ``values`` (in the
    order the pattern was built from); gradients flow to ``values`` and ``b`` (see the module docstring)."""
    if values.dim() != 1 or values.numel() != pattern.col.numel():
        raise ValueError(f"values must have shape ({pattern.col.numel()},), got {tuple(values.shape)}")
    if b.dim() != 2 or b.size(0) != pattern.size[1]:
        raise ValueError(f"b must have shape ({pattern.size[1]}, F), got {tuple(b.shape)}")
    if values.dtype != b.dtype:
        raise TypeError(f"values and b must share a dtype, got {values.dtype} and {b.dtype}")
    return EdgeValueMatmul.apply(values, b.contiguous(), pattern)

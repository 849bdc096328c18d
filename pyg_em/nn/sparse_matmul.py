r"""Product of a constant sparse matrix with a dense, differentiable one, using a cached transpose in backward.

``torch.sparse.mm(A, B)`` with a CSR ``A`` rebuilds :math:`A^\top` in CSR form in every backward pass (measured
as a quarter of a GAE training step on Cora). When ``A`` is constant across steps (a normalised adjacency, a
bag-of-words feature matrix), :math:`A^\top` can be built once and reused:

.. math::
    \mathbf{Y} = \mathbf{A}\mathbf{B}, \qquad
    \frac{\partial L}{\partial \mathbf{B}} = \mathbf{A}^\top \frac{\partial L}{\partial \mathbf{Y}}.

No gradient flows to ``A`` (it is data, not a parameter).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

__all__ = ["ConstantSparseMatmul", "constant_sparse_matmul", "sparse_pair"]


def sparse_pair(matrix: Tensor) -> tuple[Tensor, Tensor]:
    """``(A, A^T)`` as CSR tensors, from a dense or sparse ``A`` (computed once, then cached by callers)."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the kernels used here are stable
        warnings.simplefilter("ignore", UserWarning)
        coo = matrix.to_sparse_coo().coalesce() if matrix.layout != torch.sparse_coo else matrix.coalesce()
        return coo.to_sparse_csr(), coo.t().coalesce().to_sparse_csr()


class ConstantSparseMatmul(torch.autograd.Function):
    """``A @ B`` for a constant sparse ``A`` with a precomputed transpose ``A_t`` (see the module docstring)."""

    @staticmethod
    def forward(ctx, a: Tensor, a_t: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a_t)
        return torch.sparse.mm(a, b)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor | None]:
        (a_t,) = ctx.saved_tensors
        return None, None, torch.sparse.mm(a_t, grad) if ctx.needs_input_grad[2] else None


def constant_sparse_matmul(a: Tensor, a_t: Tensor, b: Tensor) -> Tensor:
    """:math:`\\mathbf{A}\\mathbf{B}` with gradients for ``b`` only, ``a_t`` being :math:`\\mathbf{A}^\\top`."""
    if a.dim() != 2 or b.dim() != 2 or a.size(1) != b.size(0):
        raise ValueError(f"shapes do not match for a @ b: {tuple(a.shape)} and {tuple(b.shape)}")
    if tuple(a_t.shape) != (a.size(1), a.size(0)):
        raise ValueError(f"a_t must have shape {(a.size(1), a.size(0))}, got {tuple(a_t.shape)}")
    return ConstantSparseMatmul.apply(a, a_t, b)

"""Sparse least squares (batched LSMR) with Golub--Pereyra gradients at the stored entries of ``A``."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from pyg_em.linalg._sparse_solve import as_sparse_triplet, check_finite, check_solver_dtype
from pyg_em.linalg.lsmr import batched_lsmr
from pyg_em.validation import check_positive_int


class _TallOperator:
    """Products with a tall sparse :math:`\\mathbf{A}` and :math:`\\mathbf{A}^\\top` (two CSR copies, built once)."""

    def __init__(self, indices: Tensor, values: Tensor, shape: tuple[int, int], atol, btol, maxiter, strict):
        m, n = shape
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            coo = torch.sparse_coo_tensor(indices, values.detach(), shape, check_invariants=False).coalesce()
            self.A = coo.to_sparse_csr()
            self.At = coo.t().coalesce().to_sparse_csr()
        self.rows, self.cols, self.shape = indices[0], indices[1], shape
        self.opts = {"atol": atol, "btol": btol, "maxiter": maxiter, "strict": strict}

    def lstsq(self, B: Tensor) -> Tensor:
        """:math:`\\mathbf{A}^{+}\\mathbf{B}`."""
        return batched_lsmr(lambda V: self.A @ V, lambda U: self.At @ U, B, self.shape[1], name="A", **self.opts)[0]

    def lstsq_transpose(self, G: Tensor) -> Tensor:
        """:math:`(\\mathbf{A}^\\top)^{+}\\mathbf{G}`: the minimum-norm solution of the wide system."""
        return batched_lsmr(lambda U: self.At @ U, lambda V: self.A @ V, G, self.shape[0], name="A^T",
                            **self.opts)[0]


class SparseLstsqFunction(torch.autograd.Function):
    r"""Autograd kernel of :func:`sparse_lstsq`: :math:`\mathbf{X} = \mathbf{A}^{+}\mathbf{B}` for tall
    :math:`\mathbf{A}` with full column rank.

    Golub & Pereyra (1973), with :math:`\mathbf{A}^{+}\mathbf{A} = \mathbf{I}`: differentiating
    :math:`\mathbf{X} = (\mathbf{A}^\top\mathbf{A})^{-1}\mathbf{A}^\top\mathbf{B}` gives, for an incoming
    gradient :math:`\mathbf{G}` and residual :math:`\mathbf{R} = \mathbf{A}\mathbf{X} - \mathbf{B}`,

    .. math::
        \mathbf{G}_B = (\mathbf{A}^\top)^{+}\mathbf{G}, \qquad \mathbf{H} = \mathbf{A}^{+}\mathbf{G}_B
        = (\mathbf{A}^\top\mathbf{A})^{-1}\mathbf{G}, \qquad
        \frac{\partial\mathcal{L}}{\partial\mathbf{B}} = \mathbf{G}_B, \qquad
        \frac{\partial\mathcal{L}}{\partial a_{ij}} = -(\mathbf{G}_B)_{i,:}\cdot\mathbf{X}_{j,:}
        - \mathbf{R}_{i,:}\cdot\mathbf{H}_{j,:},

    evaluated at the stored entries only (two gathers; no :math:`m \times n` outer product). Both adjoint
    solves are batched LSMR runs on consistent systems.
    """

    @staticmethod
    def forward(ctx, values: Tensor, B: Tensor, op: _TallOperator) -> Tensor:
        """Solve all columns with batched LSMR."""
        X = op.lstsq(B.detach())
        ctx.op = op
        ctx.save_for_backward(B, X)
        return X

    @staticmethod
    @once_differentiable
    def backward(ctx, G: Tensor):
        """Golub--Pereyra gradients (first order)."""
        B, X = ctx.saved_tensors
        op: _TallOperator = ctx.op
        GB = op.lstsq_transpose(G)
        grad_values = None
        if ctx.needs_input_grad[0]:
            R = op.A @ (X if X.dim() == 2 else X.unsqueeze(-1))
            R = R - (B if B.dim() == 2 else B.unsqueeze(-1))
            H = op.lstsq(GB)
            GBm, Xm, Hm = (t if t.dim() == 2 else t.unsqueeze(-1) for t in (GB, X, H))
            grad_values = -(GBm.index_select(0, op.rows) * Xm.index_select(0, op.cols)).sum(-1)
            grad_values = grad_values - (R.index_select(0, op.rows) * Hm.index_select(0, op.cols)).sum(-1)
        return grad_values, (GB if ctx.needs_input_grad[1] else None), None


def sparse_lstsq(
    A: Any,
    B: Tensor,
    atol: float | None = None,
    btol: float | None = None,
    maxiter: int | None = None,
    strict: bool = True,
) -> Tensor:
    r"""Least squares :math:`\min_X \|\mathbf{A}X - \mathbf{B}\|_F` for a tall sparse :math:`\mathbf{A}`
    (:math:`m > n`, full column rank), differentiable w.r.t. ``B`` and the stored values of ``A``.

    All columns are solved in one batched LSMR pass (:func:`~pyg_em.linalg.batched_lsmr`); the backward
    needs two more batched LSMR solves and returns the gradient w.r.t. ``A`` at its stored entries only
    (Golub--Pereyra, see ``SparseLstsqFunction`` in ``pyg_em.linalg.lstsq``). Graph use: potentials from edge
    flows with an :func:`~pyg_em.linalg.incidence_matrix`.

    Args:
        A (torch.Tensor or tuple): sparse COO/CSR :math:`(m, n)` or ``(indices, values, (m, n))``.
        B (torch.Tensor): dense :math:`(m,)` or :math:`(m, k)`, same dtype and device as ``A``.
        atol (float, optional): LSMR tolerance. (default: :obj:`None`, ``1e-10`` in float64, ``1e-5``
            otherwise)
        btol (float, optional): LSMR tolerance. (default: :obj:`None`, as ``atol``)
        maxiter (int, optional): LSMR iteration cap. (default: :obj:`None`, ``max(2 n, 100)``)
        strict (bool, optional): raise :class:`~pyg_em.linalg.ConvergenceError` on non-convergence;
            otherwise warn. (default: :obj:`True`)

    Raises:
        TypeError: ``A`` or ``B`` not float32/float64.
        ValueError: ``A`` is not tall, shapes mismatch, or inputs are not finite.

    Shapes:
        - **input:** A :math:`(m, n)`, B :math:`(m,)` or :math:`(m, k)`
        - **output:** :math:`(n,)` or :math:`(n, k)`
    """
    indices, values, shape = as_sparse_triplet(A, "A", square=False)
    m, n = shape
    if m <= n:
        raise ValueError(f"A must be tall (more rows than columns, full column rank), got shape {shape}")
    if not isinstance(B, Tensor) or B.layout != torch.strided or not B.is_floating_point():
        raise TypeError("B must be a dense floating-point torch.Tensor of shape (m,) or (m, k)")
    check_solver_dtype(B, "B")
    if B.dim() not in (1, 2) or B.size(0) != m:
        raise ValueError(f"B must have shape ({m},) or ({m}, k), got {tuple(B.shape)}")
    if B.device != values.device or B.dtype != values.dtype:
        raise ValueError(f"B ({B.dtype}, {B.device}) must match A ({values.dtype}, {values.device})")
    for name, value in (("atol", atol), ("btol", btol)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if maxiter is not None:
        check_positive_int(maxiter, "maxiter")
    check_finite(values, "A")
    check_finite(B, "B")
    op = _TallOperator(indices, values, shape, atol, btol, maxiter, strict)
    return SparseLstsqFunction.apply(values, B, op)

"""Batched preconditioned conjugate gradients: all right-hand sides in one pass."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from pyg_em.linalg.errors import ConvergenceError, ConvergenceWarning


def _coldot(a: Tensor, b: Tensor) -> Tensor:
    return torch.linalg.vecdot(a, b, dim=0)


def default_tol(dtype: torch.dtype) -> float:
    """Relative residual tolerance used when none is given: tight in float64, attainable in float32."""
    return 1e-10 if dtype == torch.float64 else 1e-5


def batched_pcg(
    matvec: Callable[[Tensor], Tensor],
    B: Tensor,
    diag: Tensor | None = None,
    x0: Tensor | None = None,
    tol: float | None = None,
    atol: float = 0.0,
    maxiter: int | None = None,
    strict: bool = True,
    check_every: int | None = None,
    name: str = "A",
    precondition: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, int]:
    r"""Solve :math:`\mathbf{A}\mathbf{X} = \mathbf{B}` for SPD :math:`\mathbf{A}` and all columns of
    :math:`\mathbf{B}` at once.

    Every column has its own step sizes :math:`\alpha_j, \beta_j`; a column whose residual satisfies
    :math:`\|r_j\| \le \max(\mathrm{tol}\,\|b_j\|, \mathrm{atol})` is frozen (its step sizes are masked to zero)
    while the others go on, so one matvec per iteration serves all :math:`k` columns.

    Args:
        matvec (callable): :math:`\mathbf{Y} \mapsto \mathbf{A}\mathbf{Y}` for ``(N, k)`` inputs.
        B (torch.Tensor): right-hand sides :math:`(N,)` or :math:`(N, k)`.
        diag (torch.Tensor, optional): the diagonal of :math:`\mathbf{A}` for the Jacobi preconditioner
            :math:`\mathbf{M} = \mathrm{diag}(\mathbf{A})`. (default: :obj:`None`, no preconditioner)
        x0 (torch.Tensor, optional): initial guess, shaped like ``B``. (default: :obj:`None`, zeros)
        tol (float, optional): relative residual tolerance. (default: :obj:`None`, ``1e-10`` in float64 and
            ``1e-5`` otherwise)
        atol (float, optional): absolute residual tolerance. (default: :obj:`0.0`)
        maxiter (int, optional): iteration cap. (default: :obj:`None`, ``min(10 N, 20000)``)
        strict (bool, optional): raise :class:`ConvergenceError` on non-convergence; otherwise warn with
            :class:`ConvergenceWarning` and return the last iterate. (default: :obj:`True`)
        check_every (int, optional): how often the host looks at the convergence flags (each look is a device
            synchronisation). (default: :obj:`None`, every iteration on CPU, every 10 on other devices)
        name (str, optional): name of the matrix argument in error messages. (default: ``"A"``)
        precondition (callable, optional): :math:`\mathbf{R} \mapsto \mathbf{M}^{-1}\mathbf{R}` for an SPD
            preconditioner :math:`\mathbf{M}` (e.g. :class:`~pyg_em.linalg.AMGPreconditioner`), applied to
            ``(N, k)`` blocks; replaces ``diag``. (default: :obj:`None`)

    Returns:
        (torch.Tensor, int): the solution shaped like ``B`` and the number of iterations run.
    """
    vector = B.dim() == 1
    Bm = B.unsqueeze(-1) if vector else B
    n = Bm.size(0)
    tol = default_tol(B.dtype) if tol is None else tol
    maxiter = min(10 * n, 20000) if maxiter is None else maxiter
    if check_every is None:
        check_every = 1 if B.device.type == "cpu" else 10
    inv_diag = None
    if diag is not None and precondition is None:
        inv_diag = diag.reciprocal().unsqueeze(-1)
    preconditioned = inv_diag is not None or precondition is not None

    if x0 is None:
        X = torch.zeros_like(Bm)
        R = Bm.clone()
    else:
        X = (x0.unsqueeze(-1) if vector else x0).clone()
        R = Bm - matvec(X)
    threshold = torch.clamp(tol * torch.linalg.vector_norm(Bm, dim=0), min=atol)
    # In-place updates and column dots by vecdot keep the per-iteration vector work to a few passes over the
    # (N, k) block (measured: vecdot 0.4 ms vs vector_norm 1.0 ms vs einsum 4.1 ms for 20000 x 16 float64).
    # Without a preconditioner Z is R itself and r^T z doubles as the squared residual norm.
    Z = R * inv_diag if inv_diag is not None else (precondition(R) if precondition is not None else R)
    P = Z.clone()
    rz = _coldot(R, Z)
    thr2 = threshold.square()
    iterations = 0
    for iterations in range(maxiter + 1):
        active = (_coldot(R, R) if preconditioned else rz) > thr2
        if iterations % check_every == 0 or iterations == maxiter:
            if not bool(active.any()) or iterations == maxiter:
                break
        AP = matvec(P)
        pAp = _coldot(P, AP)
        if iterations % check_every == 0 and bool((active & ~(pAp > 0)).any()):
            raise ValueError(
                f"{name} is not positive definite (conjugate-gradient breakdown, p^T A p <= 0 at iteration "
                f"{iterations}); a Laplacian needs a positive shift or the pseudo-inverse"
            )
        alpha = torch.where(active & (pAp > 0), rz / pAp, torch.zeros_like(rz))
        X.addcmul_(P, alpha)
        R.addcmul_(AP, alpha, value=-1.0)
        if inv_diag is not None:
            torch.mul(R, inv_diag, out=Z)
        elif precondition is not None:
            Z = precondition(R)
        rz_new = _coldot(R, Z)
        beta = torch.where(active, rz_new / rz, torch.zeros_like(rz))
        torch.addcmul(Z, P, beta, out=P)  # P <- Z + beta P in one pass
        rz = rz_new
    residual = torch.linalg.vector_norm(R, dim=0)
    unconverged = residual > threshold
    if bool(unconverged.any()) or not bool(torch.isfinite(X).all()):
        rel = residual / torch.linalg.vector_norm(Bm, dim=0).clamp_min(torch.finfo(B.dtype).tiny)
        err = ConvergenceError(float(rel.max()), iterations, f"conjugate gradients on {name}")
        if strict:
            raise err
        warnings.warn(str(err), ConvergenceWarning, stacklevel=3)
    return (X.squeeze(-1) if vector else X), iterations

"""Batched LSMR: sparse least squares for all right-hand sides in one pass."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from pyg_em.linalg.cg import default_tol
from pyg_em.linalg.errors import ConvergenceError, ConvergenceWarning


def _sym_ortho(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Givens rotation ``(c, s, r)`` with ``r = hypot(a, b) >= 0`` (scipy's ``_sym_ortho``), per column."""
    r = torch.hypot(a, b)
    safe = torch.where(r > 0, r, torch.ones_like(r))
    return torch.where(r > 0, a / safe, torch.ones_like(r)), torch.where(r > 0, b / safe, torch.zeros_like(r)), r


def _safe_div(a: Tensor, b: Tensor) -> Tensor:
    return a / torch.where(b != 0, b, torch.ones_like(b))


def batched_lsmr(
    matvec: Callable[[Tensor], Tensor],
    rmatvec: Callable[[Tensor], Tensor],
    B: Tensor,
    n: int,
    atol: float | None = None,
    btol: float | None = None,
    maxiter: int | None = None,
    strict: bool = True,
    name: str = "A",
) -> tuple[Tensor, int]:
    r"""LSMR (Fong & Saunders, 2011) for :math:`\min_X \|\mathbf{A}X - \mathbf{B}\|_F`, all columns at once.

    The recurrences are those of scipy's ``lsmr`` (``damp=0``, no condition-number stop) with every scalar
    turned into a per-column vector, so one product with :math:`\mathbf{A}` and one with
    :math:`\mathbf{A}^\top` per iteration serve all :math:`k` columns; a column stops updating
    once it meets scipy's tests
    (:math:`\|r\| \le \mathrm{btol}\|b\| + \mathrm{atol}\|A\|\|x\|` for compatible systems, or
    :math:`\|A^\top r\| \le \mathrm{atol}\|A\|\|r\|`). For a consistent under-determined system it returns the
    minimum-norm solution.

    Args:
        matvec (callable): :math:`V \mapsto \mathbf{A}V` for :math:`(n, k)` inputs.
        rmatvec (callable): :math:`U \mapsto \mathbf{A}^\top U` for :math:`(m, k)` inputs.
        B (torch.Tensor): right-hand sides :math:`(m,)` or :math:`(m, k)`.
        n (int): number of columns of :math:`\mathbf{A}`.
        atol (float, optional): (default: :obj:`None`, ``1e-10`` in float64, ``1e-5`` otherwise)
        btol (float, optional): (default: :obj:`None`, as ``atol``)
        maxiter (int, optional): (default: :obj:`None`, ``max(2 n, 100)``)
        strict (bool, optional): raise :class:`~pyg_em.linalg.ConvergenceError` when a column has not met its
            test after ``maxiter`` iterations; otherwise warn. (default: :obj:`True`)
        name (str, optional): the matrix's name in messages. (default: ``"A"``)

    Returns:
        (torch.Tensor, int): the solution :math:`(n,)` or :math:`(n, k)` and the iterations run.
    """
    vector = B.dim() == 1
    Bm = B.unsqueeze(-1) if vector else B
    k = Bm.size(1)
    atol = default_tol(B.dtype) if atol is None else atol
    btol = atol if btol is None else btol
    maxiter = max(2 * n, 100) if maxiter is None else maxiter

    def norm(t: Tensor) -> Tensor:
        return torch.linalg.vector_norm(t, dim=0)

    x = Bm.new_zeros(n, k)
    normb = norm(Bm)
    beta = normb.clone()
    u = Bm / torch.where(beta > 0, beta, torch.ones_like(beta))
    v = rmatvec(u)
    alpha = norm(v)
    v = v / torch.where(alpha > 0, alpha, torch.ones_like(alpha))
    zetabar, alphabar = alpha * beta, alpha.clone()
    one, zero = torch.ones_like(beta), torch.zeros_like(beta)
    rho, rhobar, cbar, sbar = one.clone(), one.clone(), one.clone(), zero.clone()
    h, hbar = v.clone(), torch.zeros_like(v)
    betadd, betad, rhodold, tautildeold, thetatilde, zeta, d = beta.clone(), zero, one, zero, zero, zero, zero
    normA2 = alpha * alpha
    active = (zetabar != 0) & (normb != 0)
    itn = 0
    test_value = zero.clone()
    while itn < maxiter and bool(active.any()):
        itn += 1
        u = matvec(v) - alpha * u
        beta = norm(u)
        u = _safe_div(u, beta)
        v_new = rmatvec(u) - beta * v
        alpha_new = norm(v_new)
        v = torch.where(beta > 0, _safe_div(v_new, alpha_new), v)
        alpha = torch.where(beta > 0, alpha_new, alpha)

        rhoold = rho
        c, s, rho = _sym_ortho(alphabar, beta)
        thetanew = s * alpha
        alphabar = c * alpha
        rhobarold, zetaold = rhobar, zeta
        thetabar = sbar * rho
        cbar, sbar, rhobar = _sym_ortho(cbar * rho, thetanew)
        zeta = cbar * zetabar
        zetabar = -sbar * zetabar
        hbar = h - _safe_div(thetabar * rho, rhoold * rhobarold) * hbar
        step = torch.where(active, _safe_div(zeta, rho * rhobar), zero)
        x = x + step * hbar
        h = v - _safe_div(thetanew, rho) * h

        # Estimate of ||r|| (damp = 0, so chat = 1 and shat = 0 in scipy's notation).
        betahat = c * betadd
        betadd = -s * betadd
        thetatildeold = thetatilde
        ctildeold, stildeold, rhotildeold = _sym_ortho(rhodold, thetabar)
        thetatilde = stildeold * rhobar
        rhodold = ctildeold * rhobar
        betad = -stildeold * betad + ctildeold * betahat
        tautildeold = _safe_div(zetaold - thetatildeold * tautildeold, rhotildeold)
        taud = _safe_div(zeta - thetatilde * tautildeold, rhodold)
        normr = torch.sqrt(d + (betad - taud) ** 2 + betadd * betadd)
        normA2 = normA2 + beta * beta
        normA = torch.sqrt(normA2)
        normA2 = normA2 + alpha * alpha

        normar = zetabar.abs()
        normx = norm(x)
        test1 = _safe_div(normr, normb)
        test2 = torch.where(normA * normr != 0, _safe_div(normar, normA * normr), torch.full_like(normr, float("inf")))
        rtol = btol + atol * _safe_div(normA * normx, normb)
        done = (test1 <= rtol) | (test2 <= atol)
        test_value = torch.where(active, torch.minimum(test1, test2), test_value)
        active = active & ~done
    if bool(active.any()) or not bool(torch.isfinite(x).all()):
        err = ConvergenceError(float(test_value[active].max()) if bool(active.any()) else float("nan"), itn,
                               f"LSMR on {name}")
        if strict:
            raise err
        warnings.warn(str(err), ConvergenceWarning, stacklevel=3)
    return (x.squeeze(-1) if vector else x), itn

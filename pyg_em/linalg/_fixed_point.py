"""Fixed points :math:`z^\\star = f(z^\\star, \\theta)` with implicit differentiation (adjoint solve by VJPs)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from pyg_em.linalg.cg import batched_pcg
from pyg_em.linalg.errors import ConvergenceError, ConvergenceWarning
from pyg_em.validation import check_positive_int

_SOLVERS = ("anderson", "iterate")
_BACKWARDS = ("cg", "neumann")


def _residual(fz: Tensor, z: Tensor) -> float:
    # Relative to max(|f(z)|, 1) so that a fixed point at (or near) zero is still reachable.
    return float(torch.linalg.vector_norm(fz - z) / torch.linalg.vector_norm(fz).clamp_min(1.0))


def _fail(message: str, residual: float, iterations: int, strict: bool) -> None:
    err = ConvergenceError(residual, iterations, message)
    if strict:
        raise err
    warnings.warn(str(err), ConvergenceWarning, stacklevel=4)


def _iterate(g: Callable[[Tensor], Tensor], z: Tensor, tol: float, maxiter: int) -> tuple[Tensor, float, int]:
    res = float("inf")
    for it in range(1, maxiter + 1):
        fz = g(z)
        res = _residual(fz, z)
        z = fz
        if res <= tol:
            return z, res, it
    return z, res, maxiter


def _anderson(g: Callable[[Tensor], Tensor], z: Tensor, tol: float, maxiter: int, memory: int,
              ridge: float = 1e-10) -> tuple[Tensor, float, int]:
    """Anderson acceleration (type II, Walker & Ni 2011) on the flattened iterate.

    With residuals :math:`r_k = f(z_k) - z_k` and the last ``memory`` differences
    :math:`\\Delta Z, \\Delta R`, the step is :math:`z_{k+1} = f(z_k) - (\\Delta Z + \\Delta R)\\gamma` where
    :math:`\\gamma = \\arg\\min\\|r_k - \\Delta R\\gamma\\|` (ridge-regularised normal equations, which run on
    any device, unlike a rank-revealing least squares).
    """
    shape = z.shape
    x = z.reshape(-1)
    dX: list[Tensor] = []
    dR: list[Tensor] = []
    prev_x = prev_r = None
    res = float("inf")
    for it in range(1, maxiter + 1):
        fx = g(x.view(shape)).reshape(-1)
        r = fx - x
        res = _residual(fx, x)
        if res <= tol:
            return fx.view(shape), res, it
        if prev_x is not None:
            dX.append(x - prev_x)
            dR.append(r - prev_r)
            if len(dX) > memory:
                dX.pop(0)
                dR.pop(0)
        prev_x, prev_r = x, r
        if dR:
            Rm, Xm = torch.stack(dR, 1), torch.stack(dX, 1)
            gram = Rm.T @ Rm
            gram = gram + ridge * gram.diagonal().sum().clamp_min(torch.finfo(x.dtype).tiny) * torch.eye(
                gram.size(0), dtype=x.dtype, device=x.device)
            gamma = torch.linalg.solve(gram, Rm.T @ r)
            x = fx - (Xm + Rm) @ gamma
        else:
            x = fx
    return x.view(shape), res, maxiter


def fixed_point(
    f: Callable[..., Tensor],
    z0: Tensor,
    *params: Tensor,
    solver: str = "anderson",
    backward: str = "cg",
    tol: float = 1e-8,
    maxiter: int = 500,
    backward_tol: float | None = None,
    backward_maxiter: int | None = None,
    memory: int = 5,
    strict: bool = True,
) -> Tensor:
    r"""Solve :math:`z^\star = f(z^\star, \theta)` without tracking the iterations, and differentiate
    :math:`z^\star(\theta)` implicitly.

    By the implicit function theorem :math:`\partial z^\star/\partial\theta = (\mathbf{I} - \mathbf{J})^{-1}
    \partial f/\partial\theta` with :math:`\mathbf{J} = \partial f/\partial z` at :math:`z^\star`, so the
    vector-Jacobian product of an incoming gradient :math:`g` is :math:`(\partial f/\partial\theta)^\top u`
    where :math:`u` solves the adjoint system

    .. math::
        (\mathbf{I} - \mathbf{J})^\top u = g,

    which is solved with VJPs :math:`v \mapsto \mathbf{J}^\top v` only (never forming :math:`\mathbf{J}`):

    - ``backward="cg"``: conjugate gradients; valid when :math:`\mathbf{I} - \mathbf{J}` is symmetric positive
      definite, as for gradient-step maps :math:`f(z) = z - \eta\nabla\phi(z)` of a strongly convex
      :math:`\phi` with :math:`\eta\|\nabla^2\phi\| < 2` (then :math:`\mathbf{I} - \mathbf{J} =
      \eta\nabla^2\phi`) -- the implicit M-step of GEM.
    - ``backward="neumann"``: :math:`u = \sum_k (\mathbf{J}^\top)^k g`, valid for any contraction
      (spectral radius of :math:`\mathbf{J}` below one), iterated until the terms fall below ``backward_tol``.

    The returned tensor is one extra application :math:`f(z^\star, \theta)` (equal to :math:`z^\star` up to
    ``tol``) that carries the gradient to ``params``, behind an identity node whose backward swaps the incoming
    gradient :math:`g` for :math:`u`. First-order gradients only (no ``create_graph`` through the adjoint).

    Args:
        f (callable): ``f(z, *params) -> Tensor`` shaped like ``z``.
        z0 (torch.Tensor): initial iterate.
        *params (torch.Tensor): tensors ``f`` depends on and that receive gradients.
        solver (str, optional): ``"anderson"`` (Anderson acceleration) or ``"iterate"`` (plain
            :math:`z \leftarrow f(z)`). (default: ``"anderson"``)
        backward (str, optional): ``"cg"`` or ``"neumann"``. (default: ``"cg"``)
        tol (float, optional): forward stopping rule :math:`\|f(z) - z\| \le \mathrm{tol}\cdot\max(\|f(z)\|, 1)`.
            (default: :obj:`1e-8`)
        maxiter (int, optional): forward iteration cap. (default: :obj:`500`)
        backward_tol (float, optional): relative tolerance of the adjoint solve. (default: :obj:`None`, ``tol``)
        backward_maxiter (int, optional): adjoint iteration cap. (default: :obj:`None`, ``maxiter``)
        memory (int, optional): Anderson history length. (default: :obj:`5`)
        strict (bool, optional): raise :class:`~pyg_em.linalg.ConvergenceError` when the forward or adjoint
            iteration does not converge; otherwise warn. (default: :obj:`True`)
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if not isinstance(z0, Tensor) or not z0.is_floating_point():
        raise TypeError("z0 must be a floating-point torch.Tensor")
    if not bool(torch.isfinite(z0).all()):
        raise ValueError("z0 contains NaN or Inf values")
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be one of {_SOLVERS}, got {solver!r}")
    if backward not in _BACKWARDS:
        raise ValueError(f"backward must be one of {_BACKWARDS}, got {backward!r}")
    for name, value in (("tol", tol), ("backward_tol", backward_tol)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    for name, value in (("maxiter", maxiter), ("backward_maxiter", backward_maxiter), ("memory", memory)):
        if value is not None:
            check_positive_int(value, name)
    backward_tol = tol if backward_tol is None else backward_tol
    backward_maxiter = maxiter if backward_maxiter is None else backward_maxiter

    with torch.no_grad():
        def g(z: Tensor) -> Tensor:
            return f(z, *params)

        run = _anderson if solver == "anderson" else _iterate
        args = (memory,) if solver == "anderson" else ()
        z_star, res, iterations = run(g, z0.detach(), tol, maxiter, *args)
    if not res <= tol:
        _fail(f"fixed_point ({solver})", res, iterations, strict)

    if not (torch.is_grad_enabled() and any(isinstance(p, Tensor) and p.requires_grad for p in params)):
        return z_star
    z_leaf = z_star.detach().requires_grad_()
    f_out = f(z_leaf, *params)
    if not f_out.requires_grad:
        return f_out

    def vjp(v: Tensor) -> Tensor:
        return torch.autograd.grad(f_out, z_leaf, v, retain_graph=True)[0]

    def adjoint(grad: Tensor) -> Tensor:
        if backward == "neumann":
            return _neumann_adjoint(vjp, grad, backward_tol, backward_maxiter, strict)
        shape = grad.shape
        u, _ = batched_pcg(
            lambda V: V - vjp(V.view(shape)).reshape(-1, 1), grad.reshape(-1, 1), tol=backward_tol,
            maxiter=backward_maxiter, strict=strict, name="I - df/dz",
        )
        return u.view(shape)

    return _ImplicitAdjoint.apply(f_out, adjoint)


class _ImplicitAdjoint(torch.autograd.Function):
    r"""Identity in the forward pass; the backward replaces the incoming gradient g by the adjoint solution u.

    It sits after the last application ``f(z*, params)``, so u then flows into that application's graph and
    reaches the parameters as :math:`(\partial f/\partial\theta)^\top u`. The VJPs inside the adjoint solve
    differentiate ``f(z*, params)`` directly and never pass through this node (no recursion).
    """

    @staticmethod
    def forward(ctx, z: Tensor, adjoint: Callable[[Tensor], Tensor]) -> Tensor:
        """Return a copy of ``z`` and keep the adjoint solver for the backward."""
        ctx.adjoint = adjoint
        return z.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        """Solve the adjoint system for the incoming gradient."""
        return ctx.adjoint(grad), None


def _neumann_adjoint(vjp: Callable[[Tensor], Tensor], g: Tensor, tol: float, maxiter: int, strict: bool) -> Tensor:
    u, term = g.clone(), g
    scale = torch.linalg.vector_norm(g).clamp_min(torch.finfo(g.dtype).tiny)
    rel, iterations = 0.0, 0
    while iterations < maxiter:
        iterations += 1
        term = vjp(term)
        u = u + term
        rel = float(torch.linalg.vector_norm(term) / scale)
        if rel <= tol:
            return u
        if not rel < 1e30:
            break
    _fail("fixed_point adjoint Neumann series (is f a contraction in z?)", rel, iterations, strict)
    return u

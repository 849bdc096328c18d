r"""GEM as an implicit layer: the EM fixed point :math:`\theta^*` and its implicit gradient.

The layer iterates the M-step map :math:`T(\theta) = \theta + \eta\,G(\theta)`, with
:math:`G(\theta) = \nabla_\theta Q(\theta; \hat z(\theta), \Sigma(\theta))` (plus the optional prior), to a fixed
point :math:`\theta^* = T(\theta^*)` without building a graph, and differentiates the fixed point implicitly:
with :math:`J = \partial T/\partial\theta` at :math:`\theta^*`, the incoming gradient :math:`v` becomes

.. math::
    u = (I - J^\top)^{-1} v, \qquad \frac{\partial\mathcal L}{\partial p} = u^\top \frac{\partial T}{\partial p}
    \quad (p = x, \theta_0),

where :math:`J^\top u` is one vector-Jacobian product through a single M-step. The adjoint is solved either by

- ``'cg'``: conjugate gradients on :math:`(I - J^\top) = -\eta\,\partial G/\partial\theta`. With the posterior
  E-step and the exact log-det gradient, :math:`G` is the gradient of the marginal log-likelihood (Fisher's
  identity), so :math:`-\partial G/\partial\theta` is its negated Hessian: symmetric, and positive definite at a
  strict maximum;
- ``'neumann'``: the series :math:`u = \sum_{k\ge0} (J^\top)^k v`, i.e. the iteration
  :math:`u \leftarrow v + J^\top u` (note the sign: the seed's :math:`I - \eta H` sum had it wrong), which
  converges when the spectral radius of :math:`J` is below one; non-convergence raises.

- ``'gmres'``: restarted GMRES on :math:`(I - J^\top)`, which needs neither symmetry nor a contraction, only a
  non-singular system.

``'auto'`` tries ``'cg'`` in the symmetric case and falls back to ``'gmres'`` when CG breaks down or stalls:
:math:`I - J^\top` is positive definite only at a strict maximum of the likelihood, and the forward iteration
may stop at a saddle or short of the fixed point (then a warning names the forward residual and iterations).
Otherwise (``estep='prior_covariance'`` or Hutchinson probes, whose :math:`\partial G/\partial\theta` need not be
symmetric) it uses ``'gmres'``. The forward iteration (Anderson-accelerated or plain) is
:func:`pyg_em.linalg.fixed_point`; this module supplies the M-step map and the adjoint solve.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_em.em.base import GEMBase, GEMConfig
from pyg_em.em.objective import PrecisionStructure, posterior_mean
from pyg_em.linalg import ConvergenceError, ConvergenceWarning, batched_pcg, fixed_point
from pyg_em.validation import check_positive, check_positive_int

__all__ = ["FixedPointReport", "GEMImplicitEM", "gmres"]

BACKWARDS = ("auto", "cg", "neumann", "gmres")
SOLVERS = ("anderson", "iterate")


@dataclass(frozen=True)
class FixedPointReport:
    r"""Whether :class:`GEMImplicitEM`'s forward iteration reached its fixed point.

    Args:
        residual (float): Relative residual :math:`\lVert T(\theta)-\theta\rVert/\max(\lVert T(\theta)
            \rVert, 1)` at the returned parameters.
        iterations (int): M-step evaluations of the forward iteration.
        converged (bool): ``residual <= tol``.
        vanished (int): Weights that went to 0 (:math:`\mathrm{sigmoid}(\theta) < 10^{-8}`, so their M-steps
            stopped): the likelihood is maximal on the boundary :math:`w = 0` for them, and the fixed point is
            degenerate there (its adjoint system is singular in those directions). ``prior > 0`` keeps it
            interior.
        num_weights (int): Number of weights.
    """

    residual: float
    iterations: int
    converged: bool
    vanished: int = 0
    num_weights: int = 0

    def __str__(self) -> str:
        state = "reached" if self.converged else "NOT reached"
        text = f"forward fixed point {state}: relative residual {self.residual:.2e} after {self.iterations} M-steps"
        if self.vanished:
            text += (f"; {self.vanished} of {self.num_weights} weights went to 0 (a boundary maximum the signals "
                     "push them to; prior > 0 keeps the fixed point interior)")
        return text


def gmres(
    operator,
    rhs: Tensor,
    tol: float = 1e-10,
    maxiter: int = 1000,
    restart: int = 50,
    strict: bool = True,
    name: str = "A",
) -> Tensor:
    r"""Restarted GMRES for :math:`A u = b` with :math:`A` given as a function, on any device.

    Written here because neither torch nor PyG has a Krylov solver for non-symmetric operators, and scipy's
    works on host arrays (it would copy every vector off the accelerator). Arnoldi with modified Gram-Schmidt;
    the small least-squares problem is re-solved each step, which costs :math:`O(m^3)` for ``m <= restart``.

    Args:
        operator (callable): :math:`v \mapsto A v` on tensors shaped like ``rhs``.
        rhs (Tensor): Right-hand side :math:`b`.
        tol (float): Relative residual tolerance :math:`\lVert b - Au\rVert \le \mathrm{tol}\,\lVert b\rVert`.
            (default: ``1e-10``)
        maxiter (int): Total cap on applications of ``operator``. (default: ``1000``)
        restart (int): Krylov subspace size before a restart. (default: ``50``)
        strict (bool): Raise :class:`~pyg_em.linalg.ConvergenceError` when ``tol`` is not reached; otherwise warn.
            (default: :obj:`True`)
        name (str): What is solved, for the error message. (default: ``'A'``)
    """
    b = rhs.reshape(-1)
    norm_b = float(torch.linalg.vector_norm(b))
    u = torch.zeros_like(b)
    if norm_b == 0.0:
        return u.view_as(rhs)

    def apply(v: Tensor) -> Tensor:
        return operator(v.view_as(rhs)).reshape(-1)

    used, relative = 0, 1.0
    while used < maxiter:
        r = b - apply(u) if used else b.clone()
        beta = float(torch.linalg.vector_norm(r))
        relative = beta / norm_b
        if relative <= tol:
            break
        size = min(restart, maxiter - used)
        basis = [r / beta]
        hessenberg = b.new_zeros(size + 1, size)
        target = b.new_zeros(size + 1)
        target[0] = beta
        coefficients = b.new_zeros(0)
        for j in range(size):
            w = apply(basis[j])
            used += 1
            for i in range(j + 1):
                hessenberg[i, j] = torch.dot(w, basis[i])
                w = w - hessenberg[i, j] * basis[i]
            hessenberg[j + 1, j] = torch.linalg.vector_norm(w)
            h, t = hessenberg[: j + 2, : j + 1], target[: j + 2]
            coefficients = torch.linalg.lstsq(h, t.unsqueeze(1)).solution.squeeze(1)
            relative = float(torch.linalg.vector_norm(t - h @ coefficients)) / norm_b
            if relative <= tol or float(hessenberg[j + 1, j]) <= 1e-14 * beta:
                break
            basis.append(w / hessenberg[j + 1, j])
        u = u + torch.stack(basis[: coefficients.numel()], dim=1) @ coefficients
        if relative <= tol:
            break
    if not relative <= tol:
        error = ConvergenceError(relative, used, f"GMRES on {name}")
        if strict:
            raise error
        warnings.warn(str(error), ConvergenceWarning, stacklevel=2)
    return u.view_as(rhs)


class GEMImplicitEM(GEMBase):
    r"""Graph EM run to its fixed point and differentiated implicitly (constant memory in the iterations).

    Same model and M-step as :class:`~pyg_em.em.GEMUnrolledEM`; instead of unrolling ``K`` layers it iterates

    .. math::
        \theta \leftarrow \theta + \eta\,\nabla_\theta Q(\theta; \hat z(\theta)),
        \qquad \hat z(\theta) = (L_w + \varepsilon I + \sigma^{-2}I)^{-1}\sigma^{-2}x,

    (Anderson-accelerated by default) until :math:`\lVert\theta_{k+1}-\theta_k\rVert \le`
    ``tol``:math:`\cdot\max(\lVert\theta_{k+1}\rVert, 1)`, then returns the weights
    :math:`w^* = \mathrm{softplus}(\theta^*)` and :math:`\hat z(\theta^*)`. Backward solves one adjoint system
    (see :class:`~pyg_em.em.GEMImplicitEM`), so its cost does not grow with the number of forward iterations.

    Without a prior, :math:`\theta^*` does not depend on the initial weights, and an edge whose optimal weight
    is 0 drifts to :math:`\theta\to-\infty` (its steps shrink with :math:`\mathrm{sigmoid}(\theta)`); a prior
    ``prior > 0`` keeps the fixed point finite and makes it depend on ``edge_weight``.

    Args:
        solver (str): ``'anderson'`` (Anderson acceleration) or ``'iterate'`` (plain M-steps).
            (default: ``'anderson'``)
        tol (float): Forward stopping tolerance on the relative parameter change. (default: ``1e-8``)
        maxiter (int): Forward iteration cap. (default: ``1000``)
        backward (str): Adjoint solver, ``'auto'``, ``'cg'``, ``'neumann'`` or ``'gmres'`` (see
            :class:`~pyg_em.em.GEMImplicitEM`). (default: ``'auto'``)
        backward_tol (float): Relative residual tolerance of the adjoint solve. (default: ``1e-10``)
        backward_maxiter (int): Iteration cap of the adjoint solve. (default: ``1000``)
        strict (bool): Raise :class:`~pyg_em.linalg.ConvergenceError` when the forward iteration or the adjoint
            solve does not converge; otherwise warn and go on. (default: :obj:`True`)
        config (GEMConfig, optional): The shared hyper-parameters (:class:`~pyg_em.em.GEMConfig`).
            (default: :obj:`None`, its defaults)
        **options: Any field of :class:`~pyg_em.em.GEMConfig` by keyword (``eta``, ``eps``, ``noise``,
            ``estep``, ``logdet``, ``num_probes``, ``probe_tol``, ``estep_tol``, ``prior``, ``init_weight``,
            ``block_size``, ``solver_options``; defaults there), overriding ``config``. The default
            ``logdet='auto'`` is exact up to 2048 nodes and uses 8 Hutchinson probes (drawn once per call, so
            the iterated map is deterministic) above.

    After each call, ``last_fixed_point`` (a :class:`FixedPointReport`) says whether the forward iteration
    reached the fixed point: its relative residual and the number of iterations.

    Shapes:
        - **input:** node signals :math:`(N, F)`, edge indices :math:`(2, E)`, optional positive edge weights
          :math:`(E,)`
        - **output:** fixed-point edge weights :math:`(E,)` aligned with ``edge_index``, posterior mean
          :math:`(N, F)`
    """

    def __init__(
        self,
        *,
        solver: str = "anderson",
        tol: float = 1e-8,
        maxiter: int = 1000,
        backward: str = "auto",
        backward_tol: float = 1e-10,
        backward_maxiter: int = 1000,
        strict: bool = True,
        config: GEMConfig | None = None,
        **options,
    ) -> None:
        super().__init__(config, **options)
        self.tol = check_positive(tol, "tol")
        self.backward_tol = check_positive(backward_tol, "backward_tol")
        self.maxiter = check_positive_int(maxiter, "maxiter")
        self.backward_maxiter = check_positive_int(backward_maxiter, "backward_maxiter")
        if backward not in BACKWARDS:
            raise ValueError(f"backward must be one of {BACKWARDS}, got {backward!r}")
        self.backward = backward
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        self.solver = solver
        self.strict = bool(strict)
        self.last_fixed_point: FixedPointReport | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Nothing to reset: the layer's only state is its hyper-parameters."""

    def adjoint_solver(self, num_nodes: int, num_masked_signals: int | None = None) -> str:
        """The adjoint solver ``'auto'`` resolves to on ``num_nodes`` nodes (``num_masked_signals``: the number of
        signals when some entries are missing); see :class:`~pyg_em.em.GEMImplicitEM`. In the symmetric case (posterior
        E-step, no probes) ``'cg'`` falls back to ``'gmres'`` when CG breaks down."""
        if self.backward != "auto":
            return self.backward
        probes = self.config.uses_probes(num_nodes) or (
            num_masked_signals is not None and self.config.uses_probes(num_nodes * num_masked_signals))
        return "cg" if self.config.estep == "posterior" and not probes else "gmres"

    def run(self, x: Tensor, pairs: Tensor, theta0: Tensor, generator: torch.Generator | None = None,
            mask: Tensor | None = None):
        """Fixed point and implicit gradient on validated ``pairs`` and ``theta0``; returns ``(theta*, z_hat)``."""
        probes = self.draw_probes(x, generator, mask)  # drawn once, so the iterated map is deterministic
        structure = PrecisionStructure(pairs, x.size(0))  # analysed once for every M-step's solves
        calls, previous = [0], [None]

        def step(theta: Tensor, x: Tensor, theta0: Tensor) -> Tensor:
            calls[0] += 1
            # Each E-step starts CG at the previous one's solution (same probes, nearby weights).
            z_hat, covariance = self.e_step(x, pairs, theta, probes, mask, structure, previous[0])
            previous[0] = (z_hat.detach(), None if covariance is None else covariance.detach())
            return self.m_step(theta, z_hat, pairs, probes, theta0, mask, covariance, structure)

        with torch.no_grad():  # the iterations are never differentiated
            theta_star = fixed_point(step, theta0.detach(), x.detach(), theta0.detach(), solver=self.solver,
                                     tol=self.tol, maxiter=self.maxiter, strict=self.strict)
        iterations = calls[0]
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or theta0.requires_grad)
        leaf = theta_star.detach().requires_grad_(needs_grad)
        with torch.set_grad_enabled(needs_grad):
            mapped = step(leaf, x, theta0)  # T(theta*): equals theta* up to tol, and carries the gradient
        residual = torch.linalg.vector_norm(mapped.detach() - theta_star) / torch.linalg.vector_norm(
            mapped.detach()).clamp_min(1.0)
        vanished = int((torch.sigmoid(theta_star) < 1e-8).sum())
        self.last_fixed_point = report = FixedPointReport(float(residual), iterations, float(residual) <= self.tol,
                                                          vanished, theta_star.numel())
        if mapped.requires_grad:
            solver = self.adjoint_solver(x.size(0), None if mask is None else x.size(1))
            mapped = self._attach_adjoint(mapped, leaf, solver, report)
        z_hat = posterior_mean(x, pairs, F.softplus(mapped), self.eps, self.estep_noise, self.solver_options, mask,
                               structure=structure)
        return mapped, z_hat

    def _attach_adjoint(self, mapped: Tensor, leaf: Tensor, solver: str, report: FixedPointReport) -> Tensor:
        """``mapped`` behind an identity whose backward swaps the incoming gradient ``v`` for
        :math:`u = (I - J^\top)^{-1} v`, solved with VJPs through the one M-step that made ``mapped``."""
        tol, maxiter, strict = self.backward_tol, self.backward_maxiter, self.strict

        def vjp(v: Tensor) -> Tensor:
            return torch.autograd.grad(mapped, leaf, v, retain_graph=True)[0]

        def operator(v: Tensor) -> Tensor:
            return v - vjp(v)

        def adjoint(grad: Tensor) -> Tensor:
            if solver == "neumann":  # u = v + J^T u, itself a fixed-point iteration
                try:
                    return fixed_point(lambda u: grad + vjp(u), grad.detach(), solver="iterate", tol=tol,
                                       maxiter=maxiter, strict=strict)
                except ConvergenceError as exc:
                    raise ConvergenceError(exc.residual, exc.iterations, "adjoint Neumann series (is the M-step "
                                           "map a contraction? backward='gmres' does not need one)") from exc
            if solver == "cg":
                try:
                    u, _ = batched_pcg(lambda V: operator(V.view(-1)).view(-1, 1), grad.reshape(-1, 1), tol=tol,
                                       maxiter=maxiter, strict=True, name="I - df/dz")
                    return u.view_as(grad)
                except (ValueError, ConvergenceError) as exc:
                    if self.backward != "auto":
                        raise
                    warnings.warn(f"GEMImplicitEM backward: CG failed ({exc}); I - J is not positive definite "
                                  f"here, so the forward iterate is not a strict maximum of the likelihood "
                                  f"({report}); solving the adjoint with GMRES instead", ConvergenceWarning,
                                  stacklevel=2)
            return gmres(operator, grad, tol=tol, maxiter=maxiter, strict=strict, name="adjoint I - J^T")

        out = mapped.view_as(mapped)  # the hook sits on this node only, so the VJPs above never trigger it
        out.register_hook(adjoint)
        return out

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.extra_repr()}, solver={self.solver!r}, tol={self.tol}, "
                f"maxiter={self.maxiter}, backward={self.backward!r})")

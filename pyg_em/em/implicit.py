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

``'auto'`` picks ``'cg'`` for the symmetric case and ``'neumann'`` otherwise (``estep='seed'`` or Hutchinson
probes, whose :math:`\partial G/\partial\theta` need not be symmetric). The iteration (Anderson-accelerated or
plain) and the adjoint solve are :func:`pyg_em.linalg.fixed_point`; this module supplies the M-step map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_em.em.base import GEMBase
from pyg_em.em.objective import posterior_mean
from pyg_em.linalg import fixed_point
from pyg_em.validation import check_positive, check_positive_int

__all__ = ["GEMImplicitEM"]

BACKWARDS = ("auto", "cg", "neumann")
SOLVERS = ("anderson", "iterate")


class GEMImplicitEM(GEMBase):
    r"""Graph EM run to its fixed point and differentiated implicitly (constant memory in the iterations).

    Same model and M-step as :class:`~pyg_em.em.GEMUnrolledEM`; instead of unrolling ``K`` layers it iterates

    .. math::
        \theta \leftarrow \theta + \eta\,\nabla_\theta Q(\theta; \hat z(\theta)),
        \qquad \hat z(\theta) = (L_w + \varepsilon I + \sigma^{-2}I)^{-1}\sigma^{-2}x,

    (Anderson-accelerated by default) until :math:`\lVert\theta_{k+1}-\theta_k\rVert \le`
    ``tol``:math:`\cdot\max(\lVert\theta_{k+1}\rVert, 1)`, then returns the weights
    :math:`w^* = \mathrm{softplus}(\theta^*)` and :math:`\hat z(\theta^*)`. Backward solves one adjoint system
    (see :mod:`pyg_em.em.implicit`), so its cost does not grow with the number of forward iterations.

    Without a prior, :math:`\theta^*` does not depend on the initial weights, and an edge whose optimal weight
    is 0 drifts to :math:`\theta\to-\infty` (its steps shrink with :math:`\mathrm{sigmoid}(\theta)`); a prior
    ``prior > 0`` keeps the fixed point finite and makes it depend on ``edge_weight``.

    Args:
        eta (float): M-step step size. (default: ``0.1``)
        eps (float): Precision shift :math:`\varepsilon > 0`. (default: ``1e-3``)
        noise (float): Observation noise :math:`\sigma` of the posterior E-step. (default: ``1.0``)
        estep (str): ``'posterior'`` or ``'seed'``. (default: ``'posterior'``)
        logdet (str): ``'exact'`` or ``'hutchinson'``; the probes are drawn once per call, so the iterated map
            is deterministic. (default: ``'exact'``)
        num_probes (int): Probes in Hutchinson mode. (default: ``16``)
        prior (float): Weight of the prior :math:`-\frac{\lambda}{2}\lVert\theta-\theta_0\rVert^2`. (default: ``0``)
        init_weight (float): Initial weight when ``edge_weight`` is omitted. (default: ``1.0``)
        solver (str): ``'anderson'`` (Anderson acceleration) or ``'iterate'`` (plain M-steps).
            (default: ``'anderson'``)
        tol (float): Forward stopping tolerance on the relative parameter change. (default: ``1e-8``)
        maxiter (int): Forward iteration cap. (default: ``1000``)
        backward (str): Adjoint solver, ``'auto'``, ``'cg'`` or ``'neumann'``. (default: ``'auto'``)
        backward_tol (float): Relative residual tolerance of the adjoint solve. (default: ``1e-10``)
        backward_maxiter (int): Iteration cap of the adjoint solve. (default: ``1000``)
        strict (bool): Raise :class:`~pyg_em.linalg.ConvergenceError` when the forward iteration or the adjoint
            solve does not converge; otherwise warn and go on. (default: :obj:`True`)
        block_size (int): Unit vectors per solve in exact mode. (default: ``4096``)
        solver_options (dict, optional): Keyword arguments of :func:`~pyg_em.linalg.sparse_solve`.
            (default: :obj:`None`)

    Shapes:
        - **input:** node signals :math:`(N, F)`, edge indices :math:`(2, E)`, optional positive edge weights
          :math:`(E,)`
        - **output:** fixed-point edge weights :math:`(E,)` aligned with ``edge_index``, posterior mean
          :math:`(N, F)`
    """

    def __init__(
        self,
        eta: float = 0.1,
        eps: float = 1e-3,
        noise: float = 1.0,
        estep: str = "posterior",
        logdet: str = "exact",
        num_probes: int = 16,
        prior: float = 0.0,
        init_weight: float = 1.0,
        solver: str = "anderson",
        tol: float = 1e-8,
        maxiter: int = 1000,
        backward: str = "auto",
        backward_tol: float = 1e-10,
        backward_maxiter: int = 1000,
        strict: bool = True,
        block_size: int = 4096,
        solver_options: dict | None = None,
    ) -> None:
        super().__init__(eta, eps, noise, estep, logdet, num_probes, prior, init_weight, block_size, solver_options)
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
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Nothing to reset: the layer's only state is its hyper-parameters."""

    @property
    def adjoint_solver(self) -> str:
        """The adjoint solver ``'auto'`` resolves to (see :mod:`pyg_em.em.implicit`)."""
        if self.backward != "auto":
            return self.backward
        return "cg" if self.estep == "posterior" and self.logdet == "exact" else "neumann"

    def run(self, x: Tensor, pairs: Tensor, theta0: Tensor, generator: torch.Generator | None = None):
        """Fixed point and implicit gradient on validated ``pairs`` and ``theta0``; returns ``(theta*, z_hat)``."""
        probes = self.draw_probes(x, generator)  # drawn once, so the iterated map is deterministic

        def step(theta: Tensor, x: Tensor, theta0: Tensor) -> Tensor:
            z_hat = posterior_mean(x, pairs, F.softplus(theta), self.eps, self.estep_noise, self.solver_options)
            return self.m_step(theta, z_hat, pairs, probes, theta0)

        theta_star = fixed_point(step, theta0.detach(), x, theta0, solver=self.solver, backward=self.adjoint_solver,
                                 tol=self.tol, maxiter=self.maxiter, backward_tol=self.backward_tol,
                                 backward_maxiter=self.backward_maxiter, strict=self.strict)
        z_hat = posterior_mean(x, pairs, F.softplus(theta_star), self.eps, self.estep_noise, self.solver_options)
        return theta_star, z_hat

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.extra_repr()}, solver={self.solver!r}, tol={self.tol}, "
                f"maxiter={self.maxiter}, backward={self.backward!r})")

"""Shared configuration, validation and θ initialisation of the GEM layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyg_em.em.candidates import undirected_pairs
from pyg_em.em.objective import inverse_softplus, m_step, rademacher_probes
from pyg_em.validation import check_graph, check_positive, check_positive_int

__all__ = ["GEMBase"]

ESTEPS = ("posterior", "seed")
LOGDETS = ("exact", "hutchinson")


class GEMBase(nn.Module):
    """Hyper-parameters and input handling common to :class:`GEMUnrolledEM` and :class:`GEMImplicitEM`.

    The layers hold no per-edge parameters: the candidate graph is only known at call time, so the initial
    parameters :math:`\\theta_0 = \\mathrm{softplus}^{-1}(w_0)` come from the ``edge_weight`` passed to
    ``forward`` (a constant ``init_weight`` when it is omitted), and gradients flow back into ``edge_weight``.
    To learn one weight per candidate edge end to end, hold them in :class:`~pyg_em.em.GEMGraphLearner`.
    """

    def __init__(
        self,
        eta: float,
        eps: float,
        noise: float,
        estep: str,
        logdet: str,
        num_probes: int,
        prior: float,
        init_weight: float,
        block_size: int,
        solver_options: dict | None,
    ) -> None:
        super().__init__()
        self.eta = check_positive(eta, "eta")
        if isinstance(eps, (int, float)) and not isinstance(eps, bool) and eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}: the precision L_w + eps*I is singular for eps <= 0 (L_w "
                             "always has the constant vector in its null space, one per connected component)")
        self.eps = check_positive(eps, "eps")
        self.noise = check_positive(noise, "noise")
        if estep not in ESTEPS:
            raise ValueError(f"estep must be one of {ESTEPS}, got {estep!r}")
        if logdet not in LOGDETS:
            raise ValueError(f"logdet must be one of {LOGDETS}, got {logdet!r}")
        self.estep, self.logdet = estep, logdet
        self.num_probes = check_positive_int(num_probes, "num_probes")
        self.prior = check_positive(prior, "prior", allow_zero=True)
        self.init_weight = check_positive(init_weight, "init_weight")
        self.block_size = check_positive_int(block_size, "block_size")
        if solver_options is not None and not isinstance(solver_options, dict):
            raise TypeError(f"solver_options must be a dict of sparse_solve keyword arguments or None, "
                            f"got {type(solver_options).__name__}")
        self.solver_options = dict(solver_options or {})

    def m_step(self, theta: Tensor, z_hat: Tensor, pairs: Tensor, probes: Tensor | None,
               theta_prior: Tensor) -> Tensor:
        """One M-step with this layer's hyper-parameters (see :func:`~pyg_em.em.objective.m_step`)."""
        return m_step(theta, z_hat, pairs, self.eta, self.eps, self.estep_noise, probes, self.prior, theta_prior,
                      self.block_size, self.solver_options)

    @property
    def estep_noise(self) -> float | None:
        """σ for the posterior E-step, :obj:`None` for the seed's simplified E-step."""
        return self.noise if self.estep == "posterior" else None

    def prepare(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Validate the inputs and return ``(pairs, edge_to_pair, theta0)``.

        Duplicate columns and both directions of an edge share one parameter, initialised from the mean of
        their ``edge_weight`` entries, which must be strictly positive (``softplus`` never reaches 0).
        """
        num_nodes = check_graph(x, edge_index, edge_weight, require_edges=True)
        pairs, edge_to_pair = undirected_pairs(edge_index, num_nodes)
        if edge_weight is None:
            weight0 = x.new_full((pairs.size(1),), self.init_weight)
        else:
            if bool((edge_weight <= 0).any()):
                raise ValueError("edge_weight must be strictly positive: GEM weights are softplus(theta) > 0")
            counts = torch.zeros(pairs.size(1), dtype=edge_weight.dtype, device=edge_weight.device)
            counts = counts.index_add(0, edge_to_pair, torch.ones_like(edge_weight))
            weight0 = edge_weight.new_zeros(pairs.size(1)).index_add(0, edge_to_pair, edge_weight) / counts
            weight0 = weight0.to(x.dtype)
        return pairs, edge_to_pair, inverse_softplus(weight0)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Return ``(edge_weight_learned (E,), z_hat (N, F))``; ``generator`` seeds the Hutchinson probes.

        The inputs are validated here once; each layer's ``run(x, pairs, theta0, generator)`` applies its EM scheme
        (unrolled or implicit) to the undirected pairs.
        """
        pairs, edge_to_pair, theta0 = self.prepare(x, edge_index, edge_weight)
        theta, z_hat = self.run(x, pairs, theta0, generator)
        return F.softplus(theta)[edge_to_pair], z_hat

    def draw_probes(self, x: Tensor, generator: torch.Generator | None) -> Tensor | None:
        """Fresh Rademacher probes for the Hutchinson log-det gradient, or :obj:`None` in exact mode."""
        if self.logdet == "exact":
            return None
        return rademacher_probes(x.size(0), self.num_probes, x, generator)

    def extra_repr(self) -> str:
        parts = [f"eta={self.eta}", f"eps={self.eps}", f"estep={self.estep!r}"]
        if self.estep == "posterior":
            parts.append(f"noise={self.noise}")
        parts.append(f"logdet={self.logdet!r}" + (f", num_probes={self.num_probes}" if self.logdet != "exact" else ""))
        if self.prior > 0:
            parts.append(f"prior={self.prior}")
        return ", ".join(parts)

"""GEM hyper-parameters (one source: :class:`GEMConfig`), input validation and θ initialisation of the layers."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyg_em.em.candidates import undirected_pairs
from pyg_em.em.objective import PrecisionStructure, inverse_softplus, m_step, posterior_mean, rademacher_probes
from pyg_em.linalg.cg import default_tol
from pyg_em.validation import check_graph, check_positive, check_positive_int

__all__ = ["GEMBase", "GEMConfig", "LOGDET_EXACT_MAX_NODES", "observation_mask"]

ESTEPS = ("posterior", "prior_covariance")
#: Deprecated spellings of ``estep`` and the names they stand for.
ESTEP_ALIASES = {"seed": "prior_covariance"}
LOGDETS = ("auto", "exact", "hutchinson")

#: ``logdet='auto'`` computes the log-det gradient exactly up to this many nodes and by Hutchinson probes above.
#: Exact resistances solve against all ``N`` unit vectors; up to 2048 nodes ``sparse_solve`` factorises the
#: precision once (sparse LU) and those solves cost well under a second, while above it every unit-vector block
#: is a CG solve and the cost grows as ``N^2`` (a 100k-node graph did not finish in 16 minutes).
LOGDET_EXACT_MAX_NODES = 2048


@dataclass(frozen=True)
class GEMConfig:
    r"""The hyper-parameters shared by :class:`~pyg_em.em.GEMUnrolledEM` and :class:`~pyg_em.em.GEMImplicitEM`.

    This dataclass is their single source: both layers take these fields as keyword arguments (or a whole
    ``config=``) and read their defaults from here, so a runner can read them too
    (``dataclasses.fields(GEMConfig)``).

    Args:
        eta (float): M-step step size :math:`\eta > 0`. (default: ``0.1``)
        eps (float): Precision shift :math:`\varepsilon > 0` of :math:`L_w + \varepsilon I`. (default: ``1e-3``)
        noise (float): Observation noise standard deviation :math:`\sigma` of the posterior E-step.
            (default: ``1.0``)
        estep (str): ``'posterior'`` (exact posterior mean :math:`(A_w+\sigma^{-2}I)^{-1}\sigma^{-2}x` and the
            posterior-covariance term of :math:`Q`) or ``'prior_covariance'`` (:math:`\hat z = A_w^{-1}x`, the
            prior covariance applied to the signals, no covariance term; the seed's simplified E-step, formerly
            spelled ``'seed'``, which still works with a :class:`DeprecationWarning`). (default: ``'posterior'``)
        logdet (str): How the log-det gradient (effective resistances of :math:`A_w`) is computed:
            ``'exact'`` (solves against all ``N`` unit vectors, in blocks), ``'hutchinson'`` (``num_probes``
            Rademacher probes solved as one multi-column right-hand side) or ``'auto'``: exact up to
            ``LOGDET_EXACT_MAX_NODES`` = 2048 nodes, Hutchinson with ``num_probes`` probes above.
            (default: ``'auto'``)
        num_probes (int): Rademacher probes per M-step in Hutchinson mode. (default: ``8``)
        probe_tol (float): Relative CG tolerance of the probe solves in Hutchinson mode. The Monte-Carlo error of
            ``k`` probes is of order :math:`1/\sqrt k` of the resistances, so solving them to ``1e-10`` buys
            nothing; ``1e-4`` keeps the solve error far below it. A ``tol`` in ``solver_options`` takes
            precedence. (default: ``1e-4``)
        estep_tol (float): Relative CG tolerance of the E-step solve when a term uses probes (the solve that
            also carries the covariance probes). The M-step direction then carries the probes' Monte-Carlo error,
            so a tighter posterior mean buys nothing: on the 100k-node benchmark graph ``1e-6`` takes 14 CG
            iterations where ``sparse_solve``'s float64 default ``1e-10`` takes 22, in forward and backward.
            Never tighter than that default for the dtype (``1e-5`` in float32); a ``tol`` in ``solver_options``
            takes precedence; exact (LU) solves are unaffected. (default: ``1e-6``)
        prior (float): Weight :math:`\lambda \ge 0` of a Gaussian prior
            :math:`-\frac{\lambda}{2}\lVert\theta-\theta_0\rVert^2` added to :math:`Q`. (default: ``0``)
        init_weight (float): Initial weight of every edge when ``edge_weight`` is omitted. (default: ``1.0``)
        block_size (int): Unit vectors per solve in exact mode. (default: ``4096``)
        solver_options (dict, optional): Keyword arguments of :func:`~pyg_em.linalg.sparse_solve` for every
            solve (``method``, ``tol``, ``maxiter``, ...). (default: :obj:`None`, its defaults)
    """

    eta: float = 0.1
    eps: float = 1e-3
    noise: float = 1.0
    estep: str = "posterior"
    logdet: str = "auto"
    num_probes: int = 8
    probe_tol: float = 1e-4
    estep_tol: float = 1e-6
    prior: float = 0.0
    init_weight: float = 1.0
    block_size: int = 4096
    solver_options: dict | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_positive(self.eta, "eta")
        if isinstance(self.eps, (int, float)) and not isinstance(self.eps, bool) and self.eps <= 0:
            raise ValueError(f"eps must be > 0, got {self.eps}: the precision L_w + eps*I is singular for eps <= 0 "
                             "(L_w always has the constant vector in its null space, one per connected component)")
        check_positive(self.eps, "eps")
        check_positive(self.noise, "noise")
        estep = self.estep
        if estep in ESTEP_ALIASES:
            warnings.warn(f"estep={estep!r} is deprecated; use estep={ESTEP_ALIASES[estep]!r} (same E-step)",
                          DeprecationWarning, stacklevel=5)
            object.__setattr__(self, "estep", ESTEP_ALIASES[estep])
        elif estep not in ESTEPS:
            raise ValueError(f"estep must be one of {ESTEPS}, got {estep!r}")
        if self.logdet not in LOGDETS:
            raise ValueError(f"logdet must be one of {LOGDETS}, got {self.logdet!r}")
        check_positive_int(self.num_probes, "num_probes")
        check_positive(self.probe_tol, "probe_tol")
        check_positive(self.estep_tol, "estep_tol")
        check_positive(self.prior, "prior", allow_zero=True)
        check_positive(self.init_weight, "init_weight")
        check_positive_int(self.block_size, "block_size")
        if self.solver_options is not None and not isinstance(self.solver_options, dict):
            raise TypeError(f"solver_options must be a dict of sparse_solve keyword arguments or None, "
                            f"got {type(self.solver_options).__name__}")
        object.__setattr__(self, "solver_options", dict(self.solver_options or {}))

    @classmethod
    def build(cls, config: GEMConfig | None = None, **overrides) -> GEMConfig:
        """``config`` (or the defaults) with ``overrides`` applied; unknown names raise a :class:`TypeError`."""
        if config is not None and not isinstance(config, GEMConfig):
            raise TypeError(f"config must be a GEMConfig or None, got {type(config).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise TypeError(f"unknown GEM hyper-parameter(s) {unknown}; the GEM layers accept {names}")
        return dataclasses.replace(config, **overrides) if config is not None else cls(**overrides)

    def uses_probes(self, num_nodes: int) -> bool:
        """Whether the log-det gradient on ``num_nodes`` nodes is estimated by probes (``logdet`` resolved)."""
        if self.logdet == "auto":
            return num_nodes > LOGDET_EXACT_MAX_NODES
        return self.logdet == "hutchinson"

    @property
    def probe_solver_options(self) -> dict:
        """``solver_options`` for the probe solves: ``probe_tol`` unless the options set a ``tol``."""
        return {"tol": self.probe_tol, **self.solver_options}

    def estep_solver_options(self, dtype: torch.dtype) -> dict:
        """``solver_options`` for the E-step solve when a term uses probes: ``estep_tol`` (not below
        ``sparse_solve``'s default for ``dtype``) unless the options set a ``tol``."""
        return {"tol": max(self.estep_tol, default_tol(dtype)), **self.solver_options}

    @property
    def estep_noise(self) -> float | None:
        """σ for the posterior E-step, :obj:`None` for the ``'prior_covariance'`` E-step."""
        return self.noise if self.estep == "posterior" else None


def observation_mask(x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Read missing entries: ``(x with missing entries set to 0, boolean mask of observed entries or None)``.

    Entries are missing where ``mask`` is :obj:`False` or ``x`` is NaN. Returns ``mask=None`` when every entry
    is observed, so complete data takes the unmasked path (one solve for all columns).
    """
    missing = torch.isnan(x) if x.is_floating_point() else None
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"mask must be a boolean tensor (True = observed), got "
                            f"{type(mask).__name__ if not isinstance(mask, Tensor) else mask.dtype}")
        if mask.shape != x.shape:
            raise ValueError(f"mask must have the shape of x {tuple(x.shape)}, got {tuple(mask.shape)}")
        mask = mask.to(x.device)
        observed = mask if missing is None else mask & ~missing
    elif missing is not None and bool(missing.any()):
        observed = ~missing
    else:
        return x, None
    if not bool(observed.any(dim=0).all()):
        raise ValueError("every signal (column of x) needs at least one observed entry; drop the empty columns")
    return torch.where(observed, x, torch.zeros((), dtype=x.dtype, device=x.device)), observed


class GEMBase(nn.Module):
    """Hyper-parameters and input handling common to :class:`GEMUnrolledEM` and :class:`GEMImplicitEM`.

    The hyper-parameters live in ``config`` (a :class:`GEMConfig`) and are also readable as attributes
    (``layer.eta``). The layers hold no per-edge parameters: the candidate graph is only known at call time, so
    the initial parameters :math:`\\theta_0 = \\mathrm{softplus}^{-1}(w_0)` come from the ``edge_weight`` passed
    to ``forward`` (a constant ``init_weight`` when it is omitted), and gradients flow back into ``edge_weight``.
    To learn one weight per candidate edge end to end, hold them in :class:`~pyg_em.em.GEMGraphLearner`.

    Args:
        config (GEMConfig, optional): Hyper-parameters. (default: :obj:`None`, ``GEMConfig()``)
        **options: Fields of :class:`GEMConfig` overriding ``config``.
    """

    def __init__(self, config: GEMConfig | None = None, **options) -> None:
        super().__init__()
        self.config = GEMConfig.build(config, **options)

    def __getattr__(self, name: str):
        # Hyper-parameters read through to the config (one copy of each value); nn.Module's own lookup first.
        try:
            return super().__getattr__(name)
        except AttributeError:
            config = self.__dict__.get("config")
            if config is not None and name in GEMConfig.__dataclass_fields__:
                return getattr(config, name)
            raise

    @property
    def estep_noise(self) -> float | None:
        """σ for the posterior E-step, :obj:`None` for the ``'prior_covariance'`` E-step."""
        return self.config.estep_noise

    def m_step(self, theta: Tensor, z_hat: Tensor, pairs: Tensor,
               probes: tuple[Tensor | None, Tensor | None] | None, theta_prior: Tensor,
               mask: Tensor | None = None, covariance_solution: Tensor | None = None,
               structure: PrecisionStructure | None = None) -> Tensor:
        """One M-step with this layer's hyper-parameters (see :func:`~pyg_em.em.objective.m_step`); ``probes``
        is the pair :meth:`draw_probes` returns (:obj:`None`: both terms exact), ``covariance_solution`` the
        E-step's solve against the covariance probes (see :meth:`e_step`), ``structure`` the
        :class:`~pyg_em.em.objective.PrecisionStructure` of ``pairs`` shared by all solves of a forward pass."""
        c = self.config
        logdet_probes, covariance_probes = probes if probes is not None else (None, None)
        return m_step(theta, z_hat, pairs, c.eta, c.eps, c.estep_noise, logdet_probes, c.prior, theta_prior,
                      c.block_size, c.solver_options, mask=mask, probe_options=c.probe_solver_options,
                      covariance_probes=covariance_probes, covariance_solution=covariance_solution,
                      structure=structure)

    def e_step(self, x: Tensor, pairs: Tensor, theta: Tensor, probes: tuple[Tensor | None, Tensor | None],
               mask: Tensor | None = None, structure: PrecisionStructure | None = None,
               initial: tuple[Tensor, Tensor | None] | None = None) -> tuple[Tensor, Tensor | None]:
        """Posterior mean at ``softplus(theta)`` and, when the covariance term uses probes, the same posterior
        precision solved against them in the same call: ``(z_hat, covariance_solution or None)``; ``structure``
        as in :meth:`m_step`; ``initial`` a previous call's result to start CG from (see
        :func:`~pyg_em.em.objective.posterior_mean`)."""
        c = self.config
        logdet_probes, covariance_probes = probes if probes is not None else (None, None)
        extra = (logdet_probes if mask is None else covariance_probes) if c.estep == "posterior" else None
        probed = logdet_probes is not None or covariance_probes is not None
        options = c.estep_solver_options(x.dtype) if probed else c.solver_options
        result = posterior_mean(x, pairs, F.softplus(theta), c.eps, c.estep_noise, options, mask, extra, structure,
                                initial)
        return result if extra is not None else (result, None)

    def prepare(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Validate the inputs and return ``(pairs, edge_to_pair, theta0)``.

        Duplicate columns and both directions of an edge share one parameter, initialised from the mean of
        their ``edge_weight`` entries, which must be strictly positive (``softplus`` never reaches 0).
        """
        num_nodes = check_graph(x, edge_index, edge_weight, require_edges=True)
        pairs, edge_to_pair = undirected_pairs(edge_index, num_nodes)
        if edge_weight is None:
            weight0 = x.new_full((pairs.size(1),), self.config.init_weight)
        else:
            if bool((edge_weight <= 0).any()):
                raise ValueError("edge_weight must be strictly positive: GEM weights are softplus(theta) > 0")
            counts = torch.zeros(pairs.size(1), dtype=edge_weight.dtype, device=edge_weight.device)
            counts = counts.index_add(0, edge_to_pair, torch.ones_like(edge_weight))
            weight0 = edge_weight.new_zeros(pairs.size(1)).index_add(0, edge_to_pair, edge_weight) / counts
            weight0 = weight0.to(x.dtype)
        return pairs, edge_to_pair, inverse_softplus(weight0)

    def read_signals(self, x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Signals with missing entries zeroed and the observed mask (see :func:`observation_mask`)."""
        x, mask = observation_mask(x, mask)
        if mask is not None and self.config.estep != "posterior":
            raise ValueError("missing entries (mask or NaN in x) need estep='posterior': the E-step then computes "
                             "the posterior of the unobserved entries given the observed ones")
        return x, mask

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        generator: torch.Generator | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Return ``(edge_weight_learned (E,), z_hat (N, F))``; ``generator`` seeds the Hutchinson probes.

        ``mask`` (boolean ``(N, F)``, :obj:`True` = observed) or NaN entries of ``x`` mark missing readings: the
        E-step then returns their posterior mean given the observed entries of the same signal (the GMRF
        conditional mean, i.e. the imputation), and the M-step uses the completed statistics. The inputs are
        validated here once; each layer's ``run(x, pairs, theta0, generator, mask)`` applies its EM scheme.
        """
        if isinstance(x, Tensor) and x.is_floating_point() and (mask is not None or bool(torch.isnan(x).any())):
            x, mask = self.read_signals(x, mask)
        pairs, edge_to_pair, theta0 = self.prepare(x, edge_index, edge_weight)
        theta, z_hat = self.run(x, pairs, theta0, generator, mask)
        return F.softplus(theta)[edge_to_pair], z_hat

    def draw_probes(self, x: Tensor, generator: torch.Generator | None,
                    mask: Tensor | None = None) -> tuple[Tensor | None, Tensor | None]:
        """Fresh Rademacher probes ``(logdet_probes, covariance_probes)``; :obj:`None` where the term is exact.

        ``logdet_probes`` ``(N, k)`` serve the log-det term (and the covariance term of complete data). With
        missing entries the per-signal covariance term solves one block-diagonal system of ``N F`` unknowns, so
        ``logdet='auto'`` treats it by its own size: exact up to ``LOGDET_EXACT_MAX_NODES`` unknowns,
        ``covariance_probes`` ``(N F, k)`` (``k`` per signal) above.
        """
        num_nodes, num_signals = x.shape
        logdet = rademacher_probes(num_nodes, self.config.num_probes, x, generator) \
            if self.config.uses_probes(num_nodes) else None
        covariance = None
        if mask is not None and self.config.uses_probes(num_nodes * num_signals):
            covariance = rademacher_probes(num_nodes * num_signals, self.config.num_probes, x, generator)
        return logdet, covariance

    def extra_repr(self) -> str:
        """The hyper-parameters, for ``repr(layer)``."""
        c = self.config
        parts = [f"eta={c.eta}", f"eps={c.eps}", f"estep={c.estep!r}"]
        if c.estep == "posterior":
            parts.append(f"noise={c.noise}")
        parts.append(f"logdet={c.logdet!r}" + (f", num_probes={c.num_probes}" if c.logdet != "exact" else ""))
        if c.prior > 0:
            parts.append(f"prior={c.prior}")
        return ", ".join(parts)

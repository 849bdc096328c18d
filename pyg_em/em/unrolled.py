"""GEM as ``K`` unrolled EM layers, differentiated end to end (or with detached M-step gradients)."""

from __future__ import annotations

import torch
from torch import Tensor

from pyg_em.em.base import GEMBase, GEMConfig
from pyg_em.em.objective import PrecisionStructure
from pyg_em.validation import check_positive_int

__all__ = ["GEMUnrolledEM", "gem_unrolled"]


def gem_unrolled(
    layer: GEMBase,
    x: Tensor,
    pairs: Tensor,
    theta: Tensor,
    num_layers: int,
    use_detach: bool,
    generator: torch.Generator | None = None,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Run ``num_layers`` E-step/M-step pairs from ``theta`` (one entry per undirected pair).

    Returns ``(theta_K, z_hat)`` with ``z_hat`` the last E-step's posterior mean (computed from
    ``theta_{K-1}``, as in the seed). With ``use_detach`` each M-step's ascent direction is computed without
    a graph and treated as a constant, so gradients reach ``theta`` through the identity path and the E-steps
    only (cheaper, biased); otherwise every step stays in the autograd graph (``create_graph`` semantics).
    ``mask`` (boolean ``(N, F)``, :obj:`True` = observed) runs the missing-data E-step and M-step.
    The precision's sparsity pattern is analysed once here and shared by every solve of every layer (and their
    backward solves): only the weights change between layers (:class:`~pyg_em.em.objective.PrecisionStructure`).
    """
    theta_prior = theta
    z_hat = x
    structure = PrecisionStructure(pairs, x.size(0))
    for _ in range(num_layers):
        probes = layer.draw_probes(x, generator, mask)
        z_hat, covariance = layer.e_step(x, pairs, theta, probes, mask, structure)
        if use_detach:
            with torch.no_grad():
                current = theta.detach()
                covariance = None if covariance is None else covariance.detach()
                step = layer.m_step(current, z_hat.detach(), pairs, probes, theta_prior.detach(), mask,
                                    covariance, structure) - current
            theta = theta + step
        else:
            theta = layer.m_step(theta, z_hat, pairs, probes, theta_prior, mask, covariance, structure)
    return theta, z_hat


class GEMUnrolledEM(GEMBase):
    r"""Graph EM unrolled into ``K`` differentiable layers that learn the weights of a candidate graph.

    Signals are modelled as Gaussian Markov random fields with precision :math:`L_w + \varepsilon I` on the
    candidate graph ``edge_index`` (see :mod:`pyg_em.em.objective`), with one weight
    :math:`w_{ij} = \mathrm{softplus}(\theta_{ij})` per undirected edge. Each layer runs

    .. math::
        \hat z^{(k)} &= (L_{w^{(k)}} + \varepsilon I + \sigma^{-2} I)^{-1}\sigma^{-2} x
        \qquad\text{(E-step, sparse solve)}\\
        \theta^{(k+1)} &= \theta^{(k)} + \eta\,\nabla_\theta Q(\theta^{(k)}; \hat z^{(k)})
        \qquad\text{(M-step, gradient ascent)}

    where :math:`\nabla_\theta Q` is the closed form of :func:`~pyg_em.em.objective.q_gradient` (log-det term
    exact, or by Hutchinson probes). Gradients of a task loss flow back to ``x`` and to ``edge_weight``.

    Duplicate columns and the two directions of an edge share one weight, initialised from the mean of their
    ``edge_weight`` entries (``init_weight`` when ``edge_weight`` is omitted); self loops are rejected.
    The returned weights are aligned with the *input* ``edge_index`` (both directions of an edge carry the same
    value), so they feed any PyG convolution directly: ``GCNConv(...)(x, edge_index, edge_weight=w)``.

    Example (the seed's usage on the complete candidate graph of 6 nodes)::

        >>> import torch
        >>> from pyg_em.em import GEMUnrolledEM, complete_graph
        >>> x, y = torch.rand(6, 1), torch.rand(6, 1)
        >>> edge_index = complete_graph(6)
        >>> edge_weight = torch.rand(edge_index.size(1)).add(0.1).requires_grad_()
        >>> w, z_hat = GEMUnrolledEM(num_layers=3)(x, edge_index, edge_weight)
        >>> ((z_hat - y) ** 2).sum().backward()
        >>> edge_weight.grad.shape
        torch.Size([30])

    Args:
        num_layers (int): Number of EM layers :math:`K`. (default: ``5``)
        use_detach (bool): Treat each M-step's ascent direction as a constant in backward (the seed's
            ``detach``); otherwise the whole chain is differentiated. (default: :obj:`False`)
        config (GEMConfig, optional): The shared hyper-parameters (:class:`~pyg_em.em.GEMConfig`).
            (default: :obj:`None`, its defaults)
        **options: Any field of :class:`~pyg_em.em.GEMConfig` by keyword (``eta``, ``eps``, ``noise``,
            ``estep``, ``logdet``, ``num_probes``, ``probe_tol``, ``estep_tol``, ``prior``, ``init_weight``,
            ``block_size``, ``solver_options``; defaults there), overriding ``config``. The default
            ``logdet='auto'`` is exact up to 2048 nodes and uses 8 Hutchinson probes, solved to a relative 1e-4, above.

    Shapes:
        - **input:** node signals :math:`(N, F)`, edge indices :math:`(2, E)`, optional positive edge weights
          :math:`(E,)`
        - **output:** learned edge weights :math:`(E,)` aligned with ``edge_index``, posterior mean
          :math:`(N, F)`
    """

    def __init__(self, num_layers: int = 5, *, use_detach: bool = False, config: GEMConfig | None = None,
                 **options) -> None:
        super().__init__(config, **options)
        self.num_layers = check_positive_int(num_layers, "num_layers")
        self.use_detach = bool(use_detach)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Nothing to reset: the layer's only state is its hyper-parameters (see :class:`GEMBase`)."""

    def run(self, x: Tensor, pairs: Tensor, theta0: Tensor, generator: torch.Generator | None = None,
            mask: Tensor | None = None):
        """The EM layers on validated undirected ``pairs`` and parameters ``theta0`` (no input checks)."""
        return gem_unrolled(self, x, pairs, theta0, self.num_layers, self.use_detach, generator, mask)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_layers={self.num_layers}, use_detach={self.use_detach}, "
                f"{self.extra_repr()})")

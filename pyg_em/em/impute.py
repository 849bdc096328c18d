r"""Imputation with a Gaussian Markov random field on a weighted graph: the E-step of GEM as a stand-alone call."""

from __future__ import annotations

import torch
from torch import Tensor

from pyg_em.em.base import GEMConfig, observation_mask
from pyg_em.em.candidates import undirected_pairs
from pyg_em.em.objective import posterior_mean
from pyg_em.validation import check_graph

__all__ = ["gmrf_impute"]


def gmrf_impute(
    x: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    mask: Tensor | None = None,
    eps: float = GEMConfig.eps,
    noise: float = GEMConfig.noise,
    solver_options: dict | None = None,
) -> Tensor:
    r"""Posterior mean of every entry of ``x`` given its observed entries, under the GEM model on a given graph.

    Each column :math:`f` is :math:`x_f = z_f + \sigma\xi` on its observed set :math:`O_f`, with
    :math:`z_f \sim \mathcal N(0, (L_w + \varepsilon I)^{-1})`; the result is

    .. math::
        \hat z_f = (L_w + \varepsilon I + \sigma^{-2} M_f)^{-1}\,\sigma^{-2} M_f x_f,
        \qquad M_f = \mathrm{diag}(\text{mask}_{:, f}),

    the GMRF conditional mean at the missing entries (and a smoothed value at the observed ones), computed by one
    sparse solve for all columns. Use it with the weights :class:`~pyg_em.em.GEMImplicitEM` or
    :class:`~pyg_em.em.GEMUnrolledEM` learned, or with any given weighted graph.

    Args:
        x (Tensor): Signals ``(N, F)``; missing entries may be NaN.
        edge_index (Tensor): Graph ``(2, E)``; both directions and duplicates share one (mean) weight.
        edge_weight (Tensor, optional): Positive weights ``(E,)``. (default: :obj:`None`, all ones)
        mask (Tensor, optional): Boolean ``(N, F)``, :obj:`True` where observed. (default: :obj:`None`, the
            non-NaN entries)
        eps (float): Precision shift :math:`\varepsilon`. (default: ``GEMConfig.eps``)
        noise (float): Observation noise :math:`\sigma`. (default: ``GEMConfig.noise``)
        solver_options (dict, optional): Keyword arguments of :func:`~pyg_em.linalg.sparse_solve`.
            (default: :obj:`None`)

    Returns:
        ``(N, F)`` posterior means.
    """
    config = GEMConfig(eps=eps, noise=noise, solver_options=solver_options)
    x, mask = observation_mask(x, mask)
    num_nodes = check_graph(x, edge_index, edge_weight, require_edges=True)
    pairs, edge_to_pair = undirected_pairs(edge_index, num_nodes)
    if edge_weight is None:
        weight = x.new_ones(pairs.size(1))
    else:
        if bool((edge_weight <= 0).any()):
            raise ValueError("edge_weight must be strictly positive (drop zero-weight edges from edge_index)")
        counts = torch.zeros(pairs.size(1), dtype=x.dtype, device=x.device).index_add(
            0, edge_to_pair, torch.ones_like(edge_weight, dtype=x.dtype))
        weight = x.new_zeros(pairs.size(1)).index_add(0, edge_to_pair, edge_weight.to(x.dtype)) / counts
    return posterior_mean(x, pairs, weight, config.eps, config.noise, config.solver_options, mask)

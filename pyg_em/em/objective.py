r"""The GEM objective: Gaussian graph-signal model, E-step, expected log-likelihood :math:`Q` and its gradient.

Model. Signals :math:`x \in \mathbb{R}^{N \times F}` are noisy observations :math:`x = z + \sigma\xi` of a latent
:math:`z` whose :math:`F` columns are independent Gaussian Markov random fields with precision
:math:`A_w = L_w + \varepsilon I`, where :math:`L_w = D_w - W` is the Laplacian of the candidate graph with one
weight :math:`w_{ij} = \mathrm{softplus}(\theta_{ij})` per undirected edge.

E-step (``noise=σ``, the exact posterior):
:math:`\hat z = (A_w + \sigma^{-2} I)^{-1}\sigma^{-2} x`, posterior covariance
:math:`\Sigma = (A_w + \sigma^{-2} I)^{-1}` per column. With ``noise=None`` the seed's simplified E-step
:math:`\hat z = A_w^{-1} x` is used and :math:`\Sigma` is dropped.

M-step objective (expected complete-data log-likelihood, constants dropped):

.. math::
    Q(\theta; \hat z, \Sigma) = \frac{F}{2}\log\det A_w
    - \frac12 \sum_{\{i,j\}} w_{ij} \lVert \hat z_i - \hat z_j \rVert^2
    - \frac{F}{2}\operatorname{tr}(A_w \Sigma),

whose gradient with respect to one undirected weight is

.. math::
    \frac{\partial Q}{\partial w_{ij}} = \frac{F}{2}\, r_{A}(i, j)
    - \frac12 \lVert \hat z_i - \hat z_j \rVert^2 - \frac{F}{2}\, r_{\Sigma}(i, j),
    \qquad r_M(i, j) = (e_i - e_j)^\top M (e_i - e_j),

with :math:`r_A` computed on :math:`M = A_w^{-1}` (the effective resistance of the graph shifted by
:math:`\varepsilon`) and :math:`r_\Sigma` on :math:`M = \Sigma`. The covariance term carries :math:`F/2`, not
:math:`1/2`, because each of the :math:`F` columns contributes :math:`\frac12\operatorname{tr}(A_w\Sigma)`; with
it, :math:`\nabla_\theta Q(\theta; \hat z(\theta), \Sigma(\theta))` equals the gradient of the marginal
log-likelihood :math:`\log p(x \mid \theta)` (Fisher's identity), which the tests check against a dense oracle.

Every quantity is computed on the sparse graph: :math:`\sum w_{ij}\lVert\hat z_i-\hat z_j\rVert^2` in
:math:`O(EF)`, resistances exactly by solves against blocks of unit vectors (small graphs) or by
Hutchinson/Rademacher probes :math:`r(i,j) \approx \frac1k\sum_p (u_{ip}-u_{jp})(v_{ip}-v_{jp})`,
:math:`U = M V`, with all :math:`k` probes solved as one multi-column right-hand side (large graphs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_em.linalg import SparsityPattern, sparse_solve

__all__ = [
    "PrecisionStructure",
    "block_resistance",
    "hutchinson_resistance",
    "inverse_softplus",
    "m_step",
    "masked_precision_operator",
    "pair_resistance",
    "posterior_mean",
    "precision_operator",
    "q_gradient",
    "q_value",
    "rademacher_probes",
    "solve_precision",
]


def inverse_softplus(weight: Tensor) -> Tensor:
    r""":math:`\theta = \log(e^w - 1)`, computed stably as :math:`w + \log(-\mathrm{expm1}(-w))` for ``w > 0``."""
    return weight + torch.log(-torch.expm1(-weight))


class PrecisionStructure:
    r"""The stored positions of the precision :math:`L_w + \text{shift}\,I` on fixed undirected ``pairs``
    (and of its block-diagonal masked form), analysed once and shared by every solve on them.

    The candidate graph does not change during a forward pass: only the weights do. So the layers build this once
    per call, and every E-step, M-step and backward solve of every layer reuses one
    :class:`~pyg_em.linalg.SparsityPattern` (sorted positions, symmetry, RCM order, CSR layout) instead of
    re-sorting the nnz keys per solve. The values are rebuilt from the weights for each operator, so they are
    never stale. The precision is symmetric by construction (one weight per pair, stored both ways), which the
    pattern then checks with one gather per solve.

    Args:
        pairs (Tensor): Undirected pairs ``(2, U)`` (``i != j``).
        num_nodes (int): ``N``.
    """

    def __init__(self, pairs: Tensor, num_nodes: int) -> None:
        row, col = pairs
        nodes = torch.arange(num_nodes, device=pairs.device)
        self.pairs, self.num_nodes = pairs, num_nodes
        #: Both directions of every pair, then the diagonal (the layout of :meth:`values`).
        self.indices = torch.cat([pairs, pairs.flip(0), torch.stack([nodes, nodes])], dim=1)
        self.pattern = SparsityPattern(self.indices, num_nodes)
        self._blocks: dict[int, tuple[Tensor, SparsityPattern]] = {}

    def values(self, weight: Tensor, shift: float) -> Tensor:
        """The stored values at :attr:`indices`: :math:`-w` twice, then the degrees plus ``shift``."""
        row, col = self.pairs
        degree = weight.new_zeros(self.num_nodes).index_add(0, row, weight).index_add(0, col, weight)
        return torch.cat([-weight, -weight, degree + shift])

    def operator(self, weight: Tensor, shift: float) -> tuple[Tensor, Tensor, int]:
        r""":math:`L_w + \text{shift}\,I` as ``(indices, values, N)``."""
        return self.indices, self.values(weight, shift), self.num_nodes

    def block_indices(self, num_blocks: int) -> Tensor:
        """Indices of the ``num_blocks``-block diagonal form (see :func:`masked_precision_operator`)."""
        if num_blocks not in self._blocks:
            n = self.num_nodes
            offsets = torch.arange(num_blocks, device=self.indices.device) * n
            blocks = (self.indices.unsqueeze(1) + offsets.view(1, -1, 1)).reshape(2, -1)
            nodes = torch.arange(n * num_blocks, device=self.indices.device)
            indices = torch.cat([blocks, torch.stack([nodes, nodes])], dim=1)
            self._blocks[num_blocks] = indices, SparsityPattern(indices, n * num_blocks)
        return self._blocks[num_blocks][0]

    def pattern_of(self, indices: Tensor) -> SparsityPattern | None:
        """The pattern of an operator this structure built (by identity of its ``indices``), else :obj:`None`."""
        if indices is self.indices:
            return self.pattern
        return next((pattern for block, pattern in self._blocks.values() if block is indices), None)


def precision_operator(pairs: Tensor, weight: Tensor, num_nodes: int, shift: float,
                       structure: PrecisionStructure | None = None) -> tuple[Tensor, Tensor, int]:
    r"""The precision :math:`L_w + \text{shift}\cdot I` as ``(indices (2, nnz), values (nnz,), N)``.

    Both directions of every pair and the diagonal, so the values are differentiable functions of ``weight``.
    ``structure`` (a :class:`PrecisionStructure` of the same ``pairs``) reuses its indices, so solves find its
    analysed pattern. (default: :obj:`None`, built here)
    """
    return (structure or PrecisionStructure(pairs, num_nodes)).operator(weight, shift)


def solve_precision(operator: tuple[Tensor, Tensor, int], rhs: Tensor, options: dict | None = None,
                    structure: PrecisionStructure | None = None) -> Tensor:
    """Solve ``A X = rhs`` for the SPD precision ``A``, all columns at once, differentiably in both (twice).

    ``options`` are keyword arguments of :func:`~pyg_em.linalg.sparse_solve` (``method``, ``tol``, ...);
    ``structure`` the :class:`PrecisionStructure` that built ``operator``, whose pattern the solve then reuses.
    """
    pattern = structure.pattern_of(operator[0]) if structure is not None else None
    return sparse_solve(operator, rhs, **(options or {}), pattern=pattern)


def masked_precision_operator(
    pairs: Tensor, weight: Tensor, num_nodes: int, shift: float, diagonal: Tensor,
    structure: PrecisionStructure | None = None,
) -> tuple[Tensor, Tensor, int]:
    r"""Block-diagonal precision :math:`\mathrm{blkdiag}_f(L_w + \text{shift}\,I + \mathrm{diag}(d_f))`.

    One block per column ``f`` of ``diagonal`` ``(N, F)``, on the column-major unknowns ``f * N + i`` (the layout
    of ``x.T.reshape(-1)``), so the ``F`` signals, each with its own observed set, are solved as one sparse
    system with :math:`F \cdot \mathrm{nnz}` stored entries, differentiably in ``weight``. ``structure`` as in
    :func:`precision_operator`.
    """
    structure = structure or PrecisionStructure(pairs, num_nodes)
    num_blocks = diagonal.size(1)
    values = structure.values(weight, shift)
    return (structure.block_indices(num_blocks),
            torch.cat([values.repeat(num_blocks), diagonal.T.reshape(-1).to(values.dtype)]), num_nodes * num_blocks)


def posterior_mean(
    x: Tensor,
    pairs: Tensor,
    weight: Tensor,
    eps: float,
    noise: float | None,
    options: dict | None = None,
    mask: Tensor | None = None,
    probes: Tensor | None = None,
    structure: PrecisionStructure | None = None,
    initial: tuple[Tensor, Tensor | None] | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""E-step: :math:`(A_w + \sigma^{-2}I)^{-1}\sigma^{-2}x` (``noise=σ``) or :math:`A_w^{-1}x` (``noise=None``).

    With a boolean ``mask`` ``(N, F)`` of observed entries, signal ``f`` is observed on :math:`O_f` only, and its
    posterior mean is :math:`(A_w + \sigma^{-2}M_f)^{-1}\sigma^{-2}M_f x_f` with :math:`M_f = \mathrm{diag}(m_f)`:
    at an unobserved entry this is the GMRF conditional mean given the observed ones (the imputation). All
    ``F`` systems are solved at once (:func:`masked_precision_operator`).

    With ``probes`` (the covariance term's Hutchinson probes, ``(N, k)``, or ``(N F, k)`` with a ``mask``) the
    same posterior precision is also solved against them in the same call, and ``(z_hat, Sigma @ probes)`` is
    returned: the E-step and the M-step's covariance term share one matrix, so they share one solve (one
    sparse-matrix set-up, one Krylov run for all columns).

    ``initial`` ``(z_hat, probe_solution or None)`` from a previous call (nearby weights, same probes) starts CG
    there instead of at 0 (not differentiated: the solution does not depend on it beyond the tolerance); a fixed
    point iteration then needs a few CG iterations per E-step near convergence. Exact (LU) solves ignore it.
    """
    if initial is not None:
        options = {**(options or {}), "x0": _initial_guess(initial, mask, probes)}
    if noise is None:
        if mask is not None:
            raise ValueError("missing entries need the posterior E-step (noise=sigma)")
        structure = structure or PrecisionStructure(pairs, x.size(0))
        return solve_precision(precision_operator(pairs, weight, x.size(0), eps, structure), x, options, structure)
    precision = noise ** -2
    structure = structure or PrecisionStructure(pairs, x.size(0))
    if mask is None:
        operator, rhs = precision_operator(pairs, weight, x.size(0), eps + precision, structure), x * precision
    else:
        observed = mask.to(x.dtype) * precision
        operator = masked_precision_operator(pairs, weight, x.size(0), eps, observed, structure)
        rhs = (x * observed).T.reshape(-1, 1)
    if probes is not None:
        rhs = torch.cat([rhs, probes], dim=1)
    solution = solve_precision(operator, rhs, options, structure)
    z_hat, probe_solution = solution[:, : rhs.size(1) - (0 if probes is None else probes.size(1))], None
    if probes is not None:
        probe_solution = solution[:, z_hat.size(1):]
    if mask is not None:
        z_hat = z_hat.view(x.size(1), x.size(0)).T
    return z_hat if probes is None else (z_hat, probe_solution)


def _initial_guess(initial: tuple[Tensor, Tensor | None], mask: Tensor | None, probes: Tensor | None) -> Tensor:
    """A previous ``(z_hat, probe_solution)`` in the layout of :func:`posterior_mean`'s right-hand side."""
    z_hat, probe_solution = initial
    guess = z_hat.detach().T.reshape(-1, 1) if mask is not None else z_hat.detach()
    if probes is None:
        return guess
    if probe_solution is None or probe_solution.shape != probes.shape:
        probe_solution = torch.zeros_like(probes)
    return torch.cat([guess, probe_solution.detach()], dim=1)


def rademacher_probes(
    num_nodes: int, num_probes: int, like: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """``(N, k)`` matrix of independent ±1 entries with the dtype and device of ``like``."""
    bits = torch.randint(0, 2, (num_nodes, num_probes), generator=generator, device=like.device)
    return (2 * bits - 1).to(like.dtype)


def pair_resistance(
    pairs: Tensor,
    weight: Tensor,
    num_nodes: int,
    shift: float,
    probes: Tensor | None = None,
    block_size: int = 4096,
    options: dict | None = None,
    structure: PrecisionStructure | None = None,
) -> Tensor:
    r""":math:`(e_i - e_j)^\top (L_w + \text{shift}\,I)^{-1} (e_i - e_j)` for every pair, exact or by probes.

    Args:
        pairs (Tensor): Undirected pairs ``(2, U)``.
        weight (Tensor): Pair weights ``(U,)``.
        num_nodes (int): ``N``.
        shift (float): Diagonal shift, ``> 0``.
        probes (Tensor, optional): ``(N, k)`` Rademacher probes ``V``: returns the unbiased Hutchinson estimate
            :math:`\frac1k\sum_p (u_{ip}-u_{jp})(v_{ip}-v_{jp})` with :math:`U = A^{-1}V` from one ``k``-column
            solve. When :obj:`None`, the exact value from solves against blocks of ``block_size`` unit vectors
            (``N`` columns in all: use it for small graphs). (default: :obj:`None`)
        block_size (int): Unit vectors per exact solve, bounding memory to ``N * block_size``.
            (default: ``4096``)
        options (dict, optional): Keyword arguments of :func:`~pyg_em.linalg.sparse_solve`. (default: :obj:`None`)

    Returns:
        ``(U,)`` resistances, differentiable with respect to ``weight`` (and ``probes``).
    """
    structure = structure or PrecisionStructure(pairs, num_nodes)
    operator = precision_operator(pairs, weight, num_nodes, shift, structure)
    return block_resistance(operator, pairs, num_nodes, 1, probes, block_size, options, structure)


def block_resistance(
    operator: tuple[Tensor, Tensor, int],
    pairs: Tensor,
    num_nodes: int,
    num_blocks: int,
    probes: Tensor | None = None,
    block_size: int = 4096,
    options: dict | None = None,
    structure: PrecisionStructure | None = None,
) -> Tensor:
    r""":math:`\sum_f (e_i - e_j)^\top A_f^{-1} (e_i - e_j)` for every pair, for a block-diagonal
    :math:`\mathrm{blkdiag}(A_1, \dots, A_F)` on ``F * N`` unknowns (``F = num_blocks``, see
    :func:`masked_precision_operator`; ``F = 1`` is :func:`pair_resistance`).

    Exact: one unit vector per node stacked over all blocks (a block-diagonal solve keeps them apart), so ``N``
    right-hand sides in all, in chunks of ``block_size``. By probes: ``probes`` ``(F * N, k)``, ``k`` independent
    probes per block, one ``k``-column solve.
    """
    row, col = pairs
    if probes is not None:
        return hutchinson_resistance(solve_precision(operator, probes, options, structure), probes, pairs, num_blocks)
    values = operator[1]
    diagonal, cross = [], values.new_zeros(num_blocks, pairs.size(1))
    for start in range(0, num_nodes, block_size):
        stop = min(start + block_size, num_nodes)
        nodes = torch.arange(start, stop, device=pairs.device)
        unit = values.new_zeros(num_nodes, stop - start).index_put((nodes, nodes - start), values.new_ones(()))
        # columns start..stop-1 of every block's inverse
        inverse_block = solve_precision(operator, unit.repeat(num_blocks, 1), options, structure)
        inverse_block = inverse_block.view(num_blocks, num_nodes, -1)
        diagonal.append(inverse_block[:, nodes, nodes - start])
        in_block = (col >= start) & (col < stop)
        cross = cross.masked_scatter(in_block.expand_as(cross), inverse_block[:, row[in_block], col[in_block] - start])
    diagonal = torch.cat(diagonal, dim=1)
    return (diagonal[:, row] + diagonal[:, col] - 2 * cross).sum(dim=0)


def hutchinson_resistance(solution: Tensor, probes: Tensor, pairs: Tensor, num_blocks: int = 1) -> Tensor:
    r""":math:`\sum_f \frac1k\sum_p (u_{fip}-u_{fjp})(v_{fip}-v_{fjp})` from probes ``V`` ``(F N, k)`` and
    ``U = A^{-1} V`` (block-diagonal ``A`` with ``F = num_blocks`` blocks): the Hutchinson resistances."""
    row, col = pairs
    num_probes = solution.size(-1)
    num_nodes = solution.size(0) // num_blocks
    if num_nodes * num_nodes <= pairs.size(1) * num_blocks * num_probes:
        # Small graph, many columns (e.g. 144 stations x 365 signals x 8 probes): with a_ij = sum_fp u_fip v_fjp,
        # (u_i - u_j).(v_i - v_j) = a_ii + a_jj - a_ij - a_ji, so one (N, F k) x (F k, N) product replaces four
        # (pairs, F k) gathers.
        U = solution.reshape(num_blocks, num_nodes, num_probes).transpose(0, 1).reshape(num_nodes, -1)
        V = probes.reshape(num_blocks, num_nodes, num_probes).transpose(0, 1).reshape(num_nodes, -1)
        cross = U @ V.T
        diagonal = cross.diagonal()
        return (diagonal[row] + diagonal[col] - cross[row, col] - cross[col, row]) / num_probes
    if num_blocks > 1:  # node-major (N, F k): one contiguous row gather per pair serves every block and probe
        solution = solution.reshape(num_blocks, -1, num_probes).transpose(0, 1).reshape(-1, num_blocks * num_probes)
        probes = probes.reshape(num_blocks, -1, num_probes).transpose(0, 1).reshape(-1, num_blocks * num_probes)
    # index_select + vecdot: 3x faster than advanced indexing and a product on 550k pairs x 8 probes
    difference = solution.index_select(0, row) - solution.index_select(0, col)
    probe_difference = probes.index_select(0, row) - probes.index_select(0, col)
    return torch.linalg.vecdot(difference, probe_difference) / num_probes


def q_gradient(
    z_hat: Tensor,
    pairs: Tensor,
    weight: Tensor,
    eps: float,
    noise: float | None,
    probes: Tensor | None = None,
    block_size: int = 4096,
    options: dict | None = None,
    mask: Tensor | None = None,
    probe_options: dict | None = None,
    covariance_probes: Tensor | None = None,
    covariance_solution: Tensor | None = None,
    structure: PrecisionStructure | None = None,
) -> Tensor:
    r""":math:`\partial Q / \partial w` for every undirected pair (see the module docstring), shape ``(U,)``.

    With missing entries (``mask``) each signal has its own posterior covariance
    :math:`\Sigma_f = (A_w + \sigma^{-2}M_f)^{-1}`, and the covariance term becomes
    :math:`-\frac12\sum_f r_{\Sigma_f}(i, j)` (it reduces to :math:`-\frac F2 r_\Sigma` when all are observed);
    :math:`\hat z` then holds the completed signals (posterior means at the unobserved entries).

    Args:
        z_hat (Tensor): E-step posterior mean ``(N, F)``, held fixed (it comes from the previous weights).
        pairs (Tensor): Undirected pairs ``(2, U)``.
        weight (Tensor): Current weights ``(U,)``.
        eps (float): Precision shift :math:`\varepsilon > 0`.
        noise (float, optional): Observation noise :math:`\sigma`; :obj:`None` for the ``'prior_covariance'``
            E-step (no covariance term).
        probes (Tensor, optional): Rademacher probes ``(N, k)`` for the resistances of the log-det term (and of
            the covariance term without ``mask``); exact when :obj:`None`.
        block_size (int): Unit vectors per exact solve. (default: ``4096``)
        options (dict, optional): Keyword arguments of :func:`~pyg_em.linalg.sparse_solve`. (default: :obj:`None`)
        mask (Tensor, optional): Boolean ``(N, F)``, :obj:`True` where observed. (default: :obj:`None`, all)
        probe_options (dict, optional): ``sparse_solve`` keyword arguments for the probe solves.
            (default: :obj:`None`, ``options``)
        covariance_probes (Tensor, optional): With ``mask``: probes ``(N F, k)``, ``k`` per signal, for the
            per-signal covariance term (one block-diagonal solve of ``N F`` unknowns); exact when :obj:`None`.
        covariance_solution (Tensor, optional): :math:`\Sigma V` for the covariance term's probes ``V`` when the
            E-step already solved it (see :func:`posterior_mean`); skips that solve. (default: :obj:`None`)
        structure (PrecisionStructure, optional): The analysed precision pattern of ``pairs``, shared by all
            solves. (default: :obj:`None`, built here)
    """
    num_nodes, num_features = z_hat.shape
    row, col = pairs
    exact_options = options
    if probe_options is not None and (probes is not None or covariance_probes is not None):
        options = probe_options  # only used for the probe solves below
    logdet_options = options if probes is not None else exact_options
    structure = structure or PrecisionStructure(pairs, num_nodes)
    gradient = 0.5 * num_features * pair_resistance(pairs, weight, num_nodes, eps, probes, block_size, logdet_options,
                                                    structure)
    gradient = gradient - 0.5 * (z_hat[row] - z_hat[col]).pow(2).sum(dim=1)
    if noise is None:
        return gradient
    if covariance_solution is not None:
        covariance_probe = probes if mask is None else covariance_probes
        blocks = 1 if mask is None else num_features
        covariance = hutchinson_resistance(covariance_solution, covariance_probe, pairs, blocks)
        return gradient - 0.5 * (num_features if mask is None else 1) * covariance
    if mask is None:
        covariance = pair_resistance(pairs, weight, num_nodes, eps + noise ** -2, probes, block_size, logdet_options,
                                     structure)
        return gradient - 0.5 * num_features * covariance
    operator = masked_precision_operator(pairs, weight, num_nodes, eps, mask.to(weight.dtype) * noise ** -2,
                                         structure)
    covariance_options = options if covariance_probes is not None else exact_options
    return gradient - 0.5 * block_resistance(operator, pairs, num_nodes, num_features, covariance_probes, block_size,
                                             covariance_options)


def q_value(
    z_hat: Tensor,
    pairs: Tensor,
    weight: Tensor,
    eps: float,
    noise: float | None,
    posterior_weight: Tensor | None = None,
) -> Tensor:
    r"""The objective :math:`Q(\theta; \hat z, \Sigma)` itself, for monitoring small graphs (dense ``N x N``).

    The log-determinant and :math:`\operatorname{tr}(A_w\Sigma)` need the whole spectrum, so this is
    :math:`O(N^3)`; the layers never call it, they only use :func:`q_gradient`. ``posterior_weight`` are the
    weights the E-step that produced ``z_hat`` used (they define :math:`\Sigma`); default: ``weight``.
    Unlike the formula in the module docstring it keeps the θ-independent :math:`-\frac{\varepsilon}{2}
    \lVert\hat z\rVert_F^2`, so it equals :math:`-\frac12\operatorname{tr}(\hat z^\top A_w \hat z)` exactly.
    """
    num_nodes, num_features = z_hat.shape
    indices, values, _ = precision_operator(pairs, weight, num_nodes, eps)
    precision = values.new_zeros(num_nodes, num_nodes).index_put((indices[0], indices[1]), values, accumulate=True)
    row, col = pairs
    value = 0.5 * num_features * torch.logdet(precision)
    value = value - 0.5 * (weight * (z_hat[row] - z_hat[col]).pow(2).sum(dim=1)).sum() - 0.5 * eps * z_hat.pow(2).sum()
    if noise is not None:
        source = weight if posterior_weight is None else posterior_weight
        indices, values, _ = precision_operator(pairs, source, num_nodes, eps + noise ** -2)
        shifted = values.new_zeros(num_nodes, num_nodes).index_put((indices[0], indices[1]), values, accumulate=True)
        value = value - 0.5 * num_features * torch.linalg.solve(shifted, precision).diagonal().sum()
    return value


def m_step(
    theta: Tensor,
    z_hat: Tensor,
    pairs: Tensor,
    eta: float,
    eps: float,
    noise: float | None,
    probes: Tensor | None = None,
    prior: float = 0.0,
    theta_prior: Tensor | None = None,
    block_size: int = 4096,
    options: dict | None = None,
    mask: Tensor | None = None,
    probe_options: dict | None = None,
    covariance_probes: Tensor | None = None,
    covariance_solution: Tensor | None = None,
    structure: PrecisionStructure | None = None,
) -> Tensor:
    r"""One gradient-ascent M-step :math:`\theta + \eta\,\nabla_\theta\big(Q - \tfrac{\lambda}{2}
    \lVert\theta-\theta_0\rVert^2\big)`, with :math:`\nabla_\theta Q = \partial Q/\partial w \odot
    \mathrm{sigmoid}(\theta)` (chain rule through softplus) and :math:`\lambda` = ``prior``."""
    ascent = q_gradient(z_hat, pairs, F.softplus(theta), eps, noise, probes, block_size, options, mask, probe_options,
                        covariance_probes, covariance_solution, structure)
    ascent = ascent * torch.sigmoid(theta)
    if prior > 0:
        ascent = ascent - prior * (theta - theta_prior)
    return theta + eta * ascent

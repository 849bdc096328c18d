"""Infinite-width limit of the NTK of the mean-field two-layer ReLU network (arc-cosine kernels)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pyg_em.validation import check_features, check_positive

__all__ = ["ntk_infinite_width"]


def ntk_infinite_width(
    X1: Tensor,
    X2: Tensor | None = None,
    *,
    weight_var: float | None = None,
    readout_var: float = 1.0,
) -> Tensor:
    r"""Width-:math:`\infty` limit of :math:`m \cdot` NTK of :class:`~pyg_em.func.MeanFieldReLU`.

    With i.i.d. neurons :math:`\mathbf{w} \sim \mathcal{N}(0, \sigma_w^2 \mathbf{I})` and readouts
    :math:`\mathbb{E}[a^2] = \sigma_a^2`, the mean-field NTK is an average over neurons divided by :math:`m`,

    .. math::
        m\,\Theta_m(\mathbf{x}, \mathbf{x}') = \frac{1}{m}\sum_{j=1}^m \Big[a_j^2\,
        \mathbb{1}[\mathbf{w}_j^\top\mathbf{x} > 0]\,\mathbb{1}[\mathbf{w}_j^\top\mathbf{x}' > 0]\,
        \mathbf{x}^\top\mathbf{x}' + \mathrm{ReLU}(\mathbf{w}_j^\top\mathbf{x})\,
        \mathrm{ReLU}(\mathbf{w}_j^\top\mathbf{x}')\Big],

    so :math:`\Theta_m \to 0` like :math:`1/m` while :math:`m\,\Theta_m` converges (law of large numbers, error
    :math:`O(m^{-1/2})`) to the expectation. The pre-activations :math:`(\mathbf{w}^\top\mathbf{x},
    \mathbf{w}^\top\mathbf{x}')` are jointly Gaussian with correlation :math:`\cos\varphi`, :math:`\varphi` the
    angle between :math:`\mathbf{x}` and :math:`\mathbf{x}'`; the arc-cosine kernels of degree 0 and 1
    (Cho & Saul, 2009) give

    .. math::
        \Theta_\infty(\mathbf{x}, \mathbf{x}') = \sigma_a^2\, \mathbf{x}^\top\mathbf{x}'\,
        \frac{\pi - \varphi}{2\pi} + \sigma_w^2\, \|\mathbf{x}\|\,\|\mathbf{x}'\|\,
        \frac{\sin\varphi + (\pi - \varphi)\cos\varphi}{2\pi}.

    The defaults :math:`\sigma_w^2 = 1/d`, :math:`\sigma_a^2 = 1` match
    :meth:`MeanFieldReLU.reset_parameters <pyg_em.func.MeanFieldReLU.reset_parameters>`; compare
    ``model.width * model.ntk(X)`` with this kernel. A zero input gives a zero row.

    Args:
        X1 (Tensor): Inputs of shape :math:`(n_1, d)`.
        X2 (Tensor, optional): Inputs of shape :math:`(n_2, d)`; :obj:`None` means ``X1``. (default: :obj:`None`)
        weight_var (float, optional): :math:`\sigma_w^2`; :obj:`None` means :math:`1/d`. (default: :obj:`None`)
        readout_var (float): :math:`\sigma_a^2 = \mathbb{E}[a^2]`. (default: :obj:`1.0`)

    Returns:
        Tensor: Kernel matrix of shape :math:`(n_1, n_2)`.
    """
    check_features(X1, "X1")
    if X2 is None:
        X2 = X1
    else:
        check_features(X2, "X2")
        if X2.size(1) != X1.size(1):
            raise ValueError(f"X2 must have {X1.size(1)} columns like X1, got shape {tuple(X2.shape)}")
        if X2.dtype != X1.dtype:
            raise TypeError(f"X2 has dtype {X2.dtype} but X1 has dtype {X1.dtype}")
    weight_var = 1.0 / X1.size(1) if weight_var is None else check_positive(weight_var, "weight_var")
    readout_var = check_positive(readout_var, "readout_var")

    inner = X1 @ X2.T
    norms = torch.outer(X1.norm(dim=1), X2.norm(dim=1))
    # A zero norm makes the angle undefined, but both terms carry a factor x^T x' = 0 or ||x|| = 0 there.
    cos = (inner / torch.where(norms > 0, norms, torch.ones_like(norms))).clamp(-1.0, 1.0)
    angle = torch.arccos(cos)
    degree0 = (math.pi - angle) / (2 * math.pi)
    degree1 = norms * (torch.sin(angle) + (math.pi - angle) * cos) / (2 * math.pi)
    return readout_var * inner * degree0 + weight_var * degree1

"""Jacobian and neural-tangent-kernel tools."""

from pyg_em.func.kernels import ntk_infinite_width
from pyg_em.func.mean_field import MeanFieldReLU
from pyg_em.func.ntk import empirical_ntk, per_sample_jacobian

__all__: list[str] = ["MeanFieldReLU", "empirical_ntk", "ntk_infinite_width", "per_sample_jacobian"]

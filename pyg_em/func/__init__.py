"""Jacobian and neural-tangent-kernel tools."""

__all__: list[str] = []

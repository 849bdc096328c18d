"""Errors and warnings raised by the iterative solvers of :mod:`pyg_em.linalg`."""

from __future__ import annotations


class ConvergenceError(RuntimeError):
    """An iterative solver stopped before reaching its tolerance.

    Args:
        residual (float): the largest relative residual norm over the right-hand sides when it stopped.
        iterations (int): the number of iterations it ran.
        message (str, optional): what was being solved. (default: :obj:`None`)
    """

    def __init__(self, residual: float, iterations: int, message: str | None = None):
        self.residual = float(residual)
        self.iterations = int(iterations)
        text = f"did not converge: relative residual {self.residual:.3e} after {self.iterations} iterations"
        super().__init__(f"{message}: {text}" if message else text)

    def __reduce__(self):  # keep the fields when pickled (e.g. across DataLoader workers)
        return (type(self), (self.residual, self.iterations))


class ConvergenceWarning(RuntimeWarning):
    """Issued instead of :class:`ConvergenceError` when a solver runs with ``strict=False``."""

"""fixed_point: forward solvers against closed forms, implicit gradients against gradcheck and unrolling."""

import warnings

import pytest
import torch
from torch.autograd import gradcheck

from pyg_em.linalg import ConvergenceError, ConvergenceWarning, fixed_point

D = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def linear_map(z, S, x):
    """f(z) = W z + x with W = (S + S^T)/2 (symmetric, so I - J is SPD when |W| < 1)."""
    return 0.5 * (S + S.T) @ z + x


def gradient_step(theta, Q, p, eta=0.2):
    """f = theta - eta * grad phi, phi = 1/2 theta^T Q theta + sum log cosh(theta) - p^T theta (strongly convex)."""
    return theta - eta * (Q @ theta + torch.tanh(theta) - p)


def spd(n, seed):
    A = torch.randn(n, n, generator=_gen(seed), dtype=D)
    return A @ A.T / n + 0.5 * torch.eye(n, dtype=D)


@pytest.mark.parametrize("solver", ["anderson", "iterate"])
def test_linear_fixed_point_matches_solve(solver, device):
    S = (0.3 * torch.randn(6, 6, generator=_gen(0), dtype=D) / 6**0.5).to(device)
    x = torch.randn(6, 2, generator=_gen(1), dtype=D).to(device)
    z = fixed_point(linear_map, torch.zeros_like(x), S, x, solver=solver, tol=1e-12)
    W = 0.5 * (S + S.T)
    torch.testing.assert_close(z, torch.linalg.solve(torch.eye(6, dtype=D, device=device) - W, x))


@pytest.mark.parametrize("backward", ["cg", "neumann"])
def test_gradcheck_linear(backward):
    S = (0.3 * torch.randn(5, 5, generator=_gen(2), dtype=D) / 5**0.5).requires_grad_()
    x = torch.randn(5, generator=_gen(3), dtype=D, requires_grad=True)

    def fn(S_, x_):
        return fixed_point(linear_map, torch.zeros(5, dtype=D), S_, x_, backward=backward, tol=1e-13)

    assert gradcheck(fn, (S, x))


def test_gradcheck_gradient_step_cg():
    Q = spd(5, 4)
    p = torch.randn(5, generator=_gen(5), dtype=D, requires_grad=True)

    def fn(p_):
        return fixed_point(gradient_step, torch.zeros(5, dtype=D), Q, p_, backward="cg", tol=1e-13)

    assert gradcheck(fn, (p,))


def test_gradcheck_nonlinear_contraction_neumann():
    A = (0.4 * torch.randn(4, 4, generator=_gen(6), dtype=D) / 2).requires_grad_()
    b = torch.randn(4, generator=_gen(7), dtype=D, requires_grad=True)

    def f(z, A_, b_):
        return torch.tanh(A_ @ z + b_)

    def fn(A_, b_):
        return fixed_point(f, torch.zeros(4, dtype=D), A_, b_, backward="neumann", tol=1e-13)

    assert gradcheck(fn, (A, b))


def test_implicit_gradient_matches_unrolled():
    Q = spd(6, 8)
    p0 = torch.randn(6, generator=_gen(9), dtype=D)
    probe = torch.randn(6, generator=_gen(10), dtype=D)
    p = p0.clone().requires_grad_()
    (fixed_point(gradient_step, torch.zeros(6, dtype=D), Q, p, tol=1e-13) @ probe).backward()
    p_unrolled = p0.clone().requires_grad_()
    z = torch.zeros(6, dtype=D)
    for _ in range(400):
        z = gradient_step(z, Q, p_unrolled)
    (z @ probe).backward()
    torch.testing.assert_close(p.grad, p_unrolled.grad, rtol=1e-8, atol=1e-10)


def test_no_grad_returns_plain_fixed_point():
    Q, p = spd(4, 11), torch.randn(4, generator=_gen(12), dtype=D)
    z = fixed_point(gradient_step, torch.zeros(4, dtype=D), Q, p)
    assert not z.requires_grad
    torch.testing.assert_close(gradient_step(z, Q, p), z, atol=1e-7, rtol=0)


def test_forward_non_convergence():
    def f(z):
        return 2.0 * z + 1.0

    with pytest.raises(ConvergenceError) as info:
        fixed_point(f, torch.zeros(3, dtype=D), solver="iterate", maxiter=5)
    assert info.value.iterations == 5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fixed_point(f, torch.zeros(3, dtype=D), solver="iterate", maxiter=5, strict=False)
    assert any(issubclass(c.category, ConvergenceWarning) for c in caught)


def test_neumann_adjoint_reports_divergence_where_cg_works():
    # eta = 1.9 / lambda_min-ish: the map is not a contraction (|J| > 1), Anderson still finds the fixed point,
    # the Neumann series diverges and must say so; CG on I - J = eta * Hessian (SPD) is fine.
    Q = spd(5, 13)
    eta = 1.9 / float(torch.linalg.eigvalsh(Q).min())
    p = torch.randn(5, generator=_gen(14), dtype=D, requires_grad=True)

    def f(z, p_):
        return z - eta * (Q @ z - p_)

    z = fixed_point(f, torch.zeros(5, dtype=D), p, backward="neumann", tol=1e-12, maxiter=200)
    torch.testing.assert_close(z.detach(), torch.linalg.solve(Q, p.detach()))
    with pytest.raises(ConvergenceError):
        z.sum().backward()
    p.grad = None
    fixed_point(f, torch.zeros(5, dtype=D), p, backward="cg", tol=1e-12, maxiter=200).sum().backward()
    torch.testing.assert_close(p.grad, torch.linalg.solve(Q, torch.ones(5, dtype=D)))


def test_bad_arguments():
    z0 = torch.zeros(2, dtype=D)
    with pytest.raises(ValueError, match="solver"):
        fixed_point(lambda z: z, z0, solver="broyden")
    with pytest.raises(ValueError, match="backward"):
        fixed_point(lambda z: z, z0, backward="lu")
    with pytest.raises(ValueError, match="z0"):
        fixed_point(lambda z: z, torch.tensor([float("nan")]))
    with pytest.raises(TypeError, match="f must be callable"):
        fixed_point(None, z0)
    with pytest.raises(ValueError, match="maxiter"):
        fixed_point(lambda z: z, z0, maxiter=0)

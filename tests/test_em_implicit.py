"""GEMImplicitEM: fixed point, implicit gradients vs unrolled (K growing) and finite differences, adjoint solvers."""

import pytest
import torch

from pyg_em.em import GEMImplicitEM, GEMUnrolledEM, pairs_to_edge_index
from pyg_em.em.objective import inverse_softplus
from pyg_em.linalg import ConvergenceError
from tests.test_em_oracle import DTYPE, dense_precision, marginal_log_likelihood


def model_data(num_nodes=8, num_features=40, seed=0):
    """Signals drawn from the GEM model itself on a random candidate graph, so the fixed point is interior."""
    gen = torch.Generator().manual_seed(seed)
    rows, cols = torch.triu_indices(num_nodes, num_nodes, 1)
    pairs = torch.stack([rows, cols])[:, torch.rand(rows.numel(), generator=gen) < 0.5]
    weight = torch.rand(pairs.size(1), generator=gen, dtype=DTYPE) + 0.5
    covariance = torch.linalg.inv(dense_precision(pairs, weight, num_nodes, 0.1))
    z = torch.linalg.cholesky(covariance) @ torch.randn(num_nodes, num_features, generator=gen, dtype=DTYPE)
    x = z + 0.5 * torch.randn(num_nodes, num_features, generator=gen, dtype=DTYPE)
    return x, pairs_to_edge_index(pairs), weight


HPARAMS = dict(eta=0.2, eps=0.1, noise=0.5, prior=1.0)


def _grads(layer, x, edge_index, weight0):
    x = x.clone().requires_grad_()
    weight0 = weight0.clone().requires_grad_()
    weight, z_hat = layer(x, edge_index, torch.cat([weight0, weight0]))
    (weight.sin().sum() + z_hat.pow(2).sum()).backward()
    return weight.detach(), x.grad, weight0.grad


def test_implicit_gradient_is_the_limit_of_unrolled_gradients():
    x, edge_index, _ = model_data()
    weight0 = torch.full((edge_index.size(1) // 2,), 0.8, dtype=DTYPE)
    implicit = GEMImplicitEM(**HPARAMS, tol=1e-12)
    weight, grad_x, grad_w = _grads(implicit, x, edge_index, weight0)
    assert implicit.adjoint_solver(x.size(0)) == "cg"
    errors = []
    for num_layers in (15, 30, 60):
        w_k, gx_k, gw_k = _grads(GEMUnrolledEM(num_layers=num_layers, **HPARAMS), x, edge_index, weight0)
        errors.append(max(float((gx_k - grad_x).abs().max() / grad_x.abs().max()),
                          float((gw_k - grad_w).abs().max() / grad_w.abs().max())))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-5, errors
    torch.testing.assert_close(w_k, weight, rtol=1e-6, atol=1e-8)


def test_implicit_gradient_matches_finite_differences():
    x, edge_index, _ = model_data(num_nodes=5, num_features=12, seed=1)
    layer = GEMImplicitEM(**{**HPARAMS, "eta": 0.3, "prior": 3.0}, tol=1e-12)
    weight0 = torch.full((edge_index.size(1) // 2,), 0.8, dtype=DTYPE)

    probe_w = torch.linspace(-1, 1, edge_index.size(1), dtype=DTYPE)
    probe_z = torch.linspace(0, 1, x.numel(), dtype=DTYPE).view_as(x)

    def fn(x_part, weight0):  # two scalar readouts keep the number of backward passes small
        weight, z_hat = layer(torch.cat([x_part, x[:, 1:]], dim=1), edge_index, torch.cat([weight0, weight0]))
        return (weight * probe_w).sum(), (z_hat * probe_z).sum()

    inputs = (x[:, :1].clone().requires_grad_(), weight0.clone().requires_grad_())
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_cg_and_neumann_adjoints_agree():
    x, edge_index, _ = model_data(seed=2)
    weight0 = torch.full((edge_index.size(1) // 2,), 1.2, dtype=DTYPE)
    _, gx_cg, gw_cg = _grads(GEMImplicitEM(**HPARAMS, tol=1e-12, backward="cg"), x, edge_index, weight0)
    _, gx_ne, gw_ne = _grads(GEMImplicitEM(**HPARAMS, tol=1e-12, backward="neumann"), x, edge_index, weight0)
    torch.testing.assert_close(gx_cg, gx_ne, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(gw_cg, gw_ne, rtol=1e-7, atol=1e-9)


def test_prior_covariance_estep_uses_gmres_and_matches_unrolled():
    x, edge_index, _ = model_data(seed=3)
    weight0 = torch.full((edge_index.size(1) // 2,), 0.8, dtype=DTYPE)
    params = dict(eta=0.1, eps=0.5, estep="prior_covariance", prior=1.0)
    layer = GEMImplicitEM(**params, tol=1e-12)
    assert layer.adjoint_solver(x.size(0)) == "gmres"
    _, gx, gw = _grads(layer, x, edge_index, weight0)
    _, gx_k, gw_k = _grads(GEMUnrolledEM(num_layers=150, **params), x, edge_index, weight0)
    torch.testing.assert_close(gx, gx_k, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(gw, gw_k, rtol=1e-5, atol=1e-8)


def test_non_convergence_is_reported():
    x, edge_index, _ = model_data()
    with pytest.raises(ConvergenceError, match="fixed_point"):
        GEMImplicitEM(**HPARAMS, maxiter=3)(x, edge_index)
    with pytest.warns(Warning, match="fixed_point"):
        GEMImplicitEM(**HPARAMS, maxiter=3, strict=False)(x, edge_index)
    # two terms of the Neumann series cannot reach the adjoint tolerance: reported, not silently truncated
    layer = GEMImplicitEM(**HPARAMS, tol=1e-12, backward="neumann", backward_maxiter=2)
    weight, _ = layer(x.clone().requires_grad_(), edge_index)
    with pytest.raises(ConvergenceError, match="Neumann"):
        weight.sum().backward()


def test_no_graph_when_nothing_requires_grad():
    x, edge_index, _ = model_data()
    weight, z_hat = GEMImplicitEM(**HPARAMS)(x, edge_index)
    assert not weight.requires_grad and z_hat.shape == x.shape
    assert "backward='auto'" in repr(GEMImplicitEM())
    with pytest.raises(ValueError, match="backward"):
        GEMImplicitEM(backward="lsqr")
    with pytest.raises(ValueError, match="eta"):
        GEMImplicitEM(eta=0)


def test_fixed_point_is_a_stationary_point_of_the_penalised_marginal_likelihood():
    """With the exact posterior, theta* maximises log p(x | theta) - prior/2 |theta - theta0|^2 (dense oracle)."""
    x, edge_index, _ = model_data(num_features=60, seed=4)
    weight0 = torch.full((edge_index.size(1) // 2,), 0.8, dtype=DTYPE)
    weight, _ = GEMImplicitEM(**HPARAMS, tol=1e-12)(x, edge_index, torch.cat([weight0, weight0]))
    pairs = edge_index[:, : weight0.numel()]
    theta = inverse_softplus(weight[: weight0.numel()]).requires_grad_()
    objective = marginal_log_likelihood(x, pairs, theta, 0.1, 0.5)
    objective = objective - 0.5 * HPARAMS["prior"] * (theta - inverse_softplus(weight0)).pow(2).sum()
    (gradient,) = torch.autograd.grad(objective, theta)
    assert float(gradient.abs().max()) < 1e-9


def test_anderson_and_plain_iteration_reach_the_same_fixed_point():
    x, edge_index, _ = model_data(seed=5)
    anderson, _ = GEMImplicitEM(**HPARAMS, tol=1e-11, solver="anderson")(x, edge_index)
    plain, _ = GEMImplicitEM(**HPARAMS, tol=1e-11, solver="iterate")(x, edge_index)
    torch.testing.assert_close(anderson, plain, rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="solver"):
        GEMImplicitEM(solver="broyden")

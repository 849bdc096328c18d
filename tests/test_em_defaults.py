"""GEM defaults and settings: logdet='auto', one config source, the renamed E-step, the implicit adjoint fallback."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from pyg_em.em import (
    LOGDET_EXACT_MAX_NODES,
    GEMConfig,
    GEMImplicitEM,
    GEMUnrolledEM,
    gmres,
    pairs_to_edge_index,
    undirected_pairs,
)
from pyg_em.linalg import ConvergenceError
from tests.test_em_oracle import DTYPE, dense_estep, dense_q, random_problem


def test_logdet_auto_is_exact_up_to_the_threshold_and_hutchinson_above():
    config = GEMConfig()
    assert config.logdet == "auto" and LOGDET_EXACT_MAX_NODES == 2048
    assert not config.uses_probes(LOGDET_EXACT_MAX_NODES) and config.uses_probes(LOGDET_EXACT_MAX_NODES + 1)
    layer = GEMUnrolledEM()
    assert layer.draw_probes(torch.zeros(LOGDET_EXACT_MAX_NODES, 1), None) == (None, None)
    probes, _ = layer.draw_probes(torch.zeros(LOGDET_EXACT_MAX_NODES + 1, 1), None)
    assert probes.shape == (LOGDET_EXACT_MAX_NODES + 1, config.num_probes)
    # missing entries: the per-signal covariance term is sized N * F, so it switches on its own size
    mask = torch.ones(100, 30, dtype=torch.bool)
    logdet, covariance = layer.draw_probes(torch.zeros(100, 30), None, mask)
    assert logdet is None and covariance.shape == (3000, config.num_probes)
    assert layer.draw_probes(torch.zeros(100, 20), None, mask[:, :20]) == (None, None)
    assert GEMImplicitEM().adjoint_solver(100, 30) == "gmres" and GEMImplicitEM().adjoint_solver(100, 20) == "cg"
    assert GEMConfig(logdet="exact").uses_probes(10 ** 6) is False and GEMConfig(logdet="hutchinson").uses_probes(2)
    # small graph: 'auto' is the exact computation
    x, pairs, theta = random_problem(seed=3)
    edge_index, weight0 = pairs_to_edge_index(pairs), torch.cat([F.softplus(theta)] * 2)
    auto = GEMUnrolledEM(num_layers=2)(x, edge_index, weight0)
    exact = GEMUnrolledEM(num_layers=2, logdet="exact")(x, edge_index, weight0)
    torch.testing.assert_close(auto, exact, rtol=0, atol=0)
    probed = GEMUnrolledEM(num_layers=2, logdet="hutchinson")(x, edge_index, weight0,
                                                               generator=torch.Generator().manual_seed(0))
    assert not torch.equal(probed[0], exact[0])


def test_probe_solves_use_probe_tol_unless_solver_options_set_tol():
    assert GEMConfig().probe_solver_options == {"tol": 1e-4}
    assert GEMConfig(solver_options={"tol": 1e-9, "method": "cg"}).probe_solver_options == {"tol": 1e-9,
                                                                                              "method": "cg"}


def test_one_config_source_keyword_only():
    layer = GEMUnrolledEM(num_layers=2, config=GEMConfig(eta=0.3, eps=0.2), eps=0.5)
    assert (layer.eta, layer.eps, layer.config.eps) == (0.3, 0.5, 0.5)
    implicit = GEMImplicitEM(config=layer.config, maxiter=7)
    assert implicit.config == layer.config and implicit.maxiter == 7
    with pytest.raises(TypeError, match="unknown GEM hyper-parameter.*'etaa'"):
        GEMUnrolledEM(etaa=0.1)
    with pytest.raises(TypeError):
        GEMUnrolledEM(3, 0.1)  # positional hyper-parameters used to be forwarded by position; now refused
    with pytest.raises(TypeError):
        GEMImplicitEM(0.1)
    with pytest.raises(TypeError, match="config must be a GEMConfig"):
        GEMUnrolledEM(config={"eta": 0.1})
    with pytest.raises(ValueError, match="probe_tol"):
        GEMConfig(probe_tol=0)
    names = [f.name for f in dataclasses.fields(GEMConfig)]
    assert names[:5] == ["eta", "eps", "noise", "estep", "logdet"]


def test_seed_estep_is_a_deprecated_alias_of_prior_covariance():
    x, pairs, theta = random_problem(seed=4)
    edge_index, weight0 = pairs_to_edge_index(pairs), torch.cat([F.softplus(theta)] * 2)
    with pytest.warns(DeprecationWarning, match="prior_covariance"):
        old = GEMUnrolledEM(num_layers=2, estep="seed")
    assert old.estep == "prior_covariance"
    new = GEMUnrolledEM(num_layers=2, estep="prior_covariance")
    torch.testing.assert_close(old(x, edge_index, weight0), new(x, edge_index, weight0), rtol=0, atol=0)
    # the simplified E-step z = (L_w + eps I)^-1 x, not the posterior mean
    z_hat = new(x, edge_index, weight0)[1]
    w_prev = GEMUnrolledEM(num_layers=1, estep="prior_covariance")(x, edge_index, weight0)[0]
    torch.testing.assert_close(z_hat, dense_estep(x, pairs, w_prev[: pairs.size(1)], new.eps, None)[0])


def ring(num_nodes=40):
    row = torch.arange(num_nodes)
    pairs, _ = undirected_pairs(torch.stack([row, (row + 1) % num_nodes]), num_nodes)
    return pairs


def dense_map(theta, x, pairs, eta, eps, noise):
    """T(theta) = theta + eta * sigmoid(theta) * dQ/dw with Q dense and autograd (z_hat, Sigma from theta)."""
    z_hat, covariance = dense_estep(x, pairs, F.softplus(theta), eps, noise)
    leaf = theta if theta.requires_grad else theta.clone().requires_grad_()
    copy = leaf.clone()  # the M-step gradient holds z_hat and Sigma fixed
    grad = torch.autograd.grad(dense_q(copy, z_hat, covariance, pairs, eps), copy, create_graph=True)[0]
    return theta + eta * grad


def test_implicit_backward_falls_back_to_gmres_where_cg_breaks_down():
    """The issue's case: eta=0.1, maxiter=200, 40-node ring, random float64 signals; CG breaks down."""
    pairs = ring()
    edge_index = pairs_to_edge_index(pairs)
    x = torch.randn(40, 10, generator=torch.Generator().manual_seed(0), dtype=DTYPE)
    probe = torch.linspace(-1, 1, edge_index.size(1), dtype=DTYPE)
    with pytest.raises(ValueError, match="not positive definite"):
        xg = x.clone().requires_grad_()
        weight, _ = GEMImplicitEM(eta=0.1, maxiter=200, backward="cg")(xg, edge_index)
        (weight * probe).sum().backward()
    layer = GEMImplicitEM(eta=0.1, maxiter=200)
    xg = x.clone().requires_grad_()
    weight, _ = layer(xg, edge_index)
    assert layer.adjoint_solver(40) == "cg" and layer.last_fixed_point.converged
    assert layer.last_fixed_point.iterations > 1 and layer.last_fixed_point.residual <= layer.tol
    with pytest.warns(Warning, match="GMRES instead") as record:
        (weight * probe).sum().backward()
    assert "weights went to 0" in str(record[0].message)
    # oracle: implicit function theorem with dense Jacobians of the dense M-step map
    eta, eps, noise = layer.eta, layer.eps, layer.noise
    theta_star = torch.log(torch.expm1(weight[: pairs.size(1)].detach()))
    jac_theta = torch.autograd.functional.jacobian(lambda t: dense_map(t, x, pairs, eta, eps, noise), theta_star)
    jac_x = torch.autograd.functional.jacobian(lambda xx: dense_map(theta_star, xx, pairs, eta, eps, noise), x)
    eigenvalues = torch.linalg.eigvalsh(torch.eye(pairs.size(1), dtype=DTYPE) - 0.5 * (jac_theta + jac_theta.T))
    assert float(eigenvalues.min()) < 0  # indefinite: CG cannot apply, GMRES must
    leaf = theta_star.clone().requires_grad_()
    v = torch.autograd.grad((torch.cat([F.softplus(leaf)] * 2) * probe).sum(), leaf)[0]
    # the signals are not smooth on the ring: all but one weight go to 0, where the adjoint system is singular
    # (zero rows); its restriction to the live weights is what GMRES solves, i.e. the pseudo-inverse solution
    assert layer.last_fixed_point.vanished == pairs.size(1) - 1
    u = torch.linalg.pinv(torch.eye(pairs.size(1), dtype=DTYPE) - jac_theta.T, rtol=1e-10) @ v
    expected = torch.einsum("u,unf->nf", u, jac_x)
    torch.testing.assert_close(xg.grad, expected, rtol=1e-4, atol=1e-4)  # forward tol 1e-8 on an ill-posed point


def test_gmres_solves_a_non_symmetric_system_and_reports_non_convergence():
    gen = torch.Generator().manual_seed(0)
    matrix = torch.eye(30, dtype=DTYPE) * 3 + torch.randn(30, 30, generator=gen, dtype=DTYPE) * 0.3
    rhs = torch.randn(30, generator=gen, dtype=DTYPE)
    solution = gmres(lambda v: matrix @ v, rhs, tol=1e-12, restart=10)
    torch.testing.assert_close(solution, torch.linalg.solve(matrix, rhs), rtol=1e-9, atol=1e-10)
    with pytest.raises(ConvergenceError, match="GMRES"):
        gmres(lambda v: matrix @ v, rhs, tol=1e-12, maxiter=2)

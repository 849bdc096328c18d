"""Missing observations in GEM's E-step, checked against dense Gaussian conditioning written here.

The oracle works in covariance form (:math:`C = A_w^{-1}`, conditioning on the observed rows of each signal),
while the layers work in precision form with sparse solves, so the two share no formula.
"""

import pytest
import torch
import torch.nn.functional as F

from pyg_em.em import GEMImplicitEM, GEMUnrolledEM, gmrf_impute, pairs_to_edge_index
from pyg_em.em.objective import m_step, posterior_mean, q_gradient, rademacher_probes
from tests.test_em_oracle import DTYPE, dense_precision, random_problem

EPS, NOISE = 0.05, 0.7


def problem(seed=0, num_nodes=9, num_features=4):
    x, pairs, theta = random_problem(num_nodes=num_nodes, num_features=num_features, seed=seed)
    gen = torch.Generator().manual_seed(100 + seed)
    mask = torch.rand(x.shape, generator=gen) < 0.7
    mask[0, :] = True  # every column observed somewhere
    mask[:, 1] = True  # one complete column next to incomplete ones
    mask[3, 0] = mask[4, 0] = False  # some node missing in several columns
    mask[3, -1] = False
    return x, pairs, theta, mask


def conditional_mean(x, mask, pairs, weight, eps, noise):
    """E[z | x_O] = C[:, O] (C[O, O] + noise^2 I)^-1 x_O per column, C = (L_w + eps I)^-1."""
    covariance = torch.linalg.inv(dense_precision(pairs, weight, x.size(0), eps))
    columns = []
    for f in range(x.size(1)):
        observed = mask[:, f]
        gram = covariance[observed][:, observed] + noise ** 2 * torch.eye(int(observed.sum()), dtype=x.dtype)
        columns.append(covariance[:, observed] @ torch.linalg.solve(gram, x[observed, f]))
    return torch.stack(columns, dim=1)


def observed_log_likelihood(x, mask, pairs, theta, eps, noise):
    """log p(x_O | theta) = sum_f log N(x_{O_f}; 0, C[O_f, O_f] + noise^2 I)."""
    covariance = torch.linalg.inv(dense_precision(pairs, F.softplus(theta), x.size(0), eps))
    total = x.new_zeros(())
    for f in range(x.size(1)):
        observed = mask[:, f]
        gram = covariance[observed][:, observed] + noise ** 2 * torch.eye(int(observed.sum()), dtype=x.dtype)
        dist = torch.distributions.MultivariateNormal(torch.zeros(int(observed.sum()), dtype=x.dtype), gram)
        total = total + dist.log_prob(x[observed, f])
    return total


def test_masked_posterior_mean_is_the_gaussian_conditional_mean():
    x, pairs, theta, mask = problem()
    expected = conditional_mean(x, mask, pairs, F.softplus(theta), EPS, NOISE)
    z_hat = posterior_mean(torch.where(mask, x, 0.0), pairs, F.softplus(theta), EPS, NOISE, mask=mask)
    torch.testing.assert_close(z_hat, expected, rtol=1e-8, atol=1e-10)
    # the unobserved values play no part
    z_other = posterior_mean(torch.where(mask, x, 5.0) * mask, pairs, F.softplus(theta), EPS, NOISE, mask=mask)
    torch.testing.assert_close(z_other, z_hat)


@pytest.mark.parametrize("seed", [0, 1])
def test_masked_m_step_direction_is_the_observed_data_likelihood_gradient(seed):
    """Fisher's identity with completed statistics: dQ/dtheta at the E-step's own theta = d log p(x_O)/dtheta."""
    x, pairs, theta, mask = problem(seed)
    z_hat = posterior_mean(torch.where(mask, x, 0.0), pairs, F.softplus(theta), EPS, NOISE, mask=mask)
    ours = (m_step(theta, z_hat, pairs, 1.0, EPS, NOISE, mask=mask) - theta)
    leaf = theta.clone().requires_grad_()
    expected = torch.autograd.grad(observed_log_likelihood(x, mask, pairs, leaf, EPS, NOISE), leaf)[0]
    torch.testing.assert_close(ours, expected, rtol=1e-7, atol=1e-9)
    # dropping the per-signal covariance term (or using the complete-data one) changes the answer
    complete = m_step(theta, z_hat, pairs, 1.0, EPS, NOISE) - theta
    assert float((complete - expected).abs().max()) > 1e-2


def test_masked_hutchinson_gradient_is_unbiased():
    x, pairs, theta, mask = problem(2, num_nodes=7, num_features=3)
    weight = F.softplus(theta)
    z_hat = posterior_mean(torch.where(mask, x, 0.0), pairs, weight, EPS, NOISE, mask=mask)
    exact = q_gradient(z_hat, pairs, weight, EPS, NOISE, mask=mask)
    gen = torch.Generator().manual_seed(0)
    logdet, covariance = (rademacher_probes(rows, 20000, x, gen) for rows in (x.size(0), x.numel()))
    estimate = q_gradient(z_hat, pairs, weight, EPS, NOISE, logdet, mask=mask, covariance_probes=covariance)
    assert float((estimate - exact).abs().max() / exact.abs().max()) < 0.05
    # the E-step's shared solve against the covariance probes gives the same estimate
    _, solved = posterior_mean(torch.where(mask, x, 0.0), pairs, weight, EPS, NOISE, mask=mask, probes=covariance)
    shared = q_gradient(z_hat, pairs, weight, EPS, NOISE, logdet, mask=mask, covariance_probes=covariance,
                        covariance_solution=solved)
    torch.testing.assert_close(shared, estimate)
    plain_probes = rademacher_probes(x.size(0), 50, x, gen)
    z_plain, solved = posterior_mean(x, pairs, weight, EPS, NOISE, probes=plain_probes)
    torch.testing.assert_close(q_gradient(z_plain, pairs, weight, EPS, NOISE, plain_probes, covariance_solution=solved),
                               q_gradient(z_plain, pairs, weight, EPS, NOISE, plain_probes))


def test_layer_imputes_nan_and_mask_alike_and_matches_the_dense_conditional_mean():
    x, pairs, theta, mask = problem(3)
    edge_index = pairs_to_edge_index(pairs)
    weight0 = torch.cat([F.softplus(theta)] * 2)
    layer = GEMUnrolledEM(num_layers=3, eta=0.05, eps=EPS, noise=NOISE)
    w_mask, z_mask = layer(x, edge_index, weight0, mask=mask)
    w_nan, z_nan = layer(torch.where(mask, x, float("nan")), edge_index, weight0)
    torch.testing.assert_close(w_mask, w_nan)
    torch.testing.assert_close(z_mask, z_nan)
    assert bool(torch.isfinite(z_nan).all())
    # the last E-step ran on the weights of layer K-1: recompute them with one layer fewer
    w_prev, _ = GEMUnrolledEM(num_layers=2, eta=0.05, eps=EPS, noise=NOISE)(x, edge_index, weight0, mask=mask)
    expected = conditional_mean(x, mask, pairs, w_prev[: pairs.size(1)], EPS, NOISE)
    torch.testing.assert_close(z_mask, expected, rtol=1e-7, atol=1e-9)
    # a full mask is the unmasked layer
    w_full, z_full = layer(x, edge_index, weight0, mask=torch.ones_like(mask))
    w_plain, z_plain = layer(x, edge_index, weight0)
    torch.testing.assert_close(w_full, w_plain)
    torch.testing.assert_close(z_full, z_plain)


def test_gradcheck_through_masked_layer():
    x, pairs, theta, mask = problem(4, num_nodes=5, num_features=2)
    edge_index = pairs_to_edge_index(pairs)
    layer = GEMUnrolledEM(num_layers=2, eta=0.1, eps=EPS, noise=NOISE)

    def fn(x, weight):
        w, z_hat = layer(x, edge_index, torch.cat([weight, weight]), mask=mask)
        return w, z_hat

    x = x.clone().requires_grad_()
    weight = F.softplus(theta).detach().requires_grad_()
    assert torch.autograd.gradcheck(fn, (x, weight))


def test_implicit_layer_with_missing_entries_reaches_a_stationary_point_of_the_observed_likelihood():
    x, pairs, _, mask = problem(5, num_features=30)
    edge_index = pairs_to_edge_index(pairs)
    layer = GEMImplicitEM(eta=0.02, eps=EPS, noise=NOISE, prior=0.5, tol=1e-11)
    weight0 = torch.full((pairs.size(1),), 0.8, dtype=DTYPE)
    weight, z_hat = layer(x, edge_index, torch.cat([weight0, weight0]), mask=mask)
    assert layer.last_fixed_point.converged
    theta = torch.log(torch.expm1(weight[: pairs.size(1)])).requires_grad_()
    penalised = observed_log_likelihood(x, mask, pairs, theta, EPS, NOISE)
    penalised = penalised - 0.25 * (theta - torch.log(torch.expm1(weight0))).pow(2).sum()
    grad = torch.autograd.grad(penalised, theta)[0]
    assert float(grad.abs().max()) < 1e-6
    torch.testing.assert_close(z_hat, conditional_mean(x, mask, pairs, weight[: pairs.size(1)], EPS, NOISE))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"mask": torch.ones(9, 3, dtype=torch.bool)}, "mask must have the shape"),
     ({"mask": torch.ones(9, 4)}, "mask must be a boolean"),
     ({"mask": torch.zeros(9, 4, dtype=torch.bool)}, "at least one observed entry")],
)
def test_bad_masks(kwargs, match):
    x, pairs, _, _ = problem()
    with pytest.raises((ValueError, TypeError), match=match):
        GEMUnrolledEM(num_layers=1)(x, pairs_to_edge_index(pairs), **kwargs)


def test_missing_entries_need_the_posterior_estep():
    x, pairs, _, mask = problem()
    with pytest.raises(ValueError, match="estep='posterior'"):
        GEMUnrolledEM(num_layers=1, estep="prior_covariance")(x, pairs_to_edge_index(pairs), mask=mask)


def test_gmrf_impute_on_a_given_graph_is_the_conditional_mean():
    x, pairs, theta, mask = problem(6)
    weight = F.softplus(theta)
    edge_index = pairs_to_edge_index(pairs)
    out = gmrf_impute(torch.where(mask, x, float("nan")), edge_index, torch.cat([weight, weight]), eps=EPS,
                      noise=NOISE)
    torch.testing.assert_close(out, conditional_mean(x, mask, pairs, weight, EPS, NOISE), rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="strictly positive"):
        gmrf_impute(x, edge_index, torch.zeros(edge_index.size(1), dtype=DTYPE), mask=mask)


@pytest.mark.parametrize("num_blocks, num_pairs", [(1, 3), (2, 3), (5, 3), (3, 40)])  # gathers, gathers, dense, dense
def test_hutchinson_resistance_both_layouts_match_the_per_probe_sum(num_blocks, num_pairs):
    # the dense (N, F k) product (few nodes, many columns) and the pair gathers (large graphs) against the
    # definition sum_f mean_p (u_fip - u_fjp)(v_fip - v_fjp), written as loops
    from pyg_em.em.objective import hutchinson_resistance

    num_nodes, num_probes = 7, 4
    gen = torch.Generator().manual_seed(num_blocks * 10 + num_pairs)
    pairs = torch.stack([torch.randint(0, 3, (num_pairs,), generator=gen), torch.randint(3, 7, (num_pairs,),
                                                                                       generator=gen)])
    U = torch.randn(num_blocks * num_nodes, num_probes, dtype=DTYPE, generator=gen)
    V = torch.randn(num_blocks * num_nodes, num_probes, dtype=DTYPE, generator=gen)
    expected = torch.zeros(num_pairs, dtype=DTYPE)
    for e in range(num_pairs):
        i, j = int(pairs[0, e]), int(pairs[1, e])
        for f in range(num_blocks):
            a, b = f * num_nodes + i, f * num_nodes + j
            expected[e] += ((U[a] - U[b]) * (V[a] - V[b])).mean()
    torch.testing.assert_close(hutchinson_resistance(U, V, pairs, num_blocks), expected)


def test_posterior_mean_from_an_initial_guess_is_the_same_solution():
    # a warm start (the fixed point's previous E-step) changes where CG starts, not what it converges to
    x, pairs, theta, mask = problem(seed=5, num_nodes=30, num_features=3)
    options = {"method": "cg", "tol": 1e-12}
    weight = F.softplus(theta)
    probes = rademacher_probes(90, 3, x, torch.Generator().manual_seed(1))
    cold = posterior_mean(torch.where(mask, x, 0.0), pairs, weight, EPS, NOISE, options, mask, probes)
    previous = posterior_mean(torch.where(mask, x, 0.0), pairs, 1.3 * weight, EPS, NOISE, options, mask, probes)
    warm = posterior_mean(torch.where(mask, x, 0.0), pairs, weight, EPS, NOISE, options, mask, probes,
                          initial=previous)
    torch.testing.assert_close(warm[0], cold[0])
    torch.testing.assert_close(warm[1], cold[1])
    torch.testing.assert_close(cold[0], conditional_mean(x, mask, pairs, weight, EPS, NOISE))

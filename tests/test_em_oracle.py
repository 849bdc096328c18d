"""Dense reference implementation of GEM (N <= 50) and checks of the sparse closed forms against it.

The oracle shares no code with ``pyg_em.em``: it builds the N x N precision explicitly, takes log-determinants
with ``torch.logdet`` and gets the M-step direction by ``torch.autograd.grad`` of the dense ``Q`` (the seed's
design, with the real objective), so agreement checks the closed-form gradients and the sparse bookkeeping.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from pyg_em.em.candidates import undirected_pairs
from pyg_em.em.objective import m_step, pair_resistance, posterior_mean, q_gradient, q_value, rademacher_probes

DTYPE = torch.float64


def dense_precision(pairs, weight, num_nodes, shift):
    adjacency = weight.new_zeros(num_nodes, num_nodes)
    adjacency = adjacency.index_put((pairs[0], pairs[1]), weight).index_put((pairs[1], pairs[0]), weight)
    return torch.diag(adjacency.sum(1)) - adjacency + shift * torch.eye(num_nodes, dtype=weight.dtype)


def dense_estep(x, pairs, weight, eps, noise):
    precision = dense_precision(pairs, weight, x.size(0), eps)
    if noise is None:
        return torch.linalg.solve(precision, x), None
    covariance = torch.linalg.inv(precision + noise ** -2 * torch.eye(x.size(0), dtype=x.dtype))
    return covariance @ x * noise ** -2, covariance


def dense_q(theta, z_hat, covariance, pairs, eps):
    precision = dense_precision(pairs, F.softplus(theta), z_hat.size(0), eps)
    num_features = z_hat.size(1)
    value = 0.5 * num_features * torch.logdet(precision) - 0.5 * torch.trace(z_hat.T @ precision @ z_hat)
    if covariance is not None:
        value = value - 0.5 * num_features * torch.trace(precision @ covariance)
    return value


def dense_em(x, pairs, theta0, num_layers, eta, eps, noise, use_detach=False, prior=0.0):
    """The seed's unrolled loop, dense, with the real Q and autograd for the M-step direction."""
    theta = theta0
    for _ in range(num_layers):
        z_hat, covariance = dense_estep(x, pairs, F.softplus(theta), eps, noise)
        if use_detach:
            leaf = theta.detach().requires_grad_()
            objective = dense_q(leaf, z_hat.detach(), None if covariance is None else covariance.detach(), pairs, eps)
            objective = objective - 0.5 * prior * (leaf - theta0.detach()).pow(2).sum()
            theta = theta + eta * torch.autograd.grad(objective, leaf)[0]
        else:
            leaf = theta.clone()  # z_hat depends on theta, not on this copy: the gradient holds z_hat fixed
            objective = dense_q(leaf, z_hat, covariance, pairs, eps) - 0.5 * prior * (leaf - theta0).pow(2).sum()
            theta = theta + eta * torch.autograd.grad(objective, leaf, create_graph=True)[0]
    return theta, z_hat


def marginal_log_likelihood(x, pairs, theta, eps, noise):
    """log p(x | theta), x columns ~ N(0, (L_w + eps I)^-1 + noise^2 I)."""
    precision = dense_precision(pairs, F.softplus(theta), x.size(0), eps)
    covariance = torch.linalg.inv(precision) + noise ** 2 * torch.eye(x.size(0), dtype=x.dtype)
    dist = torch.distributions.MultivariateNormal(torch.zeros(x.size(0), dtype=x.dtype), covariance)
    return dist.log_prob(x.T).sum()


def random_problem(num_nodes=9, num_features=3, seed=0, disconnected=False):
    gen = torch.Generator().manual_seed(seed)
    rows, cols = torch.triu_indices(num_nodes, num_nodes, 1)
    keep = torch.rand(rows.numel(), generator=gen) < 0.45
    if disconnected:  # no edge between the first half and the rest
        keep &= (rows < num_nodes // 2) == (cols < num_nodes // 2)
    pairs = torch.stack([rows[keep], cols[keep]])
    x = torch.randn(num_nodes, num_features, generator=gen, dtype=DTYPE)
    theta = torch.randn(pairs.size(1), generator=gen, dtype=DTYPE) * 0.5
    return x, pairs, theta


@pytest.mark.parametrize("disconnected", [False, True])
@pytest.mark.parametrize("shift", [1e-3, 0.7])
def test_exact_resistance_matches_dense_inverse(disconnected, shift):
    _, pairs, theta = random_problem(disconnected=disconnected)
    weight = F.softplus(theta)
    inverse = torch.linalg.inv(dense_precision(pairs, weight, 9, shift))
    expected = inverse[pairs[0], pairs[0]] + inverse[pairs[1], pairs[1]] - 2 * inverse[pairs[0], pairs[1]]
    for block_size in (2, 4, 1024):  # blocks that split pairs across column blocks, and a single block
        actual = pair_resistance(pairs, weight, 9, shift, block_size=block_size)
        torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("noise", [None, 0.8])
def test_posterior_mean_matches_dense(noise):
    x, pairs, theta = random_problem(disconnected=True)
    expected, _ = dense_estep(x, pairs, F.softplus(theta), 1e-2, noise)
    torch.testing.assert_close(posterior_mean(x, pairs, F.softplus(theta), 1e-2, noise), expected)


@pytest.mark.parametrize("noise", [None, 0.8])
@pytest.mark.parametrize("disconnected", [False, True])
def test_closed_form_gradient_matches_autograd_of_dense_q(noise, disconnected):
    x, pairs, theta = random_problem(disconnected=disconnected)
    z_hat, covariance = dense_estep(x, pairs, F.softplus(theta), 1e-2, noise)
    leaf = theta.clone().requires_grad_()
    expected = torch.autograd.grad(dense_q(leaf, z_hat, covariance, pairs, 1e-2), leaf)[0]
    actual = q_gradient(z_hat, pairs, F.softplus(theta), 1e-2, noise) * torch.sigmoid(theta)
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(q_value(z_hat, pairs, F.softplus(theta), 1e-2, noise),
                               dense_q(theta, z_hat, covariance, pairs, 1e-2))


def test_m_step_direction_is_the_marginal_likelihood_gradient():
    """Fisher's identity: with the exact posterior, grad_theta Q at theta_old is grad log p(x | theta)."""
    x, pairs, theta = random_problem(num_features=4, seed=3)
    leaf = theta.clone().requires_grad_()
    expected = torch.autograd.grad(marginal_log_likelihood(x, pairs, leaf, 0.05, 0.7), leaf)[0]
    z_hat = posterior_mean(x, pairs, F.softplus(theta), 0.05, 0.7)
    direction = (m_step(theta, z_hat, pairs, 1.0, 0.05, 0.7) - theta)
    torch.testing.assert_close(direction, expected, rtol=1e-9, atol=1e-10)


def test_hutchinson_resistance_is_unbiased():
    _, pairs, theta = random_problem(num_nodes=12, seed=5)
    weight = F.softplus(theta)
    exact = pair_resistance(pairs, weight, 12, 0.05)
    gen = torch.Generator().manual_seed(0)
    estimates = torch.stack([pair_resistance(pairs, weight, 12, 0.05, rademacher_probes(12, 64, weight, gen))
                             for _ in range(200)])
    mean, stderr = estimates.mean(0), estimates.std(0) / math.sqrt(estimates.size(0))
    assert bool(((mean - exact).abs() < 5 * stderr + 1e-12).all()), (mean - exact).abs() / stderr
    # more probes, smaller spread: the estimator concentrates on the exact value
    one_run = pair_resistance(pairs, weight, 12, 0.05, rademacher_probes(12, 4096, weight, gen))
    torch.testing.assert_close(one_run, exact, rtol=0.15, atol=0.0)


def test_undirected_pairs_deduplicates_and_rejects_self_loops():
    edge_index = torch.tensor([[0, 1, 1, 2, 0], [1, 0, 2, 1, 1]])
    pairs, edge_to_pair = undirected_pairs(edge_index, 3)
    assert pairs.tolist() == [[0, 1], [1, 2]]
    assert edge_to_pair.tolist() == [0, 0, 1, 1, 0]
    with pytest.raises(ValueError, match="self loops"):
        undirected_pairs(torch.tensor([[0, 1], [0, 2]]), 3)

"""GEMUnrolledEM against the dense reference, EM monotonicity, probes, bad input, PyG interplay."""

import doctest

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv

import pyg_em.em.unrolled as unrolled_module
from pyg_em.em import GEMUnrolledEM, complete_graph, pairs_to_edge_index
from pyg_em.em.objective import inverse_softplus, q_value
from tests.test_em_oracle import DTYPE, dense_em, dense_estep, marginal_log_likelihood, random_problem


def _loss(weight, z_hat, target):
    return ((z_hat - target) ** 2).sum() + (weight.sin() * torch.linspace(0, 1, weight.numel(), dtype=DTYPE)).sum()


@pytest.mark.parametrize("estep", ["posterior", "prior_covariance"])
@pytest.mark.parametrize("use_detach", [False, True])
@pytest.mark.parametrize("disconnected", [False, True])
def test_matches_dense_reference_outputs_and_gradients(estep, use_detach, disconnected):
    x, pairs, theta0 = random_problem(num_nodes=10, seed=1, disconnected=disconnected)
    target = torch.randn_like(x)
    edge_index = pairs_to_edge_index(pairs)
    weight0 = F.softplus(theta0)
    layer = GEMUnrolledEM(num_layers=3, eta=0.2, use_detach=use_detach, eps=0.01, noise=0.8, estep=estep, prior=0.3)

    x_ours, w_ours = x.clone().requires_grad_(), torch.cat([weight0, weight0]).requires_grad_()
    weight, z_hat = layer(x_ours, edge_index, w_ours)
    _loss(weight[: pairs.size(1)], z_hat, target).backward()

    x_ref, w_ref = x.clone().requires_grad_(), weight0.clone().requires_grad_()
    theta, z_ref = dense_em(x_ref, pairs, inverse_softplus(w_ref), 3, 0.2, 0.01, 0.8 if estep == "posterior" else None,
                            use_detach=use_detach, prior=0.3)
    _loss(F.softplus(theta), z_ref, target).backward()

    torch.testing.assert_close(weight, torch.cat([F.softplus(theta)] * 2), rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(z_hat, z_ref, rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-8, atol=1e-9)
    # both directions of an edge share one parameter, so the reference gradient splits between the two columns
    torch.testing.assert_close(w_ours.grad[: pairs.size(1)] + w_ours.grad[pairs.size(1):], w_ref.grad,
                               rtol=1e-8, atol=1e-9)


def test_gradcheck_through_two_layers():
    x, pairs, theta0 = random_problem(num_nodes=6, num_features=2, seed=2)
    edge_index = pairs_to_edge_index(pairs)
    layer = GEMUnrolledEM(num_layers=2, eta=0.3, eps=0.05)

    def fn(x, weight):
        w, z = layer(x, edge_index, torch.cat([weight, weight]))
        return w, z

    inputs = (x.clone().requires_grad_(), F.softplus(theta0).requires_grad_())
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("estep", ["posterior", "prior_covariance"])
def test_m_steps_increase_q_and_likelihood(estep):
    x, pairs, theta = random_problem(num_nodes=10, num_features=6, seed=4)
    noise = 0.8 if estep == "posterior" else None
    layer = GEMUnrolledEM(num_layers=1, eta=0.05, eps=0.05, noise=0.8, estep=estep)
    likelihoods = []
    for _ in range(6):
        z_hat, _ = dense_estep(x, pairs, F.softplus(theta), 0.05, noise)
        before = q_value(z_hat, pairs, F.softplus(theta), 0.05, noise)
        with torch.no_grad():
            theta_next = layer.m_step(theta, z_hat, pairs, None, theta)
        after = q_value(z_hat, pairs, F.softplus(theta_next), 0.05, noise, posterior_weight=F.softplus(theta))
        assert after > before
        likelihoods.append(float(marginal_log_likelihood(x, pairs, theta_next, 0.05, 0.8)))
        theta = theta_next
    if estep == "posterior":  # a generalised EM step with the exact posterior never lowers log p(x | theta)
        assert all(b > a for a, b in zip(likelihoods, likelihoods[1:]))


def test_hutchinson_mode_runs_and_is_differentiable():
    x, pairs, theta0 = random_problem(num_nodes=12, seed=6)
    edge_index = pairs_to_edge_index(pairs)
    x = x.requires_grad_()
    layer = GEMUnrolledEM(num_layers=2, eps=0.05, logdet="hutchinson", num_probes=8)
    weight, z_hat = layer(x, edge_index, generator=torch.Generator().manual_seed(0))
    weight2, _ = layer(x, edge_index, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(weight, weight2)  # the generator makes the probes reproducible
    (weight.sum() + z_hat.sum()).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_learned_weights_feed_a_pyg_conv_and_duplicates_share_a_weight():
    torch.manual_seed(0)
    x = torch.randn(5, 3)
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 0], [1, 0, 2, 1, 3, 2, 4, 3, 1]])  # last column repeats 0->1
    weight, z_hat = GEMUnrolledEM(num_layers=2)(x, edge_index)
    assert weight.shape == (9,) and z_hat.shape == (5, 3) and bool((weight > 0).all())
    assert weight[0] == weight[1] == weight[8]
    out = GCNConv(3, 4)(x, edge_index, edge_weight=weight)
    assert out.shape == (5, 4)


def test_seed_usage_doc_example():
    finder = doctest.DocTestFinder()
    (test,) = [t for t in finder.find(unrolled_module.GEMUnrolledEM) if t.examples]
    result = doctest.DocTestRunner().run(test)
    assert result.failed == 0 and result.attempted > 0


def test_complete_graph_matches_seed_design():
    edge_index = complete_graph(6)
    assert edge_index.shape == (2, 30)
    assert not bool((edge_index[0] == edge_index[1]).any())
    dense = torch.zeros(6, 6)
    dense[edge_index[0], edge_index[1]] = 1
    torch.testing.assert_close(dense, torch.ones(6, 6) - torch.eye(6))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"eps": 0.0}, "eps must be > 0"), ({"eps": -1.0}, "eps must be > 0"), ({"eta": 0.0}, "eta"),
     ({"eta": -0.1}, "eta"), ({"estep": "map"}, "estep"), ({"logdet": "slq"}, "logdet"),
     ({"num_probes": 0}, "num_probes"), ({"num_layers": 0}, "num_layers"), ({"noise": 0.0}, "noise")],
)
def test_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GEMUnrolledEM(**kwargs)


def test_bad_inputs():
    layer = GEMUnrolledEM(num_layers=1)
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    x = torch.randn(3, 2)
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        layer(torch.tensor([[0.0], [float("inf")], [1.0]]), edge_index)
    _, z_hat = layer(torch.tensor([[0.0], [float("nan")], [1.0]]), edge_index)  # NaN = missing: imputed
    assert bool(torch.isfinite(z_hat).all())
    with pytest.raises(ValueError, match="self loops"):
        layer(x, torch.tensor([[0, 1, 1], [0, 2, 1]]))
    with pytest.raises(ValueError, match="strictly positive"):
        layer(x, edge_index, torch.tensor([1.0, 1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="edge_weight"):
        layer(x, edge_index, torch.ones(3))
    with pytest.raises(ValueError, match="empty"):
        layer(x, torch.empty(2, 0, dtype=torch.long))


def test_follows_input_device_and_dtype(device):
    x = torch.randn(6, 2, device=device, dtype=torch.float32)
    edge_index = complete_graph(6, device=device)
    weight, z_hat = GEMUnrolledEM(num_layers=2, solver_options={"method": "cg"})(x, edge_index)
    assert weight.device == x.device and z_hat.dtype == torch.float32
    assert repr(GEMUnrolledEM(num_layers=2)).startswith("GEMUnrolledEM(num_layers=2")

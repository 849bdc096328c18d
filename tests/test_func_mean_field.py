"""MeanFieldReLU: the seed's printed numbers, closed forms against autograd / explicit J, update steps, errors."""

import math

import pytest
import torch

from pyg_em.func import MeanFieldReLU, ntk_infinite_width

F64 = torch.float64

# Seed 001 setup: D = 3, m = 2.
SEED_W = [[0.5, -0.3], [0.8, 0.6], [-0.2, 0.7]]
SEED_A = [0.9, -1.1]
SEED_X3 = [[1.0, 2.0, 3.0], [0.5, 1.0, 1.5], [3.0, -2.0, 5.0]]


def seed_model(dtype=F64, device="cpu"):
    model = MeanFieldReLU(3, 2, dtype=dtype, device=device)
    with torch.no_grad():
        model.W.copy_(torch.tensor(SEED_W, dtype=F64))
        model.a.copy_(torch.tensor(SEED_A, dtype=F64))
    return model


def random_model(d=4, m=6, seed=0, device="cpu"):
    torch.manual_seed(seed)
    return MeanFieldReLU(d, m, dtype=F64, device=device)


def autograd_jacobian(model, X):
    """Oracle: one backward pass per sample, gradients of W (row-major) then a."""
    rows = []
    for s in range(X.size(0)):
        gW, ga = torch.autograd.grad(model(X[s:s + 1])[0], (model.W, model.a))
        rows.append(torch.cat([gW.reshape(-1), ga]))
    return torch.stack(rows)


# ---------------------------------------------------------------------------- the seed's printed numbers
def test_seed_jacobian_three_samples():
    # Printed by G_modified / G_modified_CUDA for the 3-row X (third sample has neuron 0 inactive).
    expected = torch.tensor([
        [0.4500, -0.5500, 0.9000, -1.1000, 1.3500, -1.6500, 0.7500, 1.5000],
        [0.2250, -0.2750, 0.4500, -0.5500, 0.6750, -0.8250, 0.3750, 0.7500],
        [0.0000, -1.6500, -0.0000, 1.1000, 0.0000, -2.7500, 0.0000, 0.7000],
    ], dtype=F64)
    model = seed_model()
    X = torch.tensor(SEED_X3, dtype=F64)
    torch.testing.assert_close(model.jacobian(X), expected, atol=1e-12, rtol=0)


def test_seed_autograd_single_sample():
    model = seed_model()
    model(torch.tensor([[1.0, 2.0, 3.0]], dtype=F64)).sum().backward()
    torch.testing.assert_close(model.W.grad, torch.tensor([[0.45, -0.55], [0.9, -1.1], [1.35, -1.65]], dtype=F64))
    torch.testing.assert_close(model.a.grad, torch.tensor([0.75, 1.5], dtype=F64))


def test_seed_outputs_and_losses_belong_to_three_row_X():
    # The seed prints model(X) = [-0.9750, -0.4875, -0.7700] and losses [3.9006, 0.2377, 3.1329] in a cell whose
    # X has 2 rows and Y = [1, 0]; three outputs only fit the earlier 3-row X, and the third loss needs y_3 = 1.
    model = seed_model()
    X = torch.tensor(SEED_X3, dtype=F64)
    Y = torch.tensor([1.0, 0.0, 1.0], dtype=F64)
    out = model(X)
    torch.testing.assert_close(out, torch.tensor([-0.975, -0.4875, -0.77], dtype=F64))
    torch.testing.assert_close((out - Y) ** 2, torch.tensor([3.9006, 0.2377, 3.1329], dtype=F64), atol=1e-4, rtol=0)


def test_seed_n_grad_printout_is_three_row_case():
    # N_grad printed grad_W [[-0.6656, 2.7605], [-1.3313, 0.3291], [-1.9969, 5.6856]], grad_a [-1.1094, -3.0448].
    # These are reproduced by the 3-row X with Y = [1, 0, 1] (the same state as the printout above), not by the
    # 2-row X / Y = [1, 0] of the surrounding cells (that case is the next test).
    model = seed_model()
    X = torch.tensor(SEED_X3, dtype=F64)
    grad_W, grad_a = model.mse_grad(X, torch.tensor([1.0, 0.0, 1.0], dtype=F64))
    expected_W = torch.tensor([[-0.6656, 2.7605], [-1.3313, 0.3291], [-1.9969, 5.6856]], dtype=F64)
    torch.testing.assert_close(grad_W, expected_W, atol=1e-4, rtol=0)
    torch.testing.assert_close(grad_a, torch.tensor([-1.1094, -3.0448], dtype=F64), atol=1e-4, rtol=0)


def test_seed_two_row_gradient_matches_autograd_and_printout():
    # Last seed cell: 2-row X, Y = [1, 0], autograd of loss.mean() and N_grad agree on these printed values.
    model = seed_model()
    X = torch.tensor(SEED_X3[:2], dtype=F64)
    Y = torch.tensor([1.0, 0.0], dtype=F64)
    grad_W, grad_a = model.mse_grad(X, Y)
    expected_W = torch.tensor([[-0.9984, 1.2203], [-1.9969, 2.4406], [-2.9953, 3.6609]], dtype=F64)
    torch.testing.assert_close(grad_W, expected_W, atol=1e-4, rtol=0)
    torch.testing.assert_close(grad_a, torch.tensor([-1.6641, -3.3281], dtype=F64), atol=1e-4, rtol=0)
    model.mse_loss(X, Y).backward()
    torch.testing.assert_close(model.W.grad, grad_W, atol=1e-12, rtol=0)
    torch.testing.assert_close(model.a.grad, grad_a, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------- closed forms vs oracles
def test_jacobian_matches_autograd(device):
    model = random_model(device=device)
    X = torch.randn(9, 4, dtype=F64, device=device)
    torch.testing.assert_close(model.jacobian(X), autograd_jacobian(model, X), atol=1e-12, rtol=0)


@pytest.mark.parametrize("block_size", [None, 1, 3, 4, 100])
def test_symmetric_ntk_matches_explicit_gram(block_size):
    model = random_model(d=5, m=7, seed=1)
    X = torch.randn(10, 5, dtype=F64)
    J = autograd_jacobian(model, X)
    K = model.ntk(X, block_size=block_size)
    assert (K - J @ J.T).abs().max() <= 1e-10
    assert torch.equal(K, K.T)


@pytest.mark.parametrize("block_size", [None, 3, 4])
def test_symmetric_ntk_in_place_path_without_autograd(block_size):
    # Under no_grad the blockwise kernel writes its products into K and reused buffers (out=).
    model = random_model(d=5, m=7, seed=1)
    X = torch.randn(10, 5, dtype=F64)
    J = autograd_jacobian(model, X)
    with torch.no_grad():
        K = model.ntk(X, block_size=block_size)
    assert not K.requires_grad
    assert (K - J @ J.T).abs().max() <= 1e-10
    assert torch.equal(K, K.T)


def test_ntk_is_differentiable_in_inputs():
    model = random_model(d=3, m=5, seed=11)
    X1 = torch.randn(4, 3, dtype=F64, requires_grad=True)
    X2 = torch.randn(3, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: model.ntk(a, b), (X1, X2))
    assert torch.autograd.gradcheck(lambda a: model.ntk(a, block_size=2), (X1,))


def test_cross_ntk_matches_explicit_gram(device):
    model = random_model(device=device, seed=2)
    X1, X2 = torch.randn(6, 4, dtype=F64, device=device), torch.randn(3, 4, dtype=F64, device=device)
    K = model.ntk(X1, X2)
    assert K.shape == (6, 3)
    expected = autograd_jacobian(model, X1) @ autograd_jacobian(model, X2).T
    assert (K - expected).abs().max() <= 1e-10


def test_ntk_handles_zero_input_and_inactive_neurons():
    model = random_model(seed=3)
    X = torch.randn(5, 4, dtype=F64)
    X[2] = 0.0  # every neuron inactive: an all-zero Jacobian row
    J = model.jacobian(X)
    assert torch.all(J[2] == 0)
    assert (model.ntk(X, block_size=2) - J @ J.T).abs().max() <= 1e-12


def test_products_with_jacobian_match_explicit():
    model = random_model(seed=4)
    X = torch.randn(8, 4, dtype=F64)
    J = model.jacobian(X)
    v = torch.randn(8, dtype=F64)
    dW, da = model.vector_jacobian_product(X, v)
    torch.testing.assert_close(torch.cat([dW.reshape(-1), da]), J.T @ v, atol=1e-12, rtol=0)
    tW, ta = torch.randn(4, 6, dtype=F64), torch.randn(6, dtype=F64)
    torch.testing.assert_close(model.jacobian_vector_product(X, tW, ta), J @ torch.cat([tW.reshape(-1), ta]),
                               atol=1e-12, rtol=0)


def test_mse_grad_matches_autograd(device):
    model = random_model(seed=5, device=device)
    X, Y = torch.randn(11, 4, dtype=F64, device=device), torch.randn(11, 1, dtype=F64, device=device)
    grad_W, grad_a = model.mse_grad(X, Y)
    model.mse_loss(X, Y).backward()
    assert (grad_W - model.W.grad).abs().max() <= 1e-10
    assert (grad_a - model.a.grad).abs().max() <= 1e-10


def test_euler_step_equals_sgd_with_lr_dt_times_width():
    model = random_model(m=9, seed=6)
    twin = random_model(m=9, seed=6)
    X, Y = torch.randn(7, 4, dtype=F64), torch.randn(7, dtype=F64)
    dt = 0.05
    dW, da = model.euler_step(X, Y, dt)
    optimizer = torch.optim.SGD(twin.parameters(), lr=dt * 9)
    twin.mse_loss(X, Y).backward()
    optimizer.step()
    torch.testing.assert_close(model.W, twin.W, atol=1e-12, rtol=0)
    torch.testing.assert_close(model.a, twin.a, atol=1e-12, rtol=0)
    assert dW.shape == (4, 9) and da.shape == (9,)


def test_gauss_newton_dual_step_equals_primal_step():
    model = random_model(d=3, m=4, seed=7)  # P = 16 parameters > n = 6 samples
    X, Y = torch.randn(6, 3, dtype=F64), torch.randn(6, dtype=F64)
    damping = 1e-3
    with torch.no_grad():
        J, r = model.jacobian(X), model(X) - Y
        primal = -torch.linalg.solve(J.T @ J + damping * torch.eye(J.size(1), dtype=F64), J.T @ r)
        W0, a0 = model.W.clone(), model.a.clone()
    dW, da = model.gauss_newton_step(X, Y, damping)
    assert (torch.cat([dW.reshape(-1), da]) - primal).abs().max() <= 1e-10
    torch.testing.assert_close(model.W, W0 + dW, atol=0, rtol=0)
    torch.testing.assert_close(model.a, a0 + da, atol=0, rtol=0)


def test_gauss_newton_step_solves_linearised_problem_and_descends():
    torch.manual_seed(8)
    model = MeanFieldReLU(3, 64, dtype=F64)
    X, Y = torch.randn(16, 3, dtype=F64), torch.randn(16, dtype=F64)
    with torch.no_grad():
        J, r = model.jacobian(X), model(X) - Y
        scale = model.ntk(X).diagonal().sum().item()
    # Small damping: the linearised model interpolates, r + J dtheta ~ 0.
    twin = random_model(d=3, m=64, seed=8)
    dW, da = twin.gauss_newton_step(X, Y, 1e-9 * scale)
    assert (r + J @ torch.cat([dW.reshape(-1), da])).norm() < 1e-5 * r.norm()
    # Large damping: a short step along -J^T r, which must decrease the loss.
    before = model.mse_loss(X, Y).item()
    model.gauss_newton_step(X, Y, 10 * scale)
    assert model.mse_loss(X, Y).item() < before


def test_reset_parameters_statistics_and_repr():
    torch.manual_seed(9)
    model = MeanFieldReLU(16, 4096, dtype=F64)
    assert abs(model.W.std().item() - 1 / math.sqrt(16)) < 0.01
    assert abs(model.a.std().item() - 1.0) < 0.03
    assert repr(model) == "MeanFieldReLU(in_features=16, width=4096)"


# ---------------------------------------------------------------------------- infinite-width kernel
def test_infinite_width_kernel_analytic_values():
    x = torch.tensor([[3.0, 4.0], [0.0, 2.0], [-3.0, -4.0], [0.0, 0.0]], dtype=F64)
    K = ntk_infinite_width(x, weight_var=0.5, readout_var=2.0)
    # Same input: angle 0 -> (sigma_a^2 + sigma_w^2) ||x||^2 / 2.
    torch.testing.assert_close(K.diagonal()[:3], torch.tensor([25.0, 4.0, 25.0], dtype=F64) * 2.5 / 2)
    # Opposite inputs: the two half-spaces never overlap.
    assert abs(K[0, 2].item()) < 1e-12
    # Zero input: zero row, no NaN.
    assert torch.all(K[3] == 0) and torch.all(K[:, 3] == 0)
    # Orthogonal inputs: only the degree-1 term sigma_w^2 ||x|| ||x'|| / (2 pi).
    orth = ntk_infinite_width(torch.tensor([[1.0, 0.0]], dtype=F64), torch.tensor([[0.0, 3.0]], dtype=F64))
    torch.testing.assert_close(orth, torch.tensor([[0.5 * 3 / (2 * math.pi)]], dtype=F64))


def test_empirical_ntk_converges_to_infinite_width_kernel():
    X = torch.randn(6, 5, dtype=F64, generator=torch.Generator().manual_seed(0))
    limit = ntk_infinite_width(X)
    errors = []
    for width in (16, 256, 4096, 65536):
        err = []
        for seed in range(4):
            torch.manual_seed(seed)
            model = MeanFieldReLU(5, width, dtype=F64)
            with torch.no_grad():
                err.append(((width * model.ntk(X) - limit).norm() / limit.norm()).item())
        errors.append(sum(err) / len(err))
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.02, errors  # ~ m^{-1/2}: a 4096x wider network gives ~64x smaller error


# ---------------------------------------------------------------------------- bad inputs
def test_bad_inputs_raise_clear_errors():
    model = random_model()
    with pytest.raises(ValueError, match="width"):
        MeanFieldReLU(3, 0)
    with pytest.raises(ValueError, match=r"X must have shape \(n, 4\)"):
        model(torch.randn(3, 5, dtype=F64))
    with pytest.raises(ValueError, match="X"):
        model.jacobian(torch.randn(4, dtype=F64))
    with pytest.raises(TypeError, match="dtype"):
        model.ntk(torch.randn(3, 4))
    with pytest.raises(ValueError, match="X2"):
        model.ntk(torch.randn(3, 4, dtype=F64), torch.randn(3, 2, dtype=F64))
    with pytest.raises(ValueError, match="Y must have shape"):
        model.mse_grad(torch.randn(3, 4, dtype=F64), torch.randn(4, dtype=F64))
    with pytest.raises(ValueError, match="damping"):
        model.gauss_newton_step(torch.randn(3, 4, dtype=F64), torch.randn(3, dtype=F64), 0.0)
    with pytest.raises(ValueError, match="dt"):
        model.euler_step(torch.randn(3, 4, dtype=F64), torch.randn(3, dtype=F64), -1.0)
    with pytest.raises(ValueError, match="block_size"):
        model.ntk(torch.randn(3, 4, dtype=F64), block_size=0)
    with pytest.raises(ValueError, match="NaN"):
        model.jacobian(torch.full((2, 4), float("nan"), dtype=F64))
    with pytest.raises(ValueError, match="dW"):
        model.jacobian_vector_product(torch.randn(3, 4, dtype=F64), torch.randn(6, 4, dtype=F64),
                                      torch.randn(6, dtype=F64))

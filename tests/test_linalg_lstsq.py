"""Batched LSMR, sparse_lstsq (Golub--Pereyra gradients) and incidence_matrix against scipy / dense oracles."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import lsmr as scipy_lsmr
from torch.autograd import gradcheck

from pyg_em.linalg import ConvergenceError, batched_lsmr, incidence_matrix, sparse_lstsq

D = torch.float64


def tall_sparse(m=12, n=5, density=0.3, seed=0):
    """A random sparse tall matrix with full column rank (a scaled identity block keeps it well posed)."""
    g = torch.Generator().manual_seed(seed)
    dense = torch.randn(m, n, generator=g, dtype=D) * (torch.rand(m, n, generator=g) < density)
    dense[:n] += 2.0 * torch.eye(n, dtype=D)
    return dense.to_sparse().coalesce()


def test_batched_lsmr_matches_scipy_and_dense(device):
    A = tall_sparse(40, 12, seed=1)
    B = torch.randn(40, 4, dtype=D)
    Ad = A.to_dense()
    X, _ = batched_lsmr(lambda V: Ad.to(device) @ V, lambda U: Ad.T.to(device) @ U, B.to(device), 12, atol=1e-12)
    ref = torch.linalg.lstsq(Ad, B).solution
    torch.testing.assert_close(X.cpu(), ref, rtol=1e-9, atol=1e-9)
    S = sp.csr_matrix(Ad.numpy())
    for j in range(4):
        xs = scipy_lsmr(S, B[:, j].numpy(), atol=1e-12, btol=1e-12)[0]
        np.testing.assert_allclose(X[:, j].cpu().numpy(), xs, rtol=1e-8, atol=1e-9)


def test_batched_lsmr_minimum_norm_for_wide_system():
    A = tall_sparse(15, 6, seed=2).to_dense().T  # wide 6 x 15, consistent for any rhs
    g = torch.randn(6, 2, dtype=D)
    X, _ = batched_lsmr(lambda V: A @ V, lambda U: A.T @ U, g, 15, atol=1e-13)
    torch.testing.assert_close(X, torch.linalg.pinv(A) @ g)


def test_batched_lsmr_zero_column_and_non_convergence():
    A = tall_sparse(30, 10, seed=3).to_dense()
    B = torch.randn(30, 2, dtype=D)
    B[:, 1] = 0
    X, _ = batched_lsmr(lambda V: A @ V, lambda U: A.T @ U, B, 10)
    assert torch.equal(X[:, 1], torch.zeros(10, dtype=D))
    with pytest.raises(ConvergenceError):
        batched_lsmr(lambda V: A @ V, lambda U: A.T @ U, B, 10, maxiter=2)


@pytest.mark.parametrize("kind", ["coo", "csr", "tuple"])
def test_sparse_lstsq_inputs(kind, device):
    A = tall_sparse(20, 6, seed=4)
    B = torch.randn(20, 3, dtype=D)
    ref = torch.linalg.lstsq(A.to_dense(), B).solution
    Ain = {"coo": A, "csr": A.to_sparse_csr(), "tuple": (A.indices(), A.values(), (20, 6))}[kind]
    Ain = tuple(t.to(device) if isinstance(t, torch.Tensor) else t for t in Ain) if kind == "tuple" else Ain.to(device)
    torch.testing.assert_close(sparse_lstsq(Ain, B.to(device)).cpu(), ref, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(sparse_lstsq(Ain, B[:, 0].to(device)).cpu(), ref[:, 0], rtol=1e-8, atol=1e-8)


def test_sparse_lstsq_gradcheck():
    A = tall_sparse(10, 4, seed=5)
    idx = A.indices()
    vals = A.values().clone().requires_grad_()
    B = torch.randn(10, 2, dtype=D, requires_grad=True)

    def fn(v, B_):
        return sparse_lstsq((idx, v, (10, 4)), B_, atol=1e-14)

    assert gradcheck(fn, (vals, B))
    b1 = B[:, 0].detach().requires_grad_()
    assert gradcheck(lambda v, b: sparse_lstsq((idx, v, (10, 4)), b, atol=1e-14), (vals, b1))


def test_sparse_lstsq_gradient_matches_dense_at_nnz():
    A = tall_sparse(16, 5, seed=6)
    idx = A.indices()
    B = torch.randn(16, 3, dtype=D)
    probe = torch.randn(5, 3, dtype=D)
    v1 = A.values().clone().requires_grad_()
    B1 = B.clone().requires_grad_()
    (sparse_lstsq((idx, v1, (16, 5)), B1, atol=1e-14) * probe).sum().backward()
    v2 = A.values().clone().requires_grad_()
    B2 = B.clone().requires_grad_()
    dense = torch.zeros(16, 5, dtype=D).index_put((idx[0], idx[1]), v2)
    (torch.linalg.pinv(dense) @ B2 * probe).sum().backward()
    torch.testing.assert_close(v1.grad, v2.grad, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(B1.grad, B2.grad, rtol=1e-7, atol=1e-9)


def test_incidence_matrix_and_potentials_from_flows():
    edge_index = torch.tensor([[0, 1, 2, 0, 1], [1, 2, 3, 3, 3]])
    w = torch.tensor([1.0, 2.0, 0.5, 1.5, 1.0], dtype=D)
    Bm = incidence_matrix(edge_index, 4, w).to_dense()
    ref = torch.zeros(5, 4, dtype=D)
    ref[torch.arange(5), edge_index[0]] = -w
    ref[torch.arange(5), edge_index[1]] = w
    torch.testing.assert_close(Bm, ref)
    # B^T B is the Laplacian of w^2
    L = torch.zeros(4, 4, dtype=D).index_put((edge_index[0], edge_index[1]), w**2, accumulate=True)
    L = L + L.T
    torch.testing.assert_close(Bm.T @ Bm, torch.diag(L.sum(1)) - L)

    # The documented example: potentials (grounded at node 0) from edge flows.
    ones = torch.ones(5, dtype=D)
    phi_true = torch.tensor([0.0, 1.0, 3.0, 2.5], dtype=D)
    flows = phi_true[edge_index[1]] - phi_true[edge_index[0]]
    B = incidence_matrix(edge_index, 4, ones)
    keep = B.indices()[1] > 0
    B0 = torch.sparse_coo_tensor(B.indices()[:, keep] - torch.tensor([[0], [1]]), B.values()[keep], (5, 3),
                                 check_invariants=False)
    torch.testing.assert_close(sparse_lstsq(B0, flows), phi_true[1:])


def test_incidence_weight_gradient_through_lstsq():
    edge_index = torch.tensor([[0, 1, 2, 0, 1], [1, 2, 3, 3, 3]])
    flows = torch.randn(5, dtype=D)

    def potentials(w, solver):
        B = incidence_matrix(edge_index, 4, w)
        keep = B.indices()[1] > 0
        idx, vals = B.indices()[:, keep] - torch.tensor([[0], [1]]), B.values()[keep]
        if solver == "dense":
            return torch.linalg.pinv(torch.zeros(5, 3, dtype=D).index_put((idx[0], idx[1]), vals)) @ (w * flows)
        return sparse_lstsq((idx, vals, (5, 3)), w * flows, atol=1e-14)

    w = (0.5 + torch.rand(5, dtype=D)).requires_grad_()
    assert gradcheck(lambda w_: potentials(w_, "sparse"), (w,))
    g1 = torch.autograd.grad(potentials(w, "sparse").sum(), w)[0]
    g2 = torch.autograd.grad(potentials(w, "dense").sum(), w)[0]
    torch.testing.assert_close(g1, g2)


def test_errors():
    A = tall_sparse(10, 4)
    with pytest.raises(ValueError, match="A must be tall"):
        sparse_lstsq(A.t().coalesce(), torch.ones(4, dtype=D))
    with pytest.raises(ValueError, match="B must have shape"):
        sparse_lstsq(A, torch.ones(9, dtype=D))
    with pytest.raises(ValueError, match="B contains NaN"):
        sparse_lstsq(A, torch.full((10,), float("inf"), dtype=D))
    with pytest.raises(TypeError, match="A must be"):
        sparse_lstsq(A.to_dense(), torch.ones(10, dtype=D))
    with pytest.raises(ValueError, match="edge_weight"):
        incidence_matrix(torch.tensor([[0], [1]]), 2, torch.ones(2))

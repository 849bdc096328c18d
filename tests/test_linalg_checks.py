"""Input checks of the Laplacian entry points and the solvers (#18, #19), and the AMG preconditioner."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch.autograd import gradcheck

from pyg_em.linalg import (
    AMGPreconditioner,
    LaplacianPseudoInverse,
    batched_pcg,
    laplacian,
    laplacian_coo,
    laplacian_matvec,
    sparse_lstsq,
    sparse_solve,
)
from pyg_em.linalg import _sparse_solve as ss
from pyg_em.validation import validation_disabled

D = torch.float64


def random_graph(n, p, seed, low=-1.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    iu = torch.triu_indices(n, n, 1)
    e = iu[:, torch.rand(iu.size(1), generator=g) < p]
    w = 10 ** (low + (high - low) * torch.rand(e.size(1), generator=g, dtype=D))
    return torch.cat([e, e.flip(0)], dim=1), torch.cat([w, w])


def grid_graph(side):
    idx = torch.arange(side * side).view(side, side)
    e = torch.cat([torch.stack([idx[:, :-1].reshape(-1), idx[:, 1:].reshape(-1)]),
                   torch.stack([idx[:-1].reshape(-1), idx[1:].reshape(-1)])], dim=1)
    return torch.cat([e, e.flip(0)], dim=1)


def dense(A):
    return A.to_dense() if isinstance(A, torch.Tensor) else torch.sparse_coo_tensor(A[0], A[1], (A[2], A[2])).to_dense()


DIRECTED = torch.tensor([[0, 1, 1], [1, 2, 0]])  # 1 -> 2 has no reverse edge


# ------------------------------------------------------------------------------------------ symmetry (#18)
@pytest.mark.parametrize("entry", ["laplacian", "laplacian_coo", "laplacian_matvec", "pinv"])
def test_directed_graph_rejected_with_fix(entry):
    calls = {
        "laplacian": lambda: laplacian(DIRECTED),
        "laplacian_coo": lambda: laplacian_coo(DIRECTED),
        "laplacian_matvec": lambda: laplacian_matvec(DIRECTED, None, torch.randn(3)),
        "pinv": lambda: LaplacianPseudoInverse(DIRECTED),
    }
    with pytest.raises(ValueError, match=r"not symmetric: edge \(1, 2\) has no reverse.*to_undirected.*reduce='mean'"):
        calls[entry]()


def test_per_direction_weights_rejected_and_symmetrized():
    ei, w = random_graph(6, 0.7, seed=0)
    w_dir = w.clone()
    w_dir[0] *= 3.0  # one direction of one edge differs
    with pytest.raises(ValueError, match="has weight .* but .* has"):
        laplacian(ei, w_dir)
    with pytest.raises(ValueError, match="not symmetric"):
        LaplacianPseudoInverse(ei, w_dir)
    # symmetrize='mean' averages the two directions: the dense oracle does the same by hand
    W = torch.zeros(6, 6, dtype=D).index_put((ei[0], ei[1]), w_dir)
    W = (W + W.T) / 2
    ref = torch.diag(W.sum(1)) - W
    torch.testing.assert_close(laplacian(ei, w_dir, 6, symmetrize="mean").to_dense(), ref)
    x = torch.randn(6, 2, dtype=D)
    torch.testing.assert_close(laplacian_matvec(ei, w_dir, x, symmetrize="mean"), ref @ x)
    # a directed edge list becomes undirected with unit weights
    torch.testing.assert_close(laplacian(DIRECTED, symmetrize="max", dtype=D).to_dense(),
                               torch.tensor([[1.0, -1, 0], [-1, 2, -1], [0, -1, 1]], dtype=D))  # path 0-1-2
    with pytest.raises(ValueError, match="symmetrize"):
        laplacian(ei, w, symmetrize="bogus")


def test_symmetric_duplicates_and_rounding_pass():
    ei, w = random_graph(7, 0.6, seed=1)
    # a duplicated edge stored once in each direction on both sides stays symmetric; a 1-ulp difference passes
    ei2 = torch.cat([ei, ei[:, :1], ei[:, :1].flip(0)], dim=1)
    w2 = torch.cat([w, w[:1], w[:1] * (1 + 2e-16)])
    laplacian(ei2, w2)
    # duplicated in one direction only: W_ij = 2 w, W_ji = w
    with pytest.raises(ValueError, match="not symmetric"):
        laplacian(torch.cat([ei, ei[:, :1]], dim=1), torch.cat([w, w[:1]]))


def test_laplacian_matvec_shared_validator():
    ei, w = random_graph(5, 0.8, seed=2)
    x = torch.randn(5, dtype=D)
    with pytest.raises(ValueError, match=r"edge_index must have shape \(2, E\)"):
        laplacian_matvec(ei.t().contiguous(), w, x)  # the transposed edge_index of #18
    with pytest.raises(ValueError, match="node ids"):
        laplacian_matvec(ei, w, x[:3])
    with pytest.raises(ValueError, match="edge_weight must have shape"):
        laplacian_matvec(ei, w[:-1], x)
    with pytest.raises(ValueError, match="edge_weight must be non-negative"):
        laplacian_matvec(ei, -w, x)
    with pytest.raises(TypeError, match="edge_index must have dtype torch.long"):
        laplacian_matvec(ei.int(), w, x)
    with pytest.raises(ValueError, match="x contains NaN"):
        laplacian_matvec(ei, w, torch.full((5,), float("nan"), dtype=D))


def test_sparse_solve_auto_refuses_non_symmetric_at_every_size():
    # The #18 flip: 'auto' used to succeed by LU at N = 2000 and fail in CG at N = 2100.
    for n in (2000, 2100):
        src = torch.arange(n - 1)
        ei = torch.stack([src, src + 1])  # a directed path
        indices = torch.cat([ei, torch.arange(n).repeat(2, 1)], dim=1)
        values = torch.cat([-torch.ones(n - 1, dtype=D), torch.full((n,), 2.0, dtype=D)])
        with pytest.raises(ValueError, match="not symmetric.*method='direct'"):
            sparse_solve((indices, values, n), torch.ones(n, dtype=D))
    # 'direct' is a general solver and takes it (LU of a non-symmetric matrix), with the dense answer
    n = 50
    src = torch.arange(n - 1)
    indices = torch.cat([torch.stack([src, src + 1]), torch.arange(n).repeat(2, 1)], dim=1)
    values = torch.cat([-torch.ones(n - 1, dtype=D), torch.full((n,), 2.0, dtype=D)])
    B = torch.randn(n, dtype=D)
    torch.testing.assert_close(sparse_solve((indices, values, n), B, method="direct"),
                               torch.linalg.solve(dense((indices, values, n)), B))


def test_non_symmetric_large_input_fails_fast():
    # 100k nodes, 1M directed edges: rejected by the sorted-key check (well under a second; not timed here --
    # timing belongs to benchmarks -- but the check is one sort, so this test stays fast too).
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, 100_000, (2, 1_000_000), generator=g)
    with pytest.raises(ValueError, match="not symmetric"):
        laplacian_coo(ei, num_nodes=100_000)


# ------------------------------------------------------------------------------------------ singularity (#19)
def test_large_weights_plus_small_shift_is_solved():
    ei, w = random_graph(8, 0.6, seed=0, low=12, high=12)
    A = laplacian(ei, w, 8, shift=0.01)
    B = torch.randn(8, 2, dtype=D)
    Ad = A.to_dense()
    ref = torch.linalg.solve(Ad, B)
    for method in ("auto", "direct"):
        X = sparse_solve(A, B, method=method)
        # cond(A) ~ 1e15: compare backward errors, as numpy's answer is no more exact than ours
        assert float((Ad @ X - B).norm() / (Ad.norm() * X.norm())) < 1e-14
        assert float((X - ref).norm() / ref.norm()) < 0.1


def test_float32_small_shift_is_solved():
    ei, w = random_graph(8, 0.6, seed=1)
    A = laplacian(ei, w.float(), 8, shift=1e-5)
    B = torch.randn(8, dtype=torch.float32)
    X = sparse_solve(A, B)
    ref = torch.linalg.solve(A.to_dense().double(), B.double())
    assert X.dtype == torch.float32
    torch.testing.assert_close(X.double(), ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


def test_indefinite_diagonal_with_direct():
    A = torch.sparse_coo_tensor(torch.tensor([[0, 1], [0, 1]]), torch.tensor([1.0, -1.0], dtype=D), (2, 2))
    torch.testing.assert_close(sparse_solve(A, torch.tensor([1.0, 1.0], dtype=D), method="direct"),
                               torch.tensor([1.0, -1.0], dtype=D))
    for method in ("auto", "cg"):  # these need SPD and say so
        with pytest.raises(ValueError, match="not positive definite.*'direct'"):
            sparse_solve(A, torch.ones(2, dtype=D), method=method)
    # indefinite with a positive diagonal: symmetric but 1^T A 1 = 0
    A2 = torch.tensor([[1.0, -1.5], [-1.5, 2.0]], dtype=D).to_sparse()
    torch.testing.assert_close(sparse_solve(A2, torch.ones(2, dtype=D), method="direct"),
                               torch.linalg.solve(A2.to_dense(), torch.ones(2, dtype=D)))
    with pytest.raises(ValueError, match="singular or indefinite"):
        sparse_solve(A2, torch.ones(2, dtype=D), method="cg")


@pytest.mark.parametrize("method", ["auto", "cg", "direct"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_unshifted_laplacian_rejected(method, dtype):
    ei, w = random_graph(9, 0.6, seed=3)
    with pytest.raises(ValueError, match="singular"):
        sparse_solve(laplacian(ei, w.to(dtype), 9), torch.randn(9, dtype=dtype), method=method)


def test_general_singular_matrix_rejected_by_lu():
    A = torch.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=D).to_sparse()  # rank 1, positive off-diagonal
    with pytest.raises(ValueError, match="singular"):
        sparse_solve(A, torch.ones(2, dtype=D), method="direct")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_one_clear_error(dtype):
    ei, w = random_graph(6, 0.7, seed=4)
    msg = "float32 and float64 only"
    L = laplacian(ei, w.to(dtype), 6, shift=0.1)
    for method in ("auto", "cg", "direct"):
        with pytest.raises(TypeError, match=msg):
            sparse_solve(L, torch.ones(6, dtype=dtype), method=method)
    with pytest.raises(TypeError, match="B has dtype"):
        sparse_solve(laplacian(ei, w, 6, shift=0.1), torch.ones(6, dtype=dtype))
    with pytest.raises(TypeError, match=msg):
        LaplacianPseudoInverse(ei, w.to(dtype))
    for method in ("cg", "neumann", "lowrank", "direct"):
        with pytest.raises(TypeError, match=msg):
            LaplacianPseudoInverse(ei, method=method) @ torch.ones(6, dtype=dtype)
    A = torch.randn(8, 3, dtype=dtype).to_sparse()
    with pytest.raises(TypeError, match=msg):
        sparse_lstsq(A, torch.ones(8, dtype=dtype))


# ------------------------------------------------------------------------------------------ pseudo-inverse (#19)
def complete_graph(n):
    e = torch.combinations(torch.arange(n)).t()
    return torch.cat([e, e.flip(0)], dim=1)


def test_neumann_default_maxiter_converges_on_k5():
    B = torch.randn(5, 2, dtype=D)
    ref = torch.linalg.solve(laplacian(complete_graph(5), None, 5, shift=0.1, dtype=D).to_dense(), B)
    torch.testing.assert_close(LaplacianPseudoInverse(complete_graph(5), method="neumann", eps=0.1) @ B, ref)


@pytest.mark.parametrize("method", ["cg", "direct", "neumann", "lowrank"])
def test_edgeless_and_zero_weight_graphs_give_zero(method):
    B = torch.randn(4, 2, dtype=D)
    empty = torch.zeros(2, 0, dtype=torch.long)
    out = LaplacianPseudoInverse(empty, num_nodes=4, method=method) @ B
    torch.testing.assert_close(out, torch.zeros_like(B))  # numpy.linalg.pinv of the zero matrix
    np.testing.assert_allclose(np.linalg.pinv(np.zeros((4, 4))) @ B.numpy(), 0.0)
    zero_w = LaplacianPseudoInverse(complete_graph(4), torch.zeros(12, dtype=D), method=method) @ B
    torch.testing.assert_close(zero_w, torch.zeros_like(B))
    # with eps > 0 an edgeless graph gives B / eps
    torch.testing.assert_close(LaplacianPseudoInverse(empty, num_nodes=4, method=method, eps=0.5) @ B, 2 * B)


def test_lowrank_warns_when_weights_span_many_orders():
    ei, w = random_graph(7, 0.4, seed=27, low=-12, high=12)
    with pytest.warns(RuntimeWarning, match="lowrank.*inaccurate.*'direct' or 'cg'"):
        LaplacianPseudoInverse(ei, w, method="lowrank", rank=7) @ torch.randn(7, dtype=D)
    # moderate weights: exact against numpy's pinv, without a warning
    ei, w = random_graph(14, 0.5, seed=27, low=-2, high=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = LaplacianPseudoInverse(ei, w, method="lowrank", rank=14).to_dense()
    torch.testing.assert_close(out, torch.from_numpy(np.linalg.pinv(laplacian(ei, w).to_dense().numpy())))


# ------------------------------------------------------------------------------------------ AMG (#18)
def grid_system(side, shift):
    ei = grid_graph(side)
    return laplacian_coo(ei, None, side * side, shift=shift, dtype=D)


def test_amg_vcycle_is_symmetric_positive_definite_and_reduces_iterations():
    indices, values, n = grid_system(24, 1e-3)
    mat = sp.csr_matrix((values.numpy(), (indices[0].numpy(), indices[1].numpy())), shape=(n, n))
    amg = AMGPreconditioner(mat, max_coarse=20)
    assert amg.num_levels >= 3  # the V-cycle, not just the coarse Cholesky, is exercised
    M = amg(torch.eye(n, dtype=D))  # the preconditioner as a dense matrix
    torch.testing.assert_close(M, M.T)
    assert float(torch.linalg.eigvalsh(M).min()) > 0
    A = torch.from_numpy(mat.toarray())
    B = torch.randn(n, 3, dtype=D)
    X_amg, it_amg = batched_pcg(lambda V: A @ V, B, precondition=amg, tol=1e-10)
    X_jac, it_jac = batched_pcg(lambda V: A @ V, B, diag=torch.diagonal(A), tol=1e-10)
    ref = torch.linalg.solve(A, B)
    torch.testing.assert_close(X_amg, ref)
    torch.testing.assert_close(X_jac, ref)
    assert it_amg * 3 < it_jac


def test_sparse_solve_amg_agrees_with_direct_and_gradients(monkeypatch):
    from pyg_em.linalg import amg as amg_module

    monkeypatch.setattr(amg_module, "AMG_MAX_COARSE", 8)
    g = torch.Generator().manual_seed(0)

    def solve(ei, w_, B_, method, preconditioner):
        return sparse_solve(laplacian_coo(ei, torch.cat([w_, w_]), B_.size(0), shift=0.05), B_, method=method,
                            preconditioner=preconditioner, tol=1e-12)

    ei = grid_graph(8)  # 64 nodes: three levels with max_coarse=8
    w = (0.5 + torch.rand(ei.size(1) // 2, generator=g, dtype=D)).requires_grad_()
    B = torch.randn(64, 2, dtype=D, generator=g).requires_grad_()
    X_amg, X_lu = solve(ei, w, B, "cg", "amg"), solve(ei, w, B, "direct", None)
    torch.testing.assert_close(X_amg, X_lu)
    P = torch.randn(64, 2, dtype=D, generator=g)
    ga = torch.autograd.grad((X_amg * P).sum(), (w, B))
    gl = torch.autograd.grad((X_lu * P).sum(), (w, B))
    for a, b in zip(ga, gl):
        torch.testing.assert_close(a, b)
    ei = grid_graph(4)  # the float64 gradcheck on a smaller grid (two levels) keeps it quick
    w = (0.5 + torch.rand(ei.size(1) // 2, generator=g, dtype=D)).requires_grad_()
    B = torch.randn(16, 1, dtype=D, generator=g).requires_grad_()
    assert gradcheck(lambda w_, B_: solve(ei, w_, B_, "cg", "amg"), (w, B))


def test_amg_hierarchy_built_once_and_reused_in_backward(monkeypatch):
    from pyg_em.linalg import amg as amg_module

    monkeypatch.setattr(amg_module, "AMG_MAX_COARSE", 8)
    built = []
    original = amg_module.AMGPreconditioner.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(amg_module.AMGPreconditioner, "__init__", counting)
    indices, values, n = grid_system(8, 0.01)
    v = values.clone().requires_grad_()
    X = sparse_solve((indices, v, n), torch.randn(n, 3, dtype=D), method="cg", preconditioner="amg")
    X.square().sum().backward()
    assert len(built) == 1 and torch.isfinite(v.grad).all()


def test_auto_preconditioner_switches_to_amg_only_when_it_pays(monkeypatch, pcg_choices):
    # Force the CPU 'auto' probe on a small graph: an ill-conditioned grid (tiny shift) switches to AMG, a
    # well-conditioned expander (complete graph) stays with Jacobi; both give the dense answer.
    from pyg_em.linalg import amg as amg_module

    monkeypatch.setattr(ss, "AUTO_AMG_MIN_NODES", 1)
    monkeypatch.setattr(ss, "AUTO_PROBE_ITERATIONS", 10)
    monkeypatch.setattr(ss, "AMG_BREAK_EVEN_ITERATIONS", 20)
    monkeypatch.setattr(amg_module, "AMG_MAX_COARSE", 10)
    chosen = pcg_choices
    expander = laplacian_coo(complete_graph(30), None, 30, shift=0.1, dtype=D)
    cases = [(grid_system(20, 1e-4), "amg"), (expander, "jacobi")]
    for (indices, values, n), expected in cases:
        B = torch.randn(n, 2, dtype=D)
        X = sparse_solve((indices, values, n), B, method="cg")
        torch.testing.assert_close(X, torch.linalg.solve(dense((indices, values, n)), B))
        assert chosen[-1] == expected


def test_amg_rejects_accelerator_and_validation_can_be_disabled():
    if torch.cuda.is_available():
        indices, values, n = grid_system(4, 0.1)
        with pytest.raises(ValueError, match="amg"):
            sparse_solve((indices.cuda(), values.cuda(), n), torch.ones(n, dtype=D, device="cuda"),
                         preconditioner="amg")
    # inside validation_disabled the symmetry check is skipped (GEM's training loop), the solve still runs
    ei, w = random_graph(6, 0.7, seed=5)
    with validation_disabled():
        laplacian(DIRECTED)
        sparse_solve(laplacian(ei, w, 6, shift=0.1), torch.ones(6, dtype=D))

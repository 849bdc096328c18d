"""laplacian, laplacian_matvec and sparse_solve: dense oracles, gradients (first and second order), errors."""

import warnings

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from pyg_em.linalg import ConvergenceError, ConvergenceWarning, laplacian, laplacian_coo, laplacian_matvec, sparse_solve
from tests.conftest import path_graph, two_triangles

D = torch.float64


def triangle():
    e = torch.tensor([[0, 1], [1, 2], [0, 2]]).t()
    return torch.cat([e, e.flip(0)], dim=1)


def random_graph(n, p, seed, low=-6.0, high=6.0):
    """Random undirected graph (both directions stored) with log-uniform weights in [10^low, 10^high]."""
    g = torch.Generator().manual_seed(seed)
    iu = torch.triu_indices(n, n, 1)
    keep = torch.rand(iu.size(1), generator=g) < p
    e = iu[:, keep]
    w = 10 ** (low + (high - low) * torch.rand(e.size(1), generator=g, dtype=D))
    return torch.cat([e, e.flip(0)], dim=1), torch.cat([w, w])


def dense_laplacian(edge_index, w, n, shift=0.0):
    W = torch.zeros(n, n, dtype=w.dtype).index_put((edge_index[0], edge_index[1]), w, accumulate=True)
    W.fill_diagonal_(0)
    return torch.diag(W.sum(1)) - W + shift * torch.eye(n, dtype=w.dtype)


def sym_weights(num_undirected, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (0.5 + torch.rand(num_undirected, generator=g, dtype=D)).requires_grad_()


# ------------------------------------------------------------------------------------------------ laplacian
@pytest.mark.parametrize("graph", [path_graph(5), triangle(), two_triangles()])
def test_laplacian_matches_dense(graph, device):
    n = int(graph.max()) + 1
    half = torch.linspace(0.5, 2.0, graph.size(1) // 2, dtype=D)
    w = torch.cat([half, half])  # both directions of every edge, equal weights (the graphs list them so)
    L = laplacian(graph.to(device), w.to(device), shift=0.3)
    assert L.is_sparse and L.device.type == device.type
    torch.testing.assert_close(L.to_dense().cpu(), dense_laplacian(graph, w, n, 0.3))


def test_laplacian_normalised_and_isolated_node():
    ei = path_graph(3)
    w = torch.tensor([1.0, 2.0, 1.0, 2.0], dtype=D)
    n = 4  # node 3 is isolated
    W = torch.zeros(n, n, dtype=D).index_put((ei[0], ei[1]), w)
    deg = W.sum(1)
    dis = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))
    mask = torch.diag((deg > 0).to(D))
    torch.testing.assert_close(laplacian(ei, w, n, "sym").to_dense(), mask - dis[:, None] * W * dis[None])
    di = torch.where(deg > 0, 1 / deg, torch.zeros_like(deg))
    torch.testing.assert_close(laplacian(ei, w, n, "rw").to_dense(), mask - di[:, None] * W)
    # self-loops cancel in D - W
    ei_loop = torch.cat([ei, torch.tensor([[1], [1]])], dim=1)
    torch.testing.assert_close(laplacian(ei_loop, torch.cat([w, torch.tensor([5.0], dtype=D)]), n).to_dense(),
                               laplacian(ei, w, n).to_dense())


def test_laplacian_values_differentiable():
    ei = triangle()
    probe = torch.randn(3, 3, dtype=D)

    def f(w):  # one weight per undirected edge, so finite differences keep the graph undirected
        return (laplacian(ei, torch.cat([w, w]), normalization="sym", shift=0.1).to_dense() * probe).sum()

    assert gradcheck(f, ((torch.rand(3, dtype=D) + 0.5).requires_grad_(),))


def test_laplacian_matvec_matches_and_differentiable(device):
    ei, w = random_graph(12, 0.4, seed=1, low=-1, high=1)
    x = torch.randn(12, 3, dtype=D)
    ref = dense_laplacian(ei, w, 12, 0.2) @ x
    out = laplacian_matvec(ei.to(device), w.to(device), x.to(device), shift=0.2)
    torch.testing.assert_close(out.cpu(), ref)
    unweighted = dense_laplacian(ei, torch.ones_like(w), 12)
    torch.testing.assert_close(laplacian_matvec(ei, None, x[:, 0]), unweighted @ x[:, 0])
    half = w[: w.numel() // 2]
    assert gradcheck(lambda w_, x_: laplacian_matvec(ei, torch.cat([w_, w_]), x_, shift=0.2),
                     (half.clone().requires_grad_(), x.clone().requires_grad_()))


def test_laplacian_bad_input():
    with pytest.raises(ValueError, match="normalization"):
        laplacian(path_graph(3), normalization="bad")
    with pytest.raises(ValueError, match="edge_weight"):
        laplacian(path_graph(3), torch.tensor([1.0, -1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="edge_weight"):
        laplacian(path_graph(3), torch.tensor([1.0, float("nan"), 1.0, 1.0]))


# ------------------------------------------------------------------------------------------------ sparse_solve
def _as_input(L, kind):
    if kind == "coo":
        return L
    if kind == "csr":
        return L.to_sparse_csr()
    return (L.indices(), L.values(), L.size(0))


@pytest.mark.parametrize("graph", [path_graph(6), triangle(), two_triangles()], ids=["path", "triangle", "two"])
@pytest.mark.parametrize("method", ["cg", "direct"])
@pytest.mark.parametrize("kind", ["coo", "csr", "tuple"])
def test_sparse_solve_matches_dense(graph, method, kind, device):
    if method == "direct" and device.type != "cpu":
        pytest.skip("direct backend is CPU only (checked in test_direct_rejects_accelerator)")
    n = int(graph.max()) + 1
    w = torch.linspace(0.5, 3.0, graph.size(1) // 2, dtype=D)
    L = laplacian(graph, torch.cat([w, w]), shift=0.05)
    B = torch.randn(n, 4, dtype=D)
    ref = torch.linalg.solve(L.to_dense(), B)
    A = _as_input(L.to(device), kind)
    X = sparse_solve(A, B.to(device), method=method)
    torch.testing.assert_close(X.cpu(), ref, rtol=1e-8, atol=1e-8)
    x1 = sparse_solve(A, B[:, 0].to(device), method=method)
    assert x1.shape == (n,)
    torch.testing.assert_close(x1.cpu(), ref[:, 0], rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_solve_extreme_weights(seed):
    # Weights log-uniform in [1e-6, 1e6] with shift 1: cond(L + I) reaches ~1e7. LU is backward stable, so its
    # forward error is ~cond * 1e-16; CG stops on a 1e-12 relative residual, which bounds the forward error by
    # ~cond * 1e-12 in the worst case. We therefore check the residual tightly and the solution at 1e-5.
    ei, w = random_graph(40, 0.15, seed)
    L = laplacian(ei, w, shift=1.0)
    Ld = L.to_dense()
    B = torch.randn(40, 3, dtype=D)
    ref = torch.linalg.solve(Ld, B)
    for method in ("cg", "direct"):
        X = sparse_solve(L, B, method=method, tol=1e-12)
        assert torch.linalg.norm(Ld @ X - B) <= 1e-9 * torch.linalg.norm(B)
        torch.testing.assert_close(X, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


def test_cg_without_preconditioner_and_x0():
    ei, w = random_graph(30, 0.2, seed=3, low=-1, high=1)
    L = laplacian(ei, w, shift=0.5)
    B = torch.randn(30, 2, dtype=D)
    ref = torch.linalg.solve(L.to_dense(), B)
    torch.testing.assert_close(sparse_solve(L, B, method="cg", preconditioner=None), ref)
    torch.testing.assert_close(sparse_solve(L, B, method="cg", x0=ref + 1e-3), ref)


def _sym_values_fn(graph, n, method, shift=0.2):
    """values(w) of L(w) + shift I with one weight per undirected edge (keeps A symmetric for CG)."""
    half = graph.size(1) // 2

    def build(w_half):
        idx, vals, _ = laplacian_coo(graph, torch.cat([w_half, w_half]), n, shift=shift)
        return idx, vals

    return half, build


@pytest.mark.parametrize("method", ["cg", "direct"])
@pytest.mark.parametrize("graph", [triangle(), two_triangles()], ids=["triangle", "two"])
def test_sparse_solve_gradcheck_and_gradgradcheck(method, graph):
    n = int(graph.max()) + 1
    half, build = _sym_values_fn(graph, n, method)
    w = sym_weights(half)
    B = torch.randn(n, 2, dtype=D, requires_grad=True)

    def f(w_, B_):
        idx, vals = build(w_)
        return sparse_solve((idx, vals, n), B_, method=method, tol=1e-13)

    assert gradcheck(f, (w, B))
    assert gradgradcheck(f, (w, B))


def test_direct_gradgradcheck_unconstrained_values():
    # The LU backend solves with A^T exactly, so even non-symmetric perturbations of single stored values are
    # differentiated correctly (the gradient is w.r.t. every stored entry independently).
    L = laplacian(path_graph(4), torch.tensor([1.0, 2.0, 3.0, 1.0, 2.0, 3.0], dtype=D), shift=0.5)
    idx = L.indices()
    vals = L.values().clone().requires_grad_()
    B = torch.randn(4, 2, dtype=D, requires_grad=True)

    def f(v, B_):
        return sparse_solve((idx, v, 4), B_, method="direct")

    assert gradcheck(f, (vals, B))
    assert gradgradcheck(f, (vals, B))


def test_gradients_match_dense_autograd():
    ei, w0 = random_graph(15, 0.3, seed=4, low=-1, high=1)
    B = torch.randn(15, 3, dtype=D)
    probe = torch.randn(15, 3, dtype=D)
    grads = {}
    for name in ("dense", "cg", "direct"):
        w = w0.clone().requires_grad_()
        Bv = B.clone().requires_grad_()
        if name == "dense":
            X = torch.linalg.solve(dense_laplacian(ei, w, 15, 0.3), Bv)
        else:
            X = sparse_solve(laplacian(ei, w, shift=0.3), Bv, method=name)
        (X * probe).sum().backward()
        grads[name] = (w.grad, Bv.grad)
    for name in ("cg", "direct"):
        torch.testing.assert_close(grads[name][0], grads["dense"][0])
        torch.testing.assert_close(grads[name][1], grads["dense"][1])


def test_sparse_solve_device_gradients(device):
    ei, w0 = random_graph(20, 0.3, seed=5, low=-1, high=1)
    w = w0.to(device).requires_grad_()
    X = sparse_solve(laplacian(ei.to(device), w, shift=0.1), torch.ones(20, 2, dtype=D, device=device), method="cg")
    X.square().sum().backward()
    assert w.grad.device.type == device.type and torch.isfinite(w.grad).all()


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("graph", [path_graph(4), two_triangles()], ids=["connected", "disconnected"])
@pytest.mark.parametrize("method", ["cg", "direct"])
def test_singular_laplacian_rejected(graph, method):
    L = laplacian(graph, dtype=D)
    with pytest.raises(ValueError, match="A is singular"):
        sparse_solve(L, torch.randn(L.size(0), dtype=D), method=method)


def test_non_finite_and_bad_arguments():
    L = laplacian(path_graph(4), dtype=D, shift=0.1)
    with pytest.raises(ValueError, match="B contains NaN"):
        sparse_solve(L, torch.tensor([1.0, float("nan"), 0.0, 0.0], dtype=D))
    bad = (L.indices(), L.values().clone().index_fill_(0, torch.tensor([0]), float("inf")), 4)
    with pytest.raises(ValueError, match="A contains NaN"):
        sparse_solve(bad, torch.ones(4, dtype=D))
    with pytest.raises(ValueError, match="B must have shape"):
        sparse_solve(L, torch.ones(5, dtype=D))
    with pytest.raises(TypeError, match="A must be a torch sparse"):
        sparse_solve(L.to_dense(), torch.ones(4, dtype=D))
    with pytest.raises(ValueError, match="method"):
        sparse_solve(L, torch.ones(4, dtype=D), method="lu")
    with pytest.raises(TypeError, match="dtype"):
        sparse_solve(L, torch.ones(4, dtype=torch.float32))
    with pytest.raises(ValueError, match="x0"):
        sparse_solve(L, torch.ones(4, 2, dtype=D), x0=torch.ones(4, dtype=D))
    neg = laplacian(path_graph(4), dtype=D, shift=0.1)
    idx, v = neg.indices(), -neg.values()
    with pytest.raises(ValueError, match="diagonal"):
        sparse_solve((idx, v, 4), torch.ones(4, dtype=D), method="cg")


def test_convergence_error_and_warning():
    ei, w = random_graph(60, 0.1, seed=6, low=-3, high=3)
    L = laplacian(ei, w, shift=1e-3)
    B = torch.randn(60, 2, dtype=D)
    with pytest.raises(ConvergenceError) as info:
        sparse_solve(L, B, method="cg", maxiter=2)
    assert info.value.iterations == 2 and info.value.residual > 1e-10
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X = sparse_solve(L, B, method="cg", maxiter=2, strict=False)
    assert X.shape == B.shape and any(issubclass(c.category, ConvergenceWarning) for c in caught)


def test_direct_rejects_accelerator():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    L = laplacian(path_graph(4), dtype=D, shift=0.1).cuda()
    with pytest.raises(ValueError, match="direct"):
        sparse_solve(L, torch.ones(4, dtype=D, device="cuda"), method="direct")


def test_cg_with_rcm_reordering_matches_dense(monkeypatch):
    # Large CPU solves renumber the unknowns (reverse Cuthill-McKee); force that path on a small graph.
    from pyg_em.linalg import _sparse_solve as ss
    monkeypatch.setattr(ss, "RCM_MIN_NODES", 1)
    graph, n = two_triangles(), 6
    half, build = _sym_values_fn(graph, n, "cg")
    w = sym_weights(half, seed=3)
    B = torch.randn(n, 2, dtype=D, requires_grad=True)
    idx, vals = build(w)
    X = sparse_solve((idx, vals, n), B, method="cg", x0=torch.ones(n, 2, dtype=D))
    torch.testing.assert_close(X, torch.linalg.solve(laplacian(graph, torch.cat([w, w]), n, shift=0.2).to_dense(), B))

    def f(w_, B_):
        i, v = build(w_)
        return sparse_solve((i, v, n), B_, method="cg", tol=1e-13)

    assert gradcheck(f, (w, B))
    assert gradgradcheck(f, (w, B))


def test_gather_dot_chunks_match_unchunked():
    from pyg_em.linalg import _sparse_solve as ss
    U, X = torch.randn(7, 3, dtype=D), torch.randn(7, 3, dtype=D)
    rows, cols = torch.randint(0, 7, (50,)), torch.randint(0, 7, (50,))
    ref = (U[rows] * X[cols]).sum(-1)
    torch.testing.assert_close(ss._gather_dot(U, X, rows, cols, chunk_elements=12), ref)  # 4 edges per chunk
    torch.testing.assert_close(ss._gather_dot(U[:, 0], X[:, 0], rows, cols), U[rows, 0] * X[cols, 0])

"""LaplacianPseudoInverse against torch.linalg.pinv / inv on tiny graphs, gradients, guards."""

import pytest
import torch
from torch.autograd import gradcheck

from pyg_em.linalg import ConvergenceError, LaplacianPseudoInverse, connected_components
from tests.conftest import path_graph, two_triangles

D = torch.float64


def triangle():
    e = torch.tensor([[0, 1], [1, 2], [0, 2]]).t()
    return torch.cat([e, e.flip(0)], dim=1)


def path_plus_isolated():
    return path_graph(4)  # used with num_nodes=5: node 4 is isolated


GRAPHS = {"path": (path_graph(5), 5), "triangle": (triangle(), 3), "two": (two_triangles(), 6),
          "isolated": (path_plus_isolated(), 5)}


def weights(graph, seed=0):
    half = graph.size(1) // 2
    w = 0.5 + torch.rand(half, generator=torch.Generator().manual_seed(seed), dtype=D)
    return torch.cat([w, w])


def dense_lap(graph, w, n):
    W = torch.zeros(n, n, dtype=D).index_put((graph[0], graph[1]), w, accumulate=True)
    return torch.diag(W.sum(1)) - W


@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("method", ["cg", "direct", "neumann", "lowrank"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_matches_dense_pinv(name, method, eps):
    graph, n = GRAPHS[name]
    w = weights(graph)
    L = dense_lap(graph, w, n) + eps * torch.eye(n, dtype=D)
    ref = torch.linalg.pinv(L, hermitian=True) if eps == 0 else torch.linalg.inv(L)
    op = LaplacianPseudoInverse(graph, w, n, method=method, eps=eps, rank=n, tol=1e-13, maxiter=20000)
    torch.testing.assert_close(op.to_dense(), ref, rtol=1e-7, atol=1e-8)
    B = torch.randn(n, 3, dtype=D)
    torch.testing.assert_close(op @ B, ref @ B, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(op.matmul(B[:, 0]), ref @ B[:, 0], rtol=1e-7, atol=1e-8)


def test_components():
    count, labels = connected_components(two_triangles(), 7)
    assert count == 3 and labels[:3].unique().numel() == 1 and labels[3] != labels[0] and labels[6] != labels[3]
    op = LaplacianPseudoInverse(two_triangles(), num_nodes=6)
    assert op.num_components == 2 and "components=2" in repr(op)


def test_lowrank_truncated_matches_eigh():
    graph, n = path_graph(8), 8
    w = weights(graph, 1)
    lam, vec = torch.linalg.eigh(dense_lap(graph, w, n))
    ref = vec[:, 1:4] @ torch.diag(1 / lam[1:4]) @ vec[:, 1:4].T
    op = LaplacianPseudoInverse(graph, w, n, method="lowrank", rank=3)
    torch.testing.assert_close(op.to_dense(), ref)


def test_lowrank_eigsh_path_for_larger_graph():
    n = 2100  # above the dense-eigh limit: scipy eigsh shift-invert
    graph = path_graph(n)
    op = LaplacianPseudoInverse(graph, num_nodes=n, method="lowrank", rank=3, eps=0.0)
    lam, _ = op.eigenpairs(D)
    k = torch.arange(1, 4, dtype=D)
    torch.testing.assert_close(lam, 2 - 2 * torch.cos(torch.pi * k / n))  # path-graph spectrum


@pytest.mark.parametrize("method", ["cg", "direct"])
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_gradcheck_weights_and_rhs(method, eps):
    graph, n = two_triangles(), 6
    half = graph.size(1) // 2
    w = (0.5 + torch.rand(half, dtype=D)).requires_grad_()
    B = torch.randn(n, 2, dtype=D, requires_grad=True)

    def fn(w_, B_):
        return LaplacianPseudoInverse(graph, torch.cat([w_, w_]), n, method=method, eps=eps, tol=1e-13) @ B_

    assert gradcheck(fn, (w, B))


def test_gradient_matches_dense_pinv():
    graph, n = path_graph(5), 5
    half = graph.size(1) // 2
    w0 = 0.5 + torch.rand(half, dtype=D)
    B = torch.randn(n, 2, dtype=D)
    probe = torch.randn(n, 2, dtype=D)
    w1, w2 = w0.clone().requires_grad_(), w0.clone().requires_grad_()
    ((LaplacianPseudoInverse(graph, torch.cat([w1, w1]), n) @ B) * probe).sum().backward()
    ((torch.linalg.pinv(dense_lap(graph, torch.cat([w2, w2]), n), hermitian=True) @ B) * probe).sum().backward()
    torch.testing.assert_close(w1.grad, w2.grad)


def test_random_graph_extreme_weights():
    # Weights log-uniform in [1e-6, 1e6]: the pseudo-inverse has entries up to ~1e6 and cond(L) ~ 1e12, so
    # dense pinv itself is only accurate to ~cond * 1e-16 = 1e-4 relative; compare at that level.
    g = torch.Generator().manual_seed(3)
    n = 30
    iu = torch.triu_indices(n, n, 1)
    e = iu[:, torch.rand(iu.size(1), generator=g) < 0.2]
    w = 10 ** (-6 + 12 * torch.rand(e.size(1), generator=g, dtype=D))
    graph, w = torch.cat([e, e.flip(0)], 1), torch.cat([w, w])
    ref = torch.linalg.pinv(dense_lap(graph, w, n), hermitian=True, rtol=1e-14)
    B = torch.randn(n, 2, dtype=D)
    for method in ("direct", "cg"):
        out = LaplacianPseudoInverse(graph, w, n, method=method, tol=1e-14, maxiter=50000) @ B
        assert torch.linalg.norm(out - ref @ B) <= 1e-4 * torch.linalg.norm(ref @ B)


def test_guards_and_errors(monkeypatch):
    graph, n = path_graph(6), 6
    with pytest.raises(ValueError, match="method"):
        LaplacianPseudoInverse(graph, method="svd")
    with pytest.raises(ValueError, match="eps"):
        LaplacianPseudoInverse(graph, eps=-1.0)
    with pytest.raises(ValueError, match="rank"):
        LaplacianPseudoInverse(graph, method="lowrank", rank=0)
    op = LaplacianPseudoInverse(graph, num_nodes=n)
    with pytest.raises(ValueError, match="B must have shape"):
        op @ torch.ones(5, dtype=D)
    with pytest.raises(ValueError, match="B contains NaN"):
        op @ torch.full((n,), float("nan"), dtype=D)
    monkeypatch.setattr(LaplacianPseudoInverse, "max_dense_nodes", 5)
    with pytest.raises(ValueError, match="to_dense"):
        op.to_dense()
    with pytest.raises(ConvergenceError):
        LaplacianPseudoInverse(graph, num_nodes=n, method="neumann", maxiter=3) @ torch.randn(n, dtype=D)
    with pytest.raises(ConvergenceError):
        LaplacianPseudoInverse(graph, num_nodes=n, method="cg", maxiter=1) @ torch.randn(n, 2, dtype=D)


def test_device(device):
    graph, n = two_triangles(), 6
    w = weights(graph).to(device)
    op = LaplacianPseudoInverse(graph.to(device), w, n, method="cg", eps=0.0)
    ref = torch.linalg.pinv(dense_lap(graph, w.cpu(), n), hermitian=True)
    torch.testing.assert_close(op.to_dense().cpu(), ref)

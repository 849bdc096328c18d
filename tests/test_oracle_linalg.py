"""Independent oracles for the graph linear algebra: incidence matrices, Laplacians, the (pseudo-)inverse and
the custom backwards of the sparse solves.

Written to kill the mutants that survived ``make mutate`` (tests/mutation_score.py lists them): every expected
value comes from dense loops or ``torch.linalg`` written here, on asymmetric weighted fixtures where a dropped
term or a swapped index changes the answer.
"""

import pytest
import torch

from pyg_em.linalg import LaplacianPseudoInverse, incidence_matrix

# A weighted path 0-1-2-3 plus the chord (0, 2), each undirected edge once, and an isolated node 4 (num_nodes=5).
PAIRS = [(0, 1), (1, 2), (2, 3), (0, 2)]
WEIGHTS = [0.5, 2.0, -1.5, 3.0]  # a negative weight: the incidence matrix only scales rows by it


def dense_incidence(pairs, n, weights=None):
    out = torch.zeros(len(pairs), n, dtype=torch.float64)
    for e, (i, j) in enumerate(pairs):
        w = 1.0 if weights is None else weights[e]
        out[e, i] -= w
        out[e, j] += w
    return out


def test_incidence_matrix_by_hand(device):
    edge_index = torch.tensor(PAIRS, device=device).t()
    # Without weights or num_nodes: +-1 entries and N = max id + 1.
    b = incidence_matrix(edge_index)
    assert b.shape == (4, 4) and b.device.type == device.type
    assert torch.equal(b.to_dense().cpu().double(), dense_incidence(PAIRS, 4))
    # An isolated node widens the matrix; negative weights are allowed (they only scale a row).
    weight = torch.tensor(WEIGHTS, dtype=torch.float64, device=device)
    b = incidence_matrix(edge_index, 5, weight)
    assert b.shape == (4, 5) and b.indices().device.type == device.type
    assert torch.equal(b.to_dense().cpu(), dense_incidence(PAIRS, 5, WEIGHTS))
    # B^T B is the Laplacian of the squared weights.
    lap = torch.zeros(5, 5, dtype=torch.float64)
    for (i, j), w in zip(PAIRS, WEIGHTS):
        lap[i, i] += w * w
        lap[j, j] += w * w
        lap[i, j] -= w * w
        lap[j, i] -= w * w
    dense = b.to_dense().cpu()
    assert torch.allclose(dense.t() @ dense, lap)
    with pytest.raises(ValueError, match=r"node ids in \[0, 3\] but must lie in \[0, 3\)"):
        incidence_matrix(edge_index, 3)


def test_lowrank_rank_one_and_two_match_eigh():
    pairs = [(0, 1), (1, 2), (2, 3), (0, 2), (3, 4)]
    weights = [1.0, 2.5, 0.7, 1.3, 4.0]
    edge_index = torch.tensor(pairs + [(j, i) for i, j in pairs]).t()
    edge_weight = torch.tensor(weights * 2, dtype=torch.float64)
    lap = torch.zeros(5, 5, dtype=torch.float64)
    for (i, j), w in zip(pairs, weights):
        lap[i, i] += w
        lap[j, j] += w
        lap[i, j] -= w
        lap[j, i] -= w
    lam, vec = torch.linalg.eigh(lap)  # lam[0] = 0 (connected graph)
    b = torch.tensor([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0], [2.0, 1.0], [0.25, -0.5]], dtype=torch.float64)
    for rank in (1, 2):
        op = LaplacianPseudoInverse(edge_index, edge_weight, method="lowrank", rank=rank)
        v, l_inv = vec[:, 1:1 + rank], 1.0 / lam[1:1 + rank]
        expected = v @ torch.diag(l_inv) @ v.t()
        assert torch.allclose(op @ b, expected @ b, atol=1e-12)
        assert torch.allclose(op @ b[:, 1], expected @ b[:, 1], atol=1e-12)
        assert (op @ b).abs().max() > 1e-2  # not the empty-spectrum zero


def dense_laplacian(pairs, weights, n, shift=0.0):
    """D - W + s I of the undirected graph with one weight per pair (both directions)."""
    lap = torch.zeros(n, n, dtype=torch.float64)
    for (i, j), w in zip(pairs, weights):
        lap[i, j] -= w
        lap[j, i] -= w
        lap[i, i] += w
        lap[j, j] += w
    return lap + shift * torch.eye(n, dtype=torch.float64)


def test_laplacian_matvec_by_hand_and_its_errors():
    from pyg_em.linalg import laplacian_matvec

    pairs, weights = [(0, 1), (1, 2), (2, 3), (0, 2)], [0.5, 2.0, 1.5, 3.0]
    edge_index = torch.tensor(pairs + [(j, i) for i, j in pairs]).t()
    edge_weight = torch.tensor(weights * 2, dtype=torch.float64)
    x = torch.tensor([[1.0, -2.0], [0.5, 4.0], [-1.0, 3.0], [2.0, 1.0], [7.0, -3.0]], dtype=torch.float64)
    for shift in (0.0, 0.3):
        lap = dense_laplacian(pairs, weights, 5, shift)
        assert torch.allclose(laplacian_matvec(edge_index, edge_weight, x, shift=shift), lap @ x, atol=1e-12)
        assert torch.allclose(laplacian_matvec(edge_index, edge_weight, x[:, 0], num_nodes=5, shift=shift),
                              lap @ x[:, 0], atol=1e-12)
        unweighted = dense_laplacian(pairs, [1.0] * 4, 5, shift)
        assert torch.allclose(laplacian_matvec(edge_index, None, x, shift=shift), unweighted @ x, atol=1e-12)
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor of shape \(N,\) or \(N, F\), got \(5, 2, 1\)"):
        laplacian_matvec(edge_index, edge_weight, x.unsqueeze(-1))
    with pytest.raises(TypeError, match=r"of shape \(N,\) or \(N, F\), got list"):
        laplacian_matvec(edge_index, edge_weight, x.tolist())
    with pytest.raises(ValueError, match="^shift must be "):
        laplacian_matvec(edge_index, edge_weight, x, shift=-0.5)
    with pytest.raises(ValueError, match="x has 5 rows but num_nodes=6"):
        laplacian_matvec(edge_index, edge_weight, x, num_nodes=6)
    with pytest.raises(TypeError, match="edge_weight has dtype torch.float32 but x has dtype torch.float64"):
        laplacian_matvec(edge_index, edge_weight.float(), x)


def test_sparse_lstsq_gradient_of_the_values_alone_matches_dense_pinv():
    from pyg_em.linalg import sparse_lstsq

    # A tall 6 x 3 system with a non-zero residual, so both Golub--Pereyra terms count.
    rows = [0, 0, 1, 1, 2, 3, 3, 4, 5, 5]
    cols = [0, 2, 0, 1, 1, 1, 2, 0, 2, 1]
    vals = torch.tensor([1.5, -0.5, 2.0, 0.7, -1.2, 0.4, 3.0, 0.9, -2.2, 1.1], dtype=torch.float64)
    indices = torch.tensor([rows, cols])
    b = torch.tensor([[1.0, 0.0], [-2.0, 1.0], [0.5, 3.0], [4.0, -1.0], [0.0, 2.0], [1.5, 0.5]], dtype=torch.float64)
    probe = torch.tensor([[1.0, -0.5], [2.0, 0.3], [-1.0, 1.5]], dtype=torch.float64)
    v1 = vals.clone().requires_grad_()  # B is a constant: only the values' gradient is asked for
    (sparse_lstsq((indices, v1, (6, 3)), b, atol=1e-14) * probe).sum().backward()
    v2 = vals.clone().requires_grad_()
    dense = torch.zeros(6, 3, dtype=torch.float64).index_put((indices[0], indices[1]), v2)
    x = torch.linalg.pinv(dense) @ b
    assert (dense.detach() @ x.detach() - b).abs().max() > 0.1  # an inconsistent system
    (x * probe).sum().backward()
    assert torch.allclose(v1.grad, v2.grad, atol=1e-8)
    b1 = b[:, 0].clone().requires_grad_()  # and the right-hand side's alone, for a vector
    (sparse_lstsq((indices, vals, (6, 3)), b1, atol=1e-14) * probe[:, 0]).sum().backward()
    assert torch.allclose(b1.grad, torch.linalg.pinv(dense.detach()).t() @ probe[:, 0], atol=1e-8)


def _coo_dense(indices, values, n):
    return torch.zeros(n, n, dtype=values.dtype).index_put((indices[0], indices[1]), values, accumulate=True)


def test_laplacian_coo_triplet_by_hand():
    from pyg_em.linalg import laplacian_coo

    # Directed storage of an undirected graph with a self-loop (2, 2), a duplicated edge (0, 1) (summed) and an
    # isolated node 4; the unequal weights make every degree different.
    pairs = [(0, 1), (0, 1), (1, 2), (2, 3), (0, 2)]
    weights = [0.5, 0.25, 2.0, 0.4, 3.0]  # node 3 has degree 0.4 < 1
    edge_index = torch.tensor(pairs + [(j, i) for i, j in pairs] + [(2, 2)]).t()
    edge_weight = torch.tensor(weights * 2 + [9.0], dtype=torch.float64)
    W = torch.zeros(5, 5, dtype=torch.float64)
    counts = torch.zeros(5, 5, dtype=torch.float64)
    for (i, j), w in zip(pairs, weights):
        W[i, j] += w
        W[j, i] += w
        counts[i, j] += 1
        counts[j, i] += 1
    deg = W.sum(1)
    # The defaults: N = max id + 1 = 4 and no shift, the plain D - W whose rows sum to zero; the loop is
    # dropped and the diagonal stored once per node after the E' = 10 off-diagonal entries.
    indices, values, n = laplacian_coo(edge_index, edge_weight)
    assert n == 4 and indices.shape == (2, 14) and values.dtype == torch.float64
    assert torch.equal(indices[:, 10:], torch.arange(4).repeat(2, 1))
    assert torch.allclose(_coo_dense(indices, values, 4), (torch.diag(deg) - W)[:4, :4], atol=1e-12)
    # Shifted, and normalised: the isolated node keeps a zero row and diagonal (plus the shift).
    has = (deg > 0).double()
    dis = torch.where(deg > 0, deg.clamp_min(1e-300).rsqrt(), torch.zeros(5, dtype=torch.float64))
    di = torch.where(deg > 0, 1 / deg.clamp_min(1e-300), torch.zeros(5, dtype=torch.float64))
    expected = {
        None: torch.diag(deg) - W,
        "sym": torch.diag(has) - dis[:, None] * W * dis[None],
        "rw": torch.diag(has) - di[:, None] * W,
    }
    for normalization, dense in expected.items():
        for shift in (0.0, 0.7):
            indices, values, n = laplacian_coo(edge_index, edge_weight, 6, normalization, shift)
            full = torch.zeros(6, 6, dtype=torch.float64)
            full[:5, :5] = dense
            full += shift * torch.eye(6, dtype=torch.float64)
            assert n == 6 and torch.allclose(_coo_dense(indices, values, 6), full, atol=1e-12)
    # Unweighted: ones in the requested dtype (float32 by default); and given weights cast to ``dtype``.
    indices, values, _ = laplacian_coo(edge_index, num_nodes=5)
    assert values.dtype == torch.get_default_dtype()
    assert torch.allclose(_coo_dense(indices, values.double(), 5), torch.diag(counts.sum(1)) - counts)
    _, values, _ = laplacian_coo(edge_index, None, dtype=torch.float64)
    assert values.dtype == torch.float64
    _, values, _ = laplacian_coo(edge_index, edge_weight, dtype=torch.float32)
    assert values.dtype == torch.float32
    with pytest.raises(ValueError, match=r"normalization must be None, 'sym' or 'rw', got 'bad'"):
        laplacian_coo(edge_index, edge_weight, normalization="bad")
    with pytest.raises(ValueError, match="^shift must be "):
        laplacian_coo(edge_index, edge_weight, shift=-1.0)


def _spd(n=7, seed=0):
    """A dense SPD matrix with a spread spectrum and an uneven diagonal (so Jacobi scaling matters)."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    scale = torch.linspace(0.5, 4.0, n, dtype=torch.float64)
    return scale[:, None] * (q * torch.logspace(-1, 1, n, dtype=torch.float64)) @ q.t() * scale[None]


def test_batched_pcg_matches_dense_solve_per_column():
    from pyg_em.linalg import ConvergenceError, ConvergenceWarning, batched_pcg

    A = _spd()
    B = torch.tensor([[1.0, 0.0, 300.0], [-2.0, 0.0, 1.0], [0.5, 0.0, -7.0], [4.0, 0.0, 2.0], [0.0, 0.0, 5.0],
                      [1.5, 0.0, -1.0], [3.0, 0.0, 0.5]], dtype=torch.float64)  # a zero column stays zero
    exact = torch.linalg.solve(A, B)
    calls = []

    def matvec(V):
        calls.append(V.shape)
        return A @ V

    for kwargs in ({}, {"diag": A.diagonal()}, {"precondition": lambda R: torch.linalg.solve(A.diagonal().diag(), R)}):
        X, iterations = batched_pcg(matvec, B, **kwargs)
        assert X.shape == B.shape and torch.allclose(X, exact, rtol=1e-8, atol=1e-9), kwargs
        assert 1 <= iterations <= 3 * 7  # CG is exact in N steps in exact arithmetic
        res = torch.linalg.vector_norm(A @ X - B, dim=0)
        assert bool((res <= 1e-10 * torch.linalg.vector_norm(B, dim=0) + 1e-300).all())
    assert all(shape[1] == 3 for shape in calls)  # one (N, k) block per matvec, never a column at a time
    # The exact inverse as preconditioner: one iteration; the exact solution as x0: none (and no matvec on P).
    X, iterations = batched_pcg(matvec, B, precondition=lambda R: torch.linalg.solve(A, R))
    assert iterations == 1 and torch.allclose(X, exact, atol=1e-10)
    diagonal = torch.linspace(0.5, 9.0, 7, dtype=torch.float64)  # Jacobi is the exact inverse of a diagonal A
    X, iterations = batched_pcg(lambda V: diagonal[:, None] * V, B, diag=diagonal)
    assert iterations == 1 and torch.allclose(X, B / diagonal[:, None], atol=1e-12)
    X, iterations = batched_pcg(matvec, B[:, 0], x0=exact[:, 0])
    assert iterations == 0 and X.shape == (7,) and torch.allclose(X, exact[:, 0], atol=1e-12)
    # A column that starts converged is frozen (step sizes masked to zero) while the others iterate.
    start = torch.zeros_like(B)
    start[:, 0] = exact[:, 0] + 1e-13 * torch.arange(7, dtype=torch.float64)
    X, iterations = batched_pcg(matvec, B, x0=start)
    assert iterations >= 2 and torch.equal(X[:, 0], start[:, 0]) and torch.allclose(X, exact, atol=1e-9)
    # A vector, a float32 system (its default tolerance 1e-5 is met, 1e-10 would not be).
    X, _ = batched_pcg(lambda V: A.float() @ V, B[:, 0].float())
    assert X.shape == (7,) and X.dtype == torch.float32
    assert float(torch.linalg.vector_norm(A.float() @ X - B[:, 0].float()) / torch.linalg.vector_norm(B[:, 0])) < 1e-4
    # An absolute tolerance above every residual: nothing to do.
    X, iterations = batched_pcg(matvec, B, atol=1e6)
    assert iterations == 0 and torch.equal(X, torch.zeros_like(B))
    # Too few iterations: an error with the residual and the count, or (strict=False) a warning and the iterate.
    with pytest.raises(ConvergenceError, match=r"conjugate gradients on M: did not converge: .* after 2 iterations"):
        batched_pcg(matvec, B, maxiter=2, name="M")
    with pytest.warns(ConvergenceWarning, match=r"^conjugate gradients on A: did not converge: .* after 2 iterations"):
        X, iterations = batched_pcg(matvec, B, maxiter=2, strict=False)
    assert iterations == 2 and not torch.allclose(X, exact, atol=1e-3) and (X - exact).abs().max() < (exact.abs().max())
    # Indefinite: a clear error naming the matrix.
    indefinite = A - 2.0 * torch.eye(7, dtype=torch.float64) * A.diagonal().max()
    with pytest.raises(ValueError, match=r"^K is not positive definite \(conjugate-gradient breakdown"):
        batched_pcg(lambda V: indefinite @ V, B, name="K")


def _products(A):
    """``(V -> A V, U -> A^T U)`` of a dense matrix, as LSMR takes them."""
    return (lambda V: A @ V), (lambda U: A.t() @ U)


def test_batched_lsmr_matches_dense_pinv_least_squares_and_minimum_norm():
    from pyg_em.linalg import ConvergenceError, ConvergenceWarning, batched_lsmr

    gen = torch.Generator().manual_seed(1)
    tall = torch.randn(9, 4, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 3.0, 0.2, 5.0],
                                                                              dtype=torch.float64)
    B = torch.randn(9, 3, generator=gen, dtype=torch.float64)
    B[:, 1] = 0.0  # a zero right-hand side stays zero
    B[:, 2] *= 40.0
    for A, name in ((tall, "inconsistent tall"), (tall.t().contiguous(), "consistent wide, minimum norm")):
        rhs = B[: A.size(0)]
        X, iterations = batched_lsmr(*_products(A), rhs, A.size(1), atol=1e-13)
        expected = torch.linalg.pinv(A) @ rhs
        assert X.shape == (A.size(1), 3) and torch.allclose(X, expected, rtol=1e-7, atol=1e-9), name
        assert 1 <= iterations <= 40
        x, _ = batched_lsmr(*_products(A), rhs[:, 0], A.size(1), atol=1e-13)
        assert x.shape == (A.size(1),) and torch.allclose(x, expected[:, 0], rtol=1e-7, atol=1e-9)
    assert (tall @ torch.linalg.pinv(tall) @ B - B).abs().max() > 0.5  # the tall system is inconsistent
    # Default tolerances (1e-10 in float64) still give the solution to about that accuracy.
    X, _ = batched_lsmr(*_products(tall), B, 4)
    assert torch.allclose(X, torch.linalg.pinv(tall) @ B, rtol=1e-6, atol=1e-7)
    with pytest.raises(ConvergenceError, match=r"LSMR on T: did not converge: .* after 1 iterations"):
        batched_lsmr(*_products(tall), B, 4, maxiter=1, name="T")
    with pytest.warns(ConvergenceWarning, match="after 2 iterations"):
        X, iterations = batched_lsmr(*_products(tall), B, 4, maxiter=2, strict=False)
    assert iterations == 2 and not torch.allclose(X, torch.linalg.pinv(tall) @ B, atol=1e-3)
    # The default cap, max(2 n, 100) iterations, when the tolerance cannot be met.
    for m, n, cap in ((80, 60, 120), (30, 20, 100)):
        A = torch.randn(m, n, generator=gen, dtype=torch.float64)
        with pytest.raises(ConvergenceError, match=f"after {cap} iterations"):
            batched_lsmr(*_products(A), torch.randn(m, generator=gen, dtype=torch.float64), n,
                         atol=1e-300)


@pytest.mark.parametrize("preconditioner", ["jacobi", None])
def test_sparse_solve_cg_starts_from_x0(preconditioner):
    from pyg_em.linalg import ConvergenceError, laplacian, sparse_solve

    # A weighted path of 30 nodes with a small shift: CG needs many iterations from zero, none from the answer.
    n = 30
    pairs = [(i, i + 1) for i in range(n - 1)]
    weights = [1.0 + (i % 4) for i in range(n - 1)]
    A = laplacian(torch.tensor(pairs + [(j, i) for i, j in pairs]).t(), torch.tensor(weights * 2, dtype=torch.float64),
                  shift=0.05)
    B = torch.stack([torch.linspace(-1.0, 2.0, n, dtype=torch.float64), torch.cos(torch.arange(n).double())], 1)
    exact = torch.linalg.solve(A.to_dense(), B)
    X = sparse_solve(A, B, method="cg", preconditioner=preconditioner, maxiter=1, x0=exact)
    assert torch.allclose(X, exact, atol=1e-9)
    with pytest.raises(ConvergenceError):
        sparse_solve(A, B, method="cg", preconditioner=preconditioner, maxiter=1)


def test_sparse_solve_backward_skips_the_values_gather_when_only_b_needs_a_gradient(monkeypatch):
    import pyg_em.linalg._sparse_solve as solve_module
    from pyg_em.linalg import laplacian, sparse_solve

    pairs, weights = [(0, 1), (1, 2), (2, 3), (0, 2)], [0.5, 2.0, 1.5, 3.0]
    A = laplacian(torch.tensor(pairs + [(j, i) for i, j in pairs]).t(), torch.tensor(weights * 2, dtype=torch.float64),
                  shift=0.3)
    gathers = []
    real = solve_module._gather_dot
    monkeypatch.setattr(solve_module, "_gather_dot", lambda *args: gathers.append(1) or real(*args))
    B = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.0, 3.0], [2.0, -1.0]], dtype=torch.float64, requires_grad=True)
    probe = torch.tensor([[1.0, 0.0], [2.0, -1.0], [0.5, 1.0], [-3.0, 2.0]], dtype=torch.float64)
    (sparse_solve(A, B, method="direct") * probe).sum().backward()
    dense = A.to_dense()
    assert torch.allclose(B.grad, torch.linalg.solve(dense.t(), probe), atol=1e-12)  # U = A^-T G
    assert gathers == []  # the O(nnz k) gather at the stored entries is skipped: A's values need no gradient
    values = A.values().clone().requires_grad_()
    (sparse_solve((A.indices(), values, 4), B.detach(), method="direct") * probe).sum().backward()
    assert len(gathers) == 1 and values.grad is not None


def test_gather_dot_in_chunks_matches_the_dense_rows_dot():
    from pyg_em.linalg._sparse_solve import _gather_dot

    gen = torch.Generator().manual_seed(2)
    U, X = torch.randn(5, 3, generator=gen, dtype=torch.float64), torch.randn(5, 3, generator=gen, dtype=torch.float64)
    rows, cols = torch.tensor([0, 4, 2, 2, 1, 3, 0]), torch.tensor([1, 1, 3, 0, 4, 2, 0])
    expected = torch.tensor([float(U[i] @ X[j]) for i, j in zip(rows.tolist(), cols.tolist())], dtype=torch.float64)
    for chunk_elements in (1 << 22, 12, 11, 6, 3, 1):  # chunks of 7, 4, 3, 2 and 1 edges
        assert torch.allclose(_gather_dot(U, X, rows, cols, chunk_elements), expected, atol=1e-14), chunk_elements
    assert torch.allclose(_gather_dot(U[:, 0], X[:, 1], rows, cols), U[rows, 0] * X[cols, 1], atol=1e-14)


def test_batched_lsmr_follows_scipy_lsmr_column_by_column():
    import scipy.sparse.linalg as sla

    from pyg_em.linalg import batched_lsmr

    # A loose tolerance, so that the stopping tests (the estimates of ||r|| and ||A^T r||) decide when each column
    # stops: the same iteration and iterate as scipy's lsmr (damp = 0, no condition-number stop) column by column.
    # The seed keeps every column's stopping test clear of its threshold: perturbing A by 1e-11 relative moves no
    # column's iteration count and its iterate by < 1e-6 relative. (Seed 3 had a column at its threshold: in the full
    # suite on CI, rounding alone moved that column's iterate by 5 %.)
    gen = torch.Generator().manual_seed(9)
    A = torch.randn(40, 25, generator=gen, dtype=torch.float64) * torch.logspace(0, 2, 25, dtype=torch.float64)
    B = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    B[:, 2] = A @ torch.randn(25, generator=gen, dtype=torch.float64)  # a consistent column: it stops on ||r||
    for M in (A, A.t().contiguous()):
        rhs = B[: M.size(0)]
        X, iterations = batched_lsmr(*_products(M), rhs, M.size(1), atol=1e-2)
        expected = []
        for j in range(3):
            ref, _, ref_iterations, *_ = sla.lsmr(M.numpy(), rhs[:, j].numpy(), atol=1e-2, btol=1e-2, conlim=0,
                                                  maxiter=200)
            x, column_iterations = batched_lsmr(*_products(M), rhs[:, j], M.size(1), atol=1e-2)
            assert column_iterations == ref_iterations, (tuple(M.shape), j)
            ref = torch.from_numpy(ref)
            # Equal up to rounding (amplified by the loss of orthogonality of the Lanczos vectors).
            assert (x - ref).abs().max() <= 1e-4 * ref.abs().max()
            assert (X[:, j] - x).abs().max() <= 1e-4 * ref.abs().max()  # a column stops updating once it is done
            expected.append(ref_iterations)
        assert iterations == max(expected)
        full = torch.linalg.pinv(M) @ rhs
        assert (X - full).abs().max() > 1e-6 * full.abs().max()  # stopped early: the tolerance was in effect


@pytest.mark.parametrize("solver", ["iterate", "anderson"])
def test_fixed_point_caps_the_applications_of_f_and_reports_the_residual_by_hand(solver):
    from pyg_em.linalg import ConvergenceError, fixed_point

    # f(z) = z / 2 + c from z0 = 0: the iterates are c, 1.5 c, 1.75 c, ...; at the third application
    # ||f(z) - z|| / max(||f(z)||, 1) = 0.25 ||c|| / max(1.75 ||c||, 1): 1/7 for a large c, 0.025 for ||c|| = 0.1.
    for norm_c, expected in ((1e4, 1 / 7), (0.1, 0.025)):
        c = torch.tensor([0.6, -0.8], dtype=torch.float64) * norm_c
        calls = []

        def f(z, c_, calls=calls):
            calls.append(1)
            return 0.5 * z + c_

        if solver == "iterate":
            with pytest.raises(ConvergenceError, match=r"fixed_point \(iterate\): .* after 3 iterations") as info:
                fixed_point(f, torch.zeros(2, dtype=torch.float64), c, solver="iterate", maxiter=3)
            assert info.value.residual == pytest.approx(expected, rel=1e-12)
            assert len(calls) == 3
        else:  # Anderson solves a linear map exactly at its second step: three applications reach the answer
            z = fixed_point(f, torch.zeros(2, dtype=torch.float64), c, maxiter=3, tol=1e-9)
            assert len(calls) == 3 and torch.allclose(z, 2 * c, rtol=1e-9)
            calls.clear()
            with pytest.raises(ConvergenceError, match="after 2 iterations") as info:
                fixed_point(f, torch.zeros(2, dtype=torch.float64), c, maxiter=2, tol=1e-9)
            assert len(calls) == 2 and info.value.residual == pytest.approx(0.5 * norm_c / max(1.5 * norm_c, 1))


def test_fixed_point_neumann_adjoint_by_hand():
    from pyg_em.linalg import ConvergenceError, fixed_point

    # f(z) = W z + x with a symmetric contraction W of spectral radius 0.8: dz*/dx = (I - W)^-1, so the gradient of
    # s * probe . z* is s (I - W)^-1 probe; a small scale s checks that the series' stop is relative to ||g||.
    q, _ = torch.linalg.qr(torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 1.0], [2.0, 0.3, -1.0]], dtype=torch.float64))
    W = q @ torch.diag(torch.tensor([0.8, -0.5, 0.2], dtype=torch.float64)) @ q.t()
    probe = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    for scale in (1e-4, 1.0, 1e3):
        x = torch.tensor([0.3, 1.0, -2.0], dtype=torch.float64, requires_grad=True)
        z = fixed_point(lambda z_, x_: W @ z_ + x_, torch.zeros(3, dtype=torch.float64), x, backward="neumann",
                        tol=1e-12, backward_tol=1e-10)
        (scale * probe @ z).backward()
        expected = scale * torch.linalg.solve(torch.eye(3, dtype=torch.float64) - W, probe)
        assert torch.allclose(x.grad, expected, rtol=1e-8, atol=0), scale
    # Too few terms of the series: an error with the count.
    x = torch.tensor([0.3, 1.0, -2.0], dtype=torch.float64, requires_grad=True)
    z = fixed_point(lambda z_, x_: W @ z_ + x_, torch.zeros(3, dtype=torch.float64), x, backward="neumann",
                    tol=1e-12, backward_maxiter=3)
    with pytest.raises(ConvergenceError, match=r"Neumann series \(is f a contraction in z\?\): .* after 3 iterations"):
        (probe @ z).backward()


def test_fixed_point_argument_errors_name_the_argument():
    from pyg_em.linalg import fixed_point

    z0 = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"^z0 must be a floating-point torch\.Tensor$"):
        fixed_point(lambda z: z, torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match=r"^f must be callable, got int$"):
        fixed_point(3, z0)
    with pytest.raises(ValueError, match=r"^z0 contains NaN or Inf values$"):
        fixed_point(lambda z: z, torch.tensor([float("inf")]))
    with pytest.raises(ValueError, match=r"^solver must be one of \('anderson', 'iterate'\), got 'broyden'$"):
        fixed_point(lambda z: z, z0, solver="broyden")
    with pytest.raises(ValueError, match=r"^backward must be one of \('cg', 'neumann'\), got 'lu'$"):
        fixed_point(lambda z: z, z0, backward="lu")
    for name in ("tol", "backward_tol"):
        with pytest.raises(ValueError, match=f"^{name} must be positive, got 0.0$"):
            fixed_point(lambda z: z, z0, **{name: 0.0})
    for name in ("maxiter", "backward_maxiter", "memory"):
        with pytest.raises(ValueError, match=name):
            fixed_point(lambda z: z, z0, **{name: 0})


def _weighted_grid_system(side=12, shift=1e-2):
    from pyg_em.linalg import laplacian_coo

    pairs = [(r * side + c, r * side + c + 1) for r in range(side) for c in range(side - 1)]
    pairs += [(r * side + c, (r + 1) * side + c) for r in range(side - 1) for c in range(side)]
    weights = [1.0 + (k % 5) for k in range(len(pairs))]
    edge_index = torch.tensor(pairs + [(j, i) for i, j in pairs]).t()
    return laplacian_coo(edge_index, torch.tensor(weights * 2, dtype=torch.float64), side * side, shift=shift)


def test_amg_v_cycle_and_jacobi_weights_by_hand():
    import warnings

    import scipy.sparse as sp

    from pyg_em.linalg import AMGPreconditioner

    indices, values, n = _weighted_grid_system()
    mat = sp.csr_matrix((values.numpy(), (indices[0].numpy(), indices[1].numpy())), shape=(n, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's "sparse CSR is in beta"
        fine = torch.sparse_csr_tensor(torch.from_numpy(mat.indptr).long(), torch.from_numpy(mat.indices).long(),
                                       torch.from_numpy(mat.data), (n, n))
        amg = AMGPreconditioner(mat, max_coarse=20, fine=fine)
        again = AMGPreconditioner(mat, max_coarse=20)
        single = AMGPreconditioner(mat, max_coarse=20, dtype=torch.float32)
    assert amg.num_levels == 3 and len(amg.levels) == 2 and amg.levels[0]["A"] is fine  # the caller's copy is used
    dense = [(level["A"].to_dense(), level["P"].to_dense()) for level in amg.levels]
    assert torch.allclose(dense[0][0], torch.from_numpy(mat.toarray()))
    # Damped Jacobi weights omega = 4 / (3 rho(D^-1 A)), rho estimated (a few power steps, padded by 5 %).
    for (A, P), level in zip(dense, amg.levels):
        dinv = 1.0 / A.diagonal()
        rho = float(torch.linalg.eigvals(dinv[:, None] * A).abs().max())
        omega = level["w"].squeeze(-1) / dinv
        assert torch.allclose(omega, omega[0].expand_as(omega))
        assert 4 / (3 * 1.05 * rho) * (1 - 1e-9) <= float(omega[0]) <= 4 / (3 * 1.05 * rho) * 1.08
        assert torch.allclose(level["R"].to_dense(), P.t())
    # The estimate is seeded: the same fine matrix gets the same smoother (pyamg's coarse levels use its own RNG).
    assert torch.equal(amg.levels[0]["w"], again.levels[0]["w"])
    # The symmetric V-cycle, written out: pre-smooth from 0, coarse-grid correction (exact on the last level, by
    # the Galerkin product P^T A P), post-smooth.
    def v_cycle(prec, depth, b):
        A, P = prec.levels[min(depth, len(prec.levels) - 1)]["A"], prec.levels[min(depth, len(prec.levels) - 1)]["P"]
        A, P = A.to_dense().double(), P.to_dense().double()
        if depth == len(prec.levels):
            return torch.linalg.solve(P.t() @ A @ P, b)
        w = prec.levels[depth]["w"].double()
        x = w * b
        x = x + P @ v_cycle(prec, depth + 1, P.t() @ (b - A @ x))
        return x + w * (b - A @ x)

    B = torch.stack([torch.linspace(-1.0, 2.0, n, dtype=torch.float64), torch.sin(torch.arange(n) * 0.37).double()], 1)
    expected = v_cycle(amg, 0, B)
    assert torch.allclose(amg(B), expected, rtol=1e-10, atol=1e-12)
    assert torch.allclose(amg(B[:, 1]), expected[:, 1], rtol=1e-10, atol=1e-12)
    out32 = single(B.float())  # float32 throughout the cycle (P and R included)
    assert out32.dtype == torch.float32 and all(level["P"].dtype == torch.float32 for level in single.levels)
    assert torch.allclose(out32.double(), v_cycle(single, 0, B), rtol=1e-4, atol=1e-4)
    assert repr(amg) == f"AMGPreconditioner(levels=3, sizes=[144, {dense[1][0].size(0)}, {dense[1][1].size(1)}], " \
                        f"operator_complexity={amg.operator_complexity:.3f})"


def test_pinv_neumann_series_term_by_term_and_its_last_check():
    from pyg_em.linalg import ConvergenceError

    # x_k = sum_{i <= k} T^i D^-1 b with T = I - D^-1 (L + eps I), D = diag(L + eps I): written densely. The
    # tolerance is set between the 22nd and 23rd relative terms, so the series must stop at the 23rd -- a cap
    # that is not a multiple of the 10-term check interval is still checked at its last term.
    pairs, weights = [(0, 1), (1, 2), (2, 3), (0, 2), (3, 4)], [1.0, 2.5, 0.7, 1.3, 4.0]
    edge_index = torch.tensor(pairs + [(j, i) for i, j in pairs]).t()
    edge_weight = torch.tensor(weights * 2, dtype=torch.float64)
    lap = dense_laplacian(pairs, weights, 5, shift=0.1)
    dinv = 1.0 / lap.diagonal()
    T = torch.eye(5, dtype=torch.float64) - dinv[:, None] * lap
    b = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0], dtype=torch.float64)
    term, x, rel, sums = dinv * b, dinv * b, [], []
    for _ in range(30):
        term = T @ term
        x = x + term
        rel.append(float(term.norm() / x.norm()))
        sums.append(x)
    assert all(a > b_ for a, b_ in zip(rel, rel[1:]))  # strictly decreasing: the stopping term is unique
    tol = (rel[21] * rel[22]) ** 0.5
    op = LaplacianPseudoInverse(edge_index, edge_weight, method="neumann", eps=0.1, tol=tol, maxiter=23)
    out = op @ b
    assert torch.allclose(out, sums[22], rtol=1e-12) and not torch.allclose(out, sums[21], rtol=1e-9)
    with pytest.raises(ConvergenceError, match="Neumann series of the Laplacian: .* after 22 iterations"):
        LaplacianPseudoInverse(edge_index, edge_weight, method="neumann", eps=0.1, tol=tol, maxiter=22) @ b


def test_pinv_eigenpairs_sum_duplicate_edges_and_keep_the_dtype():
    # (1, 2) stored twice in each direction: the Laplacian sums them (weight 2.5 + 1.0).
    pairs, weights = [(0, 1), (1, 2), (2, 3), (0, 2), (3, 4), (1, 2)], [1.0, 2.5, 0.7, 1.3, 4.0, 1.0]
    edge_index = torch.tensor(pairs + [(j, i) for i, j in pairs]).t()
    edge_weight = torch.tensor(weights * 2, dtype=torch.float64)
    expected = torch.linalg.pinv(dense_laplacian(pairs, weights, 5))
    B = torch.tensor([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0], [2.0, 1.0], [0.25, -0.5]], dtype=torch.float64)
    op = LaplacianPseudoInverse(edge_index, edge_weight, method="lowrank", rank=4)
    assert torch.allclose(op @ B, expected @ B, atol=1e-10)
    single = LaplacianPseudoInverse(edge_index, edge_weight.float(), method="lowrank", rank=4)
    lam, vec = single.eigenpairs()
    assert lam.dtype == vec.dtype == torch.float32
    out = single @ B.float()
    assert out.dtype == torch.float32 and torch.allclose(out.double(), expected @ B, atol=1e-4)


def test_pinv_and_lstsq_reject_bad_right_hand_sides_and_lstsq_is_strict_by_default():
    from pyg_em.linalg import ConvergenceError, sparse_lstsq

    pairs, weights = [(0, 1), (1, 2), (2, 3), (0, 2)], [0.5, 2.0, 1.5, 3.0]
    op = LaplacianPseudoInverse(torch.tensor(pairs + [(j, i) for i, j in pairs]).t(),
                                torch.tensor(weights * 2, dtype=torch.float64))
    shape_message = r"^B must be a floating-point torch\.Tensor of shape \(N,\) or \(N, k\)$"
    for bad in ([1.0, 2.0, 3.0, 4.0], torch.arange(4)):
        with pytest.raises(TypeError, match=shape_message):
            op @ bad
    with pytest.raises(TypeError, match=r"^B has dtype torch\.float16, but the sparse solvers support float32 and"):
        op @ torch.ones(4, dtype=torch.float16)
    # A tall 6 x 3 system: float16 B is named; one iteration cannot converge, and that raises by default.
    indices = torch.tensor([[0, 0, 1, 1, 2, 3, 3, 4, 5, 5], [0, 2, 0, 1, 1, 1, 2, 0, 2, 1]])
    vals = torch.tensor([1.5, -0.5, 2.0, 0.7, -1.2, 0.4, 3.0, 0.9, -2.2, 1.1], dtype=torch.float64)
    with pytest.raises(TypeError, match=r"^B has dtype torch\.float16"):
        sparse_lstsq((indices, vals, (6, 3)), torch.ones(6, dtype=torch.float16))
    b = torch.tensor([1.0, -2.0, 0.5, 4.0, 0.0, 1.5], dtype=torch.float64)
    with pytest.raises(ConvergenceError, match=r"^LSMR on A: did not converge: .* after 1 iterations$"):
        sparse_lstsq((indices, vals, (6, 3)), b, maxiter=1)


def test_auto_preconditioner_probe_decides_by_the_predicted_jacobi_iterations(monkeypatch, pcg_choices):
    import math
    import warnings

    import pyg_em.linalg._sparse_solve as solve_module
    from pyg_em.linalg import batched_pcg, sparse_solve

    # The probe: 10 Jacobi-PCG iterations on S = D^-1/2 A D^-1/2, then the worst column's relative residual rel
    # predicts log(tol / rel) / log(rel^(1/10)) more; AMG is chosen when that exceeds the break-even count.
    monkeypatch.setattr(solve_module, "AUTO_AMG_MIN_NODES", 1)
    monkeypatch.setattr(solve_module, "AUTO_PROBE_ITERATIONS", 10)
    indices, values, n = _weighted_grid_system(shift=1e-3)
    dense = _coo_dense(indices, values, n)
    B = torch.stack([torch.cos(torch.arange(n) * 0.21).double(), 100 * torch.linspace(-1, 1, n).double()], 1)
    d = dense.diagonal().rsqrt()
    S, Bs = d[:, None] * dense * d[None], B * d[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X, spent = batched_pcg(lambda V: S @ V, Bs, maxiter=10, strict=False)
    rel = float(((Bs - S @ X).norm(dim=0) / Bs.norm(dim=0)).max())
    remaining = math.log(1e-10 / rel) / math.log(rel ** (1 / spent))
    assert spent == 10 and 5 < remaining < 500
    choices = pcg_choices
    exact = torch.linalg.solve(dense, B)
    for break_even, expected in ((math.floor(remaining) - 1, "amg"), (math.ceil(remaining) + 1, "jacobi")):
        monkeypatch.setattr(solve_module, "AMG_BREAK_EVEN_ITERATIONS", break_even)
        assert torch.allclose(sparse_solve((indices, values, n), B, method="cg"), exact, rtol=1e-7, atol=1e-8)
        assert choices[-1] == expected, (break_even, remaining)
    # Started from the answer, the probe has nothing left to do: Jacobi, however low the break-even count.
    monkeypatch.setattr(solve_module, "AMG_BREAK_EVEN_ITERATIONS", 0)
    assert torch.allclose(sparse_solve((indices, values, n), B, method="cg", x0=exact), exact, rtol=1e-9)
    assert choices[-1] == "jacobi"

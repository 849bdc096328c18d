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

"""SparsityPattern: one structural analysis reused by many solves, never with stale numbers; GEM's shared pattern."""

import pytest
import torch
from torch.autograd import gradcheck

from pyg_em.em import GEMConfig, GEMUnrolledEM, undirected_pairs
from pyg_em.em.objective import (
    PrecisionStructure,
    masked_precision_operator,
    precision_operator,
    q_gradient,
    rademacher_probes,
)
from pyg_em.linalg import SparsityPattern, laplacian_coo, sparse_solve
from pyg_em.linalg import _sparse_solve as ss
from tests.test_linalg_solve import dense_laplacian, random_graph

D = torch.float64


def _dense(indices, values, n):
    return torch.zeros(n, n, dtype=values.dtype).index_put((indices[0], indices[1]), values, accumulate=True)


@pytest.fixture
def renumbered(monkeypatch):
    # CG renumbers large CPU systems by RCM (from the pattern); force it on small ones so that path is checked too.
    monkeypatch.setattr(ss, "RCM_MIN_NODES", 1)


@pytest.mark.parametrize("method", ["cg", "direct"])
def test_one_pattern_serves_new_values_exactly(method, renumbered):
    edge_index, w = random_graph(30, 0.2, seed=1, low=-1, high=1)
    indices, values, n = laplacian_coo(edge_index, w, shift=0.1)
    pattern = SparsityPattern(indices, n)
    B = torch.randn(n, 3, dtype=D, generator=torch.Generator().manual_seed(0))
    for scale in (1.0, 3.0, 0.2):  # new values each time: the answer must follow them, not the first ones
        new_values = values * scale + 0.05 * (indices[0] == indices[1])
        X = sparse_solve((indices, new_values, n), B, method=method, pattern=pattern, tol=1e-12)
        torch.testing.assert_close(X, torch.linalg.solve(_dense(indices, new_values, n), B))


def test_pattern_sums_duplicates_and_checks_symmetry_by_gather(renumbered):
    # duplicated stored entries are summed, as in any sparse matrix, in the CSR layout and the diagonal
    indices = torch.tensor([[0, 1, 1, 2, 0, 1, 2, 0, 0], [1, 0, 2, 1, 0, 1, 2, 1, 0]])
    values = torch.tensor([-1.0, -1.5, -2.0, -2.0, 1.2, 3.6, 2.3, -0.5, 0.4], dtype=D)
    pattern = SparsityPattern(indices, 3)
    assert pattern.symmetric and pattern.nnz == 7
    dense = _dense(indices, values, 3)
    torch.testing.assert_close(pattern.csr(values).to_dense(), dense)
    torch.testing.assert_close(pattern.diagonal(values), dense.diagonal())
    assert pattern.asymmetry(values) is None  # (0,1): -1 - 0.5 = -1.5 = (1,0)
    X = sparse_solve((indices, values, 3), torch.ones(3, dtype=D), method="cg", pattern=pattern)
    torch.testing.assert_close(X, torch.linalg.solve(dense, torch.ones(3, dtype=D)))
    # same pattern, asymmetric values: found by the gather, with the differing entry named
    skewed = values.clone()
    skewed[3] = -2.5
    i, j, a, b, count = pattern.asymmetry(skewed)
    assert (i, j, a, b, count) == (1, 2, -2.0, -2.5, 2)
    with pytest.raises(ValueError, match=r"not symmetric: A\[1, 2\]"):
        sparse_solve((indices, skewed, 3), torch.ones(3, dtype=D), pattern=pattern)
    # a pattern without mirrors falls back to the general check (and its message)
    lower = torch.tensor([[0, 1, 1], [0, 0, 1]])
    directed = SparsityPattern(lower, 2)
    assert not directed.symmetric
    with pytest.raises(ValueError, match="not symmetric"):
        sparse_solve((lower, torch.tensor([2.0, -1.0, 2.0], dtype=D), 2), torch.ones(2, dtype=D), pattern=directed)


def test_pattern_refuses_other_or_modified_indices():
    edge_index, w = random_graph(12, 0.4, seed=2, low=0, high=0)
    indices, values, n = laplacian_coo(edge_index, w, shift=0.5)
    pattern = SparsityPattern(indices, n)
    B = torch.ones(n, dtype=D)
    assert pattern.matches(indices, n) and pattern.matches(indices.clone(), n)  # equal entries, other tensor
    assert not pattern.matches(indices, n + 1)
    other_indices, other_values, _ = laplacian_coo(*random_graph(12, 0.4, seed=3, low=0, high=0), shift=0.5)
    with pytest.raises(ValueError, match="pattern was built for other indices"):
        sparse_solve((other_indices, other_values, n), B, method="cg", pattern=pattern)
    # the caller's tensor changed in place after the analysis: the pattern notices (it kept its own copy)
    moved = indices.clone()
    moved_pattern = SparsityPattern(moved, n)
    moved[:, [0, 1]] = moved[:, [1, 0]].flip(0)
    assert not moved_pattern.matches(moved, n)
    with pytest.raises(TypeError, match="SparsityPattern"):
        sparse_solve((indices, values, n), B, pattern=indices)
    with pytest.raises(ValueError, match="outside"):
        SparsityPattern(indices, 3)
    with pytest.raises(TypeError, match="torch.long"):
        SparsityPattern(indices.float(), n)


def test_gradients_through_a_shared_pattern(renumbered):
    edge_index, _ = random_graph(8, 0.5, seed=4, low=0, high=0)
    pairs, _ = undirected_pairs(edge_index, 8)
    structure = PrecisionStructure(pairs, 8)
    B = torch.randn(8, 2, dtype=D, generator=torch.Generator().manual_seed(1), requires_grad=True)
    weight = (0.5 + torch.rand(pairs.size(1), dtype=D, generator=torch.Generator().manual_seed(2))).requires_grad_()

    def solve(w, rhs):
        operator = structure.operator(w, 0.3)
        return sparse_solve(operator, rhs, method="cg", tol=1e-13, pattern=structure.pattern)

    assert gradcheck(solve, (weight, B))


def test_precision_structure_matches_the_laplacian_and_the_dense_blocks():
    edge_index, _ = random_graph(10, 0.4, seed=5, low=0, high=0)
    pairs, _ = undirected_pairs(edge_index, 10)
    weight = 0.3 + torch.rand(pairs.size(1), dtype=D, generator=torch.Generator().manual_seed(3))
    structure = PrecisionStructure(pairs, 10)
    indices, values, n = precision_operator(pairs, weight, 10, 0.2, structure)
    both = torch.cat([pairs, pairs.flip(0)], dim=1)
    oracle = dense_laplacian(both, torch.cat([weight, weight]), 10, 0.2)
    torch.testing.assert_close(_dense(indices, values, n), oracle)
    assert structure.pattern_of(indices) is structure.pattern
    diagonal = torch.rand(10, 3, dtype=D, generator=torch.Generator().manual_seed(4))
    block_indices, block_values, size = masked_precision_operator(pairs, weight, 10, 0.2, diagonal, structure)
    expected = torch.block_diag(*[oracle + torch.diag(diagonal[:, f]) for f in range(3)])
    torch.testing.assert_close(_dense(block_indices, block_values, size), expected)
    assert structure.pattern_of(block_indices) is not None and structure.pattern_of(block_indices.clone()) is None
    # the same masked structure is reused for the next call with new values
    assert masked_precision_operator(pairs, 2 * weight, 10, 0.2, diagonal, structure)[0] is block_indices


def test_q_gradient_with_a_shared_structure_equals_a_fresh_one():
    edge_index, _ = random_graph(40, 0.2, seed=6, low=0, high=0)
    pairs, _ = undirected_pairs(edge_index, 40)
    weight = 0.3 + torch.rand(pairs.size(1), dtype=D, generator=torch.Generator().manual_seed(5))
    z_hat = torch.randn(40, 3, dtype=D, generator=torch.Generator().manual_seed(6))
    probes = rademacher_probes(40, 4, z_hat, torch.Generator().manual_seed(7))
    options = {"method": "cg", "tol": 1e-12}
    fresh = q_gradient(z_hat, pairs, weight, 0.1, 0.8, probes, options=options)
    shared = q_gradient(z_hat, pairs, weight, 0.1, 0.8, probes, options=options,
                        structure=PrecisionStructure(pairs, 40))
    torch.testing.assert_close(shared, fresh)


def test_unrolled_layers_analyse_the_pattern_once_for_forward_and_backward(monkeypatch):
    built = []
    original = SparsityPattern.__init__

    def counting(self, indices, num_nodes):
        built.append(num_nodes)
        original(self, indices, num_nodes)

    monkeypatch.setattr(SparsityPattern, "__init__", counting)
    n = 2100  # above AUTO_DIRECT_MAX_NODES, so every solve is CG on the shared pattern
    ring = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
    chords = torch.stack([torch.arange(n), (torch.arange(n) + 7) % n])
    edge_index = torch.cat([ring, chords, ring.flip(0), chords.flip(0)], dim=1)
    x = torch.randn(n, 2, dtype=D, generator=torch.Generator().manual_seed(8)).requires_grad_()
    weight, z_hat = GEMUnrolledEM(num_layers=3)(x, edge_index, generator=torch.Generator().manual_seed(9))
    (z_hat.sum() + weight.sum()).backward()
    assert built == [n]  # 3 layers x (E-step + M-step) solves and their backward solves: one analysis
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())


def test_estep_tolerance_in_probe_mode():
    assert GEMConfig().estep_solver_options(torch.float64) == {"tol": 1e-6}
    assert GEMConfig().estep_solver_options(torch.float32) == {"tol": 1e-5}  # float32 attains no tighter
    assert GEMConfig(solver_options={"tol": 1e-9}).estep_solver_options(torch.float64) == {"tol": 1e-9}
    with pytest.raises(ValueError, match="estep_tol"):
        GEMConfig(estep_tol=0)

import pytest
import torch

from pyg_em.nn.sparse_matmul import csr_pattern, edge_value_matmul, sparse_pair


def random_entries(rows, cols, nnz, seed=0, duplicates=True):
    g = torch.Generator().manual_seed(seed)
    row, col = torch.randint(rows, (nnz,), generator=g), torch.randint(cols, (nnz,), generator=g)
    if duplicates:  # repeat a few entries: duplicates must add up, like a multigraph
        row, col = torch.cat([row, row[:3]]), torch.cat([col, col[:3]])
    return row, col


def dense_of(row, col, values, shape):
    return torch.zeros(shape, dtype=values.dtype, device=values.device).index_put_((row, col), values, accumulate=True)


@pytest.mark.parametrize("shape", [(6, 6), (4, 7)])
def test_edge_value_matmul_matches_dense_and_gradchecks(shape, device):
    row, col = random_entries(*shape, nnz=15)
    row, col = row.to(device), col.to(device)
    pattern = csr_pattern(row, col, shape)
    values = torch.rand(row.numel(), dtype=torch.float64, device=device, requires_grad=True)
    b = torch.randn(shape[1], 3, dtype=torch.float64, device=device, requires_grad=True)
    out = edge_value_matmul(values, b, pattern)
    assert torch.allclose(out, dense_of(row, col, values, shape) @ b)
    assert torch.autograd.gradcheck(lambda v, m: edge_value_matmul(v, m, pattern), (values, b))
    # independent oracle for the gradients: autograd through the dense product
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (values, b), grad)
    want = torch.autograd.grad(dense_of(row, col, values, shape) @ b, (values, b), grad)
    assert all(torch.allclose(g, w) for g, w in zip(got, want))


def test_edge_value_matmul_empty_rows_and_bad_input():
    row, col = torch.tensor([0, 0, 3]), torch.tensor([1, 2, 0])  # rows 1 and 2 have no entries
    pattern = csr_pattern(row, col, (4, 3))
    values = torch.tensor([1.0, 2.0, 3.0])
    out = edge_value_matmul(values, torch.eye(3), pattern)
    assert torch.equal(out, dense_of(row, col, values, (4, 3)))
    with pytest.raises(ValueError, match="values"):
        edge_value_matmul(values[:2], torch.eye(3), pattern)
    with pytest.raises(ValueError, match="b must"):
        edge_value_matmul(values, torch.eye(4), pattern)
    with pytest.raises(TypeError, match="dtype"):
        edge_value_matmul(values, torch.eye(3, dtype=torch.float64), pattern)


def test_edge_value_matmul_without_sddmm_kernel(monkeypatch):
    def unsupported(*args, **kwargs):
        raise NotImplementedError("no SDDMM here")

    monkeypatch.setattr(torch.sparse, "sampled_addmm", unsupported)
    row, col = random_entries(5, 5, nnz=12, seed=1)
    pattern = csr_pattern(row, col, (5, 5))
    values = torch.rand(row.numel(), dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, m: edge_value_matmul(v, m, pattern), (values, b))


@pytest.mark.parametrize("shape", [(5, 7), (7, 5), (3, 3)])
def test_sparse_pair_matches_matrix_and_transpose(shape, device):
    torch.manual_seed(0)
    dense = torch.randn(shape, device=device) * (torch.rand(shape, device=device) < 0.4)
    dense[0] = 0.0  # an empty row
    dense[:, -1] = 0.0  # an empty column
    for source in (dense, dense.to_sparse_coo(), torch.zeros(shape, device=device)):
        a, a_t = sparse_pair(source)
        expected = source.to_dense() if source.layout != torch.strided else source
        assert a.layout == a_t.layout == torch.sparse_csr
        assert torch.equal(a.to_dense(), expected) and torch.equal(a_t.to_dense(), expected.t())

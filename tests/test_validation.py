import pytest
import torch

from pyg_em.validation import (
    check_edge_index,
    check_edge_weight,
    check_features,
    check_graph,
    check_n_clusters,
    check_positive,
    validation_disabled,
)


def test_edge_index_must_be_long():
    with pytest.raises(TypeError, match="edge_index.*torch.long"):
        check_edge_index(torch.zeros(2, 3, dtype=torch.int32), 4)


def test_edge_index_shape():
    with pytest.raises(ValueError, match=r"edge_index must have shape \(2, E\)"):
        check_edge_index(torch.zeros(3, 3, dtype=torch.long), 4)


def test_edge_index_range():
    with pytest.raises(ValueError, match=r"edge_index.*\[0, 4\)"):
        check_edge_index(torch.tensor([[0, 4], [1, 2]]), 4)
    with pytest.raises(ValueError, match="edge_index"):
        check_edge_index(torch.tensor([[-1, 0], [1, 2]]), 4)


def test_edge_index_not_tensor():
    with pytest.raises(TypeError, match="edge_index must be a torch.Tensor"):
        check_edge_index([[0, 1], [1, 0]], 2)


def test_features_nan_and_dtype():
    with pytest.raises(ValueError, match="x contains NaN"):
        check_features(torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        check_features(torch.tensor([[float("inf")]]))
    with pytest.raises(TypeError, match="x must be a floating-point"):
        check_features(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        check_features(torch.zeros(3))


def test_edge_weight_checks():
    with pytest.raises(ValueError, match=r"edge_weight must have shape \(3,\)"):
        check_edge_weight(torch.ones(2), 3)
    with pytest.raises(ValueError, match="edge_weight must be non-negative"):
        check_edge_weight(torch.tensor([1.0, -1.0]), 2)
    assert check_edge_weight(torch.tensor([1.0, -1.0]), 2, nonnegative=False) is not None


def test_check_graph_shape_mismatch():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="edge_index"):
        check_graph(x, torch.tensor([[0, 3], [1, 0]]))
    with pytest.raises(ValueError, match="edge_index is empty"):
        check_graph(x, torch.zeros(2, 0, dtype=torch.long), require_edges=True)
    assert check_graph(x, torch.tensor([[0, 2], [1, 0]])) == 3


def test_n_clusters():
    with pytest.raises(ValueError, match="n_clusters=5 exceeds the number of nodes"):
        check_n_clusters(5, 4)
    with pytest.raises(ValueError, match="n_clusters must be at least 2"):
        check_n_clusters(1)
    with pytest.raises(TypeError, match="n_clusters must be an int"):
        check_n_clusters(2.0)


def test_positive():
    with pytest.raises(ValueError, match="eta must be > 0"):
        check_positive(0.0, "eta")
    assert check_positive(0, "eps", allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="eta must be finite"):
        check_positive(float("nan"), "eta")


def test_validation_disabled_skips_data_checks_only():
    bad = torch.tensor([[float("nan")]])
    with validation_disabled():
        check_features(bad)  # data-dependent check skipped
        with pytest.raises(TypeError):
            check_features(torch.zeros(1, 1, dtype=torch.long))  # structural check still runs
    with pytest.raises(ValueError):
        check_features(bad)

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


def test_integers_as_users_hold_them():
    import numpy as np

    from pyg_em.validation import check_int, check_positive_int

    for value in (7, np.int64(7), np.int32(7), np.uint8(7), torch.tensor(7), torch.tensor(7, dtype=torch.int32),
                  np.array(7)):
        assert check_int(value, "n") == 7 and type(check_int(value, "n")) is int
        assert check_positive_int(value, "epochs") == 7 and type(check_positive_int(value, "epochs")) is int
        assert check_n_clusters(value) == 7 and type(check_n_clusters(value)) is int
    for bad in (True, np.True_, torch.tensor(True), 7.0, np.float64(7.0), torch.tensor(7.0), torch.tensor([7]),
                "7", None):
        with pytest.raises(TypeError, match="n must be an integer"):
            check_int(bad, "n")
        with pytest.raises(TypeError, match="n_clusters must be an integer"):
            check_n_clusters(bad)
        with pytest.raises(ValueError, match="epochs must be a positive int"):
            check_positive_int(bad, "epochs")
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        check_positive_int(np.int64(0), "epochs")


def test_positive_accepts_numpy_and_tensor_reals():
    import numpy as np

    assert check_positive(np.float32(0.5), "lr") == 0.5
    assert check_positive(torch.tensor(0.25), "lr") == 0.25
    assert check_positive(np.int64(3), "lr") == 3.0
    with pytest.raises(TypeError, match="lr must be a number"):
        check_positive(np.True_, "lr")


def test_daegc_accepts_numpy_and_torch_cluster_counts():
    import numpy as np

    from pyg_em.models import DAEGC

    y = torch.tensor([0, 3, 1, 6])
    for k in (np.int64(7), y.max() + 1, np.asarray(y.numpy()).max() + 1):
        assert DAEGC(5, k, hidden_channels=4, embedding_channels=2).n_clusters == 7


def test_daegc_losses_validate_their_input_like_gae():
    from torch_geometric.data import Data

    from pyg_em.models import DAEGC

    torch.manual_seed(0)
    model = DAEGC(4, 2, hidden_channels=4, embedding_channels=2)
    model.head.refresh_target(torch.full((5, 2), 0.5))
    x = torch.randn(5, 4)
    e = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    cases = [
        (Data(x=x, edge_index=e.int()), TypeError, "edge_index must have dtype torch.long"),
        (Data(x=x, edge_index=e + 10), ValueError, r"edge_index holds node ids in \[10, 14\]"),
        (Data(x=x, edge_index=torch.empty(2, 0, dtype=torch.long)), ValueError, "edge_index is empty"),
        (Data(x=x, edge_index=e, edge_weight=torch.tensor([0.0, 1, 1, 1, 1, 1])), ValueError,
         "edge_weight: node 0 has edges but all their weights are 0"),
    ]
    for data, error, message in cases:
        for loss in (model.pretrain_loss, model.loss):
            with pytest.raises(error, match=message):
                loss(data)
    # Zero weights are fine where a node keeps a positive one; inside a Trainer the range checks are skipped.
    ok = Data(x=x, edge_index=e, edge_weight=torch.tensor([1.0, 1, 0, 1, 1, 1]))
    assert torch.isfinite(model.loss(ok).total) and torch.isfinite(model.pretrain_loss(ok).total)
    with validation_disabled():
        assert torch.isfinite(model.loss(ok).total)


def test_other_integer_arguments_accept_numpy_and_torch_ints():
    import numpy as np

    from pyg_em.datasets import attributed_sbm
    from pyg_em.em.candidates import knn_candidate_graph
    from pyg_em.train import shard_indices

    data = attributed_sbm(np.int64(40), torch.tensor(2), 4, num_features=np.int32(3), seed=1)
    assert data.num_nodes == 40 and data.x.shape == (40, 3)
    with pytest.raises(ValueError, match="num_nodes must be an int"):
        attributed_sbm(True, 2)
    x = torch.randn(10, 2)
    assert torch.equal(knn_candidate_graph(x, np.int64(3)), knn_candidate_graph(x, 3))
    with pytest.raises(ValueError, match="k must be an int"):
        knn_candidate_graph(x, 3.0)
    assert torch.equal(shard_indices(np.int64(9), rank=np.int64(1), world_size=torch.tensor(2)),
                       shard_indices(9, rank=1, world_size=2))

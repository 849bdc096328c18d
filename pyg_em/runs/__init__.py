"""One function per method that the ``pyg-em run`` command can call.

Each runner takes ``(data, config)`` — a :class:`~torch_geometric.data.Data` and a :class:`RunConfig` — and
returns a :class:`RunResult`. The registry :data:`RUNNERS` maps method names to runners.
"""

from pyg_em.runs.baselines import run_kmeans, run_spectral
from pyg_em.runs.common import RunConfig, RunResult

RUNNERS = {
    "kmeans": run_kmeans,
    "spectral": run_spectral,
}

__all__ = ["RUNNERS", "RunConfig", "RunResult"]

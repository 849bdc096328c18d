"""Shared fixtures: every device available (CUDA when present), tiny graphs with known answers."""

import os
from pathlib import Path

import pytest
import torch

try:
    from torch_geometric.typing import WITH_PYG_LIB, WITH_TORCH_SPARSE
except ImportError:  # pragma: no cover
    WITH_PYG_LIB = WITH_TORCH_SPARSE = False

# NeighborLoader/LinkNeighborLoader need pyg_lib or torch_sparse (CI always has torch_sparse; a bare
# GPU image may have neither).
requires_sampler = pytest.mark.skipif(
    not (WITH_PYG_LIB or WITH_TORCH_SPARSE), reason="neighbour sampling needs pyg_lib or torch_sparse"
)

# The suite's tensors are small: one intra-op thread avoids oversubscribing CI's two cores.
torch.set_num_threads(1)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SHARED_PLANETOID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "planetoid"


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture
def planetoid_root():
    root = Path(os.environ.get("PYG_EM_DATA", SHARED_PLANETOID))
    if not (root / "Cora" / "raw" / "ind.cora.x").is_file():
        pytest.skip("Planetoid raw files not available")
    return root


@pytest.fixture
def pcg_choices(monkeypatch):
    """The preconditioner each CG solve of ``sparse_solve`` picked (``'jacobi'``/``'amg'``/...), in order: a spy
    on ``_LinearSystem._pcg`` that records ``cache['choice']`` after the real solve."""
    from pyg_em.linalg import _sparse_solve

    choices = []
    real = _sparse_solve._LinearSystem._pcg

    def spy(self, csr, rhs, x0):
        out = real(self, csr, rhs, x0)
        choices.append(self.cache["choice"])
        return out

    monkeypatch.setattr(_sparse_solve._LinearSystem, "_pcg", spy)
    return choices


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYG_EM_CACHE", str(tmp_path / "cache"))


def path_graph(n=4):
    src = torch.arange(n - 1)
    return torch.stack([torch.cat([src, src + 1]), torch.cat([src + 1, src])])


def two_triangles():
    """Two disconnected triangles {0,1,2} and {3,4,5}."""
    pairs = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)]
    e = torch.tensor(pairs).t()
    return torch.cat([e, e.flip(0)], dim=1)

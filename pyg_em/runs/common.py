"""Configuration and result records shared by the runners of ``pyg-em run``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch_geometric.data import Data

from pyg_em.metrics import clustering_metrics, conductance, modularity

__all__ = ["RunConfig", "RunResult", "ConfigError", "check_option_type", "clustering_report"]


class ConfigError(ValueError):
    """A setting from ``--config`` (or the command line) that is unknown or has the wrong type."""


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def check_option_type(name: str, value: Any, default: Any) -> Any:
    """Check that ``value`` has the type of ``default`` (an int is accepted where a float is expected).

    ``default=None`` accepts anything. Returns ``value`` (an int promoted to float where a float is expected).

    Raises:
        ConfigError: Naming ``name``, the expected type and the value that was given.
    """
    if default is None:
        return value
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # bool is a subclass of int: ``epochs = true`` must not pass as an integer, nor ``1`` as a boolean.
    strict = expected is bool or isinstance(value, bool)
    if not (type(value) is expected if strict else isinstance(value, expected)):
        raise ConfigError(f"{name} must be {_type_name(default)}, got {value!r} ({_type_name(value)})")
    return value


@dataclass
class RunConfig:
    """Options common to every method; ``extra`` carries method-specific settings (from ``--config``).

    Args:
        seed (int): Random seed. (default: :obj:`0`)
        epochs (int, optional): Training epochs; ``None`` lets the method choose. (default: :obj:`None`)
        device (str, optional): ``'cpu'``, ``'cuda'``, ``'cuda:1'``; ``None`` picks CUDA when available.
            (default: :obj:`None`)
        batch_size (int, optional): Train on mini-batches of this many seed nodes. (default: :obj:`None`)
        n_clusters (int, optional): Number of clusters; ``None`` uses the number of classes.
            (default: :obj:`None`)
        progress (bool, optional): Show tqdm progress bars (pass it to the
            :class:`~pyg_em.train.Trainer`). (default: :obj:`None`)
        extra (dict): Method settings, the ``[<method>]`` table of the TOML config. (default: :obj:`{}`)
        method (str, optional): Name of the method, used in error messages. (default: :obj:`None`)
    """

    seed: int = 0
    epochs: int | None = None
    device: str | None = None
    batch_size: int | None = None
    n_clusters: int | None = None
    progress: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    method: str | None = None
    resolved: dict[str, Any] = field(default_factory=dict)

    def options(self, defaults: dict[str, Any]) -> dict[str, Any]:
        """Merge :attr:`extra` over a runner's ``defaults``, rejecting unknown keys and wrong types.

        A runner declares its settings once, e.g. ``opts = config.options({"lr": 0.01, "n_init": 10})``;
        the merged settings are also kept in :attr:`resolved` so that the report records what was used.

        Raises:
            ConfigError: For a key not in ``defaults`` or a value whose type differs from the default's.
        """
        section = f"[{self.method}]" if self.method else "method settings"
        unknown = sorted(set(self.extra) - set(defaults))
        if unknown:
            raise ConfigError(f"{section}: unknown key(s) {unknown}; known: {sorted(defaults)}")
        merged = dict(defaults)
        for key, value in self.extra.items():
            merged[key] = check_option_type(f"{section} {key}", value, defaults[key])
        self.resolved.update(merged)
        return merged


@dataclass
class RunResult:
    """What a runner returns; each optional field switches on one part of the report.

    Args:
        metrics (dict): Final scores, ``name -> float``; printed as a table and stored in ``report.json``.
        history (dict): Per-epoch values, ``name -> list of floats``, e.g. ``Trainer.fit``'s return value;
            one loss-curve panel per key (``'eval_epoch'`` gives the x-axis of evaluation metrics).
            (default: :obj:`{}`)
        labels (Tensor, optional): ``(N,)`` predicted cluster of every node; with ``data.y`` it gives the
            confusion matrix. (default: :obj:`None`)
        embedding (Tensor, optional): ``(N, D)`` node embedding, drawn in 2-D (PCA or t-SNE) coloured by
            prediction and by truth. (default: :obj:`None`)
        timings (dict): Seconds spent in named phases, e.g. ``{'fit_s': 3.2}``. (default: :obj:`{}`)
    """

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

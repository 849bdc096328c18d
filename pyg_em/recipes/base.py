"""What every recipe shares: its settings (a dataclass, so each default is written once), type-checked overrides
from a config file or flags, and the result record a run returns."""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch_geometric.data import Data

from pyg_em.metrics import clustering_metrics, conductance, modularity

__all__ = ["Recipe", "RecipeResult", "ConfigError", "check_setting", "clustering_report", "resolve_n_clusters"]


class ConfigError(ValueError):
    """A recipe setting (from ``--config``, ``--set`` or a keyword) that is unknown or has the wrong type."""


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
               dict: "a table", type(None): "nothing"}


def _describe(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _matches(value: Any, hint: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits the annotation ``hint``; returns it converted (an int where a float is expected)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            ok, converted = _matches(value, option)
            if ok:
                return True, converted
        return False, value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            return False, value
        (item,) = typing.get_args(hint) or (Any,)
        converted = []
        for element in value:
            ok, element = _matches(element, item)
            if not ok:
                return False, value
            converted.append(element)
        return True, converted
    if hint is Any:
        return True, value
    if hint is type(None):
        return value is None, value
    # bool is a subclass of int: ``epochs = true`` must not pass as an integer, nor ``1`` as a boolean.
    if isinstance(value, (bool, np.bool_)) or hint is bool:
        return type(value) is hint, value
    if hint is float and isinstance(value, numbers.Real):  # ints and NumPy floats too
        return True, float(value)
    if hint is int and hasattr(value, "__index__") and not isinstance(value, float):
        return True, int(value.__index__())
    return isinstance(value, hint), value


def _hint_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_hint_name(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return f"a list of {_hint_name(typing.get_args(hint)[0]).removeprefix('a ').removeprefix('an ')}s"
    return _TYPE_NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def check_setting(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the type annotation ``hint`` and return it (converted where lossless).

    Raises:
        ConfigError: Naming ``name``, the expected type and the value that was given.
    """
    ok, converted = _matches(value, hint)
    if not ok:
        raise ConfigError(f"{name} must be {_hint_name(hint)}, got {value!r} ({_describe(value)})")
    return converted


@dataclass
class RecipeResult:
    """What :meth:`Recipe.run` returns; each optional field switches on one part of the report.

    Args:
        metrics (dict): Final scores, ``name -> float``.
        model (torch.nn.Module, optional): The trained model (``None`` for transductive baselines).
            (default: :obj:`None`)
        history (dict): Per-epoch values, ``name -> list of floats``. (default: :obj:`{}`)
        labels (Tensor, optional): ``(N,)`` cluster of every node. (default: :obj:`None`)
        proba (Tensor, optional): ``(N, K)`` soft assignment, where the model has one. (default: :obj:`None`)
        embedding (Tensor, optional): ``(N, D)`` node embedding. (default: :obj:`None`)
        timings (dict): Seconds spent in named phases. (default: :obj:`{}`)
        notes (list[str]): One-line remarks for the user (e.g. "made undirected"). (default: :obj:`[]`)
        link_scores (dict, optional): Held-out test pairs of a link-prediction run: ``edge_index`` ``(2, M)``,
            ``score`` ``(M,)`` probabilities, ``label`` ``(M,)`` 1 for edges, 0 for non-edges.
            (default: :obj:`None`)
        selected_epoch (int, optional): The epoch whose weights were kept (validation-based selection).
            (default: :obj:`None`)
        x_label (str): What one history step is, for the plots' x-axis. (default: :obj:`'epoch'`)
        recipe (Recipe, optional): The recipe as run, with every ``'auto'`` setting resolved from the data (what
            ``report.json`` and ``model.pt`` record); ``None`` when nothing was resolved. (default: :obj:`None`)
    """

    metrics: dict[str, float]
    model: torch.nn.Module | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    labels: torch.Tensor | None = None
    proba: torch.Tensor | None = None
    embedding: torch.Tensor | None = None
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    link_scores: dict[str, torch.Tensor] | None = None
    selected_epoch: int | None = None
    x_label: str = "epoch"
    recipe: Recipe | None = None


@dataclass
class Recipe:
    """Base of every recipe: a dataclass whose fields are the method's settings, each default written once.

    A recipe names the model and encoder, the transforms, the optimiser and its schedule, and the selection
    rule; :meth:`run` applies it to a graph. Subclasses set :attr:`method` and implement :meth:`run`;
    trainable ones also implement :meth:`build_model` and :meth:`assign`, which ``pyg-em predict`` uses to
    rebuild a saved model and assign the nodes of a graph without retraining.
    """

    #: Method name as used by ``pyg-em run METHOD``.
    method: ClassVar[str] = ""
    #: Name of this variant in the registry (``'default'``, ``'paper'``); not a setting.
    name: ClassVar[str] = "default"

    # -- settings ------------------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """Every setting with the value in use (what ``report.json`` and ``model.pt`` record)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def setting_types(cls) -> dict[str, Any]:
        """``name -> type annotation`` of every setting."""
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}

    def with_settings(self, overrides: dict[str, Any] | None = None, **kwargs: Any) -> Recipe:
        """A copy with some settings replaced, each checked against its declared type.

        Raises:
            ConfigError: For an unknown setting or a value of the wrong type.
        """
        changes = {**(overrides or {}), **kwargs}
        types_ = self.setting_types()
        where = f"[{self.method}]" if self.method else "recipe"
        unknown = sorted(set(changes) - set(types_))
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(types_)}")
        checked = {k: check_setting(f"{where} {k}", v, types_[k]) for k, v in changes.items()}
        recipe = dataclasses.replace(self, **checked)  # validates in __post_init__
        recipe.name = self.name
        return recipe

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check value ranges (types are checked by :meth:`~pyg_em.recipes.Recipe.with_settings`); raise
        :class:`ConfigError`."""

    def _positive(self, *names: str) -> None:
        for key in names:
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or value <= 0):
                raise ConfigError(f"[{self.method}] {key} must be positive, got {value!r}")

    # -- running -------------------------------------------------------------------------------------------
    def run(self, data: Data, *, n_clusters: int | None = None, seed: int = 0, device: Any = None,
            progress: bool | None = False) -> RecipeResult:
        """Apply the recipe to ``data``: train, evaluate and assign clusters."""
        raise NotImplementedError(f"{type(self).__name__} does not implement run()")

    def build_model(self, in_channels: int, n_clusters: int | None) -> torch.nn.Module:
        """An untrained model with this recipe's architecture (to load a saved ``state_dict`` into)."""
        raise ValueError(f"{self.method} is transductive: it keeps no model that can assign new nodes; "
                         "run it again on the new graph instead")

    def assign(self, model: torch.nn.Module, data: Data) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """``(labels, soft assignment or None, embedding)`` of every node of ``data`` by a trained ``model``."""
        raise ValueError(f"{self.method} is transductive: it cannot assign nodes with a saved model")

    def describe(self) -> str:
        """The first line of the recipe's docstring."""
        return (type(self).__doc__ or "").strip().splitlines()[0]


def resolve_n_clusters(data: Data, n_clusters: int | None) -> int:
    """``n_clusters`` if given, else the number of classes of ``data.y`` (ignoring ``-1``, "unlabelled")."""
    if n_clusters is not None:
        return n_clusters
    y = getattr(data, "y", None)
    if y is None or not (y >= 0).any():
        raise ValueError("n_clusters must be given (--n-clusters K) for a graph without labels")
    return int(y.max()) + 1


def _silhouette(embedding: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> float | None:
    from sklearn.metrics import silhouette_score

    x = embedding.detach().double().cpu().numpy()
    y = labels.cpu().numpy()
    if len(set(y.tolist())) < 2 or len(y) < 3:
        return None
    # O(N^2) distances: a fixed random sample of at most 5000 nodes estimates it on large graphs.
    return float(silhouette_score(x, y, sample_size=min(len(y), 5000), random_state=seed))


def clustering_report(data: Data, labels: torch.Tensor, embedding: torch.Tensor | None = None) -> dict[str, float]:
    """Supervised metrics on the labelled nodes when ``data.y`` exists (``-1`` means unlabelled), plus the
    unsupervised ones: modularity and conductance on the graph, silhouette of the embedding."""
    labels = labels.cpu()
    report: dict[str, float] = {}
    y = getattr(data, "y", None)
    if y is not None and y.dim() == 1 and y.numel() == labels.numel():
        known = y.cpu() >= 0
        if known.any():
            report.update(clustering_metrics(y.cpu()[known], labels[known]))
    if data.edge_index.numel():
        report["modularity"] = modularity(data.edge_index.cpu(), labels)
        report["conductance"] = conductance(data.edge_index.cpu(), labels)
    if embedding is not None:
        score = _silhouette(embedding, labels)
        if score is not None:
            report["silhouette"] = score
    return report

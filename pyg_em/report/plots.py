"""Figures of one run: loss curves, a 2-D view of the embedding, a confusion matrix.

Figures are built on :class:`matplotlib.figure.Figure` directly (never ``pyplot``), so nothing needs a display,
no global backend is switched, and the returned figures can also be shown in a notebook.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from pyg_em.metrics import match_clusters

__all__ = ["plot_history", "project_2d", "plot_embedding", "plot_confusion", "save_figure", "write_plots",
           "EMBEDDING_METHODS"]

EMBEDDING_METHODS = ("pca", "tsne")
_UNMATCHED_COLOR = "0.6"


def _numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _grid(count: int, max_cols: int = 3, panel: tuple[float, float] = (4.0, 3.0)) -> tuple[Figure, list]:
    cols = min(count, max_cols)
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(panel[0] * cols, panel[1] * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def plot_history(history: dict[str, list[float]], x_label: str = "epoch",
                 marks: dict[str, float] | None = None) -> Figure | None:
    """One panel per logged series (loss components, evaluation metrics) against the epoch.

    Series of the same length as ``history['eval_epoch']`` (written by the :class:`~pyg_em.train.Trainer` when
    it evaluates) are drawn at those epochs; the others at epochs ``1..len``. A positive series spanning more
    than three decades gets a log scale. Returns ``None`` when there is nothing to draw.

    Args:
        history (dict): ``name -> values``.
        x_label (str): What one step is (``'epoch'``, ``'EM layer'``). (default: :obj:`'epoch'`)
        marks (dict, optional): ``label -> x``: a dashed vertical line in every panel, e.g. the selected
            epoch. (default: :obj:`None`)
    """
    eval_epochs = history.get("eval_epoch")
    series = {k: np.asarray(v, dtype=float) for k, v in history.items() if k != "eval_epoch" and len(v) > 0}
    if not series:
        return None
    fig, axes = _grid(len(series))
    for ax, (name, values) in zip(axes, series.items()):
        if eval_epochs is not None and len(values) == len(eval_epochs):
            epochs = np.asarray(eval_epochs, dtype=float) + 1
        else:
            epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, marker="o" if len(values) < 30 else None, linewidth=1.5)
        finite = values[np.isfinite(values)]
        if finite.size and finite.min() > 0 and finite.max() / finite.min() > 1e3:
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel(x_label)
        for label, x in (marks or {}).items():
            ax.axvline(x, color="0.3", linestyle="--", linewidth=1, label=label)
            ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    return fig


def project_2d(embedding: Any, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Project ``(N, D)`` points to ``(N, 2)`` with scikit-learn's PCA or t-SNE.

    Args:
        embedding (Tensor or array): Node embedding of shape ``(N, D)``.
        method (str): ``'pca'`` or ``'tsne'``. (default: ``'pca'``)
        seed (int): Random state of the projection. (default: :obj:`0`)
    """
    if method not in EMBEDDING_METHODS:
        raise ValueError(f"method must be one of {list(EMBEDDING_METHODS)}, got {method!r}")
    points = _numpy(embedding).astype(np.float64)
    if points.ndim != 2 or points.shape[0] < 2:
        raise ValueError(f"embedding must have shape (N, D) with N >= 2, got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("embedding contains NaN or infinite values")
    if points.shape[1] == 1:  # nothing to project: spread the single coordinate along x
        return np.hstack([points, np.zeros_like(points)])
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (points.shape[0] - 1) // 3)))
        return TSNE(2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(points)
    from sklearn.decomposition import PCA

    return PCA(2, random_state=seed).fit_transform(points)


def _scatter_labels(ax, points: np.ndarray, labels: np.ndarray, title: str, num_colors: int) -> None:
    # The colour is a function of the label value (not of its rank in this panel), so that a class keeps its
    # colour in every panel even when a panel lacks some classes.
    classes = np.unique(labels)
    palette = colormaps["tab10" if num_colors <= 10 else "tab20"]
    size = 12 if points.shape[0] <= 1000 else 4
    for label in classes:
        mask = labels == label
        color = _UNMATCHED_COLOR if label < 0 else palette(int(label) % palette.N)
        name = "unmatched" if label < 0 else str(label)
        ax.scatter(points[mask, 0], points[mask, 1], s=size, color=color, label=name, linewidths=0)
    if classes.size <= 20:
        ax.legend(markerscale=2, fontsize="small", loc="best", framealpha=0.6)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_embedding(
    embedding: Any,
    pred: Any = None,
    truth: Any = None,
    method: str = "pca",
    seed: int = 0,
    max_points: int | None = 5000,
) -> Figure:
    """Scatter the embedding in 2-D, one panel coloured by prediction and one by truth.

    With both ``pred`` and ``truth``, predicted clusters are first matched to classes
    (:func:`~pyg_em.metrics.match_clusters`), so that a colour means the same class in both panels; clusters
    left unmatched are grey.

    Args:
        embedding (Tensor or array): ``(N, D)`` node embedding.
        pred (Tensor or array, optional): ``(N,)`` predicted clusters. (default: :obj:`None`)
        truth (Tensor or array, optional): ``(N,)`` true classes. (default: :obj:`None`)
        method (str): ``'pca'`` or ``'tsne'`` (see :func:`project_2d`). (default: ``'pca'``)
        seed (int): Random state of the projection and of the subsample. (default: :obj:`0`)
        max_points (int, optional): Draw a random subsample of at most this many nodes. (default: :obj:`5000`)
    """
    points = _numpy(embedding)
    n = points.shape[0]
    keep = np.arange(n)
    if max_points is not None and n > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
    xy = project_2d(points[keep], method, seed)
    panels = []
    if pred is not None:
        pred = _numpy(pred).reshape(-1)
        shown = match_clusters(_numpy(truth), pred) if truth is not None else pred
        panels.append((shown[keep], "prediction (matched to classes)" if truth is not None else "prediction"))
    if truth is not None:
        panels.append((_numpy(truth).reshape(-1)[keep], "truth"))
    if not panels:
        panels.append((np.zeros(keep.size, dtype=np.int64), "nodes"))
    num_colors = max(int(labels.max()) + 1 for labels, _ in panels)
    fig, axes = _grid(len(panels), panel=(5.0, 4.5))
    for ax, (labels, title) in zip(axes, panels):
        _scatter_labels(ax, xy, labels, title, num_colors)
    fig.suptitle(f"embedding ({method.upper() if method == 'pca' else 't-SNE'}, {keep.size} nodes)")
    return fig


def plot_confusion(truth: Any, pred: Any, annotate_max: int = 15) -> Figure:
    """Confusion matrix of true classes (rows) against Hungarian-matched predicted clusters (columns).

    Cells are coloured by the fraction of the row's class and annotated with counts (up to ``annotate_max``
    classes). Nodes of clusters left unmatched (more clusters than classes) form an ``'unmatched'`` column.
    """
    truth = _numpy(truth).reshape(-1)
    if truth.size and truth.min() < 0:
        raise ValueError("truth must hold non-negative class ids (-1 marks unmatched clusters in the figure)")
    matched = match_clusters(truth, _numpy(pred).reshape(-1))
    classes = np.unique(truth)
    columns = list(classes) + ([-1] if (matched < 0).any() else [])
    col_of = {c: j for j, c in enumerate(columns)}
    counts = np.zeros((classes.size, len(columns)), dtype=np.int64)
    rows = np.searchsorted(classes, truth)
    np.add.at(counts, (rows, np.array([col_of[c] for c in matched])), 1)
    fractions = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    side = max(4.0, 0.45 * len(columns) + 2.5)
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of the class")
    ax.set_xticks(range(len(columns)), [str(c) if c >= 0 else "unmatched" for c in columns],
                  rotation=45 if len(columns) > 8 else 0)
    ax.set_yticks(range(classes.size), [str(c) for c in classes])
    ax.set_xlabel("predicted cluster (matched to a class)")
    ax.set_ylabel("true class")
    if classes.size <= annotate_max:
        for (i, j), count in np.ndenumerate(counts):
            ax.text(j, i, str(count), ha="center", va="center", fontsize="small",
                    color="white" if fractions[i, j] > 0.5 else "black")
    ax.set_title(f"accuracy {np.mean(matched == truth):.3f} after matching")
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG (the Agg renderer; no display needed), creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def write_plots(
    out: str | Path,
    history: dict[str, list[float]] | None = None,
    labels: Any = None,
    embedding: Any = None,
    truth: Any = None,
    embedding_method: str = "pca",
    seed: int = 0,
    max_points: int | None = 5000,
    dpi: int = 100,
    x_label: str = "epoch",
    marks: dict[str, float] | None = None,
) -> dict[str, Path]:
    """Write every plot the inputs allow into ``out``; returns ``{name: path}``.

    ``losses.png`` from a non-empty ``history``; ``embedding.png`` from ``embedding``; ``confusion.png`` from
    ``labels`` and ``truth``. A non-finite embedding is skipped with a warning rather than failing the report.
    ``x_label`` and ``marks`` are passed to :func:`plot_history`.
    """
    out = Path(out)
    written: dict[str, Path] = {}
    if history:
        fig = plot_history(history, x_label=x_label, marks=marks)
        if fig is not None:
            written["losses"] = save_figure(fig, out / "losses.png", dpi)
    if embedding is not None:
        if np.all(np.isfinite(_numpy(embedding))):
            fig = plot_embedding(embedding, labels, truth, embedding_method, seed, max_points)
            written["embedding"] = save_figure(fig, out / "embedding.png", dpi)
        else:
            warnings.warn("the embedding contains NaN or infinite values: embedding.png not drawn", stacklevel=2)
    if labels is not None and truth is not None:
        if _numpy(truth).min() < 0:
            warnings.warn("truth holds negative ids (unlabelled nodes?): confusion.png not drawn", stacklevel=2)
            return written
        written["confusion"] = save_figure(plot_confusion(truth, labels), out / "confusion.png", dpi)
    return written

"""The result files a user reads back: cluster assignments and scored node pairs, keyed by the original node ids."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import torch

__all__ = ["write_assignments", "write_link_scores", "read_assignments"]


def _ids(node_ids: Sequence[str] | None, count: int) -> Sequence[str]:
    return node_ids if node_ids is not None else [str(i) for i in range(count)]


def write_assignments(path: str | Path, labels: torch.Tensor, proba: torch.Tensor | None = None,
                      node_ids: Sequence[str] | None = None) -> Path:
    """Write ``node_id,cluster,confidence[,p_0,...,p_{K-1}]``, one row per node.

    ``confidence`` is the largest soft-assignment probability (1 for a hard assignment); the soft assignment
    follows when the model has one. ``node_ids`` are the original ids (default ``0..N-1``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = labels.cpu()
    ids = _ids(node_ids, labels.numel())
    header = ["node_id", "cluster", "confidence"]
    rows_proba = None
    if proba is not None:
        rows_proba = proba.detach().cpu().double()
        header += [f"p_{k}" for k in range(rows_proba.size(1))]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, cluster in enumerate(labels.tolist()):
            if rows_proba is None:
                writer.writerow([ids[i], cluster, "1.0"])
            else:
                row = rows_proba[i].tolist()
                writer.writerow([ids[i], cluster, repr(max(row)), *map(repr, row)])
    return path


def read_assignments(path: str | Path) -> tuple[list[str], torch.Tensor]:
    """``(node ids, clusters)`` of a file written by :func:`write_assignments`."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["node_id"] for r in rows], torch.tensor([int(r["cluster"]) for r in rows])


def write_link_scores(path: str | Path, scores: dict[str, torch.Tensor], node_ids: Sequence[str] | None = None) -> Path:
    """Write ``source,target,score,label`` for the held-out test pairs of a link-prediction run."""
    path = Path(path)
    pairs, score, label = scores["edge_index"].cpu(), scores["score"].cpu(), scores["label"].cpu()
    ids = _ids(node_ids, int(pairs.max()) + 1 if pairs.numel() else 0)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "target", "score", "label"])
        for (u, v), s, y in zip(pairs.t().tolist(), score.tolist(), label.tolist()):
            writer.writerow([ids[u], ids[v], repr(s), int(y)])
    return path

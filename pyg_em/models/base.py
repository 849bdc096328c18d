"""Base classes shared by every trainable model: :class:`LossOutput`, :class:`BaseModel`, :class:`ClusteringModel`.

Models follow a template: they override :meth:`BaseModel.embed` and :meth:`BaseModel.loss` (full batch) and
optionally :meth:`BaseModel.loss_batch` (one mini-batch from a PyG loader). The training loop itself lives
once, in :class:`pyg_em.train.Trainer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch_geometric.data import Data

from pyg_em.validation import check_n_clusters

__all__ = ["LossOutput", "BaseModel", "ClusteringModel"]


@dataclass
class LossOutput:
    r"""The result of a loss computation: the scalar to back-propagate plus its named parts.

    Components stay tensors (detached views are taken by the trainer when it accumulates them), so computing a
    loss never forces a host-device synchronisation; they become Python floats only when logged, through
    :meth:`to_floats`.

    Args:
        total (Tensor): Scalar loss to minimise.
        components (dict[str, Tensor]): Named scalar parts, e.g. ``{'recon': ..., 'kl': ...}``.
            (default: :obj:`{}`)
    """

    total: Tensor
    components: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.total, Tensor) or self.total.numel() != 1:
            raise TypeError("LossOutput.total must be a scalar tensor")
        for name, value in self.components.items():
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"LossOutput.components[{name!r}] must be a tensor (got {type(value).__name__}); "
                    "keep components on the device and convert only when logging"
                )

    def detached(self) -> dict[str, Tensor]:
        """All parts, including ``'total'``, detached from the graph (still on the device)."""
        parts = {"total": self.total.detach()}
        parts.update({k: v.detach() for k, v in self.components.items()})
        return parts

    def to_floats(self) -> dict[str, float]:
        """Host copies of all parts, for logging only (this synchronises with the device once)."""
        parts = self.detached()
        values = torch.stack([v.reshape(()).to(torch.float64) for v in parts.values()]).cpu().tolist()
        return dict(zip(parts.keys(), values))


class BaseModel(torch.nn.Module):
    """Template for trainable graph models.

    Subclasses implement :meth:`embed` and :meth:`loss`; mini-batch capable models also implement
    :meth:`loss_batch`, which receives a batch from :class:`~torch_geometric.loader.NeighborLoader` (or a
    link loader) whose first ``batch.batch_size`` nodes are the seed nodes.
    """

    def reset_parameters(self) -> None:
        """Re-initialise every child module that can be re-initialised."""
        for module in self.children():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def embed(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """Node embeddings of shape ``(N, D)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement embed()")

    def loss(self, data: Data) -> LossOutput:
        """Full-batch loss on a :class:`~torch_geometric.data.Data` object."""
        raise NotImplementedError(f"{type(self).__name__} does not implement loss()")

    def loss_batch(self, batch: Data) -> LossOutput:
        """Loss on one mini-batch from a PyG loader."""
        raise NotImplementedError(f"{type(self).__name__} does not support mini-batch training (loss_batch)")

    @torch.no_grad()
    def embed_data(self, data: Data) -> Tensor:
        """Embeddings for a whole ``Data`` object in evaluation mode (restores the previous mode).

        The data is moved to the model's device first, so a CPU ``Data`` works with a model trained on CUDA.
        """
        return self._evaluate_on(data, lambda d: self.embed(d.x, d.edge_index, getattr(d, "edge_weight", None)))

    def _evaluate_on(self, data: Data, compute):
        """``compute(data)`` in evaluation mode with ``data`` on the model's device (restores the mode)."""
        was_training = self.training
        parameter = next(self.parameters(), None)
        if parameter is not None and data.x is not None and data.x.device != parameter.device:
            data = data.to(parameter.device)
        self.eval()
        try:
            return compute(data)
        finally:
            self.train(was_training)


class ClusteringModel(BaseModel):
    """A :class:`BaseModel` that also partitions nodes into ``n_clusters`` groups.

    Subclasses implement :meth:`initialize_cluster_centers` and :meth:`predict_proba`; :meth:`predict` takes
    the arg-max of the soft assignment.

    Args:
        n_clusters (int): Number of clusters, at least 2.
    """

    def __init__(self, n_clusters: int) -> None:
        super().__init__()
        self.n_clusters = check_n_clusters(n_clusters)

    def initialize_cluster_centers(self, data: Data) -> Tensor:
        """Initialise cluster centres from the current embeddings of ``data``; returns the centres."""
        raise NotImplementedError(f"{type(self).__name__} does not implement initialize_cluster_centers()")

    def predict_proba(self, data: Data) -> Tensor:
        """Soft cluster assignment of shape ``(N, n_clusters)``; rows sum to one."""
        raise NotImplementedError(f"{type(self).__name__} does not implement predict_proba()")

    @torch.no_grad()
    def predict(self, data: Data) -> Tensor:
        """Hard cluster labels of shape ``(N,)``."""
        return self.predict_proba(data).argmax(dim=-1)

    def extra_repr(self) -> str:
        """``n_clusters=...`` for ``repr(model)``."""
        return f"n_clusters={self.n_clusters}"


def as_loss_output(value: Tensor | LossOutput | Mapping[str, Tensor]) -> LossOutput:
    """Accept a bare scalar tensor, a :class:`LossOutput`, or a mapping with a ``'total'`` key."""
    if isinstance(value, LossOutput):
        return value
    if isinstance(value, Tensor):
        return LossOutput(total=value)
    if isinstance(value, Mapping) and "total" in value:
        parts = dict(value)
        return LossOutput(total=parts.pop("total"), components=parts)
    raise TypeError(f"a loss function must return a Tensor or LossOutput, got {type(value).__name__}")

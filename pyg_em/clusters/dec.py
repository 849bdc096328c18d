"""Deep embedded clustering head: Student-t soft assignment, sharpened target, KL self-training loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from pyg_em.clusters.kmeans import kmeans
from pyg_em.validation import check_n_clusters, check_positive

__all__ = ["DECClusterHead", "student_t_assignment"]


def student_t_assignment(z: Tensor, centers: Tensor, alpha: float = 1.0) -> Tensor:
    r"""Soft assignment of rows of ``z`` to ``centers`` by a Student-t kernel with ``alpha`` degrees of freedom.

    .. math::
        q_{iu} \propto (1 + \lVert z_i - \mu_u \rVert^2/\alpha)^{-(\alpha+1)/2}, \qquad \sum_u q_{iu} = 1
    """
    distance = torch.cdist(z, centers.to(z.dtype)).pow(2)
    kernel = (1.0 + distance / alpha).pow(-(alpha + 1.0) / 2.0)
    return kernel / kernel.sum(dim=1, keepdim=True)


class DECClusterHead(torch.nn.Module):
    r"""Soft cluster assignment and self-training target of DEC (Xie et al., 2016).

    .. math::
        q_{iu} = \frac{(1 + \lVert z_i - \mu_u \rVert^2/\alpha)^{-(\alpha+1)/2}}
                      {\sum_{u'} (1 + \lVert z_i - \mu_{u'} \rVert^2/\alpha)^{-(\alpha+1)/2}}, \qquad
        p_{iu} = \frac{q_{iu}^2 / \sum_i q_{iu}}{\sum_{u'} q_{iu'}^2 / \sum_i q_{iu'}}, \qquad
        \mathcal{L} = \mathrm{KL}(P \,\|\, Q)

    The target :math:`P` is a per-node buffer (``target``, shape :math:`(N, K)`) refreshed by
    :meth:`refresh_target` from the soft assignment of *all* nodes and read by node id, so mini-batches from a
    shuffled loader always get their own rows (``batch.n_id``), never rows cached by batch position.

    Args:
        n_clusters (int): Number of clusters :math:`K`.
        embedding_dim (int): Embedding size.
        alpha (float): Degrees of freedom of the Student-t kernel. (default: :obj:`1.0`)

    Shapes:
        - **input:** embeddings :math:`(B, D)`, optional node ids :math:`(B,)`
        - **output:** soft assignment :math:`(B, K)`; scalar loss
    """

    def __init__(self, n_clusters: int, embedding_dim: int, alpha: float = 1.0) -> None:
        super().__init__()
        self.n_clusters = check_n_clusters(n_clusters)
        self.embedding_dim = embedding_dim
        self.alpha = check_positive(alpha, "alpha")
        self.centers = Parameter(torch.empty(n_clusters, embedding_dim))
        self.register_buffer("target", torch.empty(0, n_clusters))
        self.assignment: Tensor | None = None
        self.assignment_change: Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal centres and an empty target (call :meth:`initialize` before self-training)."""
        torch.nn.init.xavier_normal_(self.centers)
        self.target = self.target.new_empty(0, self.n_clusters)

    def soft_assignment(self, z: Tensor) -> Tensor:
        """Student-t soft assignment :math:`Q` :math:`(B, K)` of the embeddings ``z`` to the centres."""
        return student_t_assignment(z, self.centers, self.alpha)

    @staticmethod
    def target_distribution(q: Tensor) -> Tensor:
        """The sharpened target :math:`p_{iu} \\propto q_{iu}^2 / \\sum_i q_{iu}` (rows sum to one)."""
        weight = q.pow(2) / q.sum(dim=0, keepdim=True)
        return weight / weight.sum(dim=1, keepdim=True)

    @torch.no_grad()
    def initialize(self, z: Tensor, n_init: int = 20, seed: int | None = 0, progress: bool = False) -> Tensor:
        """Set the centres by :func:`~pyg_em.clusters.kmeans` on ``z`` and refresh the target; returns the k-means
        labels (``progress`` shows the bar of its full passes on large inputs)."""
        labels, centers = kmeans(z, self.n_clusters, n_init=n_init, seed=seed, progress=progress)
        self.centers.copy_(centers.to(self.centers.dtype))
        self.refresh_target(self.soft_assignment(z))
        return labels

    @torch.no_grad()
    def refresh_target(self, q_all: Tensor) -> None:
        """Recompute :math:`P` from the soft assignment of every node (row ``i`` = node ``i``).

        Also records the hard assignment (``assignment``) and the fraction of nodes whose cluster changed
        since the previous refresh (``assignment_change``, a device scalar; ``None`` after the first): during
        self-training the KL loss rises by design, and this is what shows the partition settling.
        """
        self.target = self.target_distribution(q_all.detach()).to(self.centers.dtype)
        new = q_all.argmax(dim=-1)
        previous = getattr(self, "assignment", None)
        same_nodes = previous is not None and previous.shape == new.shape
        self.assignment_change = (new != previous).float().mean() if same_nodes else None
        self.assignment = new

    def kl_loss(self, q: Tensor, node_ids: Tensor | None = None) -> Tensor:
        """:math:`\\mathrm{KL}(P\\|Q)` averaged over the rows of ``q`` (``node_ids`` selects target rows)."""
        if self.target.size(0) == 0:
            raise RuntimeError("the DEC target is empty: call initialize() (k-means) before self-training")
        p = self.target if node_ids is None else self.target[node_ids]
        if p.size(0) != q.size(0):
            raise ValueError(f"target has {p.size(0)} rows for {q.size(0)} assignments: pass node_ids")
        return F.kl_div(q.clamp_min(1e-12).log(), p, reduction="batchmean")

    def extra_repr(self) -> str:
        """The cluster count, embedding size and Student-t degrees of freedom, for ``repr(head)``."""
        return f"n_clusters={self.n_clusters}, embedding_dim={self.embedding_dim}, alpha={self.alpha}"

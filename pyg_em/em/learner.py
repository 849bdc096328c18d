"""GEMGraphLearner: one learnable weight per undirected edge of a fixed candidate graph, refined by GEM layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyg_em.em.base import GEMBase
from pyg_em.em.candidates import pairs_to_edge_index, undirected_pairs
from pyg_em.em.objective import inverse_softplus
from pyg_em.em.unrolled import GEMUnrolledEM
from pyg_em.validation import check_features, check_positive

__all__ = ["GEMGraphLearner"]


class GEMGraphLearner(nn.Module):
    r"""Graph-structure learner: parameters :math:`\theta_0` on a candidate graph, refined by a GEM layer.

    .. math::
        (w, \hat z) = \mathrm{GEM}_K\big(x, \mathcal E, \mathrm{softplus}(\theta_0)\big)

    The candidate graph is fixed at construction (deduplicated, self loops rejected, see
    :func:`~pyg_em.em.undirected_pairs`) and stored as :attr:`edge_index` with both directions, so the learned
    weights feed any PyG convolution: ``conv(x, learner.edge_index, edge_weight=w)``. The parameters
    :math:`\theta_0` (one per undirected candidate edge) are trained end to end through the GEM layer by any
    task loss on ``w`` or :math:`\hat z`; with :class:`~pyg_em.em.GEMImplicitEM` and no prior the output is the
    EM estimate of the graph from ``x`` alone (maximum marginal likelihood), independent of :math:`\theta_0`.

    Example (the seed's usage: 6 nodes, every pair a candidate, 3 unrolled EM layers)::

        >>> import torch
        >>> from pyg_em.em import GEMGraphLearner, GEMUnrolledEM, complete_graph
        >>> learner = GEMGraphLearner(complete_graph(6), num_nodes=6, layer=GEMUnrolledEM(num_layers=3))
        >>> x, y = torch.rand(6, 1), torch.rand(6, 1)
        >>> weight, z_hat = learner(x)
        >>> ((z_hat - y) ** 2).sum().backward()
        >>> learner.theta.grad.shape  # one parameter per undirected pair: 6 * 5 / 2
        torch.Size([15])

    Args:
        edge_index (Tensor): Candidate graph :math:`(2, E)`, e.g. :func:`~pyg_em.em.knn_candidate_graph` or
            :func:`~pyg_em.em.complete_graph`.
        num_nodes (int): Number of nodes :math:`N`.
        layer (GEMBase, optional): The GEM layer. (default: :obj:`None`, ``GEMUnrolledEM()``)
        init_weight (float): Initial weight of every candidate edge. (default: ``1.0``)

    Shapes:
        - **input:** node signals :math:`(N, F)`
        - **output:** edge weights :math:`(2U,)` aligned with :attr:`edge_index`, posterior mean :math:`(N, F)`
    """

    def __init__(
        self,
        edge_index: Tensor,
        num_nodes: int,
        layer: GEMBase | None = None,
        init_weight: float = 1.0,
    ) -> None:
        super().__init__()
        pairs, _ = undirected_pairs(edge_index, num_nodes)
        if pairs.size(1) == 0:
            raise ValueError("edge_index is empty: GEMGraphLearner needs at least one candidate edge")
        if layer is not None and not isinstance(layer, GEMBase):
            raise TypeError(f"layer must be a GEMUnrolledEM or GEMImplicitEM, got {type(layer).__name__}")
        self.num_nodes = num_nodes
        self.init_weight = check_positive(init_weight, "init_weight")
        self.register_buffer("pairs", pairs)
        self.layer = layer if layer is not None else GEMUnrolledEM()
        self.theta = nn.Parameter(torch.empty(pairs.size(1)))
        self.reset_parameters()

    @property
    def edge_index(self) -> Tensor:
        """The candidate graph with both directions, ``(2, 2U)``; outputs are aligned with it."""
        return pairs_to_edge_index(self.pairs)

    @property
    def num_candidates(self) -> int:
        """Number of undirected candidate edges ``U``."""
        return self.pairs.size(1)

    def reset_parameters(self) -> None:
        """Every candidate edge starts at ``init_weight``."""
        with torch.no_grad():
            self.theta.copy_(inverse_softplus(torch.tensor(self.init_weight, dtype=torch.float64)))

    def forward(self, x: Tensor, generator: torch.Generator | None = None,
                mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(edge_weight (2U,), z_hat (N, F))``; ``edge_weight`` is aligned with :attr:`edge_index`.

        Missing readings (``mask`` :obj:`False`, or NaN in ``x``) are imputed by the E-step: ``z_hat`` holds their
        posterior means given the observed entries (see :meth:`GEMBase.forward <pyg_em.em.GEMBase.forward>`).
        """
        if mask is not None or bool(torch.isnan(x).any()):
            x, mask = self.layer.read_signals(x, mask)
        check_features(x, "x", num_nodes=self.num_nodes)
        theta, z_hat = self.layer.run(x, self.pairs, self.theta.to(x.dtype), generator, mask)
        weight = F.softplus(theta)
        return torch.cat([weight, weight]), z_hat

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, num_candidates={self.num_candidates}, "
                f"layer={self.layer!r})")

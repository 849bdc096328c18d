"""Attributed stochastic block models built in O(E) time and memory."""

from __future__ import annotations

import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce

from pyg_em.validation import as_int, check_positive

__all__ = ["attributed_sbm"]


def _block_bounds(num_nodes: int, num_blocks: int) -> torch.Tensor:
    sizes = torch.full((num_blocks,), num_nodes // num_blocks, dtype=torch.long)
    sizes[: num_nodes % num_blocks] += 1
    return torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])


def attributed_sbm(
    num_nodes: int = 2000,
    num_blocks: int = 4,
    avg_degree: float = 10.0,
    p_in_ratio: float = 10.0,
    num_features: int = 32,
    feature_noise: float = 1.0,
    seed: int | None = 0,
) -> Data:
    r"""A planted-partition graph with Gaussian node features, sampled edge by edge.

    Blocks have near-equal sizes. The edge probabilities :math:`p_{in}` (same block) and :math:`p_{out}`
    satisfy :math:`p_{in} = r\,p_{out}` with :math:`r` = ``p_in_ratio``, and are set so that the expected
    degree is ``avg_degree``:

    .. math::
        p_{out} = \frac{\bar d}{r\,(s - 1) + (N - s)}, \qquad s = N / K.

    Instead of flipping a coin for each of the :math:`N^2` pairs (PyG's ``stochastic_blockmodel_graph``), the
    number of intra- and inter-block edges is drawn from their Poisson limits and the endpoints are sampled
    directly, so time and memory are :math:`O(N + E)`. Duplicate pairs are merged, which removes a fraction
    :math:`O(\bar d / N)` of edges. Features are :math:`x_i = \mu_{y_i} + \sigma\,\varepsilon_i` with block
    means :math:`\mu_k \sim \mathcal{N}(0, I)`.

    Args:
        num_nodes (int): Number of nodes :math:`N`. (default: :obj:`2000`)
        num_blocks (int): Number of blocks :math:`K`. (default: :obj:`4`)
        avg_degree (float): Expected node degree :math:`\bar d`. (default: :obj:`10.0`)
        p_in_ratio (float): :math:`p_{in}/p_{out}`; 1 gives an Erdős–Rényi graph. (default: :obj:`10.0`)
        num_features (int): Feature dimension; 0 gives no features. (default: :obj:`32`)
        feature_noise (float): Feature noise standard deviation :math:`\sigma`. (default: :obj:`1.0`)
        seed (int, optional): Seed of a private generator (the global RNG is untouched). (default: :obj:`0`)

    Returns:
        :class:`~torch_geometric.data.Data` with ``x`` ``(N, F)``, ``y`` ``(N,)`` and an undirected,
        coalesced, self-loop-free ``edge_index`` ``(2, E)``.
    """
    # NumPy and 0-d torch integers are integers too (as_int); bools and floats are not.
    if as_int(num_nodes) is None or as_int(num_nodes) < 2:
        raise ValueError(f"num_nodes must be an int >= 2, got {num_nodes!r}")
    num_nodes = as_int(num_nodes)
    if as_int(num_blocks) is None or not 1 <= as_int(num_blocks) <= num_nodes:
        raise ValueError(f"num_blocks must be an int in [1, num_nodes], got {num_blocks!r}")
    num_blocks = as_int(num_blocks)
    avg_degree = check_positive(avg_degree, "avg_degree")
    if avg_degree >= num_nodes - 1:
        raise ValueError(f"avg_degree must be below num_nodes - 1 = {num_nodes - 1}, got {avg_degree}")
    p_in_ratio = check_positive(p_in_ratio, "p_in_ratio")
    feature_noise = check_positive(feature_noise, "feature_noise", allow_zero=True)
    if as_int(num_features) is None or as_int(num_features) < 0:
        raise ValueError(f"num_features must be a non-negative int, got {num_features!r}")
    num_features = as_int(num_features)

    gen = torch.Generator()
    gen.manual_seed(seed if seed is not None else torch.seed())
    bounds = _block_bounds(num_nodes, num_blocks)
    sizes = (bounds[1:] - bounds[:-1]).double()
    block_size = num_nodes / num_blocks
    p_out = avg_degree / (p_in_ratio * (block_size - 1) + (num_nodes - block_size))
    p_in = min(1.0, p_in_ratio * p_out)

    # Expected undirected edge counts, inside each block and between blocks.
    pairs_in = sizes * (sizes - 1) / 2
    pairs_out = (num_nodes * (num_nodes - 1) / 2) - pairs_in.sum()
    m_in = int(torch.poisson(torch.tensor([float(pairs_in.sum() * p_in)]), generator=gen))
    m_out = int(torch.poisson(torch.tensor([float(pairs_out * p_out)]), generator=gen)) if num_blocks > 1 else 0

    # Intra-block edges: pick a block proportionally to its number of pairs, then two nodes inside it.
    block = torch.multinomial(pairs_in.clamp_min(0).float(), m_in, replacement=True, generator=gen) if m_in else \
        torch.zeros(0, dtype=torch.long)
    start, size = bounds[block], (bounds[block + 1] - bounds[block])
    u_in = start + (torch.rand(m_in, generator=gen, dtype=torch.float64) * size).long()
    v_in = start + (torch.rand(m_in, generator=gen, dtype=torch.float64) * size).long()

    # Inter-block edges: a uniform node u, then a uniform node outside u's block (skip over that block).
    u_out = torch.randint(num_nodes, (m_out,), generator=gen)
    u_block = torch.bucketize(u_out, bounds[1:], right=True)
    u_start, u_size = bounds[u_block], bounds[u_block + 1] - bounds[u_block]
    v_out = (torch.rand(m_out, generator=gen, dtype=torch.float64) * (num_nodes - u_size)).long()
    v_out = v_out + (v_out >= u_start).long() * u_size

    row = torch.cat([u_in, u_out])
    col = torch.cat([v_in, v_out])
    del u_in, v_in, u_out, v_out, block, start, size, u_block, u_start, u_size
    keep = row != col
    row, col = row[keep], col[keep]

    # Shuffle node ids so that blocks are not contiguous ranges.
    perm = torch.randperm(num_nodes, generator=gen)
    row, col = perm[row], perm[col]
    edge_index = coalesce(torch.stack([torch.cat([row, col]), torch.cat([col, row])]), num_nodes=num_nodes)
    del row, col

    labels_sorted = torch.bucketize(torch.arange(num_nodes), bounds[1:], right=True)
    y = torch.empty(num_nodes, dtype=torch.long)
    y[perm] = labels_sorted
    data = Data(edge_index=edge_index, y=y, num_nodes=num_nodes)
    if num_features > 0:
        means = torch.randn(num_blocks, num_features, generator=gen)
        noise = torch.randn(num_nodes, num_features, generator=gen)
        data.x = means[y] + feature_noise * noise
    return data

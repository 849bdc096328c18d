"""Attributed stochastic block models built in O(E) time and memory, with the memory checked before allocating."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from pyg_em.validation import as_int, check_positive

__all__ = ["attributed_sbm", "sbm_memory_bytes", "available_memory_bytes"]

_CHUNK = 1 << 20  # rows/edges per chunk of the in-place passes: temporaries of a few MB


def sbm_memory_bytes(num_nodes: int, avg_degree: float, num_features: int = 32,
                     undirected_draws: int | None = None) -> int:
    r"""Estimated peak bytes :func:`~pyg_em.datasets.attributed_sbm` allocates for a graph of this size.

    With :math:`m \approx N \bar d / 2` undirected pair draws the phases hold: the draws and their float64
    uniforms (:math:`\approx 5 \cdot 8m`); the sorted directed keys next to the output ``edge_index``
    (:math:`8 \cdot 2m + 16 \cdot 2m`); the output with the features (:math:`16 \cdot 2m + 4NF`). The
    node arrays (permutation, labels, sort buffers) add :math:`\approx 40N`. The peak is the largest phase.

    Args:
        num_nodes (int): Nodes :math:`N`.
        avg_degree (float): Expected degree :math:`\bar d`.
        num_features (int): Feature dimension :math:`F`. (default: :obj:`32`)
        undirected_draws (int, optional): The drawn pair count :math:`m`, when known. (default: ``N d / 2``)
    """
    m = int(undirected_draws) if undirected_draws is not None else int(num_nodes * avg_degree / 2)
    phases = (40 * m, 48 * m, 32 * m + 4 * num_nodes * num_features)
    return int(max(phases) + 40 * num_nodes + (64 << 20))


def available_memory_bytes() -> int | None:
    """Bytes this process can still allocate: ``MemAvailable`` of ``/proc/meminfo``, lowered to the room left
    under a cgroup (container) memory limit when there is one; ``None`` where neither can be read."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit.isdigit() and int(limit) < (1 << 60):
                found.append(int(limit) - int(Path(usage_file).read_text().strip()))
        except (OSError, ValueError):
            continue
    if not found and hasattr(os, "sysconf"):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError):
            pass
    return max(0, min(found)) if found else None


def _check_fits(estimate: int, limit: int | None, what: str) -> None:
    """Raise ``MemoryError`` at once, with the estimate and the limit, when ``estimate`` exceeds ``limit``."""
    if limit is None:
        limit = available_memory_bytes()
    if limit is not None and estimate > limit:
        raise MemoryError(f"{what} needs about {estimate / 2**30:.2f} GiB at its peak but only "
                          f"{limit / 2**30:.2f} GiB are available: use fewer nodes, a lower avg_degree or fewer "
                          "features, or free memory (memory_limit= overrides the limit)")


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
    memory_limit: int | None = None,
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
    :math:`O(\bar d / N)` of edges. The edges are deduplicated as sorted keys in place (NumPy), so the peak
    stays near the output's own size (:func:`~pyg_em.datasets.sbm_memory_bytes`; 3.28 GiB of RSS for 2.76 GiB
    of output at 10M nodes and average degree 10, 32 features); a request whose estimated peak exceeds the
    available memory (:func:`~pyg_em.datasets.available_memory_bytes`) fails at once with ``MemoryError``
    instead of being killed midway. Features are :math:`x_i = \mu_{y_i} + \sigma\,\varepsilon_i` with block
    means :math:`\mu_k \sim \mathcal{N}(0, I)`.

    Args:
        num_nodes (int): Number of nodes :math:`N`. (default: :obj:`2000`)
        num_blocks (int): Number of blocks :math:`K`. (default: :obj:`4`)
        avg_degree (float): Expected node degree :math:`\bar d`. (default: :obj:`10.0`)
        p_in_ratio (float): :math:`p_{in}/p_{out}`; 1 gives an Erdős–Rényi graph. (default: :obj:`10.0`)
        num_features (int): Feature dimension; 0 gives no features. (default: :obj:`32`)
        feature_noise (float): Feature noise standard deviation :math:`\sigma`. (default: :obj:`1.0`)
        seed (int, optional): Seed of a private generator (the global RNG is untouched). (default: :obj:`0`)
        memory_limit (int, optional): Bytes the generation may use; ``None`` reads the memory available now.
            (default: :obj:`None`)

    Returns:
        :class:`~torch_geometric.data.Data` with ``x`` ``(N, F)``, ``y`` ``(N,)`` and an undirected,
        coalesced, self-loop-free ``edge_index`` ``(2, E)``.

    Raises:
        MemoryError: If the estimated peak exceeds ``memory_limit`` (or the available memory).
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
    _check_fits(sbm_memory_bytes(num_nodes, avg_degree, num_features, m_in + m_out), memory_limit,
                f"attributed_sbm({num_nodes}, avg_degree={avg_degree}, num_features={num_features})")

    # Intra-block edges: pick a block proportionally to its number of pairs, then two nodes inside it.
    block = torch.multinomial(pairs_in.clamp_min(0).float(), m_in, replacement=True, generator=gen) if m_in else \
        torch.zeros(0, dtype=torch.long)
    u_in, v_in = _uniform_in_ranges(bounds[block], bounds[block + 1] - bounds[block], 2, gen)
    del block

    # Inter-block edges: a uniform node u, then a uniform node outside u's block (skip over that block).
    u_out = torch.randint(num_nodes, (m_out,), generator=gen)
    u_block = torch.bucketize(u_out, bounds[1:], right=True)
    u_start, u_size = bounds[u_block], bounds[u_block + 1] - bounds[u_block]
    del u_block
    v_out = torch.rand(m_out, generator=gen, dtype=torch.float64).mul_(num_nodes - u_size).long()
    v_out += (v_out >= u_start).long().mul_(u_size)
    del u_start, u_size

    # Shuffle node ids so that blocks are not contiguous ranges.
    perm = torch.randperm(num_nodes, generator=gen)
    keys = _undirected_keys([(u_in, v_in), (u_out, v_out)], perm, num_nodes)
    del u_in, v_in, u_out, v_out
    edge_index = _symmetric_edge_index(keys, num_nodes)
    del keys

    labels_sorted = torch.bucketize(torch.arange(num_nodes), bounds[1:], right=True)
    y = torch.empty(num_nodes, dtype=torch.long)
    y[perm] = labels_sorted
    del perm, labels_sorted
    data = Data(edge_index=edge_index, y=y, num_nodes=num_nodes)
    if num_features > 0:
        means = torch.randn(num_blocks, num_features, generator=gen)
        x = torch.randn(num_nodes, num_features, generator=gen)
        for start in range(0, num_nodes, _CHUNK):  # x = mu_y + sigma * noise, in place (no N x F temporaries)
            rows = x[start:start + _CHUNK]
            rows.mul_(feature_noise).add_(means[y[start:start + _CHUNK]])
        data.x = x
    return data


def _uniform_in_ranges(start: torch.Tensor, size: torch.Tensor, count: int,
                       gen: torch.Generator) -> list[torch.Tensor]:
    """``count`` independent uniform integers in ``[start, start + size)`` per entry (one ``rand`` each)."""
    out = []
    for _ in range(count):
        value = torch.rand(start.numel(), generator=gen, dtype=torch.float64).mul_(size).long()
        out.append(value.add_(start))
    return out


def _undirected_keys(parts: list[tuple[torch.Tensor, torch.Tensor]], perm: torch.Tensor,
                     num_nodes: int) -> np.ndarray:
    """Sorted, unique keys ``min(u, v) * N + max(u, v)`` of the relabelled pairs, self-loops dropped.

    Processed in chunks into one preallocated array, then sorted in place by NumPy (``torch.sort`` would also
    allocate an index array of the same size): the only array of the edges' size is the result.
    """
    total = sum(u.numel() for u, _ in parts)
    keys = np.empty(total, dtype=np.int64)
    filled = 0
    for u, v in parts:
        for start in range(0, u.numel(), _CHUNK):
            a, b = perm[u[start:start + _CHUNK]], perm[v[start:start + _CHUNK]]
            keep = a != b
            a, b = a[keep], b[keep]
            chunk = torch.minimum(a, b).mul_(num_nodes).add_(torch.maximum(a, b))
            keys[filled:filled + chunk.numel()] = chunk.numpy()
            filled += chunk.numel()
    keys = keys[:filled]
    keys.sort()
    if keys.size == 0:
        return keys
    distinct = np.empty(keys.size, dtype=bool)
    distinct[0] = True
    np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
    return keys[distinct]


def _symmetric_edge_index(keys: np.ndarray, num_nodes: int) -> torch.Tensor:
    """Both directions of every undirected key, sorted by (row, col): what ``coalesce`` of the two directions
    gives, built through one array of directed keys sorted in place."""
    count = keys.size
    directed = np.empty(2 * count, dtype=np.int64)
    directed[:count] = keys
    for start in range(0, count, _CHUNK):
        chunk = keys[start:start + _CHUNK]
        low = chunk // num_nodes
        directed[count + start:count + start + chunk.size] = (chunk - low * num_nodes) * num_nodes + low
    directed.sort()
    edge_index = torch.empty(2, 2 * count, dtype=torch.long)
    out = edge_index.numpy()
    np.floor_divide(directed, num_nodes, out=out[0])
    np.multiply(out[0], num_nodes, out=out[1])
    np.subtract(directed, out[1], out=out[1])
    return edge_index

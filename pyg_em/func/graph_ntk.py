r"""Full-graph empirical NTK: the Jacobian of all :math:`N \cdot C` outputs of one forward pass, chunk by chunk.

A GNN's outputs all come out of one forward pass over the whole graph, so the Jacobian is taken of the map
:math:`\theta \mapsto f(\theta) \in \mathbb{R}^{N \times C}` as a whole, never node by node:

* **forward mode** (parameter chunks): a chunk of :math:`k` one-hot tangent directions pushed through the model
  with ``torch.func.jvp`` under ``vmap`` gives :math:`k` columns of the Jacobian for *every* output at once,
  :math:`\mathbf{J}_c \in \mathbb{R}^{NC \times k}`, and :math:`\mathbf{K} = \sum_c \mathbf{J}_c\mathbf{J}_c^\top`
  is accumulated chunk by chunk: :math:`P` pushes in all;
* **reverse mode** (output chunks): the Jacobian rows of a chunk of output nodes come from ``vjp`` under ``vmap``
  (one recorded forward pass), and pushing those rows back through the model as JVP tangents gives the kernel
  columns of that chunk against every node, :math:`\mathbf{J}(\mathbf{J}_c^\top)`: two passes per output of the
  smaller node set.

The cheaper mode is chosen from :math:`P` against :math:`2\,m\,C` (:math:`m` the smaller of the two node sets).
Peak memory is one chunk: ``chunk_size`` × :math:`N \times C` tangent outputs plus the model's per-direction
activations, and the kernel itself; the full Jacobian is never held.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.func import functional_call, jvp, vjp, vmap

__all__: list[str] = []

FULL_GRAPH_STRATEGIES = ("forward", "reverse")
#: Tangent directions (forward) or output nodes (reverse) per vectorised chunk when ``chunk_size`` is not given:
#: small enough that a chunk's activations stay in cache on CPU, large enough to amortise the vmap overhead.
DEFAULT_CHUNK = 64


class GraphFunction:
    """``model`` on fixed arguments as a function of (a subset of) its parameters, output ``(N, C)``."""

    def __init__(self, model: nn.Module, params: dict[str, Tensor], args: tuple, name: str):
        self.model, self.params, self.args = model, params, args
        self.names = list(params)
        self.shapes = [params[k].shape for k in self.names]
        self.sizes = [int(params[k].numel()) for k in self.names]
        self.num_params = sum(self.sizes)
        with torch.no_grad():
            out = self._raw(params)
        self.output = out
        self._vjp = None
        if out.dim() == 0:
            raise ValueError(f"the model output on {name} is a scalar; it needs a leading node dimension")
        self.output_shape = out.shape
        self.num_nodes, self.num_outputs = out.size(0), out[0].numel()
        self.scalar = out.dim() == 1
        self.dtype, self.device = out.dtype, out.device

    def _raw(self, params: dict[str, Tensor]) -> Tensor:
        return functional_call(self.model, params, self.args)

    def __call__(self, params: dict[str, Tensor]) -> Tensor:
        return self._raw(params).reshape(self.num_nodes, self.num_outputs)

    def unflatten(self, rows: Tensor) -> dict[str, Tensor]:
        """Split ``(k, P)`` flat rows into a dict of ``(k, *shape)`` tangents."""
        parts = rows.split(self.sizes, dim=1)
        return {k: part.reshape(rows.size(0), *s) for k, part, s in zip(self.names, parts, self.shapes)}

    def push(self, rows: Tensor) -> Tensor:
        """Jacobian-vector products of ``(k, P)`` tangent rows: ``(k, N, C)``."""
        def one(tangent):
            return jvp(self, (self.params,), (tangent,))[1]
        return vmap(one)(self.unflatten(rows))

    def pull(self, nodes: Tensor) -> Tensor:
        """Jacobian rows of every output channel of ``nodes``: ``(len(nodes) * C, P)``, node-major."""
        C, k = self.num_outputs, nodes.numel() * self.num_outputs
        cotangents = torch.zeros(k, self.num_nodes, C, dtype=self.dtype, device=self.device)
        cotangents[torch.arange(k, device=self.device), nodes.repeat_interleave(C),
                   torch.arange(C, device=self.device).repeat(nodes.numel())] = 1
        if self._vjp is None:  # one recorded forward pass serves every chunk's VJPs
            self._vjp = vjp(self._raw, self.params)[1]
        (grads,) = vmap(self._vjp)(cotangents.reshape(k, *self.output_shape))
        return torch.cat([grads[name].reshape(k, -1) for name in self.names], dim=1)


def choose_mode(num_params: int, rows: int, cols: int, num_outputs: int) -> str:
    """``"reverse"`` when two passes per output of the smaller node set cost less than one per parameter."""
    return "reverse" if 2 * min(rows, cols) * num_outputs < num_params else "forward"


def _chunks(n: int, step: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, step):
        yield start, min(start + step, n)


def full_graph_ntk(f1: GraphFunction, f2: GraphFunction | None, rows: Tensor, cols: Tensor, *, mode: str,
                   chunk_size: int | None, reduce: str) -> Tensor:
    """Kernel between output nodes ``rows`` of ``f1`` and ``cols`` of ``f2`` (``f1`` again when :obj:`None`).

    Returns ``(R, Q)`` for ``reduce="trace"``, else ``(R, Q, C, C)``.
    """
    step = chunk_size or DEFAULT_CHUNK
    if mode == "forward":
        return _forward_mode(f1, f2, rows, cols, step, reduce)
    if cols.numel() <= rows.numel():
        return _reverse_mode(f1, f2 or f1, rows, cols, step, reduce)
    # Pull the rows of the smaller set: compute the transposed kernel and transpose it back.
    K = _reverse_mode(f2 or f1, f1, cols, rows, step, reduce)
    return K.T if reduce == "trace" else K.permute(1, 0, 3, 2)


def _forward_mode(f1, f2, rows, cols, step, reduce):
    P, C = f1.num_params, f1.num_outputs
    R, Q = rows.numel(), cols.numel()
    same = f2 is None and rows.numel() == cols.numel() and torch.equal(rows, cols)
    shape = (R, Q) if reduce == "trace" else (R * C, Q * C)
    K = torch.zeros(shape, dtype=f1.dtype, device=f1.device)
    for start, stop in _chunks(P, step):
        k = stop - start
        tangents = torch.zeros(k, P, dtype=f1.dtype, device=f1.device)
        tangents[torch.arange(k, device=f1.device), torch.arange(start, stop, device=f1.device)] = 1
        A1 = f1.push(tangents)
        A2 = A1 if f2 is None else f2.push(tangents)
        left = _columns(A1[:, rows], reduce)
        right = left if same else _columns(A2[:, cols], reduce)
        K.addmm_(left, right.T)
    if reduce == "trace":
        return K
    return K.reshape(R, C, Q, C).permute(0, 2, 1, 3)


def _columns(A: Tensor, reduce: str) -> Tensor:
    """``(k, n, C)`` pushed tangents as the factor whose Gram matrix is this chunk's kernel contribution."""
    k, n, C = A.shape
    if reduce == "trace":  # sum over directions and channels: (n, k C)
        return A.permute(1, 0, 2).reshape(n, k * C)
    return A.reshape(k, n * C).T  # (n C, k), rows (node, channel)


def _reverse_mode(f_rows, f_cols, rows, cols, step, reduce):
    """Pull Jacobian rows of ``cols`` (on ``f_cols``), push them through ``f_rows``; memory one chunk."""
    C = f_rows.num_outputs
    R, Q = rows.numel(), cols.numel()
    nodes_per_chunk = max(1, step // C)
    K = torch.empty((R, Q) if reduce == "trace" else (R, Q, C, C), dtype=f_rows.dtype, device=f_rows.device)
    for start, stop in _chunks(Q, nodes_per_chunk):
        m = stop - start
        J = f_cols.pull(cols[start:stop])  # (m C, P)
        A = f_rows.push(J).reshape(m, C, f_rows.num_nodes, C)[:, :, rows]  # A[q, b, r, a] = K[r, q, a, b]
        if reduce == "trace":
            K[:, start:stop] = A.diagonal(dim1=1, dim2=3).sum(-1).T
        else:
            K[:, start:stop] = A.permute(2, 0, 3, 1)
    return K

"""Per-sample parameter Jacobians and empirical NTKs of any module (PyG models included) via ``torch.func``.

Two kinds of "sample" are supported:

* **independent rows** (an MLP on a batch ``X``): every input row is its own sample, so the Jacobian of one row is
  ``jacrev`` of a one-row forward pass, vectorised over rows with ``vmap``;
* **shared forward** (a GNN on ``(x, edge_index)``): all output nodes come out of one forward pass over the whole
  graph, so the samples are *output rows*. The forward pass runs once; the Jacobian rows of a chunk of nodes are
  vector-Jacobian products with one-hot cotangents, vectorised with ``vmap`` and reusing the recorded graph.

Memory is bounded by ``chunk_size``: at most two chunks of Jacobian rows (``chunk_size x C x P`` each, ``C`` outputs
per sample, ``P`` parameters) live at once with ``strategy='jacobian'``; ``strategy='ntk_vp'`` keeps one chunk of
rows and computes the kernel columns as Jacobian-vector products of the model itself (the "NTK-vector product"
route), so the Jacobian of the first argument is never built.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from pyg_em.validation import check_positive_int, validation_disabled

__all__ = ["empirical_ntk", "per_sample_jacobian"]

_STRATEGIES = ("jacobian", "ntk_vp")
_REDUCTIONS = ("full", "trace")


def _as_tuple(inputs: Any, name: str) -> tuple:
    if isinstance(inputs, Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)) and len(inputs) > 0:
        return tuple(inputs)
    raise TypeError(f"{name} must be a Tensor or a non-empty tuple of model arguments, got {type(inputs).__name__}")


def _check_chunk_size(chunk_size: Any) -> int | None:
    if chunk_size is None:
        return None
    return check_positive_int(chunk_size, "chunk_size")


def _trainable_parameters(model: nn.Module, params: dict[str, Tensor] | None) -> dict[str, Tensor]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if params is None:
        params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    else:
        known = dict(model.named_parameters())
        unknown = [name for name in params if name not in known]
        if unknown:
            raise ValueError(f"params names {unknown} are not parameters of the model")
        params = {name: p.detach() for name, p in params.items()}
    if not params:
        raise ValueError("model has no trainable parameters: the Jacobian would be empty")
    return params


def _chunks(n: int, chunk_size: int | None) -> Iterator[tuple[int, int]]:
    step = n if chunk_size is None else chunk_size
    for start in range(0, n, max(step, 1)):
        yield start, min(start + step, n)


class _JacobianRows:
    """Jacobian rows ``(c, C, P)`` and JVP blocks for one set of samples of ``model``."""

    def __init__(self, model, params, inputs, independent, node_index, name):
        self.model, self.params, self.names = model, params, list(params)
        self.shapes = [params[k].shape for k in self.names]
        self.inputs = _as_tuple(inputs, name)
        self.independent = independent
        if independent:
            self._init_independent(node_index, name)
        else:
            self._init_shared(node_index, name)

    # ---------------------------------------------------------------- independent rows
    def _init_independent(self, node_index, name):
        if node_index is not None:
            raise ValueError(f"node_index selects output rows of a shared forward pass; it cannot be used with "
                             f"independent rows ({name} treated as a batch of samples)")
        if not all(isinstance(x, Tensor) for x in self.inputs):
            raise TypeError(f"with independent rows every element of {name} must be a Tensor batched on dim 0")
        sizes = {x.size(0) if x.dim() > 0 else -1 for x in self.inputs}
        if len(sizes) != 1 or -1 in sizes:
            raise ValueError(f"with independent rows every tensor of {name} must share its first (batch) "
                             f"dimension, got shapes {[tuple(x.shape) for x in self.inputs]}")
        self.n = sizes.pop()
        if self.n == 0:
            raise ValueError(f"{name} holds no samples")
        with torch.no_grad():
            probe = functional_call(self.model, self.params, tuple(x[:1] for x in self.inputs))
        self._set_output_shape(probe, 1, name)

    def _one_row(self, params, *row):
        out = functional_call(self.model, params, tuple(x.unsqueeze(0) for x in row))
        return out.reshape(-1)

    def _rows(self, params, start, stop):
        out = functional_call(self.model, params, tuple(x[start:stop] for x in self.inputs))
        return out.reshape(stop - start, -1)

    # ---------------------------------------------------------------- shared forward (graphs)
    def _init_shared(self, node_index, name):
        def forward(params):
            return functional_call(self.model, params, self.inputs)

        self._forward = forward
        out, self._vjp = vjp(forward, self.params)  # one forward pass, graph kept for every chunk's VJPs
        if out.dim() == 0:
            raise ValueError(f"the model output on {name} is a scalar; it needs a leading node/sample dimension")
        self.num_rows = out.size(0)
        self._set_output_shape(out, self.num_rows, name)
        self.output_shape = out.shape
        if node_index is None:
            node_index = torch.arange(self.num_rows, device=out.device)
        elif not isinstance(node_index, Tensor) or node_index.dtype != torch.long or node_index.dim() != 1:
            raise TypeError("node_index must be a 1-D torch.long tensor of output rows")
        elif node_index.numel() and (int(node_index.min()) < 0 or int(node_index.max()) >= self.num_rows):
            raise ValueError(f"node_index must lie in [0, {self.num_rows}) (the model's output rows)")
        self.node_index = node_index.to(out.device)
        self.n = node_index.numel()
        if self.n == 0:
            raise ValueError("node_index selects no rows")

    def _set_output_shape(self, out: Tensor, rows: int, name: str):
        if out.dim() == 0 or out.size(0) != rows:
            raise ValueError(f"the model output on {name} must have a leading dimension of {rows} samples, "
                             f"got shape {tuple(out.shape)}")
        self.scalar = out.dim() == 1
        self.num_outputs = out[0].numel()
        self.dtype, self.device = out.dtype, out.device

    # ---------------------------------------------------------------- public pieces
    def jacobian(self, start: int, stop: int) -> Tensor:
        c, C = stop - start, self.num_outputs
        if self.independent:
            rows = tuple(x[start:stop] for x in self.inputs)
            grads = vmap(jacrev(self._one_row), in_dims=(None, *[0] * len(rows)))(self.params, *rows)
            return torch.cat([grads[k].reshape(c, C, -1) for k in self.names], dim=2)
        nodes = self.node_index[start:stop]
        cotangents = torch.zeros(c * C, self.num_rows, C, dtype=self.dtype, device=self.device)
        cotangents[torch.arange(c * C, device=self.device), nodes.repeat_interleave(C),
                   torch.arange(C, device=self.device).repeat(c)] = 1
        (grads,) = vmap(self._vjp)(cotangents.reshape(c * C, *self.output_shape))
        return torch.cat([grads[k].reshape(c, C, -1) for k in self.names], dim=2)

    def unflatten(self, rows: Tensor) -> dict[str, Tensor]:
        """Split ``(T, P)`` flat rows into a dict of ``(T, *shape)`` tangents."""
        sizes = [int(torch.Size(s).numel()) for s in self.shapes]
        parts = rows.split(sizes, dim=1)
        return {k: part.reshape(rows.size(0), *s) for k, part, s in zip(self.names, parts, self.shapes)}

    def jvp_blocks(self, tangents: dict[str, Tensor], chunk_size: int | None,
                   limit: int | None = None) -> Iterator[tuple[int, int, Tensor]]:
        """Yield ``(start, stop, J[start:stop] @ t)`` blocks of shape ``(T, stop - start, C)``.

        With independent rows only chunks starting below ``limit`` are computed.
        """
        if self.independent:
            for start, stop in _chunks(self.n, chunk_size):
                if limit is not None and start >= limit:
                    return
                def push(t, start=start, stop=stop):
                    return jvp(lambda p: self._rows(p, start, stop), (self.params,), (t,))[1]
                yield start, stop, vmap(push)(tangents)
        else:  # one JVP of the whole graph gives every node at once
            def push(t):
                return jvp(self._forward, (self.params,), (t,))[1]
            out = vmap(push)(tangents)
            yield 0, self.n, out.reshape(out.size(0), self.num_rows, -1)[:, self.node_index]


def _resolve_independent(independent: bool | None, inputs: Any, node_index: Tensor | None) -> bool:
    if independent is None:
        return isinstance(inputs, Tensor) and node_index is None
    if not isinstance(independent, bool):
        raise TypeError(f"independent must be a bool or None, got {type(independent).__name__}")
    return independent


def per_sample_jacobian(
    model: nn.Module,
    inputs: Tensor | Sequence[Any],
    *,
    node_index: Tensor | None = None,
    independent: bool | None = None,
    chunk_size: int | None = None,
    params: dict[str, Tensor] | None = None,
) -> Tensor:
    r"""Jacobian of each sample's output with respect to all trainable parameters.

    Columns follow ``model.named_parameters()`` order, each parameter flattened row-major.

    Args:
        model (torch.nn.Module): Any module; called as ``model(*inputs)``.
        inputs (Tensor or tuple): A batch tensor, or the tuple of arguments (e.g. ``(x, edge_index)``).
        node_index (Tensor, optional): Output rows to differentiate in the shared-forward mode (all by default).
            (default: :obj:`None`)
        independent (bool, optional): :obj:`True` treats each input row as an independent sample (every tensor in
            ``inputs`` batched on dim 0); :obj:`False` runs one forward pass and takes its output rows as the
            samples (graph models). :obj:`None` means :obj:`True` for a single tensor without ``node_index`` and
            :obj:`False` otherwise. (default: :obj:`None`)
        chunk_size (int, optional): Samples per vectorised chunk. (default: :obj:`None`, all at once)
        params (dict, optional): Subset of ``model.named_parameters()`` to differentiate (e.g. one layer).
            (default: :obj:`None`, every parameter with ``requires_grad``)

    Returns:
        Tensor: :math:`(n, P)` for one output per sample (model output of shape :math:`(n,)`), else
        :math:`(n, C, P)` with :math:`C` the number of outputs per sample.
    """
    chunk_size = _check_chunk_size(chunk_size)
    params = _trainable_parameters(model, params)
    mode = _resolve_independent(independent, inputs, node_index)
    # Data-dependent input checks inside the model (host syncs) cannot run under vmap.
    with validation_disabled():
        rows = _JacobianRows(model, params, inputs, mode, node_index, "inputs")
        J = torch.cat([rows.jacobian(start, stop) for start, stop in _chunks(rows.n, chunk_size)], dim=0)
    return J.squeeze(1) if rows.scalar else J


def empirical_ntk(
    model: nn.Module,
    inputs: Tensor | Sequence[Any],
    inputs2: Tensor | Sequence[Any] | None = None,
    *,
    node_index: Tensor | None = None,
    node_index2: Tensor | None = None,
    independent: bool | None = None,
    strategy: str | None = None,
    chunk_size: int | None = None,
    reduce: str = "full",
    params: dict[str, Tensor] | None = None,
) -> Tensor:
    r"""Empirical neural tangent kernel :math:`\Theta(s, t) = \mathbf{J}_s \mathbf{J}_t^\top` of any module.

    For samples :math:`s` of ``inputs`` and :math:`t` of ``inputs2`` (or of ``inputs`` again), with
    :math:`\mathbf{J}_s = \partial f_s / \partial\theta \in \mathbb{R}^{C \times P}`. On a graph,
    ``empirical_ntk(gcn, (x, edge_index), node_index=idx)`` gives the node-by-node kernel of the GCN's outputs.

    Args:
        model (torch.nn.Module): Any module; called as ``model(*inputs)``.
        inputs (Tensor or tuple): First set of samples (see :func:`per_sample_jacobian`).
        inputs2 (Tensor or tuple, optional): Second set; :obj:`None` reuses ``inputs`` (then, if also
            ``node_index2`` is :obj:`None`, the kernel is symmetric and only its upper block triangle is
            computed). (default: :obj:`None`)
        node_index (Tensor, optional): Output rows of the first set (shared-forward mode). (default: :obj:`None`)
        node_index2 (Tensor, optional): Output rows of the second set. (default: :obj:`None`)
        independent (bool, optional): Sample mode, see :func:`per_sample_jacobian`. (default: :obj:`None`)
        strategy (str): ``"jacobian"`` contracts chunks of Jacobian rows, :math:`\mathbf{J}_i\mathbf{J}_j^\top`;
            ``"ntk_vp"`` turns a chunk of rows of :math:`\mathbf{J}_2` into tangents and pushes them through the
            model with forward-mode JVPs, :math:`\mathbf{J}_1(\mathbf{J}_2^\top \mathbf{e}_t)`, so that
            :math:`\mathbf{J}_1` is never built (one JVP of the whole graph yields a full kernel column).
            To hold only two chunks, ``"jacobian"`` recomputes rows of the first set once per chunk of the second
            (:math:`k(k+1)/2` chunk evaluations for :math:`k` chunks in the symmetric case): cheap for independent
            rows, but on a graph every row costs a backward pass over the whole graph, where ``"ntk_vp"``
            evaluates each row once. :obj:`None` picks ``"jacobian"`` for independent rows and ``"ntk_vp"`` for a
            shared forward pass. (default: :obj:`None`)
        chunk_size (int, optional): Samples per chunk; peak memory is about two chunks of Jacobian rows
            (``chunk_size * C * P`` numbers each) plus the per-chunk activations, on top of the output.
            (default: :obj:`None`, everything in one chunk)
        reduce (str): ``"full"`` keeps the :math:`C \times C` output blocks, ``"trace"`` sums their diagonal.
            (default: :obj:`"full"`)
        params (dict, optional): Subset of parameters to differentiate. (default: :obj:`None`, all trainable)

    Returns:
        Tensor: :math:`(n_1, n_2)` for scalar outputs or ``reduce="trace"``, else :math:`(n_1, n_2, C, C)`.
    """
    mode = _resolve_independent(independent, inputs, node_index)
    if strategy is None:
        strategy = "jacobian" if mode else "ntk_vp"
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}")
    if reduce not in _REDUCTIONS:
        raise ValueError(f"reduce must be one of {_REDUCTIONS}, got {reduce!r}")
    chunk_size = _check_chunk_size(chunk_size)
    params = _trainable_parameters(model, params)
    with validation_disabled():  # data-dependent checks inside the model cannot run under vmap
        return _empirical_ntk(model, params, inputs, inputs2, node_index, node_index2, mode, strategy, chunk_size,
                              reduce)


def _empirical_ntk(model, params, inputs, inputs2, node_index, node_index2, mode, strategy, chunk_size, reduce):
    rows1 = _JacobianRows(model, params, inputs, mode, node_index, "inputs")
    symmetric = inputs2 is None and node_index2 is None
    if symmetric:
        rows2 = rows1
    else:
        source2 = inputs if inputs2 is None else inputs2
        rows2 = _JacobianRows(model, params, source2, mode, node_index2, "inputs2")
        if rows2.num_outputs != rows1.num_outputs:
            raise ValueError("inputs and inputs2 give different numbers of outputs per sample")
    C = rows1.num_outputs
    K = torch.empty(rows1.n, rows2.n, C, C, dtype=rows1.dtype, device=rows1.device)
    if strategy == "jacobian":
        _fill_by_jacobians(K, rows1, rows2, symmetric, chunk_size)
    else:
        _fill_by_jvps(K, rows1, rows2, symmetric, chunk_size)
    if reduce == "trace":
        return K.diagonal(dim1=2, dim2=3).sum(-1)
    return K[:, :, 0, 0] if rows1.scalar else K


def _fill_by_jacobians(K: Tensor, rows1: _JacobianRows, rows2: _JacobianRows, symmetric: bool, chunk_size):
    # Outer loop over the second set so each of its chunks is built once; chunks of the first set are rebuilt
    # per outer step, which keeps memory at two chunks (the price is recomputing cheap Jacobian rows).
    for j0, j1 in _chunks(rows2.n, chunk_size):
        Jj = rows2.jacobian(j0, j1)
        for i0, i1 in _chunks(rows1.n, chunk_size):
            if symmetric and i0 > j0:
                break
            Ji = Jj if (symmetric and i0 == j0) else rows1.jacobian(i0, i1)
            block = torch.einsum("iap,jbp->ijab", Ji, Jj)
            K[i0:i1, j0:j1] = block
            if symmetric and i0 != j0:
                K[j0:j1, i0:i1] = block.permute(1, 0, 3, 2)


def _fill_by_jvps(K: Tensor, rows1: _JacobianRows, rows2: _JacobianRows, symmetric: bool, chunk_size):
    C = rows1.num_outputs
    for j0, j1 in _chunks(rows2.n, chunk_size):
        Jj = rows2.jacobian(j0, j1)  # (c, C, P): these rows are the tangents J_2^T e_t
        c = j1 - j0
        tangents = rows1.unflatten(Jj.reshape(c * C, -1))
        for i0, i1, block in rows1.jvp_blocks(tangents, chunk_size, limit=j1 if symmetric else None):
            # block[(t, b), s, a] = J_1[s, a] . J_2[t, b]  ->  K[s, t, a, b]
            part = block.reshape(c, C, i1 - i0, C).permute(2, 0, 3, 1)
            K[i0:i1, j0:j1] = part
            if symmetric and rows1.independent and i0 != j0:
                K[j0:j1, i0:i1] = part.permute(1, 0, 3, 2)

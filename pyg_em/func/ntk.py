"""Per-sample parameter Jacobians and empirical NTKs of any module (PyG models included) via ``torch.func``.

Two kinds of "sample" are supported:

* **independent rows** (an MLP on a batch ``X``): every input row is its own sample, so the Jacobian of one row is
  ``jacrev`` of a one-row forward pass, vectorised over rows with ``vmap``;
* **shared forward** (a GNN on ``(x, edge_index)`` or a ``Data``): all output nodes come out of one forward pass
  over the whole graph, so the samples are *output rows*. :func:`~pyg_em.func.empirical_ntk` then differentiates
  that one pass as a whole (:mod:`pyg_em.func.graph_ntk`: forward mode over parameter chunks or reverse mode over
  output chunks, whichever is cheaper), or uses the closed form of a recognised PyG ``GCN``
  (:mod:`pyg_em.func.gcn_ntk`).

Memory is bounded by ``chunk_size``. With ``strategy='jacobian'`` at most two chunks of Jacobian rows
(``chunk_size x C x P`` each, ``C`` outputs per sample, ``P`` parameters) live at once; ``strategy='ntk_vp'``
keeps one chunk of rows and computes the kernel columns as Jacobian-vector products of the model itself (the
"NTK-vector product" route), so the Jacobian of the first argument is never built.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from pyg_em.func.gcn_ntk import GCNStructure, why_not_gcn
from pyg_em.func.graph_ntk import FULL_GRAPH_STRATEGIES, GraphFunction, choose_mode, full_graph_ntk
from pyg_em.validation import check_positive_int, validation_disabled

if TYPE_CHECKING:
    from torch_geometric.data import Data

__all__ = ["empirical_ntk", "per_sample_jacobian"]

_FULL_GRAPH = ("auto", "structured", *FULL_GRAPH_STRATEGIES)
_STRATEGIES = ("auto", "structured", *FULL_GRAPH_STRATEGIES, "jacobian", "ntk_vp")
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
        self.node_index = _check_node_index(node_index, self.num_rows, out.device, "node_index")
        self.n = self.node_index.numel()

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


def _check_node_index(node_index: Any, num_rows: int, device, name: str) -> Tensor:
    """Output rows to use: all when :obj:`None`, else a checked 1-D long tensor on ``device``."""
    if node_index is None:
        return torch.arange(num_rows, device=device)
    if not isinstance(node_index, Tensor) or node_index.dtype != torch.long or node_index.dim() != 1:
        raise TypeError(f"{name} must be a 1-D torch.long tensor of output rows, e.g. data.train_mask.nonzero()"
                        f".flatten()")
    if node_index.numel() == 0:
        raise ValueError(f"{name} selects no rows")
    if int(node_index.min()) < 0 or int(node_index.max()) >= num_rows:
        raise ValueError(f"{name} must lie in [0, {num_rows}) (the model's output rows)")
    return node_index.to(device)


def _model_arguments(model: nn.Module, inputs: Any, name: str) -> Any:
    """``(data.x, data.edge_index[, data.edge_weight])`` for a PyG ``Data``; anything else unchanged."""
    from torch_geometric.data import Data

    if not isinstance(inputs, Data):
        return inputs
    if inputs.x is None or inputs.edge_index is None:
        raise ValueError(f"{name} is a Data object without x or edge_index; the model is called as "
                         f"model(data.x, data.edge_index[, data.edge_weight])")
    args = (inputs.x, inputs.edge_index)
    edge_weight = inputs.edge_weight if "edge_weight" in inputs else None
    if edge_weight is None:
        return args
    forward_args = list(inspect.signature(model.forward).parameters)
    if forward_args[2:3] != ["edge_weight"]:
        raise ValueError(f"{name}.edge_weight is set but {type(model).__name__}.forward does not take edge_weight "
                         f"as its third argument; set {name}.edge_weight = None to ignore the weights, or pass the "
                         f"arguments as a tuple")
    return (*args, edge_weight)


def _mode_dependent(module: nn.Module) -> bool:
    """Whether ``module`` computes something else in training mode (dropout, running-statistics norms)."""
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return module.p > 0
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return module.track_running_stats
    rate = getattr(module, "dropout", None)  # PyG convs such as GATConv keep their attention dropout as a float
    return isinstance(rate, float) and rate > 0


def _check_eval_mode(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if module.training and _mode_dependent(module):
            where = f"its submodule {name!r}" if name else "it"
            raise ValueError(f"model is in training mode and {where} ({type(module).__name__}) behaves differently "
                             f"there (dropout or batch statistics), so the Jacobian is not that of one function: "
                             f"call model.eval() before computing the NTK")


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
        inputs (Tensor, tuple or torch_geometric.data.Data): A batch tensor, the tuple of arguments (e.g.
            ``(x, edge_index)``), or a ``Data`` (see :func:`empirical_ntk`).
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
    inputs = _model_arguments(model, inputs, "inputs")
    mode = _resolve_independent(independent, inputs, node_index)
    _check_eval_mode(model)
    # Data-dependent input checks inside the model (host syncs) cannot run under vmap.
    with validation_disabled():
        rows = _JacobianRows(model, params, inputs, mode, node_index, "inputs")
        J = torch.cat([rows.jacobian(start, stop) for start, stop in _chunks(rows.n, chunk_size)], dim=0)
    return J.squeeze(1) if rows.scalar else J


def empirical_ntk(
    model: nn.Module,
    inputs: Tensor | Sequence[Any] | Data,
    inputs2: Tensor | Sequence[Any] | Data | None = None,
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
    ``empirical_ntk(gcn.eval(), data, reduce="trace")`` gives the node-by-node kernel of the GCN's outputs, and
    ``node_index=train, node_index2=test`` the rectangular block NTK regression needs.

    For a model over a whole graph (a shared forward pass) the default, ``strategy=None``, is the cheapest exact
    route: the closed form of :mod:`pyg_em.func.gcn_ntk` for a recognised PyG ``GCN`` (its last two layers;
    earlier layers, if any, generically), else ``"forward"`` or ``"reverse"`` (:mod:`pyg_em.func.graph_ntk`),
    whichever needs fewer passes: :math:`P` for forward mode, :math:`2\,m\,C` for reverse mode with :math:`m` the
    smaller node set. The model must be in evaluation mode if it has dropout or running-statistics norms.

    Args:
        model (torch.nn.Module): Any module; called as ``model(*inputs)``.
        inputs (Tensor, tuple or torch_geometric.data.Data): First set of samples (see
            :func:`per_sample_jacobian`); a ``Data`` is passed as ``(data.x, data.edge_index)``, plus
            ``data.edge_weight`` when set (the model's third ``forward`` argument must then be ``edge_weight``).
        inputs2 (Tensor, tuple or Data, optional): Second set; :obj:`None` reuses ``inputs`` (then, if also
            ``node_index2`` is :obj:`None`, the kernel is symmetric). (default: :obj:`None`)
        node_index (Tensor, optional): Output rows of the first set (shared-forward mode). (default: :obj:`None`)
        node_index2 (Tensor, optional): Output rows of the second set. (default: :obj:`None`)
        independent (bool, optional): Sample mode, see :func:`per_sample_jacobian`. (default: :obj:`None`)
        strategy (str, optional): For a shared forward pass: ``"structured"`` (the GCN closed form; an error if the
            model is not recognised), ``"forward"`` (parameter chunks, JVPs), ``"reverse"`` (output chunks,
            VJPs then JVPs), or the per-node strategies below. For any model: ``"jacobian"`` contracts chunks of
            per-sample Jacobian rows, :math:`\mathbf{J}_i\mathbf{J}_j^\top`; ``"ntk_vp"`` pushes each chunk of
            rows of :math:`\mathbf{J}_2` through the model as JVPs, :math:`\mathbf{J}_1(\mathbf{J}_2^\top
            \mathbf{e}_t)`. On a graph both rebuild or push node by node and are much slower than the full-graph
            strategies; they are kept for independent rows. :obj:`None` picks ``"jacobian"`` for independent rows
            and the cheapest full-graph route otherwise. (default: :obj:`None`)
        chunk_size (int, optional): Per chunk: tangent directions (``"forward"``), output entries rounded down to
            whole nodes (``"reverse"``), samples (``"jacobian"``/``"ntk_vp"``). Peak memory is one chunk of
            ``chunk_size`` :math:`\times N \times C` pushed tangents (full-graph strategies) or about two chunks of
            Jacobian rows (``chunk_size * C * P`` numbers each), plus the model's activations for the chunk and the
            kernel itself. (default: :obj:`None`: 64 for the full-graph strategies, everything at once otherwise)
        reduce (str): ``"full"`` keeps the :math:`C \times C` output blocks, ``"trace"`` sums their diagonal.
            (default: :obj:`"full"`)
        params (dict, optional): Subset of parameters to differentiate. (default: :obj:`None`, all trainable)

    Returns:
        Tensor: :math:`(n_1, n_2)` for scalar outputs or ``reduce="trace"``, else :math:`(n_1, n_2, C, C)`
        (reshape ``K.permute(0, 2, 1, 3).reshape(n_1 C, n_2 C)`` for the :math:`(n_1C) \times (n_2C)` kernel).
    """
    inputs = _model_arguments(model, inputs, "inputs")
    inputs2 = None if inputs2 is None else _model_arguments(model, inputs2, "inputs2")
    mode = _resolve_independent(independent, inputs, node_index)
    if strategy is None:
        strategy = "jacobian" if mode else "auto"
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy must be one of {_STRATEGIES} or None, got {strategy!r}")
    if mode and strategy in _FULL_GRAPH:
        raise ValueError(f"strategy={strategy!r} differentiates one forward pass over a whole graph; with "
                         f"independent rows use strategy='jacobian' or 'ntk_vp' (or pass independent=False)")
    if reduce not in _REDUCTIONS:
        raise ValueError(f"reduce must be one of {_REDUCTIONS}, got {reduce!r}")
    chunk_size = _check_chunk_size(chunk_size)
    params = _trainable_parameters(model, params)
    _check_eval_mode(model)
    with validation_disabled():  # data-dependent checks inside the model cannot run under vmap
        if strategy in _FULL_GRAPH:
            return _full_graph_ntk(model, params, inputs, inputs2, node_index, node_index2, strategy, chunk_size,
                                   reduce)
        return _empirical_ntk(model, params, inputs, inputs2, node_index, node_index2, mode, strategy, chunk_size,
                              reduce)


def _full_graph_ntk(model, params, inputs, inputs2, node_index, node_index2, strategy, chunk_size, reduce):
    f1 = GraphFunction(model, params, _as_tuple(inputs, "inputs"), "inputs")
    f2 = None if inputs2 is None else GraphFunction(model, params, _as_tuple(inputs2, "inputs2"), "inputs2")
    if f2 is not None and f2.num_outputs != f1.num_outputs:
        raise ValueError("inputs and inputs2 give different numbers of outputs per node")
    rows = _check_node_index(node_index, f1.num_nodes, f1.device, "node_index")
    cols = rows if node_index2 is None else _check_node_index(node_index2, (f2 or f1).num_nodes, f1.device,
                                                               "node_index2")
    structure, remaining = None, dict(params)
    if strategy in ("auto", "structured"):
        structure, reason = _gcn_structure(model, inputs, inputs2, f1)
        if structure is None and strategy == "structured":
            raise ValueError(f"strategy='structured' needs a plain torch_geometric GCN on one graph, but {reason}; "
                             f"use strategy=None (automatic) or 'forward'/'reverse'")
    K = None
    if structure is not None:
        closed = set(params) & set(structure.closed_form_names())
        K = structure.kernel(rows, cols, closed, reduce)
        remaining = {name: p for name, p in params.items() if name not in closed}
    if remaining:
        g1 = f1 if structure is None else GraphFunction(model, remaining, f1.args, "inputs")
        g2 = f2 if (f2 is None or structure is None) else GraphFunction(model, remaining, f2.args, "inputs2")
        mode = strategy if strategy in FULL_GRAPH_STRATEGIES else choose_mode(
            g1.num_params, rows.numel(), cols.numel(), g1.num_outputs)
        generic = full_graph_ntk(g1, g2, rows, cols, mode=mode, chunk_size=chunk_size, reduce=reduce)
        K = generic if K is None else K + generic
    return K[:, :, 0, 0] if (f1.scalar and reduce == "full") else K


def _gcn_structure(model, inputs, inputs2, f1: GraphFunction):
    """The closed-form pieces of a recognised GCN on ``inputs``, or ``(None, reason)``."""
    reason = why_not_gcn(model)
    args = _as_tuple(inputs, "inputs")
    if reason is None and inputs2 is not None:
        reason = "inputs2 gives a second graph"
    if reason is None and not (2 <= len(args) <= 3 and all(isinstance(a, Tensor) or a is None for a in args)
                               and args[1].layout == torch.strided):
        reason = "the inputs are not (x, edge_index[, edge_weight]) tensors"
    if reason is not None:
        return None, reason
    structure = GCNStructure(model, args[0], args[1], args[2] if len(args) == 3 else None)
    if not structure.matches(f1.output):
        return None, "its closed-form forward pass does not reproduce the model's output"
    return structure, None


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

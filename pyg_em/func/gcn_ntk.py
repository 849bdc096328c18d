r"""Structural closed form of the empirical NTK of a stack of ``GCNConv`` layers (PyG's ``GCN`` model).

Layer :math:`l` computes :math:`\mathbf{Z}_l = \hat{\mathbf{A}}\mathbf{H}_{l-1}\mathbf{W}_l^\top + \mathbf{b}_l`
and :math:`\mathbf{H}_l = \sigma(\mathbf{Z}_l)`; the output is :math:`\mathbf{Z}_L \in \mathbb{R}^{N \times C}`.
Write :math:`\mathbf{U}_l = \hat{\mathbf{A}}\mathbf{H}_{l-1}` and
:math:`\mathbf{G}_l = \mathbf{U}_l\mathbf{U}_l^\top + \mathbf{1}\mathbf{1}^\top` (the bias adds the ones).

* **Last layer.** :math:`\partial Z_L[n, a] / \partial W_L[b, i] = U_L[n, i]\,\delta_{ab}`: the Jacobian block is
  :math:`\mathbf{U}_L \otimes \mathbf{I}_C`, so its kernel is :math:`\mathbf{G}_L \otimes \mathbf{I}_C`.
* **Second-to-last layer.** With :math:`\mathbf{D} = \sigma'(\mathbf{Z}_{L-1})`, the chain rule gives
  :math:`\partial Z_L[n, a]/\partial W_{L-1}[j, i] = \sum_m \hat A_{nm} D_{mj} W_L[a, j] U_{L-1}[m, i]`, so

  .. math::
      \mathbf{K}_{L-1}[(n, a), (n', b)] = \Big[\hat{\mathbf{A}}\big(\mathbf{G}_{L-1} \odot
      \mathbf{D}\,\mathrm{diag}(\mathbf{W}_L[a] \odot \mathbf{W}_L[b])\,\mathbf{D}^\top\big)
      \hat{\mathbf{A}}^\top\Big]_{nn'},

  a Hadamard product between two sparse-dense products, with no Jacobian at all; traced over outputs the weight
  is :math:`\sum_a \mathbf{W}_L[a]^{\odot 2}`. For a kernel between node subsets only the rows of
  :math:`\hat{\mathbf{A}}` of those nodes and the columns of :math:`\mathbf{G}` on their neighbourhoods are used.
* **Earlier layers** (three or more layers) go through the generic full-graph path, restricted to their
  parameters.

The model is recognised by its structure and then checked numerically: the closed form's own forward pass must
reproduce the model's output, otherwise the generic path is used.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__: list[str] = []

# Element-wise activations (their derivative is the JVP with a tangent of ones).
_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid,
                nn.Softplus, nn.Mish, nn.Hardtanh, nn.Identity)


def why_not_gcn(model: nn.Module) -> str | None:
    """``None`` when ``model`` is a plain ``GCN`` stack the closed form covers, else the reason it is not."""
    from torch_geometric.nn import GCNConv
    from torch_geometric.nn.models import GCN

    if not isinstance(model, GCN):
        return "the model is not a torch_geometric.nn.models.GCN"
    if model.jk_mode is not None or hasattr(model, "lin"):
        return "the GCN has jumping knowledge or a final linear layer"
    if not all(isinstance(norm, nn.Identity) for norm in model.norms):
        return "the GCN has normalisation layers"
    if model.act is not None and type(model.act) not in _ELEMENTWISE:
        return f"the activation {type(model.act).__name__} is not a known element-wise function"
    convs = list(model.convs)
    if not all(type(conv) is GCNConv and conv.lin.bias is None for conv in convs):
        return "not every layer is a plain GCNConv"
    options = {(conv.normalize, conv.improved, conv.add_self_loops, conv.flow) for conv in convs}
    if len(options) != 1:
        return "the GCNConv layers normalise the graph differently"
    return None


def _propagation(conv, edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int, dtype) -> Tensor:
    """:math:`\\hat{\\mathbf{A}}` of ``conv`` as a coalesced sparse COO matrix, rows = message targets."""
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    if conv.normalize:
        edge_index, edge_weight = gcn_norm(edge_index, edge_weight, num_nodes, conv.improved,
                                           conv.add_self_loops, conv.flow, dtype)
    elif edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), dtype=dtype, device=edge_index.device)
    target, source = (edge_index[1], edge_index[0]) if conv.flow == "source_to_target" else edge_index
    indices = torch.stack([target, source])
    return torch.sparse_coo_tensor(indices, edge_weight.to(dtype), (num_nodes, num_nodes),
                                   check_invariants=False).coalesce()


def _rows(adj: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor]:
    """Rows ``nodes`` of ``adj`` as a sparse ``(len(nodes), s)`` matrix over their ``s`` support columns."""
    (row, col), val = adj.indices(), adj.values()
    counts = torch.bincount(row, minlength=adj.size(0))
    starts = torch.cumsum(counts, 0) - counts
    lengths = counts[nodes]
    new_row = torch.repeat_interleave(torch.arange(nodes.numel(), device=adj.device), lengths)
    offsets = torch.arange(int(lengths.sum()), device=adj.device) - torch.repeat_interleave(
        torch.cumsum(lengths, 0) - lengths, lengths)
    picked = torch.repeat_interleave(starts[nodes], lengths) + offsets
    support, new_col = torch.unique(col[picked], return_inverse=True)
    sub = torch.sparse_coo_tensor(torch.stack([new_row, new_col]), val[picked], (nodes.numel(), support.numel()),
                                  check_invariants=False)
    return sub.coalesce(), support


def _elementwise_derivative(act: nn.Module, z: Tensor) -> Tensor:
    r""":math:`\sigma'(\mathbf{Z})` of an element-wise activation: its VJP with a cotangent of ones.

    (Reverse mode here: ``torch.func.jvp`` would first compile its decompositions, seconds on a cold start.)"""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        (slope,) = torch.autograd.grad(act(z), z, torch.ones_like(z))
    return slope


def _sandwich(left: Tensor, middle: Tensor, right: Tensor) -> Tensor:
    """``left @ middle @ right.T`` for sparse ``left``/``right`` and dense ``middle``."""
    return torch.sparse.mm(right, torch.sparse.mm(left, middle).T).T


class GCNStructure:
    """The pieces of a recognised ``GCN`` on one graph that its closed-form NTK needs."""

    def __init__(self, model, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None):
        convs = list(model.convs)
        self.model, self.convs = model, convs
        self.L = len(convs)
        num_nodes = x.size(0)
        weight = convs[0].lin.weight
        self.adj = _propagation(convs[0], edge_index, edge_weight, num_nodes, weight.dtype)
        self.inputs, self.pre = [], []  # U_l = Â H_{l-1} and Z_l per layer
        with torch.no_grad():
            h = x.to(weight.dtype)
            for l, conv in enumerate(convs):
                u = torch.sparse.mm(self.adj, h)
                z = u @ conv.lin.weight.T
                if conv.bias is not None:
                    z = z + conv.bias
                self.inputs.append(u)
                self.pre.append(z)
                h = self._act(z) if l < self.L - 1 else z
        self.output = h

    def _act(self, z: Tensor) -> Tensor:
        return z if self.model.act is None else self.model.act(z)

    def matches(self, output: Tensor) -> bool:
        """Whether the closed form's forward pass reproduces the model's output (else it is not this model)."""
        if output.shape != self.output.shape:
            return False
        scale = float(output.abs().max()) if output.numel() else 0.0
        tol = 1e3 * torch.finfo(output.dtype).eps * max(scale, 1.0)
        return bool((output - self.output).abs().max() <= tol)

    def names(self, layer: int) -> tuple[str, str | None]:
        """Parameter names of a layer's weight and bias, as ``model.named_parameters()`` spells them."""
        bias = None if self.convs[layer].bias is None else f"convs.{layer}.bias"
        return f"convs.{layer}.lin.weight", bias

    def closed_form_names(self) -> list[str]:
        """Parameters whose kernel contribution has a closed form: the last two layers."""
        names = []
        for layer in range(max(self.L - 2, 0), self.L):
            names += [n for n in self.names(layer) if n is not None]
        return names

    def kernel(self, rows: Tensor, cols: Tensor, include: set[str], reduce: str) -> Tensor:
        """Sum of the closed-form contributions of the parameters in ``include`` (last two layers only)."""
        C = self.output.size(1)
        R, Q = rows.numel(), cols.numel()
        K = torch.zeros((R, Q) if reduce == "trace" else (R, Q, C, C), dtype=self.output.dtype,
                        device=self.output.device)
        gram = self._gram(self.L - 1, rows, cols, include)
        if gram is not None:
            if reduce == "trace":
                K += C * gram
            else:
                K += gram[:, :, None, None] * torch.eye(C, dtype=K.dtype, device=K.device)
        if self.L >= 2:
            self._add_second_to_last(K, rows, cols, include, reduce)
        return K

    def _gram(self, layer: int, rows: Tensor, cols: Tensor, include: set[str]) -> Tensor | None:
        """:math:`\\mathbf{U}_l[rows]\\mathbf{U}_l[cols]^\\top` (if the weight is included) + ones (bias)."""
        weight, bias = self.names(layer)
        u = self.inputs[layer]
        gram = u[rows] @ u[cols].T if weight in include else None
        if bias is not None and bias in include:
            gram = torch.ones(rows.numel(), cols.numel(), dtype=u.dtype, device=u.device) + (
                0 if gram is None else gram)
        return gram

    def _add_second_to_last(self, K: Tensor, rows: Tensor, cols: Tensor, include: set[str], reduce: str):
        layer = self.L - 2
        adj_rows, support_rows = _rows(self.adj, rows)
        adj_cols, support_cols = _rows(self.adj, cols)
        gram = self._gram(layer, support_rows, support_cols, include)
        if gram is None:
            return
        z = self.pre[layer]
        slope = torch.ones_like(z) if self.model.act is None else _elementwise_derivative(self.model.act, z)
        d_rows, d_cols = slope[support_rows], slope[support_cols]
        w = self.convs[-1].lin.weight  # (C, F): the last layer's weight carries the signal back
        if reduce == "trace":
            K += _sandwich(adj_rows, gram * ((d_rows * (w * w).sum(0)) @ d_cols.T), adj_cols)
            return
        C = w.size(0)
        for a in range(C):
            for b in range(a, C):
                block = _sandwich(adj_rows, gram * ((d_rows * (w[a] * w[b])) @ d_cols.T), adj_cols)
                K[:, :, a, b] += block
                if b != a:
                    K[:, :, b, a] += block

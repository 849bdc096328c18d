"""The Laplacian (pseudo-)inverse as an operator on right-hand sides: CG, direct, Neumann or low-rank."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from pyg_em.linalg._laplacian import laplacian_coo, undirected_graph
from pyg_em.linalg._sparse_solve import SparseSolveFunction, _LinearSystem, check_finite, check_solver_dtype
from pyg_em.linalg.cg import default_tol
from pyg_em.linalg.errors import ConvergenceError
from pyg_em.validation import check_edge_index, check_edge_weight, check_positive, check_positive_int, resolve_num_nodes

_METHODS = ("cg", "neumann", "lowrank", "direct")
#: Default iteration cap of ``"neumann"`` (its rate depends on the spectrum, not on N: K5 with eps = 0.1 needs
#: about 2000 terms at tol 1e-10).
NEUMANN_MAXITER = 20000
#: ``"lowrank"`` warns when an eigenvalue it inverts may be off by more than this fraction: dense ``eigh`` and
#: ``eigsh`` give eigenvalues to about eps * lambda_max, so 1/lambda is unreliable where lambda approaches that.
LOWRANK_MAX_RELATIVE_ERROR = 1e-3


def connected_components(edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None) -> tuple[int, Tensor]:
    """Connected components (scipy's ``csgraph``, O(E) on the host) of the graph whose edges have weight > 0.

    Returns:
        (int, torch.Tensor): the number of components and the component label of every node (on the input's
        device).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as cc

    ei = edge_index if edge_weight is None else edge_index[:, edge_weight.detach() > 0]
    ei = ei.cpu().numpy()
    adj = coo_matrix((np.ones(ei.shape[1], dtype=np.int8), (ei[0], ei[1])), shape=(num_nodes, num_nodes))
    count, labels = cc(adj, directed=True, connection="weak")
    return int(count), torch.from_numpy(labels.astype(np.int64)).to(edge_index.device)


class LaplacianPseudoInverse:
    r"""The pseudo-inverse :math:`\mathbf{L}^{+}` (``eps=0``) or the inverse :math:`(\mathbf{L} + \varepsilon
    \mathbf{I})^{-1}` (``eps>0``) of a weighted graph Laplacian :math:`\mathbf{L} = \mathbf{D} - \mathbf{W}`,
    applied to right-hand sides without forming an :math:`N \times N` matrix.

    The nullspace of :math:`\mathbf{L}` holds one constant vector per connected component, so with
    :math:`\mathbf{P}` the projector that removes each component's mean,

    .. math::
        \mathbf{L}^{+}\mathbf{B} = \mathbf{P}\,\mathbf{x}, \qquad \mathbf{L}\mathbf{x} = \mathbf{P}\mathbf{B},

    and any solution :math:`\mathbf{x}` will do. ``"cg"`` and ``"direct"`` take the one with
    :math:`x_r = 0` at a root node :math:`r` per component ("grounding"): replacing row and column :math:`r` of
    :math:`\mathbf{L}` by those of the identity gives a non-singular SPD matrix whose solution satisfies all
    of :math:`\mathbf{L}\mathbf{x} = \mathbf{P}\mathbf{B}` (the dropped equation is the sum of the others).

    Methods:

    - ``"cg"``: batched Jacobi-preconditioned CG (:func:`~pyg_em.linalg.sparse_solve` machinery), CPU/CUDA.
    - ``"direct"``: scipy sparse LU (CPU), factorised once per operator and reused for every product and
      backward pass.
    - ``"neumann"``: the series of a convergent splitting, :math:`\mathbf{x} = \sum_k \mathbf{T}^k \omega
      \mathbf{D}_\varepsilon^{-1}\mathbf{b}` with :math:`\mathbf{T} = \mathbf{I} - \omega
      \mathbf{D}_\varepsilon^{-1}(\mathbf{L}+\varepsilon\mathbf{I})`: Jacobi (:math:`\omega = 1`,
      spectral radius :math:`\le \max_i d_i/(d_i+\varepsilon) < 1`) for ``eps>0``; the lazy splitting
      :math:`\omega = 1/2` for ``eps=0``, whose eigenvalues lie in :math:`[0, 1]` with 1 only on the
      nullspace, which :math:`\mathbf{P}\mathbf{B}` does not excite. Stops when a term falls below ``tol``
      (relative), otherwise raises :class:`~pyg_em.linalg.ConvergenceError`. A right-hand side the operator
      maps to zero (graphs without edges, zero weights) gives zero.
    - ``"lowrank"``: :math:`\mathbf{V}_r\mathrm{diag}(1/\lambda)\mathbf{V}_r^\top` from the ``rank`` smallest
      non-zero eigenpairs (dense ``eigh`` up to 2048 nodes, scipy's shift-invert ``eigsh`` above). Exact when
      ``rank`` covers all non-zero eigenvalues; otherwise the best rank-``rank`` approximation of the
      (pseudo-)inverse. A graph without a non-zero eigenvalue (no edges, ``eps=0``) gives zero, as
      ``numpy.linalg.pinv``. Computed eigenvalues are accurate to about :math:`\epsilon\lambda_{\max}`, so
      when :math:`10\,\epsilon\lambda_{\max}/\lambda` exceeds ``LOWRANK_MAX_RELATIVE_ERROR`` (0.1 %) for an inverted
      :math:`\lambda` (weights spread over many orders of magnitude) it warns that the result is inaccurate and
      that ``"cg"``/``"direct"`` are exact.

    Gradients: ``"cg"``/``"direct"`` are differentiable w.r.t. ``edge_weight`` (sparse gradients, see
    :class:`~pyg_em.linalg.SparseSolveFunction`) and ``B``; ``"neumann"`` is differentiated by
    unrolling its iterations; ``"lowrank"`` only w.r.t. ``B`` (the eigenpairs are constants).

    The graph must be undirected (both directions, equal weights; checked by one sort of the edge keys, a
    :class:`ValueError` says how to fix it) unless ``symmetrize`` merges the two directions.

    Args:
        edge_index (torch.Tensor): graph connectivity (both directions of undirected edges).
        edge_weight (torch.Tensor, optional): non-negative weights. (default: :obj:`None`, all ones)
        num_nodes (int, optional): number of nodes. (default: :obj:`None`, ``edge_index.max() + 1``)
        method (str, optional): ``"cg"``, ``"neumann"``, ``"lowrank"`` or ``"direct"``. (default: ``"cg"``)
        eps (float, optional): :math:`\varepsilon \ge 0`. (default: :obj:`0.0`, the pseudo-inverse)
        rank (int, optional): number of eigenpairs for ``"lowrank"``. (default: :obj:`None`,
            ``min(32, N - components)``)
        tol (float, optional): relative tolerance of CG / Neumann. (default: :obj:`None`, ``1e-10`` in float64,
            ``1e-5`` in float32)
        maxiter (int, optional): iteration cap of CG / Neumann. (default: :obj:`None`, ``min(10 N, 20000)``
            for CG, ``NEUMANN_MAXITER`` (20,000) for Neumann)
        symmetrize (str, optional): :obj:`None` to require an undirected graph, or ``"mean"``, ``"add"``,
            ``"max"``, ``"min"`` to merge the two directions' weights
            (:func:`torch_geometric.utils.to_undirected`). (default: :obj:`None`)

    Shapes:
        - **input:** B :math:`(N,)` or :math:`(N, k)`
        - **output:** same as B
    """

    #: ``to_dense()`` refuses larger graphs (an N x N float64 matrix at N = 5000 is 200 MB).
    max_dense_nodes = 5000

    def __init__(self, edge_index: Tensor, edge_weight: Tensor | None = None, num_nodes: int | None = None,
                 method: str = "cg", eps: float = 0.0, rank: int | None = None, tol: float | None = None,
                 maxiter: int | None = None, symmetrize: str | None = None):
        edge_index = check_edge_index(edge_index)
        num_nodes = resolve_num_nodes(edge_index, num_nodes)
        check_edge_index(edge_index, num_nodes=num_nodes)
        if edge_weight is not None:
            edge_weight = check_edge_weight(edge_weight, edge_index.size(1))
            check_solver_dtype(edge_weight, "edge_weight")
        edge_index, edge_weight = undirected_graph(edge_index, edge_weight, num_nodes, symmetrize)
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
        self.eps = check_positive(eps, "eps", allow_zero=True)
        if rank is not None:
            check_positive_int(rank, "rank")
        if tol is not None and not tol > 0:
            raise ValueError(f"tol must be positive, got {tol}")
        if maxiter is not None:
            check_positive_int(maxiter, "maxiter")
        if method == "direct" and edge_index.device.type != "cpu":
            raise ValueError(f"method='direct' runs scipy on CPU tensors; edge_index is on {edge_index.device}")
        self.edge_index, self.edge_weight, self.num_nodes = edge_index, edge_weight, num_nodes
        self.method, self.rank, self.tol, self.maxiter = method, rank, tol, maxiter
        self.num_components, self.labels = connected_components(edge_index, num_nodes, edge_weight)
        self._system: _LinearSystem | None = None
        self._eig: tuple[Tensor, Tensor] | None = None

    # ---------------------------------------------------------------------------------------------- helpers
    @property
    def shape(self) -> tuple[int, int]:
        """``(N, N)``: the operator's shape, so it can stand in for a matrix."""
        return (self.num_nodes, self.num_nodes)

    def _dtype(self, B: Tensor | None = None) -> torch.dtype:
        if self.edge_weight is not None:
            return self.edge_weight.dtype
        return B.dtype if B is not None else torch.get_default_dtype()

    def _laplacian(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        indices, values, _ = laplacian_coo(self.edge_index, self.edge_weight, self.num_nodes, shift=self.eps,
                                           dtype=dtype)
        return indices, values

    def project(self, B: Tensor) -> Tensor:
        """Remove each connected component's mean from the columns of ``B`` (the projector :math:`\\mathbf{P}`)."""
        counts = torch.bincount(self.labels, minlength=self.num_components).to(B.dtype)
        shape = (self.num_components,) + tuple(B.shape[1:])
        sums = B.new_zeros(shape).index_add(0, self.labels, B)
        mean = sums / (counts if B.dim() == 1 else counts.unsqueeze(-1))
        return B - mean.index_select(0, self.labels)

    def _roots(self) -> Tensor:
        """One node per component (the smallest id), where the grounded solve pins :math:`x_r = 0`."""
        ids = torch.arange(self.num_nodes, device=self.labels.device)
        first = torch.full((self.num_components,), self.num_nodes, dtype=torch.long, device=ids.device)
        return first.scatter_reduce(0, self.labels, ids, reduce="amin")

    # ---------------------------------------------------------------------------------------------- methods
    def _solve(self, B: Tensor) -> Tensor:
        indices, values = self._laplacian(B.dtype)
        singular = self.eps == 0
        if singular:
            is_root = torch.zeros(self.num_nodes, dtype=torch.bool, device=B.device)
            is_root[self._roots()] = True
            row, col = indices
            touches_root = (is_root[row] | is_root[col]) & (row != col)
            root_diag = is_root[row] & (row == col)
            values = torch.where(touches_root, torch.zeros_like(values), values)
            values = torch.where(root_diag, torch.ones_like(values), values)
            B = self.project(B)
            B = B.masked_fill(is_root if B.dim() == 1 else is_root.unsqueeze(-1), 0.0)
        if self._system is None:
            tol = self.tol if self.tol is not None else default_tol(B.dtype)
            self._system = _LinearSystem(indices, self.num_nodes, "direct" if self.method == "direct" else "cg",
                                         "jacobi", tol, 0.0, self.maxiter, True, name="L")
        X = SparseSolveFunction.apply(values, B, self._system, None)
        return self.project(X) if singular else X

    def _neumann(self, B: Tensor) -> Tensor:
        indices, values = self._laplacian(B.dtype)
        row, col = indices
        diag = values.new_zeros(self.num_nodes).index_add(0, row[row == col], values[row == col])
        singular = self.eps == 0
        omega = 0.5 if singular else 1.0
        # Isolated nodes have d_i = 0: with eps = 0 they are their own component (projected to 0), so any
        # positive stand-in keeps the iteration finite.
        inv = omega / torch.where(diag > 0, diag, torch.ones_like(diag))
        inv = inv if B.dim() == 1 else inv.unsqueeze(-1)
        b = self.project(B) if singular else B

        def lap(x: Tensor) -> Tensor:
            prod = values.unsqueeze(-1) * x.index_select(0, col) if x.dim() == 2 else values * x.index_select(0, col)
            return torch.zeros_like(x).index_add(0, row, prod)

        tol = self.tol if self.tol is not None else default_tol(B.dtype)
        maxiter = self.maxiter if self.maxiter is not None else NEUMANN_MAXITER
        term = inv * b
        x = term
        tiny = torch.finfo(B.dtype).tiny
        rel = float("inf")
        for it in range(1, maxiter + 1):
            term = term - inv * lap(term)  # T term, with T = I - omega D^-1 L_eps
            x = x + term
            if it % 10 and it != maxiter:  # the stopping test reads back to the host: every 10th term only
                continue
            # A zero right-hand side (after the projection: no edges, zero weights) gives x = term = 0: rel = 0.
            rel = float(torch.linalg.vector_norm(term) / torch.linalg.vector_norm(x).clamp_min(tiny))
            if rel <= tol:
                return self.project(x) if singular else x
            if it % 50 == 0 and not rel < 1e30:
                break
        raise ConvergenceError(rel, maxiter if rel < 1e30 else it, "Neumann series of the Laplacian")

    def eigenpairs(self, dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
        """The ``rank`` smallest non-zero eigenvalues of :math:`\\mathbf{L} + \\varepsilon\\mathbf{I}` and their
        eigenvectors (cached). For ``eps=0`` the ``num_components`` zero eigenvalues are skipped."""
        if self._eig is None:
            dtype = dtype or self._dtype()
            skip = self.num_components if self.eps == 0 else 0
            available = self.num_nodes - skip
            rank = min(self.rank if self.rank is not None else 32, available)
            indices, values = self._laplacian(dtype)
            values = values.detach()
            if available < 1:  # no non-zero eigenvalue (no edges, eps = 0): the pseudo-inverse is 0
                empty = values.new_zeros(0)
                self._eig = (empty, values.new_zeros(self.num_nodes, 0))
                return self._eig
            if self.num_nodes <= 2048:
                # eigh in float64 whatever the dtype: the smallest eigenvalues, the ones inverted, need it most.
                dense = torch.zeros(self.num_nodes, self.num_nodes, dtype=torch.float64, device=values.device)
                dense.index_put_((indices[0], indices[1]), values.double(), accumulate=True)
                lam, vec = torch.linalg.eigh(dense)
                lam, vec = lam[skip:skip + rank].to(dtype), vec[:, skip:skip + rank].to(dtype)
            else:
                import scipy.sparse as sp
                from scipy.sparse.linalg import eigsh

                ind = indices.cpu().numpy()
                mat = sp.csc_matrix((values.cpu().double().numpy(), (ind[0], ind[1])), shape=self.shape)
                # Shift-invert about a small negative sigma: the eigenvalues nearest it are the smallest ones,
                # and L - sigma I is non-singular even when eps = 0.
                sigma = -1e-3 * float(mat.diagonal().mean() or 1.0)
                lam_np, vec_np = eigsh(mat, k=rank + skip, sigma=sigma, which="LM")
                order = np.argsort(lam_np)[skip:]
                lam = torch.as_tensor(lam_np[order], dtype=dtype, device=values.device)
                vec = torch.as_tensor(vec_np[:, order], dtype=dtype, device=values.device)
            self._warn_if_inaccurate(indices, values, lam)
            self._eig = (lam, vec)
        return self._eig

    def _warn_if_inaccurate(self, indices: Tensor, values: Tensor, lam: Tensor) -> None:
        """Warn when the inverted eigenvalues are within rounding (eps * lambda_max) of zero."""
        absrow = values.abs().new_zeros(self.num_nodes).index_add_(0, indices[0], values.abs())
        lam_max = float(absrow.max())  # Gershgorin: lambda_max <= max_i sum_j |a_ij|
        lam_min = float(lam.min())
        rounding = 10 * torch.finfo(torch.float64).eps * lam_max
        error = rounding / lam_min if lam_min > 0 else float("inf")
        if error > LOWRANK_MAX_RELATIVE_ERROR:
            warnings.warn(
                f"LaplacianPseudoInverse(method='lowrank') is inaccurate here: it inverts an eigenvalue "
                f"{lam_min:.3e} computed to about 10 eps lambda_max = {rounding:.3e} (relative error "
                f"up to {min(error, 1e9):.1%}; the weights span many orders of magnitude). method='direct' or 'cg' "
                "is exact", RuntimeWarning, stacklevel=4,
            )

    def _lowrank(self, B: Tensor) -> Tensor:
        lam, vec = self.eigenpairs(B.dtype)
        if lam.numel() == 0:
            return torch.zeros_like(B)
        coef = vec.T @ B
        coef = coef / (lam if B.dim() == 1 else lam.unsqueeze(-1))
        return vec @ coef

    # ---------------------------------------------------------------------------------------------- public
    def matmul(self, B: Tensor) -> Tensor:
        """Apply the operator to ``B`` of shape :math:`(N,)` or :math:`(N, k)`."""
        if not isinstance(B, Tensor) or not B.is_floating_point():
            raise TypeError("B must be a floating-point torch.Tensor of shape (N,) or (N, k)")
        check_solver_dtype(B, "B")
        if B.dim() not in (1, 2) or B.size(0) != self.num_nodes:
            raise ValueError(f"B must have shape ({self.num_nodes},) or ({self.num_nodes}, k), got {tuple(B.shape)}")
        if B.device != self.edge_index.device:
            raise ValueError(f"B is on {B.device} but the graph is on {self.edge_index.device}")
        if self.edge_weight is not None and B.dtype != self.edge_weight.dtype:
            raise TypeError(f"B has dtype {B.dtype} but edge_weight has dtype {self.edge_weight.dtype}")
        check_finite(B, "B")
        if self.method in ("cg", "direct"):
            return self._solve(B)
        if self.method == "neumann":
            return self._neumann(B)
        return self._lowrank(B)

    def __matmul__(self, B: Tensor) -> Tensor:
        return self.matmul(B)

    def to_dense(self) -> Tensor:
        """The :math:`N \\times N` matrix, for small graphs only (``N <= max_dense_nodes``)."""
        if self.num_nodes > self.max_dense_nodes:
            raise ValueError(
                f"to_dense() would build a {self.num_nodes} x {self.num_nodes} matrix; it is limited to "
                f"num_nodes <= {self.max_dense_nodes} (apply the operator to right-hand sides with `@` instead)"
            )
        eye = torch.eye(self.num_nodes, dtype=self._dtype(), device=self.edge_index.device)
        return self.matmul(eye)

    def __repr__(self) -> str:
        extra = f", rank={self.rank}" if self.method == "lowrank" else ""
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, num_edges={self.edge_index.size(1)}, "
                f"method={self.method!r}, eps={self.eps}, components={self.num_components}{extra})")

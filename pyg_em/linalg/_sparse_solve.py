"""Sparse SPD solves with sparse-aware, twice-differentiable gradients (batched PCG or scipy's sparse LU)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pyg_em.linalg._symmetry import asymmetry
from pyg_em.linalg.cg import batched_pcg, default_tol
from pyg_em.linalg.errors import ConvergenceWarning
from pyg_em.linalg.pattern import SparsityPattern
from pyg_em.validation import check_positive_int, is_validation_enabled

#: On CPU, ``method='auto'`` factorises (scipy SuperLU) up to this many unknowns and runs PCG above it. Sparse LU
#: fill-in depends on the graph's separators: small on meshes and geometric graphs, but near dense on the
#: expander-like graphs GNNs meet -- measured here, the LU of L + 0.1 I of a 5000-node SBM (average degree 10)
#: takes 14.5 s with COLAMD (2.3 s with MMD_AT_PLUS_A) and stores 6.6M+ entries, while PCG needs a few dozen
#: sparse matvecs. Up to ~2k unknowns any graph
#: factorises in well under 0.5 s and one factor serves the forward and every backward solve exactly.
AUTO_DIRECT_MAX_NODES = 2048

#: CG on CPU renumbers the unknowns by reverse Cuthill-McKee from this size on (cache locality of the matvec;
#: below it the (N, k) block fits in cache and the reordering would not pay for itself).
RCM_MIN_NODES = 50_000

#: With ``preconditioner='auto'`` on CPU from this size on, CG starts with Jacobi for
#: ``AUTO_PROBE_ITERATIONS`` iterations and switches to AMG (:class:`~pyg_em.linalg.AMGPreconditioner`)
#: when the residual's rate predicts more than ``AMG_BREAK_EVEN_ITERATIONS`` further Jacobi iterations.
AUTO_AMG_MIN_NODES = 20_000
AUTO_PROBE_ITERATIONS = 30
#: An AMG-PCG iteration costs about 3 Jacobi-PCG iterations (two smoothing matvecs and the coarse levels), and
#: the setup is shared by the forward and backward solves. On the 200k-node geometric graph at the benchmark's
#: shift Jacobi needed ~90 iterations per solve and AMG ~18, and AMG-PCG was 1.6x faster fwd+bwd
#: (benchmarks/RESULTS.md), so AMG pays from a few dozen remaining Jacobi iterations.
AMG_BREAK_EVEN_ITERATIONS = 40

_METHODS = ("auto", "cg", "direct")
_PRECONDITIONERS = ("auto", "jacobi", "amg", None)
_SOLVER_DTYPES = (torch.float32, torch.float64)


def as_sparse_triplet(A: Any, name: str = "A", square: bool = True) -> tuple[Tensor, Tensor, tuple[int, int]]:
    """Read a torch sparse COO/CSR tensor or an ``(indices, values, n)`` tuple as ``(indices, values, shape)``.

    ``values`` keeps its autograd graph (COO inputs are coalesced, which sums duplicate entries). A tuple's third
    item may be ``n`` (square) or ``(m, n)``.
    """
    if isinstance(A, tuple):
        if len(A) != 3:
            raise TypeError(f"{name} as a tuple must be (indices, values, n), got {len(A)} items")
        indices, values, size = A
        if not isinstance(indices, Tensor) or indices.dtype != torch.long or indices.dim() != 2 or indices.size(0) != 2:
            raise TypeError(f"{name}[0] (indices) must be a torch.long tensor of shape (2, nnz)")
        if not isinstance(values, Tensor) or not values.is_floating_point():
            raise TypeError(f"{name}[1] (values) must be a floating-point tensor")
        if values.shape != (indices.size(1),):
            raise ValueError(f"{name}[1] (values) must have shape ({indices.size(1)},), got {tuple(values.shape)}")
        shape = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"{name}[2] must be a positive int n or a pair (m, n), got {size!r}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices[0].max()) >= shape[0]
                                or int(indices[1].max()) >= shape[1]):
            raise ValueError(f"{name}[0] (indices) has entries outside the shape {shape}")
        if values.device != indices.device:
            raise ValueError(f"{name}: indices and values are on different devices")
    elif isinstance(A, Tensor) and A.layout == torch.sparse_coo:
        A = A.coalesce()
        indices, values, shape = A.indices(), A.values(), tuple(A.shape)
    elif isinstance(A, Tensor) and A.layout == torch.sparse_csr:
        crow = A.crow_indices()
        row = torch.repeat_interleave(torch.arange(A.size(0), device=crow.device), crow[1:] - crow[:-1])
        indices, values, shape = torch.stack([row, A.col_indices()]), A.values(), tuple(A.shape)
    else:
        raise TypeError(
            f"{name} must be a torch sparse COO/CSR tensor or an (indices, values, n) tuple, got "
            f"{type(A).__name__}" + (f" with layout {A.layout}" if isinstance(A, Tensor) else "")
        )
    if len(shape) != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {shape}")
    if square and shape[0] != shape[1]:
        raise ValueError(f"{name} must be square, got shape {shape}")
    check_solver_dtype(values, name)
    return indices, values, shape


def check_solver_dtype(t: Tensor, name: str) -> None:
    """The sparse solvers run in float32 or float64 (as ``torch.linalg.solve``); reject anything else up front."""
    if t.dtype not in _SOLVER_DTYPES:
        raise TypeError(
            f"{name} has dtype {t.dtype}, but the sparse solvers support float32 and float64 only (as "
            f"torch.linalg.solve); convert it with .float() or .double()"
        )


def _check_rhs(B: Any, n: int, values: Tensor, name: str = "B") -> Tensor:
    if not isinstance(B, Tensor) or B.layout != torch.strided:
        raise TypeError(f"{name} must be a dense torch.Tensor of shape (N,) or (N, k)")
    check_solver_dtype(B, name)
    if B.dim() not in (1, 2) or B.size(0) != n:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, k), got {tuple(B.shape)}")
    if B.device != values.device:
        raise ValueError(f"{name} is on {B.device} but the matrix is on {values.device}")
    if B.dtype != values.dtype:
        raise TypeError(f"{name} has dtype {B.dtype} but the matrix values have dtype {values.dtype}")
    return B


def check_finite(t: Tensor, name: str) -> None:
    if is_validation_enabled() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or Inf values")


def _diagonal(indices: Tensor, values: Tensor, n: int) -> Tensor:
    on_diag = indices[0] == indices[1]
    return values.new_zeros(n).index_add_(0, indices[0][on_diag], values[on_diag])


def check_symmetric(indices: Tensor, values: Tensor, n: int, name: str = "A",
                    pattern: SparsityPattern | None = None) -> None:
    """Raise a :class:`ValueError` when ``A`` differs from its transpose (one sort of the nnz keys, or one
    gather at the mirror positions of a symmetric ``pattern``)."""
    found = pattern.asymmetry(values) if pattern is not None else asymmetry(indices, values, n)
    if found is not None:
        i, j, a, b, count = found
        where = f"{count} entries differ" if count >= 0 else "its mirror is not stored"
        raise ValueError(
            f"{name} is not symmetric: A[{i}, {j}] = {a:.6g} but A[{j}, {i}] = {b:.6g} ({where}). "
            "method='auto' and 'cg' need a symmetric positive-definite matrix: build a Laplacian from an "
            "undirected graph (torch_geometric.utils.to_undirected, reduce='mean' for per-direction weights, or "
            "laplacian(..., symmetrize='mean')), or use method='direct' for a general non-singular matrix"
        )


def check_spd_necessary(indices: Tensor, values: Tensor, n: int, name: str = "A") -> None:
    r"""Cheap necessary conditions for a symmetric :math:`\mathbf{A}` to be positive definite to working precision.

    A positive diagonal, and :math:`\mathbf{1}^\top\mathbf{A}\mathbf{1}/N > \epsilon \max_i a_{ii}`: the
    Rayleigh quotient bounds :math:`\lambda_{\min} \le \mathbf{1}^\top\mathbf{A}\mathbf{1}/N` while
    :math:`\lambda_{\max} \ge \max_i a_{ii}`, so otherwise :math:`\mathbf{A}` is indefinite or has condition
    number :math:`\ge 1/\epsilon` (an unshifted Laplacian). The scale is the matrix's own, so
    :math:`\mathbf{L}` with weights :math:`10^{12}` plus :math:`0.01\mathbf{I}` passes.
    """
    if not is_validation_enabled():
        return
    v = values.detach()
    diag = _diagonal(indices, v, n)
    if not bool((diag > 0).all()):
        raise ValueError(
            f"{name} has a non-positive diagonal entry, so it is not positive definite (method='auto' and 'cg' "
            "need SPD; method='direct' solves any non-singular matrix)"
        )
    _check_rayleigh(indices, v, n, diag, name)


def _check_rayleigh(indices: Tensor, v: Tensor, n: int, diag: Tensor, name: str) -> None:
    # Row sums first, in float64, so the total carries the rounding of a row, not of all nnz at once.
    row_sums = torch.zeros(n, dtype=torch.float64, device=v.device).index_add_(0, indices[0], v.double())
    mean = float(row_sums.sum()) / n
    bound = torch.finfo(v.dtype).eps * float(diag.abs().max())
    if mean <= bound:
        raise ValueError(
            f"{name} is singular or indefinite to working precision: 1^T A 1 / N = {mean:.3e} <= eps * max_i "
            f"a_ii = {bound:.3e}, so the constant vector is (nearly) in its nullspace (an unshifted Laplacian; "
            "every connected component adds one zero eigenvalue). Use a positive shift "
            "(laplacian(..., shift=eps)) or LaplacianPseudoInverse for the pseudo-inverse"
        )


def check_laplacian_like_singular(indices: Tensor, values: Tensor, n: int, name: str = "A") -> None:
    """For ``method='direct'``: the Rayleigh test of :func:`check_spd_necessary`, applied only where it is
    rigorous for a general solver -- symmetric, diagonally dominant matrices with non-positive off-diagonals
    (shifted Laplacians), which are positive semi-definite, so a small Rayleigh quotient means singular."""
    if not is_validation_enabled():
        return
    v = values.detach()
    off = indices[0] != indices[1]
    if bool((v[off] > 0).any()):
        return
    diag = _diagonal(indices, v, n)
    row_sums = torch.zeros(n, dtype=torch.float64, device=v.device).index_add_(0, indices[0], v.double())
    slack = 64 * torch.finfo(v.dtype).eps * diag.abs().double()
    if not bool((diag > 0).all()) or bool((row_sums < -slack).any()) or asymmetry(indices, values, n) is not None:
        return
    _check_rayleigh(indices, v, n, diag, name)


class _LinearSystem:
    """One sparse matrix (structure + solver options) with the caches that forward and backward share.

    ``transposed()`` gives the view that solves with :math:`\\mathbf{A}^\\top` and shares the caches, so the
    LU factor computed in the forward pass also serves the adjoint solves of every backward order.
    """

    def __init__(self, indices: Tensor, n: int, method: str, preconditioner: str | None, tol: float | None,
                 atol: float, maxiter: int | None, strict: bool, name: str = "A",
                 pattern: SparsityPattern | None = None):
        self.rows, self.cols = indices[0], indices[1]
        self.pattern = pattern
        self.n = n
        self.method = method
        self.preconditioner = preconditioner
        self.tol, self.atol, self.maxiter, self.strict = tol, atol, maxiter, strict
        self.name = name
        self.transpose = False
        self.cache: dict[str, Any] = {}
        self.iterations: int | None = None

    def transposed(self) -> _LinearSystem:
        other = object.__new__(_LinearSystem)
        other.__dict__.update(self.__dict__)
        other.rows, other.cols = self.cols, self.rows
        other.transpose = not self.transpose
        return other

    # -- backends -------------------------------------------------------------------------------------------
    def _lu(self, values: Tensor):
        if "lu" not in self.cache:
            import scipy.sparse as sp
            from scipy.sparse.linalg import splu

            rows, cols = (self.cols, self.rows) if self.transpose else (self.rows, self.cols)
            # Factorised in float64 whatever the input dtype: float32 values are exact in float64, and a float32
            # LU of L + 1e-5 I would lose most digits of its smallest pivot.
            mat = sp.csc_matrix(
                (values.detach().cpu().double().numpy(), (rows.cpu().numpy(), cols.cpu().numpy())),
                shape=(self.n, self.n),
            )
            try:
                # scipy's default COLAMD ordering: MMD_AT_PLUS_A gave less fill on a 5k-node SBM but did not
                # finish within 100 s on a 50k-node geometric graph, where COLAMD factorises in 1.7 s.
                lu = splu(mat, permc_spec="COLAMD")
            except RuntimeError as exc:  # SuperLU: "Factor is exactly singular"
                raise ValueError(f"{self.name} is singular ({exc}); use a positive shift") from exc
            # Singular to working precision when a pivot is below eps (of the input's dtype) times the scale of
            # its own column: the factorisation's verdict, scaled to the matrix. Per column, not against the
            # largest pivot, so graded matrices (weights spread over 1e-12..1e12) that LU solves accurately pass.
            pivots = np.abs(lu.U.diagonal())
            col_scale = abs(mat).max(axis=0).toarray().ravel()[np.argsort(lu.perm_c)]
            ratio = pivots / np.maximum(col_scale, np.finfo(np.float64).tiny)
            worst = int(np.argmin(ratio))
            if is_validation_enabled() and not ratio[worst] > torch.finfo(values.dtype).eps:
                raise ValueError(
                    f"{self.name} is singular to working precision: its LU factor has a pivot of "
                    f"{pivots[worst]:.3e} in a column of scale {col_scale[worst]:.3e}. For a Laplacian use a "
                    "positive shift (laplacian(..., shift=eps)) or LaplacianPseudoInverse"
                )
            self.cache["lu"], self.cache["lu_transpose"] = lu, self.transpose
        return self.cache["lu"]

    def _csr(self, values: Tensor, scale: Tensor | None) -> Tensor:
        # CSR @ dense is the fastest CPU matvec measured for this workload (200k-node geometric graph,
        # 1.6M nnz, 16 float64 columns, 1 thread): 0.11 s vs 0.35 s (torch_sparse), 0.48 s (COO mm), 0.54 s
        # (index_select + index_add_); it maps to cuSPARSE on CUDA. On large CPU problems the rows are first
        # renumbered by reverse Cuthill-McKee (scipy, O(nnz)): neighbours then sit close in memory and the same
        # matvec took 0.034 s instead of 0.197 s. CG assumes a symmetric A, so the transposed view reuses it.
        # With ``scale`` the stored matrix is diag(scale) A diag(scale) (the Jacobi scaling, see ``solve``).
        if "csr" not in self.cache:
            if self.pattern is None:
                self.pattern = SparsityPattern(torch.stack([self.rows, self.cols]), self.n)
            # The structure (sorted positions, RCM order, CSR layout) comes from the pattern, computed once per
            # pattern and shared by every matrix built on it; only the values are gathered here, O(nnz).
            renumber = self.rows.device.type == "cpu" and self.n >= RCM_MIN_NODES
            if renumber:
                self.cache["perm"], self.cache["inv"] = self.pattern.renumbering()
            self.cache["csr"] = self.pattern.csr(values, renumber, scale)
        return self.cache["csr"]

    def _diag(self, values: Tensor) -> Tensor:
        if "diag" not in self.cache:
            if self.pattern is not None:
                diag = self.pattern.diagonal(values)
            else:
                on_diag = self.rows == self.cols
                diag = values.detach().new_zeros(self.n).index_add_(0, self.rows[on_diag], values.detach()[on_diag])
            if is_validation_enabled() and not bool((diag > 0).all()):
                raise ValueError(
                    f"{self.name} has a non-positive diagonal entry, so it is not positive definite (the Jacobi "
                    "preconditioner needs diag(A) > 0)"
                )
            self.cache["diag"] = diag
        return self.cache["diag"]

    def solve(self, values: Tensor, B: Tensor, x0: Tensor | None = None) -> Tensor:
        if self.method == "direct":
            lu = self._lu(values)
            trans = "T" if self.transpose != self.cache["lu_transpose"] else "N"
            rhs = np.ascontiguousarray(B.detach().cpu().numpy(), dtype=np.float64)
            return torch.from_numpy(lu.solve(rhs, trans=trans)).to(device=B.device, dtype=B.dtype)
        # Jacobi preconditioning as the symmetric scaling S = D^-1/2 A D^-1/2, y = D^1/2 x: the same iterates as
        # PCG with M = diag(A), but the preconditioner costs nothing per iteration and r^T z is the squared
        # residual norm, saving two of the ~9 passes over the (N, k) block. The stopping rule then reads
        # ||D^-1/2 (B - A X)|| <= tol ||D^-1/2 B|| per column.
        scale = self._diag(values).rsqrt() if self.preconditioner is not None else None
        csr = self._csr(values, scale)
        rhs = B.detach()
        if scale is not None:
            rhs = rhs * (scale if rhs.dim() == 1 else scale.unsqueeze(-1))
            if x0 is not None:
                x0 = x0 / (scale if x0.dim() == 1 else scale.unsqueeze(-1))
        perm = self.cache.get("perm")
        if perm is not None:
            rhs = rhs.index_select(0, perm)
            x0 = x0.index_select(0, perm) if x0 is not None else None
        Y = self._pcg(csr, rhs, x0)
        if perm is not None:
            Y = Y.index_select(0, self.cache["inv"])
        return Y * (scale if Y.dim() == 1 else scale.unsqueeze(-1)) if scale is not None else Y

    def _choice(self, device: torch.device) -> str | None:
        """The preconditioner CG runs with: fixed, or for ``"auto"`` decided by the first solve (``"undecided"``)
        and shared with the transposed view, so the backward reuses the forward's choice and AMG hierarchy."""
        if self.preconditioner != "auto":
            return self.preconditioner
        if "choice" not in self.cache:
            large_cpu = device.type == "cpu" and self.n >= AUTO_AMG_MIN_NODES and _pyamg_available()
            self.cache["choice"] = "undecided" if large_cpu else "jacobi"
        return self.cache["choice"]

    def _amg(self, csr: Tensor) -> Any:
        """The AMG hierarchy of the (Jacobi-scaled, renumbered) matrix CG runs on, built once per system."""
        if "amg" not in self.cache:
            import scipy.sparse as sp

            from pyg_em.linalg.amg import AMGPreconditioner

            mat = sp.csr_matrix((csr.values().double().numpy(), csr.col_indices().numpy(),
                                 csr.crow_indices().numpy()), shape=(self.n, self.n))
            # The scaled matrix S = D^-1/2 A D^-1/2 nearly annihilates D^1/2 1 (A 1 = shift 1 is small): the
            # near-nullspace the aggregates must interpolate.
            near_null = self.cache["diag"].double().sqrt()
            perm = self.cache.get("perm")
            near_null = near_null.index_select(0, perm) if perm is not None else near_null
            self.cache["amg"] = AMGPreconditioner(mat, near_null.numpy(), dtype=csr.dtype, fine=csr)
        return self.cache["amg"]

    def _pcg(self, csr: Tensor, rhs: Tensor, x0: Tensor | None) -> Tensor:
        def matvec(V: Tensor) -> Tensor:
            return csr @ V

        choice = self._choice(rhs.device)
        spent = 0
        if choice == "undecided":
            # Probe with Jacobi; extrapolate its residual's rate to the iterations still needed.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                x0, spent = batched_pcg(matvec, rhs, x0=x0, tol=self.tol, atol=self.atol,
                                        maxiter=AUTO_PROBE_ITERATIONS, strict=False, name=self.name)
            Bm = rhs if rhs.dim() == 2 else rhs.unsqueeze(-1)
            X = x0 if x0.dim() == 2 else x0.unsqueeze(-1)
            norm_b = torch.linalg.vector_norm(Bm, dim=0).clamp_min(torch.finfo(rhs.dtype).tiny)
            rel = float((torch.linalg.vector_norm(Bm - matvec(X), dim=0) / norm_b).max())
            if rel <= self.tol:
                self.cache["choice"] = "jacobi"
            else:
                rate = rel ** (1.0 / max(spent, 1))
                remaining = np.log(self.tol / rel) / np.log(rate) if rate < 1 else float("inf")
                self.cache["choice"] = "amg" if remaining > AMG_BREAK_EVEN_ITERATIONS else "jacobi"
            choice = self.cache["choice"]
        maxiter = self.maxiter if self.maxiter is not None else min(10 * self.n, 20000)
        Y, iterations = batched_pcg(
            matvec, rhs, x0=x0, tol=self.tol, atol=self.atol, maxiter=max(maxiter - spent, 0),
            strict=self.strict, name=self.name,
            precondition=self._amg(csr) if choice == "amg" else None,
        )
        self.iterations = spent + iterations
        return Y


def _pyamg_available() -> bool:
    try:
        import pyamg  # noqa: F401
    except ImportError:
        return False
    return True


class SparseSolveFunction(torch.autograd.Function):
    r"""Autograd kernel of :func:`sparse_solve`: :math:`\mathbf{X} = \mathbf{A}^{-1}\mathbf{B}` with
    :math:`\mathbf{A}` given by its stored ``values``.

    Differentiating :math:`\mathbf{A}\mathbf{X} = \mathbf{B}` gives
    :math:`\mathbf{A}\,d\mathbf{X} = d\mathbf{B} - d\mathbf{A}\,\mathbf{X}`, so with the adjoint
    :math:`\mathbf{U} = \mathbf{A}^{-\top}\mathbf{G}` of the incoming gradient :math:`\mathbf{G}`:

    .. math::
        \frac{\partial \mathcal{L}}{\partial \mathbf{B}} = \mathbf{U}, \qquad
        \frac{\partial \mathcal{L}}{\partial a_e} = -\,\mathbf{U}_{i_e,:}\cdot\mathbf{X}_{j_e,:}
        \quad\text{for the stored entry } a_e = A_{i_e j_e},

    a gather at the nnz (never the :math:`N\times N` outer product). The backward computes :math:`\mathbf{U}`
    with this same Function (on the transposed system) and the gather with differentiable ops, and
    :math:`\mathbf{X}` is saved as an output, so the backward is itself differentiable (double backward for
    unrolled optimisation with ``create_graph=True``).
    """

    @staticmethod
    def forward(ctx, values: Tensor, B: Tensor, system: _LinearSystem, x0: Tensor | None = None) -> Tensor:
        """Solve with the backend of ``system``; save ``values`` and the solution for the backward."""
        X = system.solve(values, B, x0)
        ctx.system = system
        ctx.save_for_backward(values, X)
        return X

    @staticmethod
    def backward(ctx, G: Tensor):
        """Adjoint solve through this Function (so it is differentiable) and the gather at the nnz."""
        values, X = ctx.saved_tensors
        system: _LinearSystem = ctx.system
        need_values, need_B = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_values or need_B):
            return None, None, None, None
        U = SparseSolveFunction.apply(values, G, system.transposed())
        grad_values = _gather_dot(U, X, system.rows, system.cols).neg() if need_values else None
        return grad_values, (U if need_B else None), None, None


def _gather_dot(U: Tensor, X: Tensor, rows: Tensor, cols: Tensor, chunk_elements: int = 1 << 22) -> Tensor:
    """``(U[rows] * X[cols]).sum(-1)`` in chunks of edges, so the gathered ``(nnz, k)`` blocks never exist whole
    (peak extra memory ``O(chunk_elements)`` instead of ``3 nnz k``); differentiable (used in double backward)."""
    if U.dim() == 1:
        return U.index_select(0, rows) * X.index_select(0, cols)
    step = max(1, chunk_elements // max(1, U.size(1)))
    parts = [
        torch.linalg.vecdot(U.index_select(0, rows[s:s + step]), X.index_select(0, cols[s:s + step]), dim=-1)
        for s in range(0, rows.numel(), step)
    ]
    return torch.cat(parts) if len(parts) != 1 else parts[0]


def sparse_solve(
    A: Any,
    B: Tensor,
    method: str = "auto",
    preconditioner: str | None = "auto",
    tol: float | None = None,
    maxiter: int | None = None,
    x0: Tensor | None = None,
    strict: bool = True,
    atol: float = 0.0,
    pattern: SparsityPattern | None = None,
) -> Tensor:
    r"""Solve :math:`\mathbf{A}\mathbf{X} = \mathbf{B}` for a sparse symmetric positive-definite
    :math:`\mathbf{A}`, differentiable w.r.t. ``B`` and the stored values of ``A`` (twice).

    Gradients (see :class:`SparseSolveFunction`): :math:`\partial\mathcal{L}/\partial\mathbf{B} =
    \mathbf{A}^{-\top}\mathbf{G}` and, at each stored entry only,
    :math:`\partial\mathcal{L}/\partial a_{ij} = -(\mathbf{A}^{-\top}\mathbf{G})_{i,:}\cdot\mathbf{X}_{j,:}`.
    Memory is :math:`O(\mathrm{nnz} + N k)`.

    Backends:

    - ``"cg"``: batched preconditioned conjugate gradients, all :math:`k` columns per pass with per-column
      step sizes and convergence (:func:`~pyg_em.linalg.batched_pcg`); CPU and CUDA. Needs ``A``
      symmetric positive definite: symmetry (to :math:`\sqrt{\epsilon}`, one sort of the nnz keys), a positive
      diagonal and :math:`\mathbf{1}^\top\mathbf{A}\mathbf{1}/N > \epsilon\max_i a_{ii}` are checked up
      front (:class:`ValueError` otherwise), so a non-symmetric or unshifted Laplacian fails at once.
    - ``"direct"``: scipy's sparse LU (SuperLU, in float64), CPU only; factorised once in the forward pass and
      reused for every backward solve (transposed solves use the same factor). Works for any non-singular
      ``A``, symmetric or not; singular to working precision means a pivot below :math:`\epsilon` times the
      largest (:math:`\epsilon` of the input dtype).
    - ``"auto"``: requires SPD input as ``"cg"`` does, at every size, then runs ``"cg"`` on accelerators and
      on CPU ``"direct"`` up to :data:`AUTO_DIRECT_MAX_NODES` unknowns and ``"cg"`` above.

    Preconditioners of CG:

    - ``"jacobi"``: the symmetric scaling :math:`\mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}`; CPU and CUDA.
    - ``"amg"``: a smoothed-aggregation multigrid V-cycle (:class:`~pyg_em.linalg.AMGPreconditioner`, pyamg's
      setup), CPU only; built once per matrix and reused by every backward solve. Its iteration count barely
      grows as the shift shrinks, where Jacobi's grows like :math:`1/\sqrt{\text{shift}}`.
    - ``"auto"``: Jacobi on accelerators and below ``AUTO_AMG_MIN_NODES`` (20,000) unknowns; on CPU above, CG starts
      with Jacobi and switches to AMG (warm-started) when, after ``AUTO_PROBE_ITERATIONS`` (30) iterations, the
      residual's rate predicts more than ``AMG_BREAK_EVEN_ITERATIONS`` (40) more -- ill-conditioned geometric
      graphs with a small shift; expanders (SBMs) and large shifts stay with Jacobi.
    - :obj:`None`: plain CG.

    Args:
        A (torch.Tensor or tuple): sparse COO/CSR tensor :math:`(N, N)` or ``(indices, values, N)`` with
            ``indices`` of shape :math:`(2, \mathrm{nnz})` (duplicates are summed).
        B (torch.Tensor): dense right-hand side(s) :math:`(N,)` or :math:`(N, k)`, same dtype/device as ``A``.
        method (str, optional): ``"auto"``, ``"cg"`` or ``"direct"``. (default: ``"auto"``)
        preconditioner (str, optional): ``"auto"``, ``"jacobi"``, ``"amg"`` or :obj:`None` (CG only).
            (default: ``"auto"``)
        tol (float, optional): relative residual tolerance of CG per column; with Jacobi or AMG, of the scaled
            residual :math:`\|\mathbf{D}^{-1/2}(\mathbf{b} - \mathbf{A}\mathbf{x})\| \le \mathrm{tol}\,
            \|\mathbf{D}^{-1/2}\mathbf{b}\|`. (default: :obj:`None`, ``1e-10``
            in float64, ``1e-5`` in float32)
        maxiter (int, optional): CG iteration cap. (default: :obj:`None`, ``min(10 N, 20000)``)
        x0 (torch.Tensor, optional): CG initial guess shaped like ``B`` (not differentiated).
            (default: :obj:`None`)
        strict (bool, optional): raise :class:`~pyg_em.linalg.ConvergenceError` when CG does not converge;
            otherwise warn and return the last iterate. (default: :obj:`True`)
        atol (float, optional): absolute residual tolerance of CG. (default: :obj:`0.0`)
        pattern (SparsityPattern, optional): the analysed structure of ``A``'s indices
            (:class:`~pyg_em.linalg.SparsityPattern`), reused instead of recomputed: pass the same one to every
            solve with the same indices and new values (the set-up then costs :math:`O(\mathrm{nnz})`, no
            sort). It must have been built from ``A``'s indices. (default: :obj:`None`, analysed here)

    Raises:
        TypeError: ``A`` or ``B`` not float32/float64 (float16 and bfloat16 included), mismatched dtypes.
        ValueError: non-finite ``A``/``B``/``x0``; a singular ``A`` (e.g. a Laplacian without shift); for
            ``"auto"``/``"cg"`` a non-symmetric ``A`` or a non-positive diagonal; ``method="direct"`` or
            ``preconditioner="amg"`` on a non-CPU device.
        ConvergenceError: CG did not reach ``tol`` within ``maxiter`` (with ``strict=True``).

    Shapes:
        - **input:** A :math:`(N, N)`, B :math:`(N,)` or :math:`(N, k)`
        - **output:** :math:`(N,)` or :math:`(N, k)`
    """
    indices, values, shape = as_sparse_triplet(A, "A")
    n = shape[0]
    B = _check_rhs(B, n, values)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if preconditioner not in _PRECONDITIONERS:
        raise ValueError(f"preconditioner must be one of {_PRECONDITIONERS}, got {preconditioner!r}")
    if tol is not None and not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    if maxiter is not None:
        check_positive_int(maxiter, "maxiter")
    if x0 is not None:
        x0 = _check_rhs(x0, n, values, "x0")
        if x0.shape != B.shape:
            raise ValueError(f"x0 must have the shape of B {tuple(B.shape)}, got {tuple(x0.shape)}")
        check_finite(x0, "x0")
        x0 = x0.detach()
    check_finite(values, "A")
    check_finite(B, "B")
    if preconditioner == "amg" and values.device.type != "cpu":
        raise ValueError(f"preconditioner='amg' builds its hierarchy with pyamg on CPU tensors; A is on "
                         f"{values.device} (use 'jacobi' or 'auto')")
    if pattern is not None:
        if not isinstance(pattern, SparsityPattern):
            raise TypeError(f"pattern must be a SparsityPattern or None, got {type(pattern).__name__}")
        if not pattern.matches(indices, n):
            raise ValueError(
                f"pattern was built for other indices ({pattern!r}) than A's ({indices.size(1)} entries, N={n}); "
                "build one per structure with SparsityPattern(indices, num_nodes), or pass pattern=None"
            )
    elif method in ("auto", "cg"):
        pattern = SparsityPattern(indices, n)  # serves the symmetry check and CG's set-up below
    if method in ("auto", "cg"):
        # Both need SPD; checking at every size keeps 'auto' from succeeding (LU) below AUTO_DIRECT_MAX_NODES
        # and failing (CG) above it on the same kind of input.
        if is_validation_enabled():
            check_symmetric(indices, values, n, "A", pattern)
        check_spd_necessary(indices, values, n, "A")
    else:
        check_laplacian_like_singular(indices, values, n, "A")
    if method == "auto":
        method = "direct" if values.device.type == "cpu" and n <= AUTO_DIRECT_MAX_NODES else "cg"
    if method == "direct" and values.device.type != "cpu":
        raise ValueError(f"method='direct' runs scipy on CPU tensors; A is on {values.device} (use 'cg' or 'auto')")
    system = _LinearSystem(indices, n, method, preconditioner, tol if tol is not None else default_tol(B.dtype),
                           atol, maxiter, strict, pattern=pattern)
    return SparseSolveFunction.apply(values, B, system, x0)

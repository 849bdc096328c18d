"""Mean-field two-layer ReLU network with closed-form Jacobian, NTK Gram, gradients and update steps."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pyg_em.validation import check_features, check_positive, check_positive_int

__all__ = ["MeanFieldReLU"]


class MeanFieldReLU(nn.Module):
    r"""Two-layer ReLU network in the mean-field parametrisation

    .. math::
        f(\mathbf{x}) = \frac{1}{m} \sum_{j=1}^{m} a_j \,\mathrm{ReLU}(\mathbf{w}_j^\top \mathbf{x})
        = \frac{1}{m}\, \mathbf{a}^\top \mathrm{ReLU}(\mathbf{W}^\top \mathbf{x}),

    with :math:`\mathbf{W} \in \mathbb{R}^{d \times m}` (column :math:`j` is neuron :math:`\mathbf{w}_j`) and
    :math:`\mathbf{a} \in \mathbb{R}^m`. Every derivative is available in closed form. For a batch
    :math:`\mathbf{X} \in \mathbb{R}^{n \times d}` let :math:`\mathbf{U} = \mathbf{X}\mathbf{W}`,
    :math:`\mathbf{M} = \mathbb{1}[\mathbf{U} > 0]` (the ReLU masks) and
    :math:`\mathbf{R} = \mathrm{ReLU}(\mathbf{U})`. The parameter Jacobian of sample :math:`s` is

    .. math::
        \frac{\partial f(\mathbf{x}_s)}{\partial W_{ij}} = \frac{a_j M_{sj} x_{si}}{m}, \qquad
        \frac{\partial f(\mathbf{x}_s)}{\partial a_j} = \frac{R_{sj}}{m},

    and the empirical neural tangent kernel :math:`\mathbf{K} = \mathbf{J}_1 \mathbf{J}_2^\top` is

    .. math::
        \mathbf{K} = \frac{1}{m^2}\Big[(\mathbf{X}_1 \mathbf{X}_2^\top) \odot
        (\mathbf{M}_1 \operatorname{diag}(\mathbf{a}^2) \mathbf{M}_2^\top)
        + \mathbf{R}_1 \mathbf{R}_2^\top\Big],

    which costs two :math:`(n \times m)(m \times n)` products instead of one with inner dimension
    :math:`(d + 1) m`, and never builds :math:`\mathbf{J}`. Because the two products are symmetric when
    :math:`\mathbf{X}_1 = \mathbf{X}_2`, :meth:`ntk` then computes only their upper block triangle, which brings
    the cost close to a single such product.

    Initialisation (:meth:`reset_parameters`): :math:`W_{ij} \sim \mathcal{N}(0, 1/d)` and
    :math:`a_j \sim \mathcal{N}(0, 1)`, i.i.d. With this scaling the NTK is of order :math:`1/m` (each of the
    :math:`m` neurons contributes :math:`O(1/m^2)`): :math:`m \cdot \mathbf{K}` converges to the arc-cosine
    kernel :func:`~pyg_em.func.ntk_infinite_width` as :math:`m \to \infty`.

    The Jacobian's columns are ordered as ``parameters()`` yields them: :math:`\mathbf{W}` flattened row-major
    (index :math:`i m + j` for :math:`W_{ij}`), then :math:`\mathbf{a}`; this matches
    :func:`~pyg_em.func.per_sample_jacobian` on this module.

    Args:
        in_features (int): Input dimension :math:`d`.
        width (int): Number of hidden neurons :math:`m`.
        device (torch.device, optional): Device of the parameters. (default: :obj:`None`)
        dtype (torch.dtype, optional): Floating-point type of the parameters. (default: :obj:`None`)

    Shapes:
        - **input:** :math:`(n, d)`
        - **output:** :math:`(n,)`
        - **jacobian:** :math:`(n, (d + 1) m)`; **ntk:** :math:`(n_1, n_2)`

    Example:
        >>> import torch
        >>> model = MeanFieldReLU(3, 2, dtype=torch.float64)
        >>> X = torch.randn(5, 3, dtype=torch.float64)
        >>> J = model.jacobian(X)
        >>> torch.allclose(model.ntk(X), J @ J.T)
        True
    """

    def __init__(self, in_features: int, width: int, *, device=None, dtype=None):
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.width = check_positive_int(width, "width")
        factory = {"device": device, "dtype": dtype}
        self.W = nn.Parameter(torch.empty(in_features, width, **factory))
        self.a = nn.Parameter(torch.empty(width, **factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw :math:`W_{ij} \\sim \\mathcal{N}(0, 1/d)` and :math:`a_j \\sim \\mathcal{N}(0, 1)`."""
        with torch.no_grad():
            self.W.normal_(0.0, 1.0 / math.sqrt(self.in_features))
            self.a.normal_(0.0, 1.0)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(in_features={self.in_features}, width={self.width})"

    # ------------------------------------------------------------------ checks and shared pieces
    def _check_input(self, X: Tensor, name: str = "X", *, values: bool = True) -> Tensor:
        if values:
            check_features(X, name)
        elif not isinstance(X, Tensor) or X.dim() != 2:
            raise ValueError(f"{name} must be a tensor of shape (n, {self.in_features})")
        if X.size(1) != self.in_features:
            raise ValueError(f"{name} must have shape (n, {self.in_features}), got {tuple(X.shape)}")
        if X.dtype != self.W.dtype or X.device != self.W.device:
            raise TypeError(f"{name} has dtype {X.dtype} on {X.device} but the parameters have dtype "
                            f"{self.W.dtype} on {self.W.device}")
        return X

    def _check_targets(self, Y: Tensor, n: int, name: str = "Y") -> Tensor:
        if not isinstance(Y, Tensor) or not torch.is_floating_point(Y):
            raise TypeError(f"{name} must be a floating-point torch.Tensor")
        if Y.numel() != n or (Y.dim() == 2 and Y.size(1) != 1) or Y.dim() > 2:
            raise ValueError(f"{name} must have shape ({n},) or ({n}, 1) to match X, got {tuple(Y.shape)}")
        return Y.reshape(n).to(self.W.dtype)

    def _masks_and_activations(self, X: Tensor) -> tuple[Tensor, Tensor]:
        U = X @ self.W
        return (U > 0).to(U.dtype), U.clamp_min(0)

    def forward(self, X: Tensor) -> Tensor:
        """:math:`f(x) = \\frac1m \\mathbf{a}^\\top \\mathrm{ReLU}(W^\\top x)` for every row of ``x``."""
        # Structural checks only: no host sync in the training hot path, and it must run under torch.func.vmap.
        self._check_input(X, values=False)
        return torch.relu(X @ self.W) @ self.a / self.width

    # ------------------------------------------------------------------ Jacobian and its products
    def jacobian(self, X: Tensor) -> Tensor:
        """Closed-form parameter Jacobian of shape ``(n, (d + 1) m)``: ``W`` row-major, then ``a``."""
        self._check_input(X)
        n, m = X.size(0), self.width
        M, R = self._masks_and_activations(X)
        J_W = X.unsqueeze(2) * (M * self.a).unsqueeze(1)  # (n, d, m): x_si * a_j * M_sj
        return torch.cat([J_W.reshape(n, -1), R], dim=1) / m

    def vector_jacobian_product(self, X: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        r"""Closed-form :math:`\mathbf{J}^\top \mathbf{v}` split as ``(dW, da)`` with the shapes of ``W``, ``a``.

        :math:`(\mathbf{J}^\top\mathbf{v})_W = \mathbf{X}^\top(\mathbf{v} \odot \mathbf{M})\operatorname{diag}(
        \mathbf{a}) / m` and :math:`(\mathbf{J}^\top\mathbf{v})_a = \mathbf{R}^\top \mathbf{v} / m`: two
        :math:`O(ndm)` products, no Jacobian.
        """
        self._check_input(X)
        v = self._check_targets(v, X.size(0), "v")
        M, R = self._masks_and_activations(X)
        m = self.width
        return (X.T @ (M * v.unsqueeze(1))) * self.a / m, R.T @ v / m

    def jacobian_vector_product(self, X: Tensor, dW: Tensor, da: Tensor) -> Tensor:
        r"""Closed-form :math:`\mathbf{J}\,[\mathrm{vec}(\mathrm{d}W); \mathrm{d}a]` of shape ``(n,)``.

        Equals :math:`\big(((\mathbf{X}\,\mathrm{d}W) \odot \mathbf{M})\mathbf{a} + \mathbf{R}\,\mathrm{d}a\big)/m`.
        """
        self._check_input(X)
        if not isinstance(dW, Tensor) or dW.shape != self.W.shape:
            raise ValueError(f"dW must be a tensor of shape {tuple(self.W.shape)}")
        if not isinstance(da, Tensor) or da.shape != self.a.shape:
            raise ValueError(f"da must be a tensor of shape {tuple(self.a.shape)}")
        M, R = self._masks_and_activations(X)
        return (((X @ dW) * M) @ self.a + R @ da) / self.width

    # ------------------------------------------------------------------ neural tangent kernel
    def ntk(self, X1: Tensor, X2: Tensor | None = None, *, block_size: int | None = None) -> Tensor:
        r"""Closed-form empirical NTK :math:`\mathbf{J}(\mathbf{X}_1)\mathbf{J}(\mathbf{X}_2)^\top`.

        Args:
            X1 (Tensor): Inputs of shape :math:`(n_1, d)`.
            X2 (Tensor, optional): Inputs of shape :math:`(n_2, d)`; :obj:`None` means ``X1``, and then only
                the upper block triangle of the two symmetric products is computed and mirrored.
                (default: :obj:`None`)
            block_size (int, optional): Rows per block in the symmetric case; :obj:`None` picks about eight
                blocks of at least 512 rows (one block up to 512 rows). With :math:`k` blocks the two products
                cost :math:`(1 + 1/k)` times one full :math:`(n \times m)(m \times n)` product; smaller blocks
                waste less on the lower triangle but run smaller, less efficient products.
                (default: :obj:`None`)

        Returns:
            Tensor: Gram matrix of shape :math:`(n_1, n_2)`.
        """
        self._check_input(X1, "X1")
        if X2 is None:
            return self._symmetric_ntk(X1, block_size)
        self._check_input(X2, "X2")
        A1, R1 = self._scaled_factors(X1)
        A2, R2 = self._scaled_factors(X2)
        return torch.addcmul(R1 @ R2.T, X1 @ X2.T, A1 @ A2.T)

    def _scaled_factors(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """``A = M diag(|a|) / m`` and ``R = ReLU(XW) / m``, so that ``A A^T`` and ``R R^T`` carry the ``1/m^2``.

        Folding the scale into ``W`` (d x m) and writing ``R`` over ``U`` in place keeps this at two passes over
        the (n x m) matrices: at n = m = 4096 every extra pass costs a visible share of the whole kernel.
        """
        m = self.width
        U = X @ (self.W / m)
        A = torch.where(U > 0, self.a.abs() / m, U.new_zeros(()))
        R = U.clamp_min_(0) if not U.requires_grad else U.clamp_min(0)
        return A, R

    def _symmetric_ntk(self, X: Tensor, block_size: int | None) -> Tensor:
        n = X.size(0)
        if block_size is None:
            block_size = n if n <= 512 else max(512, -(-n // 8))
        else:
            check_positive_int(block_size, "block_size")
        A, R = self._scaled_factors(X)
        # Without autograd, products go straight into K and two reused buffers (out=), avoiding fresh (b x n)
        # allocations per block; with autograd, out= is not allowed and plain expressions are used instead.
        in_place = not (torch.is_grad_enabled() and (A.requires_grad or R.requires_grad or X.requires_grad))
        K = X.new_empty(n, n)
        if in_place:
            buffers = X.new_empty(2, min(block_size, n) * n)
        for start in range(0, n, block_size):
            stop = min(start + block_size, n)
            rows, cols = stop - start, n - start
            # Row block [start, stop) against every row from `start` on: the upper block triangle only.
            if in_place:
                block = torch.mm(R[start:stop], R[start:].T, out=K[start:stop, start:])
                P = torch.mm(A[start:stop], A[start:].T, out=buffers[0, : rows * cols].view(rows, cols))
                XX = torch.mm(X[start:stop], X[start:].T, out=buffers[1, : rows * cols].view(rows, cols))
                block.addcmul_(XX, P)
                diagonal = block[:, :rows]
                diagonal.copy_((diagonal + diagonal.T) / 2)  # exact symmetry despite rounding
            else:
                block = torch.addcmul(R[start:stop] @ R[start:].T, X[start:stop] @ X[start:].T,
                                      A[start:stop] @ A[start:].T)
                diagonal = block[:, :rows]
                block = torch.cat([(diagonal + diagonal.T) / 2, block[:, rows:]], dim=1)
                K[start:stop, start:] = block
            K[stop:, start:stop] = block[:, rows:].T
        return K

    # ------------------------------------------------------------------ loss, gradient and update steps
    def mse_loss(self, X: Tensor, Y: Tensor) -> Tensor:
        r"""Mean squared error :math:`L = \frac{1}{n}\sum_s (f(\mathbf{x}_s) - y_s)^2`."""
        residual = self(X) - self._check_targets(Y, X.size(0))
        return residual.pow(2).mean()

    def mse_grad(self, X: Tensor, Y: Tensor) -> tuple[Tensor, Tensor]:
        r"""Closed-form gradient of :meth:`mse_loss`: :math:`\nabla L = \frac{2}{n}\mathbf{J}^\top(f - y)`.

        Returns:
            (Tensor, Tensor): ``(grad_W, grad_a)`` of shapes :math:`(d, m)` and :math:`(m,)`.
        """
        with torch.no_grad():
            residual = self(X) - self._check_targets(Y, X.size(0))
            return self.vector_jacobian_product(X, residual * (2.0 / X.size(0)))

    @torch.no_grad()
    def euler_step(self, X: Tensor, Y: Tensor, dt: float) -> tuple[Tensor, Tensor]:
        r"""One explicit Euler step of the mean-field gradient flow, applied in place.

        In the mean-field limit each neuron :math:`\theta_j = (\mathbf{w}_j, a_j)` is a particle moving along
        :math:`\dot\theta_j = -\nabla_{\theta_j}\Psi(\theta_j)`, with :math:`\Psi` the first variation of the risk,
        :math:`\Psi(\theta) = \mathbb{E}_s[2(f(\mathbf{x}_s) - y_s)\, a\,\mathrm{ReLU}(\mathbf{w}^\top
        \mathbf{x}_s)]`. Since :math:`\partial L / \partial \theta_j = \nabla\Psi(\theta_j) / m`, the step
        :math:`\theta_j \leftarrow \theta_j - \Delta t\, \nabla\Psi(\theta_j)` is exactly gradient descent on
        :meth:`mse_loss` with learning rate :math:`\Delta t \cdot m`.

        Returns:
            (Tensor, Tensor): The increments ``(dW, da)`` that were added to the parameters.
        """
        dt = check_positive(dt, "dt")
        grad_W, grad_a = self.mse_grad(X, Y)
        step = -dt * self.width
        dW, da = step * grad_W, step * grad_a
        self.W.add_(dW)
        self.a.add_(da)
        return dW, da

    @torch.no_grad()
    def gauss_newton_step(self, X: Tensor, Y: Tensor, damping: float) -> tuple[Tensor, Tensor]:
        r"""One damped Gauss–Newton (Levenberg–Marquardt) step in dual form through the NTK, applied in place.

        For the residual :math:`\mathbf{r} = f(\mathbf{X}) - \mathbf{y}` the primal step
        :math:`-(\mathbf{J}^\top\mathbf{J} + \lambda \mathbf{I})^{-1}\mathbf{J}^\top\mathbf{r}` equals the dual step
        :math:`\Delta\theta = -\mathbf{J}^\top(\mathbf{K} + \lambda\mathbf{I})^{-1}\mathbf{r}` with
        :math:`\mathbf{K} = \mathbf{J}\mathbf{J}^\top` (:meth:`ntk`). That needs an :math:`n \times n` Cholesky
        solve and one closed-form :meth:`vector_jacobian_product`, never the :math:`n \times (d+1)m` Jacobian.
        :math:`\mathbf{K}` is of order :math:`1/m`, so choose :math:`\lambda` relative to its scale.

        Args:
            X (Tensor): Inputs of shape :math:`(n, d)`.
            Y (Tensor): Targets of shape :math:`(n,)`.
            damping (float): :math:`\lambda > 0`.

        Returns:
            (Tensor, Tensor): The increments ``(dW, da)`` that were added to the parameters.
        """
        damping = check_positive(damping, "damping")
        residual = self(X) - self._check_targets(Y, X.size(0))
        K = self.ntk(X)
        K.diagonal().add_(damping)
        L, info = torch.linalg.cholesky_ex(K)
        if bool(info):  # K + damping*I is SPD in exact arithmetic; failure means damping is below round-off
            raise ValueError(f"K + damping*I is not numerically positive definite; increase damping (={damping})")
        coef = torch.cholesky_solve(residual.unsqueeze(1), L).squeeze(1)
        dW, da = self.vector_jacobian_product(X, -coef)
        self.W.add_(dW)
        self.a.add_(da)
        return dW, da

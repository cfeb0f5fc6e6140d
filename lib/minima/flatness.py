"""Hessian-vector products, Lanczos, and the flatness measures of the growing-network paper.

- :class:`HessianOperator`: the Hessian of the mean loss over a whole data set, as a
  matrix-free operator on flat parameter vectors (only real coordinates: the absent edges
  of a :class:`~minima.growing.GrowingNet` are left out).
- :func:`lanczos`: extreme eigenpairs with full reorthogonalisation, float64 recurrence,
  stopping on Ritz residuals. :func:`power_iteration` is the common libraries' method, kept
  for comparison. :func:`hutchinson_trace` and :func:`spectral_density` (stochastic Lanczos
  quadrature) complete the toolbox.
- :func:`flatness`: ``"plain"`` lambda_max(H); ``"rsi"`` lambda_max(D H D) with D the Frobenius
  norm of each parameter block (Rangamani et al. 2019); ``"elementwise"``
  lambda_max(diag|theta| H diag|theta|).

Blocks for ``"rsi"``. ``blocks=None`` takes one block per parameter tensor. To compare a
grown network with its fully connected twin use ``blocks="depth"``: the incoming weights
of all neurons at the same depth form one block. For an MLP this is exactly one block per
``nn.Linear`` (weights and bias), the per-tensor split without biases; for a GrowingNet
it groups the weights (and biases) into neurons at depth 1, 2, ..., D (the outputs).
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from .data import batch_shares
from .growing import GrowingNet, double_backward
from .parameters import FlatView

Matvec = Callable[[torch.Tensor], torch.Tensor]
EVAL_SENSITIVE = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                  nn.modules.batchnorm._BatchNorm)


class FlatnessError(ValueError):
    """Bad input to a Hessian computation; the message is one line."""


# ----------------------------------------------------------------------------- the operator

class HessianOperator:
    """Hessian of the data-set mean loss ``L = sum_b (n_b / N) loss_fn(model(x_b), y_b)``.

    Args:
        model: an ``nn.Module`` in eval mode (dropout or batch norm in train mode is refused).
        loss_fn: ``loss_fn(outputs, targets)`` returning the *mean* loss over the batch (scalar).
        data: iterable of ``(inputs, targets)`` batches, kept as a list; batches are weighted
            by size, so an uneven last batch is exact.
        params: names of the parameters to differentiate (default: all that require grad).
        method: ``"double_backward"`` (reverse-over-reverse with ``torch.autograd.grad``, no
            ``.backward(create_graph=True)`` and hence no reference-cycle leak) or
            ``"forward_over_reverse"`` (``torch.func.jvp`` of ``torch.func.grad``).
        graph_budget: bytes of saved tensors that ``"double_backward"`` may keep to reuse each
            batch's gradient graph across products (default 1 GiB; 0 rebuilds it every time).
            A product then costs one backward pass through that graph instead of a forward,
            a backward and a second backward. Batches whose graphs no longer fit are rebuilt
            at every product. The graphs are dropped as soon as a parameter changes (a new
            tensor, or an in-place update that bumps its version counter).

    Flat vectors hold the real coordinates of the chosen parameters in ``named_parameters``
    order (for a GrowingNet, the masked entries of ``weight`` are left out); ``dim`` is
    their number. :meth:`matvec` takes and returns float64 vectors ``(dim,)``.
    """

    def __init__(self, model: nn.Module, loss_fn, data: Iterable, params: Sequence[str] | None = None,
                 method: str = "double_backward", graph_budget: int = 2 ** 30):
        if method not in ("double_backward", "forward_over_reverse"):
            raise FlatnessError(f"unknown method {method!r}; choose double_backward or forward_over_reverse")
        check_eval_mode(model)
        self.model, self.loss_fn, self.method = model, loss_fn, method
        self.batches = list(data)
        if not self.batches or sum(len(y) for _, y in self.batches) == 0:
            raise FlatnessError("empty data set: pass at least one (inputs, targets) batch")
        self.total = sum(len(y) for _, y in self.batches)
        self.shares = batch_shares(self.batches)
        try:
            self.view = FlatView(model, params)
        except KeyError as error:
            raise FlatnessError(error.args[0]) from None
        self.names, self.masks, self.sizes, self.dim = self.view.names, self.view.masks, self.view.sizes, self.view.dim
        self.device, self.dtype = self.view.device, self.view.dtype
        self.matvecs = 0
        self.graph_budget = graph_budget
        self._graphs: dict[int, tuple] = {}  # batch index -> gradients with their graph
        self._graphs_for, self.graph_bytes = None, 0

    # -- flat <-> per-parameter (the coordinates of :class:`~minima.parameters.FlatView`)
    @property
    def params(self) -> list[torch.Tensor]:
        return self.view.parameters()

    def unflatten(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Flat ``(dim,)`` -> tensors shaped like the parameters (zero off their masks)."""
        return self.view.unflatten(flat)

    def flatten(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """Tensors shaped like the parameters -> flat float64 ``(dim,)`` (real coordinates only)."""
        return self.view.flatten(tensors, torch.float64)

    def parameters_vector(self) -> torch.Tensor:
        """theta as a flat float64 vector ``(dim,)``."""
        return self.view.point(dtype=torch.float64)

    # -- the loss
    def _batch_loss(self, params: Sequence[torch.Tensor] | None, x, y) -> torch.Tensor:
        x, y = x.to(self.device), y.to(self.device)
        if params is None:
            outputs = self.model(x)
        else:
            overrides = dict(zip(self.names, params))
            outputs = torch.func.functional_call(self.model, overrides, (x,))
        loss = self.loss_fn(outputs, y)
        if not torch.is_tensor(loss) or loss.dim() != 0:
            shape = tuple(loss.shape) if torch.is_tensor(loss) else type(loss).__name__
            raise FlatnessError(f"loss_fn must return a scalar (the batch mean), got shape {shape}; "
                                "use reduction='mean'")
        return loss

    def loss(self) -> float:
        """The data-set mean loss at the current parameters."""
        total = 0.0
        with torch.no_grad(), double_backward():
            for (x, y), share in zip(self.batches, self.shares):
                total += float(self._batch_loss(None, x, y)) * share
        return total

    def gradient(self) -> torch.Tensor:
        """The full-batch gradient of the data-set mean loss as a flat float64 vector ``(dim,)``."""
        result = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        with double_backward():
            for (x, y), share in zip(self.batches, self.shares):
                loss = self._batch_loss(None, x, y)
                _check_finite(loss)
                result += share * self.flatten(torch.autograd.grad(loss, self.params))
        return result

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``H v`` for a flat vector ``v`` ``(dim,)``; returns float64 ``(dim,)`` on ``self.device``."""
        if v.shape != (self.dim,):
            raise FlatnessError(f"vector of shape {tuple(v.shape)} given to a Hessian of dimension {self.dim}")
        check_eval_mode(self.model)
        tangents = self.unflatten(v.to(self.device))
        with double_backward():
            parts = (self.flatten(self._batch_hvp(index, x, y, tangents)).mul_(share)
                     for index, ((x, y), share) in enumerate(zip(self.batches, self.shares)))
            result = next(parts)
            for part in parts:
                result += part
        self.matvecs += 1
        if not torch.isfinite(result.sum()):  # one reduction: a sum with inf or NaN in it is not finite
            raise FlatnessError("NaN or inf in a Hessian-vector product; the model or loss is not finite here")
        return result

    def _gradient_graph(self, index: int, x, y) -> tuple[tuple[torch.Tensor, ...], bool]:
        """``(gradients of batch ``index`` with their graph, kept)``; kept graphs are reused while
        the parameters are unchanged and the saved tensors fit in ``graph_budget``."""
        state = tuple((id(p), p._version) for p in self.params)
        if state != self._graphs_for:
            self._graphs.clear()
            self._graphs_for, self.graph_bytes = state, 0
        if index in self._graphs:
            return self._graphs[index], True
        saved = [0]

        def count(tensor):  # what the graph keeps alive (parameters and inputs counted too: an upper bound)
            saved[0] += tensor.numel() * tensor.element_size()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(count, lambda tensor: tensor):
            loss = self._batch_loss(None, x, y)
            _check_finite(loss)
            grads = torch.autograd.grad(loss, self.params, create_graph=True)
        keep = self.graph_bytes + saved[0] <= self.graph_budget
        if keep:
            self._graphs[index] = grads
            self.graph_bytes += saved[0]
        return grads, keep

    def _batch_hvp(self, index: int, x, y, tangents) -> list[torch.Tensor]:
        params = self.params
        if self.method == "double_backward":
            grads, kept = self._gradient_graph(index, x, y)
            # d/d theta of <g(theta), v>: one vector-Jacobian product of the gradient graph
            return list(torch.autograd.grad(grads, params, grad_outputs=tangents, retain_graph=kept))

        def loss_of(*p):
            loss = self._batch_loss(p, x, y)
            return loss

        detached = tuple(p.detach() for p in params)
        grad_fn = torch.func.grad(loss_of, argnums=tuple(range(len(params))))
        _, hvp = torch.func.jvp(grad_fn, detached, tuple(tangents))
        return list(hvp)

    def to_dense(self) -> torch.Tensor:
        """The full Hessian ``(dim, dim)`` in float64 by ``dim`` matvecs (small models only)."""
        eye = torch.eye(self.dim, dtype=torch.float64, device=self.device)
        return torch.stack([self.matvec(e) for e in eye], dim=1)


def check_eval_mode(model: nn.Module) -> None:
    """Refuse dropout or batch norm in train mode (the Hessian would be random or batch-coupled)."""
    for name, module in model.named_modules():
        if isinstance(module, EVAL_SENSITIVE) and module.training:
            raise FlatnessError(f"{type(module).__name__} module {name or 'model'!r} is in train mode; "
                                "call model.eval() before computing Hessians")


def _check_finite(loss: torch.Tensor) -> None:
    if not torch.isfinite(loss):
        raise FlatnessError(f"the loss is {float(loss.detach())} on a batch; the parameters have diverged")


# ----------------------------------------------------------------------------- eigen-solvers

def _start_vector(dim: int, generator: torch.Generator | None, device) -> torch.Tensor:
    v = torch.randn(dim, generator=generator, dtype=torch.float64).to(device)
    return v / v.norm()


def _select(theta: np.ndarray, which: str, k: int) -> np.ndarray:
    if which == "LA":
        return np.argsort(-theta)[:k]
    if which == "SA":
        return np.argsort(theta)[:k]
    if which == "LM":
        return np.argsort(-np.abs(theta))[:k]
    raise FlatnessError(f"unknown which={which!r}; choose LA, SA or LM")


def lanczos(matvec: Matvec, dim: int, k: int = 1, which: str = "LA", tol: float = 1e-8,
            max_iter: int | None = None, generator: torch.Generator | None = None, device="cpu",
            v0: torch.Tensor | None = None, abs_tol: float = 0.0):
    """Extreme eigenpairs of a symmetric operator by Lanczos with full reorthogonalisation.

    Args:
        matvec: ``v (dim,) float64 -> A v (dim,)``.
        k, which: how many eigenpairs and which end: ``"LA"`` largest algebraic, ``"SA"``
            smallest algebraic, ``"LM"`` largest magnitude.
        tol: stop when every wanted Ritz pair has residual ``||A y - theta y|| <= tol * |theta|``
            (the residual is ``|beta_m s_m|``, free from the recurrence). For a symmetric
            operator the eigenvalue error is at most the residual, and usually its square
            over the gap. ``tol <= 0``: no residual test, run ``max_iter`` steps (or until an
            invariant subspace), as stochastic Lanczos quadrature needs.
        abs_tol: also stop when every residual is at most ``abs_tol`` (for eigenvalues near
            zero, where a relative test cannot be met).
        max_iter: at most this many matvecs (default ``min(dim, 300)``).

    Returns ``(eigenvalues (k,), eigenvectors (dim, k), info)`` in float64, eigenvalues in
    the order of ``which``; ``info`` = ``{"matvecs", "residuals", "converged", "ritz_history",
    "ritz_values", "first_components"}`` (the last two: every eigenvalue of the tridiagonal
    matrix and the first component of its eigenvector, the nodes and weights of Gauss quadrature).
    The basis is kept (``max_iter x dim`` floats in float64) and every new vector is
    orthogonalised twice against all of it (classical Gram-Schmidt, twice is enough).
    """
    if which not in ("LA", "SA", "LM"):
        raise FlatnessError(f"unknown which={which!r}; choose LA, SA or LM")
    if not 1 <= k <= dim:
        raise FlatnessError(f"k={k} must lie in 1..{dim}")
    max_iter = min(dim, max_iter or 300)
    q = _start_vector(dim, generator, device) if v0 is None else (v0 / v0.norm()).to(torch.float64)
    basis = torch.empty(max_iter, dim, dtype=torch.float64, device=q.device)
    alphas, betas = [], []
    beta, q_prev = 0.0, None
    theta = s = None
    residuals = np.array([np.inf])
    history = []  # the wanted Ritz values after each step (for convergence studies)
    m = 0
    for m in range(1, max_iter + 1):
        basis[m - 1] = q
        w = matvec(q).to(torch.float64)
        if not torch.isfinite(w).all():
            raise FlatnessError(f"NaN or inf returned by the matvec at Lanczos step {m}")
        alpha = float(w @ q)
        w = w - alpha * q - (beta * q_prev if q_prev is not None else 0)
        V = basis[:m]
        for _ in range(2):
            w = w - V.T @ (V @ w)
        alphas.append(alpha)
        beta = float(w.norm())
        T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        theta, s = np.linalg.eigh(T)
        history.append(theta[_select(theta, which, min(k, m))].tolist())
        if m >= k:
            wanted = _select(theta, which, k)
            residuals = np.abs(beta * s[-1, wanted])
            scale = np.maximum(np.abs(theta[wanted]), np.finfo(float).tiny)
            invariant = beta <= 1e-12 * max(1.0, np.abs(theta).max())
            # a converged residual can be exactly 0.0: with tol <= 0 no test is made at all
            if invariant or (tol > 0 and np.all(residuals <= np.maximum(tol * scale, abs_tol))):
                break
        if beta == 0.0:
            break
        betas.append(beta)
        q_prev, q = q, w / beta
    wanted = _select(theta, which, k)
    vectors = basis[:m].T @ torch.as_tensor(s[:, wanted], dtype=torch.float64, device=basis.device)
    info = {"matvecs": m, "residuals": residuals.tolist(), "ritz_history": history,
            "converged": bool(np.all(residuals <= np.maximum(tol * np.abs(theta[wanted]), abs_tol))),
            "ritz_values": theta, "first_components": s[0]}  # all of T's eigenpairs (quadrature)
    return torch.as_tensor(theta[wanted]), vectors, info


def power_iteration(matvec: Matvec, dim: int, tol: float = 1e-3, max_iter: int = 100,
                    generator: torch.Generator | None = None, device="cpu"):
    """Dominant eigenpair by power iteration stopped on a relative change of the Rayleigh
    quotient below ``tol`` (PyHessian's rule). Returns ``(eigenvalue, vector, info)``.

    Kept for comparison: it converges to the largest *magnitude* eigenvalue, at a rate set
    by the ratio of the top two, and its stopping rule says nothing about the true error.
    """
    v = _start_vector(dim, generator, device)
    value, history = None, []
    for step in range(1, max_iter + 1):
        w = matvec(v).to(torch.float64)
        new = float(w @ v)
        history.append(new)
        v = w / w.norm()
        if value is not None and abs(new - value) <= tol * (abs(value) + 1e-12):
            value = new
            break
        value = new
    return value, v, {"matvecs": step, "history": history}


def hutchinson_trace(matvec: Matvec, dim: int, n_samples: int = 100,
                     generator: torch.Generator | None = None, device="cpu") -> tuple[float, float]:
    """Trace estimate ``mean(z^T A z)`` over Rademacher vectors; returns ``(mean, standard error)``."""
    samples = []
    for _ in range(n_samples):
        z = (torch.randint(0, 2, (dim,), generator=generator) * 2 - 1).to(device, torch.float64)
        samples.append(float(z @ matvec(z)))
    values = np.array(samples)
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan


def spectral_density(matvec: Matvec, dim: int, n_vectors: int = 4, n_steps: int = 60,
                     generator: torch.Generator | None = None, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature: nodes and weights of the spectral measure.

    For each of ``n_vectors`` random unit vectors, ``n_steps`` Lanczos steps give Ritz values
    (nodes) and the squared first components of their vectors (weights, summing to 1);
    the weights are averaged over vectors. Returns ``(nodes (n_vectors * n_steps,), weights)``.
    Smooth with :func:`density_on_grid` to plot.
    """
    nodes, weights = [], []
    for _ in range(n_vectors):
        v0 = _start_vector(dim, generator, device)
        # tol=0: run all n_steps (or until an invariant subspace), no residual test
        _, _, info = lanczos(matvec, dim, k=1, tol=0.0, max_iter=min(n_steps, dim), v0=v0)
        nodes.append(info["ritz_values"])
        weights.append(info["first_components"] ** 2 / n_vectors)
    return np.concatenate(nodes), np.concatenate(weights)


def density_on_grid(nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-smoothed spectral density on ``grid`` (integrates to about 1)."""
    diff = grid[:, None] - nodes[None, :]
    return (weights[None, :] * np.exp(-0.5 * (diff / sigma) ** 2)).sum(1) / (sigma * math.sqrt(2 * math.pi))


# ----------------------------------------------------------------------------- flatness measures

MEASURES = ("plain", "rsi", "elementwise")


def block_scales(operator: HessianOperator, blocks=None) -> torch.Tensor:
    """The diagonal of D for ``"rsi"``: each coordinate's block Frobenius norm ``(dim,)``.

    ``blocks``: ``None`` (one block per parameter tensor), ``"depth"`` (see the module
    docstring), or a list of index arrays partitioning ``range(dim)``.
    """
    theta = operator.parameters_vector()
    if blocks is None:
        groups = list(torch.arange(operator.dim, device=theta.device).split(operator.sizes))
    elif blocks == "depth":
        groups = depth_blocks(operator)
    else:
        groups = [torch.as_tensor(np.asarray(b), device=theta.device) for b in blocks]
    scales = torch.full_like(theta, float("nan"))
    for group in groups:
        scales[group] = theta[group].norm()
    if torch.isnan(scales).any():
        raise FlatnessError("the blocks do not cover every coordinate; pass a partition of range(dim)")
    return scales


def depth_blocks(operator: HessianOperator) -> list[torch.Tensor]:
    """Coordinates grouped by the depth of the neuron they feed (layers for an MLP)."""
    model = operator.model
    if isinstance(model, GrowingNet):
        labels = []
        for name, mask in zip(operator.names, operator.masks):
            if name == "weight":  # the neuron each kept weight feeds (columns in storage order)
                target = model.column_ids[torch.nonzero(mask)[:, 1].cpu().numpy()]
            else:  # bias, one per non-input neuron, in the same column order
                target = model.column_ids
            labels.append(model.depth[target])
        labels = np.concatenate(labels)
    else:  # one label per nn.Linear / conv module: its weight and bias together
        owner = {}
        for module_name, module in model.named_modules():
            for p_name, _ in module.named_parameters(recurse=False):
                owner[f"{module_name}.{p_name}" if module_name else p_name] = module_name
        order = {m: i for i, m in enumerate(dict.fromkeys(owner[n] for n in operator.names))}
        labels = np.concatenate([np.full(size, order[owner[n]]) for n, size in zip(operator.names, operator.sizes)])
    return [torch.as_tensor(np.flatnonzero(labels == value)) for value in np.unique(labels)]


def flatness(model: nn.Module, loss_fn, data: Iterable, measure: str = "rsi", blocks=None,
             params: Sequence[str] | None = None, tol: float = 1e-6, max_iter: int = 300,
             generator: torch.Generator | None = None, return_info: bool = False):
    """Largest eigenvalue of the (rescaled) loss Hessian at the current parameters.

    ``measure``: ``"plain"`` lambda_max(H); ``"rsi"`` lambda_max(D H D), D = block Frobenius
    norms (Rangamani et al. 2019; invariant to layer-wise rescalings that keep an MLP's
    function, not to per-neuron ones); ``"elementwise"`` lambda_max(diag|theta| H diag|theta|)
    (invariant to per-neuron rescaling of ReLU networks). Masked-out weights of a GrowingNet
    are excluded from every measure. Lanczos stops at relative Ritz residual ``tol``.
    """
    if measure not in MEASURES:
        raise FlatnessError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    operator = HessianOperator(model, loss_fn, data, params)
    if measure == "plain":
        scale = None
    elif measure == "rsi":
        scale = block_scales(operator, blocks)
    else:
        scale = operator.parameters_vector().abs()
    matvec = operator.matvec if scale is None else (lambda v: scale * operator.matvec(scale * v))
    values, _, info = lanczos(matvec, operator.dim, k=1, which="LA", tol=tol, max_iter=max_iter,
                              generator=generator, device=operator.device)
    value = float(values[0])
    return (value, info) if return_info else value


def all_measures(model: nn.Module, loss_fn, data: Iterable, seed: int, measures: Sequence[str] = MEASURES,
                 **kwargs) -> dict[str, float]:
    """``{measure: value}`` for each of ``measures`` (see :func:`flatness`, which gets ``kwargs``),
    every Lanczos run started from the same vector, seeded with ``seed``."""
    return {m: flatness(model, loss_fn, data, m, generator=torch.Generator().manual_seed(seed), **kwargs)
            for m in measures}

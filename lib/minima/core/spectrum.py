"""Eigen-solvers on a matrix-free symmetric operator: a
:class:`~minima.core.operators.LinearOperator`, or a ``matvec: (dim,) -> (dim,)`` callable
with its ``dim``.

- :func:`lanczos`: extreme eigenpairs with full reorthogonalisation, float64 recurrence,
  stopping on Ritz residuals. :func:`power_iteration` is the common libraries' method, kept
  for comparison.
- :func:`hutchinson_trace` and :func:`spectral_density` (stochastic Lanczos quadrature, with
  :func:`density_on_grid` to smooth it) complete the toolbox.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from .hessian import FlatnessError
from .operators import LinearOperator, Shifted, as_operator

Matvec = Callable[[torch.Tensor], torch.Tensor]
Operator = LinearOperator | Matvec


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


def lanczos(operator: Operator, dim: int | None = None, k: int = 1, which: str = "LA", tol: float = 1e-8,
            max_iter: int | None = None, generator: torch.Generator | None = None, device="cpu",
            v0: torch.Tensor | None = None, abs_tol: float = 0.0):
    """Extreme eigenpairs of a symmetric operator by Lanczos with full reorthogonalisation.

    Args:
        operator: a :class:`~minima.core.operators.LinearOperator` (its ``dim`` and ``device``
            are used), or ``matvec: v (dim,) float64 -> A v (dim,)`` with ``dim`` (and ``device``).
            A :class:`~minima.core.operators.Shifted` ``A + s I`` is solved on ``A`` and its Ritz
            values shifted by ``s``: the same Krylov space, so the numbers are ``A``'s plus ``s``
            exactly, with the residual test made on ``A``'s Ritz values.
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
    operator, shift = as_operator(operator, dim, device), 0.0
    while isinstance(operator, Shifted):
        operator, shift = operator.base, shift + operator.shift
    matvec, dim, device = operator.matvec, operator.dim, operator.device
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
    info = {"matvecs": m, "residuals": residuals.tolist(),
            "ritz_history": [[value + shift for value in step] for step in history] if shift else history,
            "converged": bool(np.all(residuals <= np.maximum(tol * np.abs(theta[wanted]), abs_tol))),
            "ritz_values": theta + shift, "first_components": s[0]}  # all of T's eigenpairs (quadrature)
    return torch.as_tensor(theta[wanted] + shift), vectors, info


def power_iteration(operator: Operator, dim: int | None = None, tol: float = 1e-3, max_iter: int = 100,
                    generator: torch.Generator | None = None, device="cpu"):
    """Dominant eigenpair by power iteration stopped on a relative change of the Rayleigh
    quotient below ``tol`` (PyHessian's rule). Returns ``(eigenvalue, vector, info)``.

    Kept for comparison: it converges to the largest *magnitude* eigenvalue, at a rate set
    by the ratio of the top two, and its stopping rule says nothing about the true error.
    """
    operator = as_operator(operator, dim, device)
    matvec, dim, device = operator.matvec, operator.dim, operator.device
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


def hutchinson_trace(operator: Operator, dim: int | None = None, n_samples: int = 100,
                     generator: torch.Generator | None = None, device="cpu") -> tuple[float, float]:
    """Trace estimate ``mean(z^T A z)`` over Rademacher vectors; returns ``(mean, standard error)``."""
    operator = as_operator(operator, dim, device)
    matvec, dim, device = operator.matvec, operator.dim, operator.device
    samples = []
    for _ in range(n_samples):
        z = (torch.randint(0, 2, (dim,), generator=generator) * 2 - 1).to(device, torch.float64)
        samples.append(float(z @ matvec(z)))
    values = np.array(samples)
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan


def spectral_density(operator: Operator, dim: int | None = None, n_vectors: int = 4, n_steps: int = 60,
                     generator: torch.Generator | None = None, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature: nodes and weights of the spectral measure.

    For each of ``n_vectors`` random unit vectors, ``n_steps`` Lanczos steps give Ritz values
    (nodes) and the squared first components of their vectors (weights, summing to 1);
    the weights are averaged over vectors. Returns ``(nodes (n_vectors * n_steps,), weights)``.
    Smooth with :func:`density_on_grid` to plot.
    """
    operator = as_operator(operator, dim, device)
    nodes, weights = [], []
    for _ in range(n_vectors):
        v0 = _start_vector(operator.dim, generator, operator.device)
        # tol=0: run all n_steps (or until an invariant subspace), no residual test
        _, _, info = lanczos(operator, k=1, tol=0.0, max_iter=min(n_steps, operator.dim), v0=v0)
        nodes.append(info["ritz_values"])
        weights.append(info["first_components"] ** 2 / n_vectors)
    return np.concatenate(nodes), np.concatenate(weights)


def density_on_grid(nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-smoothed spectral density on ``grid`` (integrates to about 1)."""
    diff = grid[:, None] - nodes[None, :]
    return (weights[None, :] * np.exp(-0.5 * (diff / sigma) ** 2)).sum(1) / (sigma * math.sqrt(2 * math.pi))

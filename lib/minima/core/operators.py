"""Symmetric linear operators on flat float64 vectors, as values the spectral algorithms take.

:class:`LinearOperator` is the whole interface: ``dim``, ``device`` and ``matvec``
(``(dim,) -> (dim,)``, float64). The Hessian (:class:`~minima.core.hessian.HessianOperator`)
is one; the operators the measures and the certificate need are built from it:

- :class:`Rescaled`: ``D A D`` for a diagonal ``D`` given as its vector ``(dim,)`` (the rsi and
  elementwise flatness measures);
- :class:`Shifted`: ``A + s I`` (the Hessian of ``L + s/2 |theta|^2``, weight decay ``s``);
- :class:`MatrixFree`: any ``matvec`` callable with its dimension (a dense matrix in a test).

Every algorithm of :mod:`minima.core.spectrum` takes any of them.
"""
from __future__ import annotations

from typing import Callable

import torch


class LinearOperator:
    """Base of the symmetric operators: subclasses set ``dim`` and ``device`` and define
    :meth:`matvec`. ``A @ v`` is ``A.matvec(v)``."""

    dim: int
    device: torch.device | str = "cpu"

    def matvec(self, v: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        return self.matvec(v)


class MatrixFree(LinearOperator):
    """A ``matvec`` callable ``(dim,) -> (dim,)`` as an operator."""

    def __init__(self, matvec: Callable[[torch.Tensor], torch.Tensor], dim: int, device="cpu"):
        self._matvec, self.dim, self.device = matvec, int(dim), device

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self._matvec(v)


class Rescaled(LinearOperator):
    """``D A D`` with ``D = diag(scale)``, ``scale`` ``(dim,)``: ``v -> scale * A(scale * v)``."""

    def __init__(self, base: LinearOperator, scale: torch.Tensor):
        if scale.shape != (base.dim,):
            raise ValueError(f"scale of shape {tuple(scale.shape)} for an operator of dimension {base.dim}")
        self.base, self.scale = base, scale
        self.dim, self.device = base.dim, base.device

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.scale * self.base.matvec(self.scale * v)


class Shifted(LinearOperator):
    """``A + shift I``. Its eigenvectors are ``A``'s and its eigenvalues ``A``'s plus ``shift``;
    :func:`~minima.core.spectrum.lanczos` uses that and runs on ``A`` (the Krylov spaces of ``A``
    and ``A + shift I`` are the same), so a shifted spectrum is exactly the shifted numbers."""

    def __init__(self, base: LinearOperator, shift: float):
        self.base, self.shift = base, float(shift)
        self.dim, self.device = base.dim, base.device

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.base.matvec(v) + self.shift * v


def as_operator(operator, dim: int | None = None, device="cpu") -> LinearOperator:
    """``operator`` itself, or a ``matvec`` callable wrapped with its ``dim`` (required then)."""
    if isinstance(operator, LinearOperator):
        return operator
    if not callable(operator) or dim is None:
        raise TypeError("pass a LinearOperator, or a matvec callable together with its dim")
    return MatrixFree(operator, dim, device)

"""The flatness measures of the growing-network paper, on :class:`~minima.core.hessian.HessianOperator`
and :func:`~minima.core.spectrum.lanczos`.

- :func:`measure`: ``"plain"`` lambda_max(H); ``"rsi"`` lambda_max(D H D) with D the Frobenius
  norm of each parameter block (Rangamani et al. 2019); ``"elementwise"``
  lambda_max(diag|theta| H diag|theta|).

Blocks for ``"rsi"``. ``blocks=None`` takes one block per parameter tensor. To compare a
grown network with its fully connected twin use ``blocks="depth"``: the incoming weights
of all neurons at the same depth form one block. For an MLP this is exactly one block per
``nn.Linear`` (weights and bias), the per-tensor split without biases; for a GrowingNet
it groups the weights (and biases) into neurons at depth 1, 2, ..., D (the outputs).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .certificate import Certificate
from ..growing import GrowingNet
from ..core.hessian import FlatnessError, HessianOperator
from ..core.operators import LinearOperator, Rescaled
from ..core.spectrum import lanczos


MEASURES = ("plain", "rsi", "elementwise")


def block_scales(operator: HessianOperator, blocks=None) -> torch.Tensor:
    """The diagonal of D for ``"rsi"``: each coordinate's block Frobenius norm ``(dim,)``.

    ``blocks``: ``None`` (one block per parameter tensor), ``"depth"`` (see the module
    docstring), or a list of index arrays partitioning ``range(dim)``.
    """
    theta = operator.parameters_vector()
    if blocks is None:
        groups = list(torch.arange(operator.dim, device=theta.device).split(operator.view.sizes))
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
        for name, mask in zip(operator.view.names, operator.view.masks):
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
        order = {m: i for i, m in enumerate(dict.fromkeys(owner[n] for n in operator.view.names))}
        labels = np.concatenate([np.full(size, order[owner[n]]) for n, size in zip(operator.view.names, operator.view.sizes)])
    return [torch.as_tensor(np.flatnonzero(labels == value)) for value in np.unique(labels)]


def measure_operator(hessian: HessianOperator, name: str, blocks=None) -> LinearOperator:
    """The operator whose largest eigenvalue is the flatness measure ``name``: ``H`` itself for
    ``"plain"``, :class:`~minima.core.operators.Rescaled` ``D H D`` for ``"rsi"`` (``D`` the block
    Frobenius norms, :func:`block_scales`) and ``diag|theta| H diag|theta|`` for ``"elementwise"``."""
    if name not in MEASURES:
        raise FlatnessError(f"unknown measure {name!r}; choose one of {', '.join(MEASURES)}")
    if name == "plain":
        return hessian
    if name == "rsi":
        return Rescaled(hessian, block_scales(hessian, blocks))
    return Rescaled(hessian, hessian.parameters_vector().abs())


def measure(hessian: HessianOperator, measures: str | Sequence[str] = MEASURES, *, seed: int = 0, blocks=None,
            tol: float = 1e-6, max_iter: int = 300, certificate: Certificate | None = None) -> dict[str, float]:
    """The flatness measures of the point ``hessian`` is taken at: ``{name: value}`` for each of
    ``measures`` (one name or several, :data:`MEASURES`).

    Each value is the largest eigenvalue of :func:`measure_operator` by Lanczos to a relative
    Ritz residual ``tol``, started from the same vector (seeded with ``seed``), on one operator,
    so the measures share its kept gradient graphs. ``"plain"``: lambda_max(H); ``"rsi"``:
    lambda_max(D H D), D = block Frobenius norms (Rangamani et al. 2019; invariant to layer-wise
    rescalings that keep an MLP's function, not to per-neuron ones); ``"elementwise"``:
    lambda_max(diag|theta| H diag|theta|) (invariant to per-neuron rescaling of ReLU networks).
    Masked-out weights of a GrowingNet are excluded from every measure.

    ``certificate``: this point's :func:`~minima.geometry.certificate.certify` with the same
    ``seed``, ``tol`` and no weight decay; its ``lambda_max`` is then ``"plain"`` (the same
    Lanczos run), so that run is not made twice.
    """
    names = (measures,) if isinstance(measures, str) else tuple(measures)
    values = {}
    for name in names:
        if name == "plain" and certificate is not None:
            values[name] = certificate.lambda_max
            continue
        top, _, _ = lanczos(measure_operator(hessian, name, blocks), k=1, which="LA", tol=tol, max_iter=max_iter,
                            generator=torch.Generator().manual_seed(seed))
        values[name] = float(top[0])
    return values

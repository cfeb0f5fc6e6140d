"""The flatness measures of the growing-network paper, on :class:`~minima.core.hessian.HessianOperator`
and :func:`~minima.core.spectrum.lanczos`.

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

from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from .certificate import Certificate, Rule, certificate_of
from ..growing import GrowingNet
from ..core.hessian import FlatnessError, HessianOperator
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
    return flatness_of(HessianOperator(model, loss_fn, data, params), measure, blocks, tol, max_iter, generator,
                       return_info)


def flatness_of(operator: HessianOperator, measure: str = "rsi", blocks=None, tol: float = 1e-6,
                max_iter: int = 300, generator: torch.Generator | None = None, return_info: bool = False):
    """:func:`flatness` on an existing operator (several measures can then share its kept
    gradient graphs)."""
    if measure not in MEASURES:
        raise FlatnessError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
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
                 params: Sequence[str] | None = None, **kwargs) -> dict[str, float]:
    """``{measure: value}`` for each of ``measures`` (see :func:`flatness_of`, which gets ``kwargs``),
    on one operator, every Lanczos run started from the same vector, seeded with ``seed``."""
    operator = HessianOperator(model, loss_fn, data, params)
    return {m: flatness_of(operator, m, generator=torch.Generator().manual_seed(seed), **kwargs) for m in measures}


def certified_measures(model: nn.Module, loss_fn, data: Iterable, seed: int, *,
                       loss_history: Sequence[float] | None = None, rule: Rule = Rule(),
                       measures: Sequence[str] = MEASURES, blocks="depth",
                       certificate: Certificate | None = None) -> tuple[Certificate, dict[str, float]]:
    """The convergence certificate (:func:`~minima.geometry.certificate.certify`) and the flatness
    measures of a trained model at its current point, on one Hessian operator.

    ``plain`` is the certificate's ``lambda_max``: both are the same Lanczos run (the start vector
    seeded with ``seed``, relative residual 1e-6), so it is not run twice. ``certificate``: one
    already made at this point on the same data with the same ``seed``, ``rule`` and history,
    reused instead of certifying again.
    """
    operator = HessianOperator(model, loss_fn, data)
    certificate = certificate or certificate_of(operator, loss_history=loss_history, rule=rule, seed=seed)
    values = {m: certificate.lambda_max if m == "plain" else
              flatness_of(operator, m, blocks, generator=torch.Generator().manual_seed(seed)) for m in measures}
    return certificate, values

"""The convergence certificate: is this point a minimum of the training loss?

Both papers measure geometry *at minima*, so every number the book computes "at a
minimum" comes with this certificate, in the results file and on the page:

- ``train_loss``, ``train_accuracy``: the data-set mean loss and accuracy, eval mode;
- ``grad_norm``: the Euclidean norm of the full-batch gradient;
- ``lambda_max``, ``lambda_min``: the largest and smallest Hessian eigenvalues (Lanczos,
  ``LA`` and ``SA``, float64, full reorthogonalisation);
- ``verdict``:

  ``minimum``        the fit criterion holds (100 % training accuracy, or the training loss
                     has reached a plateau: relative change below ``plateau_rtol`` over the
                     last ``plateau_epochs`` epochs) *and* the curvature criterion holds
                     (``lambda_min / lambda_max >= min_curvature_ratio``, default -0.01:
                     negative directions at most 1 % as curved as the sharpest one);
  ``not converged``  the curvature criterion holds but the fit criterion does not;
  ``negative curvature``  the curvature criterion fails: a direction of clear negative
                     curvature (a saddle, or a point still on its way down).

The thresholds are parameters (:class:`Rule`); the methods page states them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..core.hessian import HessianOperator
from ..core.operators import Shifted
from ..core.spectrum import lanczos


@dataclass(frozen=True)
class Rule:
    """Thresholds of the verdict (see the module docstring)."""

    accuracy: float = 1.0          # training accuracy that counts as a fit
    plateau_rtol: float = 1e-3     # relative change of the training loss that counts as a plateau
    plateau_epochs: int = 10       # ... over this many last epochs
    min_curvature_ratio: float = -0.01  # lambda_min / lambda_max at least this


@dataclass
class Certificate:
    """One point's certificate; :meth:`as_row` gives the columns of a results file."""

    train_loss: float
    train_accuracy: float | None  # None when the outputs are not class scores
    grad_norm: float
    lambda_max: float
    lambda_min: float
    plateau: bool | None          # None when no loss history was given
    verdict: str

    def as_row(self) -> dict:
        return asdict(self)


def plateau(losses: Sequence[float], rule: Rule = Rule()) -> bool | None:
    """True when the last ``rule.plateau_epochs`` epochs changed the loss by less than
    ``rule.plateau_rtol`` relative to its last value (None: fewer epochs than that)."""
    if losses is None or len(losses) <= rule.plateau_epochs:
        return None
    window = np.asarray(losses[-rule.plateau_epochs - 1:], dtype=float)
    return bool(np.ptp(window) <= rule.plateau_rtol * max(abs(window[-1]), np.finfo(float).tiny))


def fits(accuracy: float | None, losses: Sequence[float] | None, rule: Rule = Rule()) -> bool:
    """The fit criterion: training accuracy at least ``rule.accuracy``, or a loss plateau."""
    return (accuracy is not None and accuracy >= rule.accuracy) or bool(plateau(losses, rule))


def judge(fit: bool, lambda_max: float, lambda_min: float, rule: Rule = Rule()) -> str:
    """The verdict from the fit criterion and the two extreme eigenvalues."""
    if lambda_max <= 0 or lambda_min / lambda_max < rule.min_curvature_ratio:
        return "negative curvature"
    return "minimum" if fit else "not converged"


@torch.no_grad()
def _accuracy(model: nn.Module, batches: list) -> float | None:
    correct = total = 0
    for x, y in batches:
        out = model(x.to(next(model.parameters()).device))
        if out.dim() != 2 or y.dim() != 1 or y.dtype not in (torch.int64, torch.int32):
            return None
        correct += int((out.argmax(1) == y.to(out.device)).sum())
        total += len(y)
    return correct / total


def certify(hessian: HessianOperator, *, loss_history: Sequence[float] | None = None, rule: Rule = Rule(),
            seed: int = 0, tol: float = 1e-6, bottom_tol: float = 1e-3, max_iter: int = 300,
            weight_decay: float = 0.0) -> Certificate:
    """Certificate of the point ``hessian`` is taken at: its model's current parameters, for the
    data-set mean of its loss on its data (the training set, or the fixed subset the Hessian
    measures use) and for its parameters (all, or a head's, say). The flatness measures
    (:func:`~minima.geometry.flatness.measure`) can then share the operator's kept graphs.

    Args:
        hessian: :class:`~minima.core.hessian.HessianOperator` of a model in eval mode.
        loss_history: training loss after each epoch, for the plateau test.
        tol: relative Ritz residual for ``lambda_max``.
        weight_decay: the L2 coefficient the optimiser used (``torch.optim.SGD``'s
            ``weight_decay``): the point is then certified for the objective it minimised,
            ``L + weight_decay / 2 * |theta|^2``, whose gradient is ``g + weight_decay * theta``
            and whose Hessian is the :class:`~minima.core.operators.Shifted` operator
            ``H + weight_decay * I`` (eigenvalues shifted exactly); ``train_loss`` stays the
            plain data loss.
        bottom_tol: ``lambda_min`` is resolved to a Ritz residual of ``bottom_tol * lambda_max``
            (or ``tol * |lambda_min|``): enough to judge the ratio against -0.01, where a
            relative test on an eigenvalue near zero would need hundreds of products.
    """
    objective = Shifted(hessian, weight_decay)
    gradient = hessian.gradient() + weight_decay * hessian.parameters_vector()
    top, _, _ = lanczos(objective, which="LA", tol=tol, max_iter=max_iter, generator=torch.Generator().manual_seed(seed))
    lambda_max = float(top[0])
    bottom, _, _ = lanczos(objective, which="SA", tol=tol, max_iter=max_iter, abs_tol=bottom_tol * abs(lambda_max),
                           generator=torch.Generator().manual_seed(seed + 1))
    lambda_min = float(bottom[0])
    accuracy = _accuracy(hessian.model, hessian.batches)
    return Certificate(train_loss=hessian.loss(), train_accuracy=accuracy, grad_norm=float(gradient.norm()),
                       lambda_max=lambda_max, lambda_min=lambda_min, plateau=plateau(loss_history, rule),
                       verdict=judge(fits(accuracy, loss_history, rule), lambda_max, lambda_min, rule))

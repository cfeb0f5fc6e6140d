"""One finish: take a trained point to a certified minimum of a stated objective.

SGD's last epochs can creep down a long valley (a loss falling 0.1 % per 10 epochs) without
ever meeting the certificate's plateau test. A quasi-Newton method on the whole training set
reaches the bottom of that valley in a few dozen iterations. Every experiment finishes its
points here, after its own SGD protocol, and states it on its page (a ``finish`` column): the
minimum is then the one SGD's basin holds, reached by another optimiser.

- :class:`Objective` is the problem: a module's trainable parameters, fixed inputs and targets,
  the mean cross-entropy plus ``weight_decay / 2 * |theta|^2``, and the data on which the
  certificate and the flatness measures read the cross-entropy's Hessian.
- :func:`finish` runs full-batch L-BFGS rounds on it (:func:`lbfgs_rounds`) and asks the
  certificate (:func:`~minima.geometry.certificate.certify`, on the objective: ``H + weight_decay
  * I``) whenever the fit criterion holds, stopping at the first ``minimum``.
- :func:`stability` is the last check of a minimum: one more round must leave the flatness
  measures where they were.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.hessian import HessianOperator
from .certificate import Certificate, Rule, certify, fits


def lbfgs_rounds(parameters: list[torch.Tensor], closure: Callable[[], torch.Tensor], rounds: int,
                 iterations: int, history: int = 100) -> Iterator[int]:
    """Full-batch L-BFGS (strong Wolfe line search, the last ``history`` steps: a long memory
    helps in the narrow valleys SGD leaves, measured on the no-barriers minima) on the scalar that
    ``closure()`` returns: it computes the value, back-propagates it into the ``.grad`` of
    ``parameters`` (zeroed before each call; it may accumulate over batches) and returns it.
    Runs ``rounds`` rounds of at most ``iterations`` iterations each and yields the round's
    number (from 1) after each, so that the caller can test the point and stop."""
    optimizer = torch.optim.LBFGS(parameters, lr=1.0, max_iter=iterations, history_size=history,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)

    def step():
        optimizer.zero_grad(set_to_none=False)
        return closure().detach()

    for number in range(1, rounds + 1):
        optimizer.step(step)
        yield number


@dataclass
class Objective:
    """``CE(module(inputs), targets) + weight_decay / 2 * |theta|^2`` over the trainable
    parameters ``theta`` of ``module`` (a whole model, a network part behind fixed features, a
    classification head), the cross-entropy a mean over all ``N`` examples.

    Args:
        module: in eval mode while it is finished (no dropout: the loss the Hessian measures).
        inputs: ``(N, ...)`` the module's inputs, held fixed (for a text model, the trained
            embedding's output).
        targets: ``(N,)`` class indices.
        weight_decay: ``lambda`` of the penalty (0: the plain cross-entropy).
        chunk: examples per forward pass (0: all at once). With chunks the mean is accumulated
            as sums over chunks divided by ``N``.
        hessian_data: ``[(inputs, targets), ...]`` batches on which the certificate and the
            flatness measures take the cross-entropy's Hessian (default: the objective's own
            data, in chunks); a fixed subset of the training set where the table says so.
    """

    module: nn.Module
    inputs: torch.Tensor
    targets: torch.Tensor
    weight_decay: float = 0.0
    chunk: int = 0
    hessian_data: list | None = field(default=None, repr=False)

    def __post_init__(self):
        if len(self.inputs) != len(self.targets) or len(self.targets) == 0:
            raise ValueError(f"an objective needs as many targets as inputs (got {len(self.inputs)} inputs, "
                             f"{len(self.targets)} targets), at least one")
        if self.hessian_data is None:
            self.hessian_data = self._parts()

    @property
    def parameters(self) -> list[torch.Tensor]:
        return [p for p in self.module.parameters() if p.requires_grad]

    def penalty(self) -> torch.Tensor:
        """``weight_decay / 2 * |theta|^2`` as a tensor with its graph."""
        return self.weight_decay / 2 * sum((p * p).sum() for p in self.parameters)

    def _parts(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The objective's data in chunks of ``chunk`` examples (one chunk when 0)."""
        size = self.chunk or len(self.targets)
        return [(self.inputs[i:i + size], self.targets[i:i + size]) for i in range(0, len(self.targets), size)]

    def value_and_grad(self) -> torch.Tensor:
        """The objective's value; its gradient is added to the parameters' ``.grad``."""
        if not self.chunk:
            value = F.cross_entropy(self.module(self.inputs), self.targets)
            if self.weight_decay:
                value = value + self.penalty()
            value.backward()
            return value
        total, count = 0.0, len(self.targets)
        for x, y in self._parts():
            loss = F.cross_entropy(self.module(x), y, reduction="sum") / count
            loss.backward()
            total += loss.item()
        if self.weight_decay:
            penalty = self.penalty()
            penalty.backward()
            total += penalty.item()
        # in the parameters' precision: a float64 finish needs a float64 value in its line search
        return torch.tensor(total, dtype=self.parameters[0].dtype)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, float]:
        """``(cross-entropy, accuracy, objective)`` at the current point."""
        if not self.chunk:
            out = self.module(self.inputs)
            loss = float(F.cross_entropy(out, self.targets))
            accuracy = float((out.argmax(1) == self.targets).double().mean())
        else:
            loss, correct = 0.0, 0
            for x, y in self._parts():
                out = self.module(x)
                loss += float(F.cross_entropy(out, y, reduction="sum"))
                correct += int((out.argmax(1) == y).sum())
            loss, accuracy = loss / len(self.targets), correct / len(self.targets)
        objective = loss + self.weight_decay / 2 * float(sum((p * p).sum() for p in self.parameters)) \
            if self.weight_decay else loss
        return loss, accuracy, objective

    def hessian(self) -> HessianOperator:
        """The cross-entropy's Hessian on :attr:`hessian_data` (what the flatness measures read)."""
        return HessianOperator(self.module, F.cross_entropy, self.hessian_data)

    def certify(self, history: Sequence[float] | None, rule: Rule = Rule(), seed: int = 0) -> Certificate:
        """The certificate of the current point for this objective (its Hessian is the
        cross-entropy's shifted by ``weight_decay``)."""
        return certify(self.hessian(), loss_history=history, rule=rule, seed=seed, weight_decay=self.weight_decay)


@dataclass
class Finish:
    """What :func:`finish` did: the certificate of the final point, the cross-entropy and the
    objective after each round (``losses``, ``objectives``) and the iterations per round."""

    certificate: Certificate
    losses: list
    objectives: list
    iterations: int

    @property
    def rounds(self) -> int:
        return len(self.losses)

    def describe(self) -> str:
        """The ``finish`` column of a results file."""
        return f"L-BFGS, {self.rounds} rounds of at most {self.iterations} iterations"


def finish(objective: Objective, rounds: int, iterations: int = 25, *, rule: Rule = Rule(), seed: int = 0,
           history: Sequence[float] = ()) -> Finish:
    """Full-batch L-BFGS on ``objective`` from the module's current point, at most ``rounds``
    rounds of ``iterations`` iterations. After each round the objective joins ``history`` (the
    values before the finish, for the plateau test: a round counts as an epoch); once the fit
    criterion holds, the certificate is asked, and the rounds stop at the first ``minimum``. A
    round that makes the loss non-finite ends the finish. The certificate returned is always of
    the final point (asked again if the last one was of an earlier round)."""
    objective.module.eval()
    history, losses, objectives = list(history), [], []
    certificate, certified_at, last = None, -1, 0
    for last in lbfgs_rounds(objective.parameters, objective.value_and_grad, rounds, iterations):
        loss, accuracy, value = objective.evaluate()
        if not math.isfinite(loss):
            break
        losses.append(loss)
        objectives.append(value)
        history.append(value)
        if fits(accuracy, history, rule):
            certificate, certified_at = objective.certify(history, rule, seed), last
            if certificate.verdict == "minimum":
                break
    if certificate is None or certified_at != last:
        certificate = objective.certify(history, rule, seed)
    return Finish(certificate, losses, objectives, iterations)


def stability(objective: Objective, measured: dict, measure_again: Callable[[], dict], iterations: int = 25) -> float:
    """The last test of a minimum: one more round of ``iterations`` L-BFGS iterations on
    ``objective`` from the certified point, then the flatness measures again
    (``measure_again()``, ``{name: value}``). Returns the largest relative change of a measure
    against ``measured`` (the values at the certified point; two values both below
    :data:`NEGLIGIBLE` are zero to rounding and count as unchanged); the caller calls the point a
    minimum only when it is small (1 %: the measures no longer depend on where the finish
    stopped). The module is left at the point after that round."""
    objective.module.eval()
    for _ in lbfgs_rounds(objective.parameters, objective.value_and_grad, 1, iterations):
        pass
    again = measure_again()
    return max(_change(value, again[name]) for name, value in measured.items())


# a flatness value this small is zero to rounding (a network decayed to theta = 0, whose Hessian
# vanishes: values near 1e-30 are float64 noise; real networks' measures are above 1e-4)
NEGLIGIBLE = 1e-12


def _change(before: float, after: float) -> float:
    """The relative change of a measure; none between two values that are both zero to rounding."""
    if abs(before) <= NEGLIGIBLE and abs(after) <= NEGLIGIBLE:
        return 0.0
    return abs(after - before) / abs(before) if before else math.inf
